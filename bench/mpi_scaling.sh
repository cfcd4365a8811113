#!/usr/bin/env bash
# Training speed over ranks x threads on this machine, and the MPI exchanges per
# step: one epoch of `kiln train` per combination, a markdown table on stdout.
# Usage: bench/mpi_scaling.sh [NETWORK IMAGES]... (default: lenet5 10000 vgg-mini 2000)
# Each row: NETWORK, ranks P, threads per rank T, shards S; images/s of the
# epoch's training steps (kiln train's epoch line), and from rank 0 per step: KB
# received, milliseconds waiting for the slowest rank, milliseconds exchanging.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
kiln=${KILN:-$root/build/kiln}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
[ $# -gt 0 ] || set -- lenet5 10000 vgg-mini 2000
combos=${COMBOS:-"1x1x2 1x2x2 2x1x2 2x1x4 4x1x4"}  # PxTxS
echo "| network | ranks | threads per rank | shards | images/s | KB per step | wait ms per step | exchange ms per step |"
echo "|---|---|---|---|---|---|---|---|"
while [ $# -ge 2 ]; do
    network=$1 images=$2
    shift 2
    for c in $combos; do
        IFS=x read -r p t s <<<"$c"
        args=(train "$network" --limit-train "$images" --limit-test 500 --epochs 1 --shards "$s" --threads "$t"
              --no-progress --out "$tmp/run")
        if [ "$p" -eq 1 ]; then "$kiln" "${args[@]}" >"$tmp/log"; else "$root/scripts/mpirun.sh" -np "$p" "$kiln" "${args[@]}" >"$tmp/log"; fi
        ips=$(grep -Eo '[0-9]+ img/s' "$tmp/log" | tail -1 | cut -d' ' -f1)
        kb=$(grep -Eo '[0-9]+ KB per step' "$tmp/log" | cut -d' ' -f1 || true)
        ms=$(grep -Eo 'in [0-9.]+ ms' "$tmp/log" | cut -d' ' -f2 || true)
        wait=$(grep -Eo 'waiting [0-9.]+ ms' "$tmp/log" | cut -d' ' -f2 || true)
        echo "| $network | $p | $t | $s | $ips | ${kb:--} | ${wait:--} | ${ms:--} |"
    done
done
