#!/bin/bash
# Two generators' schedules of one pipeline, timed in turns on one core: which is
# faster, by the median of the per-turn time ratios (the machine's speed drifts by
# up to 2x within minutes; turns put the drift on both).
#
#   bench/ab.sh GENERATOR_A GENERATOR_B NETWORK [train|infer] [IMAGES] [CALLS]
#
# e.g. a copy of build/generator/kiln_generator before a schedule change against
# the rebuilt one. Each pipeline's outputs are those of its own build: check
# results with the tests, not here.
set -euo pipefail
source "$(dirname "$0")/profile_lib.sh"
gen_a=$1 gen_b=$2 network=$3 pipeline=${4:-train} images=${5:-32} calls=${6:-100}
resolve_network "$network" "$pipeline"
generate "$gen_a" run host
generate "$gen_b" run_b host
compile_driver -DKILN_AB "$out/run_b.a"
echo "bench/ab.sh: $stem $pipeline, $images images per call, $calls turns, one thread" >&2
run_driver "$images" "$calls"
