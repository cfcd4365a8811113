#!/usr/bin/env bash
# mpirun (OpenMPI) with the options Kiln's MPI runs need on one machine or in a
# container; the arguments follow, e.g.
#   scripts/mpirun.sh -np 2 build/kiln train lenet5 --shards 4
# --bind-to none: kiln places its own threads (else each rank is bound to one core);
# --oversubscribe: more ranks than cores (tests, small machines);
# KILN_MPI_NO_CMA=1 adds btl_vader_single_copy_mechanism none: some containers
#   forbid the cross-process memory reads (CMA) that large messages use between
#   ranks on one machine ("Read -1, expected ..., errno = 1"); without them the
#   exchanges took 2-5 times longer here;
# --allow-run-as-root: root, as in a container.
set -euo pipefail
options=(--bind-to none --oversubscribe)
[ "${KILN_MPI_NO_CMA:-0}" != 1 ] || options+=(--mca btl_vader_single_copy_mechanism none)
[ "$(id -u)" -ne 0 ] || options+=(--allow-run-as-root)
exec mpirun "${options[@]}" "$@"
