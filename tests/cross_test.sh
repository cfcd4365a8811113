#!/usr/bin/env bash
# Cross-compiling for AArch64 (NEON) from this machine: the generator emits
# lenet5's three pipelines for arm-64-linux with its shipped schedule file, the
# forward pass as a static library with Halide's runtime, and every object must
# be AArch64 code (readelf). The file's [schedule.arm-64] section must decide the
# arm code (changing it changes the object; changing an x86 section does not),
# and bad input is one line naming file, line and key. The code cannot run here.
# Then an x86-64 multi-target library: each variant its own family's section.
# Usage: cross_test.sh GENERATOR NETWORK_TOML SCHEDULE_TOML
set -u
generator=$1 network=$2 schedule=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
ok() { passed=$((passed + 1)); }
target=arm-64-linux

if ! command -v readelf >/dev/null; then
    echo "FAIL: readelf is missing (apt-get install binutils)"
    exit 1
fi
if ! grep -q '^\[schedule\.arm-64\]' "$schedule"; then
    echo "FAIL: $schedule has no [schedule.arm-64] section to cross-compile with"
    exit 1
fi

# generate OUT_DIR NAME GENERATOR KIND TARGET SCHEDULE: one pipeline, its log in OUT_DIR/NAME.log.
generate() {
    mkdir -p "$1"
    "$generator" -g "$3" -f "kiln_cross_$2" -n "$2" -o "$1" -e "$4" target="$5" network="$network" schedule="$6" \
        >"$1/$2.log" 2>&1
}
# Every ELF member of FILE is AArch64 (a static library lists one header per object).
aarch64() {
    local machines
    machines=$(readelf -h "$1" 2>/dev/null | grep -E '^ +Machine:' | sort -u)
    [ -n "$machines" ] && [ "$(echo "$machines" | grep -cv 'AArch64')" -eq 0 ]
}

start=$(date +%s)
generate "$tmp/arm" forward kiln_forward static_library "$target" "$schedule" &&
    generate "$tmp/arm" train kiln_train object "$target-no_runtime" "$schedule" &&
    generate "$tmp/arm" features kiln_features object "$target-no_runtime" "$schedule"
if [ $? -ne 0 ]; then
    echo "FAIL: generating for $target: $(cat "$tmp"/arm/*.log | grep -v '^Warning' | head -3)"
    exit 1
fi
for f in forward.a train.o features.o; do
    if aarch64 "$tmp/arm/$f"; then ok; else fail "$f is not AArch64 code: $(readelf -h "$tmp/arm/$f" 2>&1 | grep Machine | sort -u)"; fi
done
# The library holds the pipeline and Halide's runtime for arm-64 (its thread pool among them).
if readelf -s "$tmp/arm/forward.a" | grep -q ' kiln_cross_forward$' &&
    readelf -s "$tmp/arm/forward.a" | grep -q ' halide_do_par_for$'; then ok; else
    fail "forward.a lacks kiln_cross_forward or Halide's runtime"; fi
echo "generated for $target in $(($(date +%s) - start)) s"

# The arm-64 section decides the arm code: another vector width there, another
# object; another x86 section, the same bytes.
sed '/^\[schedule\.arm-64\]/a vector_lanes = 8' "$schedule" >"$tmp/arm-changed.toml"
printf '\n[schedule.x86-64-sse41]\nvector_lanes = 8\nconv_channel_block = 1\n' | cat "$schedule" - >"$tmp/x86-changed.toml"
generate "$tmp/arm-changed" forward kiln_forward object "$target-no_runtime" "$tmp/arm-changed.toml" &&
    generate "$tmp/x86-changed" forward kiln_forward object "$target-no_runtime" "$tmp/x86-changed.toml" &&
    generate "$tmp/same" forward kiln_forward object "$target-no_runtime" "$schedule" ||
    fail "generating with changed sections: $(cat "$tmp"/*/forward.log | grep -v '^Warning' | head -3)"
