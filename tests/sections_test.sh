#!/usr/bin/env bash
# A schedule file's target sections in a network compiled on demand: a section
# for this machine's family (whichever x86-64 one it is) naming Halide's
# Mullapudi2016 autoscheduler, which the generator runs itself, must give the
# same scores as kiln's hand-scheduled compiled-in lenet5 (same number correct on
# 500 test images, mean loss within 1e-5 relative: other schedules sum in other
# orders), and another library than [schedule] alone gives. Schedules change
# speed, never results. `kiln tune` writes its family's section into a file and
# keeps the rest; a bad --target is refused.
# Usage: sections_test.sh KILN NETWORKS_DIR MNIST_DIR
set -u
kiln=$1 networks=$2 mnist=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export KILN_CACHE=$tmp/cache
passed=0 failed=0
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
ok() { passed=$((passed + 1)); }
field() { grep -Eo "\"$1\":[0-9.e+-]+" "$2" | cut -d: -f2; }

"$kiln" train lenet5 --epochs 1 --limit-train 1000 --limit-test 100 --no-progress --data "$mnist" \
    --out "$tmp/run" >"$tmp/train.out" 2>&1 || { echo "FAIL: training: $(tail -1 "$tmp/train.out")"; exit 1; }
"$kiln" eval lenet5 --checkpoint "$tmp/run/checkpoint.safetensors" --data "$mnist" --limit-test 500 --json \
    >"$tmp/hand.json" || { echo "FAIL: eval"; exit 1; }

mkdir "$tmp/user"
cp "$networks/lenet5.toml" "$tmp/user/lenet5.toml"
{
    printf '[schedule]\nconv_channel_block = 2\n'
    for family in x86-64-avx512 x86-64-avx2 x86-64-sse41 x86-64 arm-64; do
        printf '\n[schedule.%s]\nautoscheduler = "Mullapudi2016"\n' "$family"
    done
} >"$tmp/auto.toml"
start=$(date +%s)
"$kiln" eval "$tmp/user/lenet5.toml" --schedule "$tmp/auto.toml" --checkpoint "$tmp/run/checkpoint.safetensors" \
    --data "$mnist" --limit-test 500 --json >"$tmp/auto.json" 2>"$tmp/auto.err"
if [ $? -ne 0 ]; then
    fail "eval with an autoscheduler section: $(head -c 300 "$tmp/auto.err")"
elif [ "$(field correct "$tmp/auto.json")" = "$(field correct "$tmp/hand.json")" ] &&
    awk -v a="$(field loss "$tmp/auto.json")" -v b="$(field loss "$tmp/hand.json")" \
        'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b) }'; then ok; else
    fail "autoscheduled eval $(cat "$tmp/auto.json") differs from the hand-scheduled $(cat "$tmp/hand.json")"; fi
echo "compiled and evaluated with the autoscheduler section in $(($(date +%s) - start)) s"
# Without the family sections ([schedule] alone), the same scores and another
# library: the section, not [schedule], decided this machine's code.
printf '[schedule]\nconv_channel_block = 2\n' >"$tmp/plain.toml"
"$kiln" eval "$tmp/user/lenet5.toml" --schedule "$tmp/plain.toml" --checkpoint "$tmp/run/checkpoint.safetensors" \
    --data "$mnist" --limit-test 500 --json >"$tmp/plain.json" 2>"$tmp/plain.err" ||
    fail "eval with [schedule] alone: $(head -c 300 "$tmp/plain.err")"
if [ "$(field correct "$tmp/plain.json")" = "$(field correct "$tmp/hand.json")" ]; then ok; else
    fail "eval with [schedule] alone $(cat "$tmp/plain.json") differs from $(cat "$tmp/hand.json")"; fi
auto_lib=$(grep -l Mullapudi2016 "$KILN_CACHE"/lenet5-*/key.txt | sed 's/key.txt$/lib.so/')
plain_lib=$(grep -L Mullapudi2016 "$KILN_CACHE"/lenet5-*/key.txt | sed 's/key.txt$/lib.so/')
if [ -s "$auto_lib" ] && [ -s "$plain_lib" ] && ! cmp -s "$auto_lib" "$plain_lib"; then ok; else
    fail "the autoscheduler section made no other library (${auto_lib:-none}, ${plain_lib:-none})"; fi

# kiln tune writes this machine's family's section into the file beside a network
# file and leaves the rest as it was (logistic: quick to compile, one repeat).
cp "$networks/logistic.toml" "$tmp/user/logistic.toml"
printf '# kept\n[schedule]\ndense_block = 2\n\n[schedule.arm-64]\ndense_block = 8\n' >"$tmp/user/logistic.schedule.toml"
cp "$tmp/user/logistic.schedule.toml" "$tmp/before.toml"
start=$(date +%s)
"$kiln" tune "$tmp/user/logistic.toml" --repeats 1 --batch 8 >"$tmp/tune.out" 2>&1
code=$?
family=$(grep -Eo 'section \[schedule\.[a-z0-9-]+\]' "$tmp/tune.out" | head -1 | sed 's/section \[schedule\.//; s/\]//')
if [ $code -eq 0 ] && [ -n "$family" ] && grep -q "^\[schedule\.$family\]$" "$tmp/user/logistic.schedule.toml" &&
    [ "$(head -c "$(wc -c <"$tmp/before.toml")" "$tmp/user/logistic.schedule.toml")" = "$(cat "$tmp/before.toml")" ]; then ok; else
    fail "kiln tune (exit $code, family '$family'): $(tail -2 "$tmp/tune.out"); file: $(cat "$tmp/user/logistic.schedule.toml")"; fi
echo "kiln tune of logistic in $(($(date +%s) - start)) s"
# The section written must compile and score as before.
"$kiln" build "$tmp/user/logistic.toml" >"$tmp/build.out" 2>&1 && ok || fail "building with the tuned section: $(tail -1 "$tmp/build.out")"

# Bad targets for kiln tune: one line, exit 2, before any tuning.
for bad in "x86-64-linux-avx9:not a target string Halide knows" "arm-64-linux:this build does not include it"; do
    target=${bad%%:*} why=${bad#*:}
    "$kiln" tune lenet5 --target "$target" >"$tmp/bad.out" 2>"$tmp/bad.err"
    code=$?
    if [ $code -eq 2 ] && [ "$(wc -l <"$tmp/bad.err")" -eq 1 ] && grep -q -- "--target $target: $why" "$tmp/bad.err"; then ok; else
        fail "kiln tune --target $target: exit $code, stderr: $(head -c 300 "$tmp/bad.err")"; fi
done

echo "sections: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
