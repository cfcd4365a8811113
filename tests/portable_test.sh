#!/usr/bin/env bash
# One build runs on older CPUs: kiln under qemu-user emulating an AVX2 CPU
# (Haswell) and an SSE4.1 one (Nehalem) picks the variant compiled for it and
# scores a checkpoint as natively (same number correct on 300 test images, mean
# loss within 1e-5 relative: the variants sum in other orders, so their floats
# round differently); one training step runs there too. A CPU below every
# variant gets one clear line, not "Illegal instruction".
# Usage: portable_test.sh KILN MNIST_DIR
set -u
kiln=$1 mnist=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
ok() { passed=$((passed + 1)); }

if ! command -v qemu-x86_64 >/dev/null; then
    echo "FAIL: qemu-x86_64 is missing (apt-get install qemu-user; scripts/install-deps.sh installs it)"
    exit 1
fi
export KILN_SMALL_PAGES=1  # no restart with glibc's huge-page tunable under the emulator

"$kiln" train lenet5 --epochs 1 --limit-train 2000 --limit-test 300 --no-progress --data "$mnist" \
    --out "$tmp/run" >"$tmp/train.out" 2>&1 || { echo "FAIL: native training: $(tail -1 "$tmp/train.out")"; exit 1; }
checkpoint="$tmp/run/checkpoint.safetensors"
field() { grep -Eo "\"$1\":[0-9.e+-]+" "$2" | cut -d: -f2; }
"$kiln" eval lenet5 --checkpoint "$checkpoint" --data "$mnist" --limit-test 300 --json >"$tmp/native.json" ||
    { echo "FAIL: native eval"; exit 1; }

for cpu_variant in "Haswell x86-64-linux-sse41-avx-f16c-fma-avx2" "Nehalem x86-64-linux-sse41"; do
    read -r cpu variant <<<"$cpu_variant"
    qemu-x86_64 -cpu "$cpu" "$kiln" list >"$tmp/list" 2>&1
    if grep -q "^pipelines: $variant " "$tmp/list"; then ok; else fail "$cpu: kiln list says $(head -1 "$tmp/list"), want $variant"; fi
    qemu-x86_64 -cpu "$cpu" "$kiln" eval lenet5 --checkpoint "$checkpoint" --data "$mnist" --limit-test 300 --json \
        >"$tmp/$cpu.json" 2>"$tmp/$cpu.err"
    if [ $? -ne 0 ]; then fail "$cpu: eval failed: $(head -c 300 "$tmp/$cpu.err")"; continue; fi
    if [ "$(field correct "$tmp/$cpu.json")" = "$(field correct "$tmp/native.json")" ] &&
        awk -v a="$(field loss "$tmp/$cpu.json")" -v b="$(field loss "$tmp/native.json")" \
            'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b) }'; then ok; else
        fail "$cpu: eval $(cat "$tmp/$cpu.json") differs from native $(cat "$tmp/native.json")"; fi
    qemu-x86_64 -cpu "$cpu" "$kiln" train lenet5 --epochs 1 --limit-train 128 --limit-test 100 --no-progress \
        --data "$mnist" --out "$tmp/run-$cpu" >"$tmp/$cpu.train" 2>&1
    if [ $? -eq 0 ] && grep -q "test accuracy" "$tmp/$cpu.train"; then ok; else
        fail "$cpu: a training step failed: $(tail -1 "$tmp/$cpu.train")"; fi
done

# Core 2 has no SSE4.1, which the least variant needs.
qemu-x86_64 -cpu core2duo "$kiln" list >"$tmp/old.out" 2>"$tmp/old.err"
code=$?
if [ $code -eq 2 ] && [ "$(wc -l <"$tmp/old.err")" -eq 1 ] && grep -q "unsupported CPU: it lacks sse41" "$tmp/old.err"; then ok; else
    fail "core2duo: exit $code, stderr: $(head -c 300 "$tmp/old.err")"; fi

echo "portable: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