if ! cmp -s "$tmp/same/forward.o" "$tmp/arm-changed/forward.o"; then ok; else
    fail "changing [schedule.arm-64] left the arm object as it was"; fi
if cmp -s "$tmp/same/forward.o" "$tmp/x86-changed/forward.o"; then ok; else
    fail "changing an x86 section changed the arm object"; fi

# One multi-target build (x86-64 AVX2 and SSE4.1, as KILN_TARGETS): each variant
# takes its own family's section. A new [schedule.x86-64-sse41] changes the SSE4.1
# variant's object, not the AVX2 one's.
multi=x86-64-linux-sse41-avx-f16c-fma-avx2,x86-64-linux-sse41
generate "$tmp/multi" forward kiln_forward static_library "$multi" "$schedule" &&
    generate "$tmp/multi-changed" forward kiln_forward static_library "$multi" "$tmp/x86-changed.toml" ||
    fail "generating for $multi: $(cat "$tmp"/multi*/forward.log | grep -v '^Warning' | head -3)"
(cd "$tmp/multi" && ar x forward.a) && (cd "$tmp/multi-changed" && ar x forward.a)
for variant in x86-64-linux-sse41-avx-f16c-fma-avx2 x86-64-linux-sse41; do
    member=forward.a-$variant.o
    if [ ! -s "$tmp/multi/$member" ]; then fail "no member $member in the multi-target library"; continue; fi
    cmp -s "$tmp/multi/$member" "$tmp/multi-changed/$member"
    same=$?
    if { [ $variant = x86-64-linux-sse41 ] && [ $same -ne 0 ]; } || { [ $variant != x86-64-linux-sse41 ] && [ $same -eq 0 ]; }; then
        ok
    else
        fail "$variant: a new [schedule.x86-64-sse41] $([ $same -eq 0 ] && echo "left it as it was" || echo "changed it")"
    fi
done

# Bad input: one line naming the file, line and key, and a non-zero exit.
expect_error() {  # WHAT TOML_TEXT TARGET REGEX
    printf '%s' "$2" >"$tmp/bad.toml"
    generate "$tmp/bad" forward kiln_forward object "$3" "$tmp/bad.toml"
    local code=$? lines
    lines=$(grep -cv '^$' "$tmp/bad/forward.log")
    if [ $code -ne 0 ] && [ "$lines" -eq 1 ] && grep -Eq "$4" "$tmp/bad/forward.log"; then ok; else
        fail "$1: exit $code, output: $(head -c 300 "$tmp/bad/forward.log")"; fi
}
expect_error "a section for an unknown family" $'[schedule]\n[schedule.arm-64-neon]\nvector_lanes = 4\n' \
    "$target-no_runtime" "^$tmp/bad.toml:2:1: error: unknown target family 'arm-64-neon' in section 'schedule.arm-64-neon'"
expect_error "a section keyed by a target string" $'[schedule.arm-64-linux]\nvector_lanes = 4\n' "$target-no_runtime" \
    "^$tmp/bad.toml:1:1: error: section 'schedule.arm-64-linux' names a Halide target, not a target family \(its family is 'arm-64'"
expect_error "a bad value in the arm section" $'[schedule.arm-64]\nconv_row_vectors = 0\n' "$target-no_runtime" \
    "^$tmp/bad.toml:2:20: error: schedule 'conv_row_vectors' must be an integer in \[1, 4\]"
# A target string Halide does not know: Halide's generator refuses it, naming it.
printf '[schedule]\n' >"$tmp/empty.toml"
generate "$tmp/bad-target" forward kiln_forward object arm-64-linux-neon9 "$tmp/empty.toml"
code=$?
if [ $code -ne 0 ] && grep -q "arm-64-linux-neon9" "$tmp/bad-target/forward.log"; then ok; else
    fail "an unknown target string: exit $code, output: $(head -c 300 "$tmp/bad-target/forward.log")"; fi

echo "cross: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
