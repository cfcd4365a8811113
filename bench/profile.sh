#!/bin/bash
# Where a network's time goes, by Halide's profiler: generates one pipeline with
# target host-profile, calls it CALLS times on one core with kiln's allocator
# settings, and prints Halide's report (time per stage, % of the total).
#
#   bench/profile.sh NETWORK [train|infer] [IMAGES] [CALLS]
#
# NETWORK: a name under networks/ or a .toml file (its schedules/ file is used as
# the build uses it). IMAGES: images per call (default 32: the half of a batch of
# 64 that each of kiln's two cores runs). Needs a built generator in build/.
# bench/ab.sh compares two generators' schedules of one pipeline, in turns.
set -euo pipefail
source "$(dirname "$0")/profile_lib.sh"
network=$1 pipeline=${2:-train} images=${3:-32} calls=${4:-50}
resolve_network "$network" "$pipeline"
generate build/generator/kiln_generator run "${KILN_PROFILE_TARGET:-host-profile}"
compile_driver
echo "bench/profile.sh: $stem $pipeline, $images images per call, $calls calls, one thread" >&2
run_driver "$images" "$calls"
