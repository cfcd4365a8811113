#!/usr/bin/env bash
# Data-parallel training on MPI: `mpirun -np P kiln train` ends with the same
# checkpoint, bit for bit, as one process with the same shards (P = 1, 2, 4;
# lenet5 and batchnorm); bad input on any rank ends the job with kiln's one line
# and a non-zero exit; a rank killed mid-run ends the job within seconds, leaves
# the last checkpoint whole, and --resume then finishes with the uninterrupted
# run's weights; a study on 2 ranks writes one process's tables. Usage:
# mpi_test.sh KILN MPIRUN_SH MNIST_DIR
set -u
kiln=$1 mpirun=$2 mnist=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0
export KILN_DATA=$mnist
export KILN_MPI_NO_CMA=1  # correctness here, on any machine: containers may forbid CMA (scripts/mpirun.sh)

pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

# same NAME A B: two files with the same bytes.
same() { if cmp -s "$2" "$3"; then pass; else fail "$1 ($2 and $3 differ)"; fi; }

# expect NAME EXIT_CODE STDERR_REGEX -- COMMAND...: within 60 s, the exit code, and
# kiln's one error line (mpirun may add its own box around it, without "error:").
expect() {
    local name=$1 code=$2 pattern=$3
    shift 4
    timeout 60 "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$? lines
    lines=$(grep -c "error:" "$tmp/err")
    if [ "$got" -eq "$code" ] && [ "$lines" -eq 1 ] && grep -Eq -- "$pattern" "$tmp/err"; then
        pass
    else
        fail "$name (exit $got, want $code; stderr: $(head -c 600 "$tmp/err"))"
    fi
}

# run OUT ARGS...: trains into $tmp/OUT, quietly.
run() {
    local out=$1
    shift
    timeout 300 "$@" --out "$tmp/$out" --no-progress >"$tmp/$out.log" 2>&1 || fail "$out: exit $? ($(tail -c 600 "$tmp/$out.log"))"
}

# Bit for bit: 2 epochs, batches of 64 in 4 shards, a last batch of 36 images.
small="--limit-train 420 --limit-test 200 --epochs 2 --shards 4"
run one "$kiln" train lenet5 $small --threads 2
run np1 "$mpirun" -np 1 "$kiln" train lenet5 $small
run np2 "$mpirun" -np 2 "$kiln" train lenet5 $small
run np4 "$mpirun" -np 4 "$kiln" train lenet5 $small
for p in np1 np2 np4; do same "lenet5, $p ranks = one process" "$tmp/one/checkpoint.safetensors" "$tmp/$p/checkpoint.safetensors"; done
same "metrics.csv of 4 ranks (without timings)" <(cut -d, -f1-7 "$tmp/one/metrics.csv") <(cut -d, -f1-7 "$tmp/np4/metrics.csv")
if [ -e "$tmp/np2.log" ] && grep -q "^epoch   2/2" "$tmp/np2.log" && [ "$(grep -c "^epoch" "$tmp/np2.log")" -eq 2 ]; then pass; else fail "rank 0 alone prints the epochs"; fi
# A last batch of one image (fewer shards than ranks there), and batchnorm's shards and pooled statistics.
run edge1 "$kiln" train lenet5 --limit-train 65 --limit-test 50 --epochs 1 --shards 4 --threads 1
run edge4 "$mpirun" -np 4 "$kiln" train lenet5 --limit-train 65 --limit-test 50 --epochs 1 --shards 4
same "a last batch of one image on 4 ranks" "$tmp/edge1/checkpoint.safetensors" "$tmp/edge4/checkpoint.safetensors"
bn="--limit-train 200 --limit-test 100 --epochs 1 --batch 32 --shards 4"
run bn1 "$kiln" train bn-small $bn --threads 1
run bn2 "$mpirun" -np 2 "$kiln" train bn-small $bn
run bn4 "$mpirun" -np 4 "$kiln" train bn-small $bn
same "bn-small, 2 ranks = one process" "$tmp/bn1/checkpoint.safetensors" "$tmp/bn2/checkpoint.safetensors"
same "bn-small, 4 ranks = one process" "$tmp/bn1/checkpoint.safetensors" "$tmp/bn4/checkpoint.safetensors"

# Bad input: one line from kiln, a non-zero exit, never a hang.
base="--limit-test 100 --epochs 1 --out $tmp/bad" args="--limit-test 100 --epochs 1 --out $tmp/bad --limit-train 100"
expect "a bad flag" 2 "^kiln: error: .*--bogus" -- "$mpirun" -np 2 "$kiln" train lenet5 $args --bogus
expect "a bad flag on rank 1" 2 "^rank 1: kiln: error: .*--bogus" -- \
    "$mpirun" -np 1 "$kiln" train lenet5 $args : -np 1 "$kiln" train lenet5 $args --bogus
expect "more ranks than shards" 2 "4 MPI ranks, but .* 2 shards" -- "$mpirun" -np 4 "$kiln" train lenet5 $args --shards 2
expect "more shards than the batch" 2 "--shards 8 exceeds the batch \(4\)" -- "$mpirun" -np 2 "$kiln" train lenet5 $args --shards 8 --batch 4
expect "ranks with other settings" 1 "rank 1 .* other training settings" -- \
    "$mpirun" -np 1 "$kiln" train lenet5 $args : -np 1 "$kiln" train lenet5 $args --lr 0.1
expect "ranks with other data" 1 "rank 1 .* other training images" -- \
    "$mpirun" -np 1 "$kiln" train lenet5 $args : -np 1 "$kiln" train lenet5 $base --limit-train 99
expect "a rank without the data folder" 1 "^rank 1: $tmp/nodata/train-images-idx3-ubyte: error" -- \
    "$mpirun" -np 1 "$kiln" train lenet5 $args : -np 1 "$kiln" train lenet5 $args --data "$tmp/nodata"
expect "ranks running other commands" 1 "rank 1 .* other command" -- \
    "$mpirun" -np 1 "$kiln" train lenet5 $args : -np 1 "$kiln" list
expect "bench under mpirun" 2 "under mpirun, kiln trains and studies" -- "$mpirun" -np 2 "$kiln" bench lenet5
expect "a missing checkpoint to resume" 1 "none.safetensors: error" -- \
    "$mpirun" -np 2 "$kiln" train lenet5 $args --resume "$tmp/none.safetensors"

# A rank killed mid-run: the job ends within seconds, non-zero, with mpirun's
# message; the last checkpoint is whole; --resume on 2 ranks then ends with the
# weights of an uninterrupted run (here one process: the same bits, above).
long="--limit-train 6000 --limit-test 200 --epochs 4 --shards 4"
run uninterrupted "$kiln" train lenet5 $long --threads 2
mkdir -p "$tmp/killed"
"$mpirun" -np 2 "$kiln" train lenet5 $long --out "$tmp/killed" --no-progress >"$tmp/killed.log" 2>&1 &
job=$!
for _ in $(seq 600); do [ -e "$tmp/killed/checkpoint.safetensors" ] && break; sleep 0.05; done
rank1=""
for child in $(pgrep -P "$job"); do
    tr '\0' '\n' <"/proc/$child/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && rank1=$child
done
if [ -n "$rank1" ] && kill -9 "$rank1"; then
    killed_at=$(date +%s%N)
    timeout 60 tail --pid="$job" -f /dev/null
    wait "$job"
    code=$?
    ms=$(( ($(date +%s%N) - killed_at) / 1000000 ))
    echo "killed rank 1 (pid $rank1): the job ended $ms ms later, exit $code"
    if [ "$code" -ne 0 ] && [ "$ms" -le 10000 ]; then pass; else fail "killed rank: job exit $code after $ms ms"; fi
    if grep -q "rank 1 .* exited on signal 9" "$tmp/killed.log"; then pass; else fail "killed rank: no message ($(tail -c 600 "$tmp/killed.log"))"; fi
    epoch=$("$kiln" eval lenet5 --checkpoint "$tmp/killed/checkpoint.safetensors" --limit-test 10 --json | grep -Eo '"epoch":[0-9]+' | cut -d: -f2)
    if [ -n "$epoch" ] && [ "$epoch" -ge 1 ] && [ "$epoch" -lt 4 ]; then pass; else fail "killed rank: checkpoint epoch '$epoch'"; fi
    run resumed "$mpirun" -np 2 "$kiln" train lenet5 $long --resume "$tmp/killed/checkpoint.safetensors"
    same "killed, then resumed on 2 ranks = uninterrupted" "$tmp/uninterrupted/checkpoint.safetensors" "$tmp/resumed/checkpoint.safetensors"
else
    fail "killed rank: no rank 1 to kill (job $job: $(tail -c 600 "$tmp/killed.log"))"
    kill "$job" 2>/dev/null
fi

# A study on 2 ranks: the runs handed out as ranks free up; the tables and
# inspections equal one process's but for the timing columns; run again, it
# trains nothing.
networks=$(cd "$(dirname "$0")/../networks/study" && pwd)
study=("$networks/conv0-dense0.toml" "$networks/conv1-dense1.toml" "$networks/conv0-dense1.toml" --epochs 1
       --seeds 2 --limit-train 500 --limit-test 200 --no-progress --no-report)
timeout 300 "$kiln" study "${study[@]}" --threads 2 --out "$tmp/study1" >"$tmp/study1.log" 2>&1 || fail "study, one process ($(tail -c 600 "$tmp/study1.log"))"
timeout 300 "$mpirun" -np 2 "$kiln" study "${study[@]}" --out "$tmp/study2" >"$tmp/study2.log" 2>&1 || fail "study, 2 ranks ($(tail -c 600 "$tmp/study2.log"))"
same "study: results.csv but train_seconds" <(cut -d, -f1-7,9- "$tmp/study1/results.csv") <(cut -d, -f1-7,9- "$tmp/study2/results.csv")
same "study: curves.csv but images_per_s" <(cut -d, -f1-7 "$tmp/study1/curves.csv") <(cut -d, -f1-7 "$tmp/study2/curves.csv")
for f in probes.csv inspect/conv0-dense0.json inspect/conv1-dense1.json inspect/conv0-dense1.json; do
    same "study: $f" "$tmp/study1/$f" "$tmp/study2/$f"
done
if [ "$(wc -l <"$tmp/study2/results.csv")" -eq 7 ]; then pass; else fail "study: results.csv of 2 ranks lacks rows"; fi
timeout 300 "$mpirun" -np 2 "$kiln" study "${study[@]}" --out "$tmp/study2" >"$tmp/study2b.log" 2>&1 || fail "study, 2 ranks, again"
if [ "$(grep -c "done before" "$tmp/study2b.log")" -eq 6 ]; then pass; else fail "study again on 2 ranks trained something ($(head -c 600 "$tmp/study2b.log"))"; fi

# The same study in three parts (as Slurm array tasks would run it), then once
# whole to write the tables: one process's tables again.
for k in 0 1 2; do
    timeout 300 "$kiln" study "${study[@]}" --threads 1 --part "$k/3" --out "$tmp/study3" >"$tmp/study3.log" 2>&1 || fail "study --part $k/3"
done
[ ! -e "$tmp/study3/results.csv" ] && pass || fail "study --part wrote tables"
timeout 300 "$kiln" study "${study[@]}" --out "$tmp/study3" >"$tmp/study3.log" 2>&1 || fail "study after its parts"
if [ "$(grep -c "done before" "$tmp/study3.log")" -eq 6 ]; then pass; else fail "study after its parts trained something"; fi
same "study in parts: results.csv but train_seconds" <(cut -d, -f1-7,9- "$tmp/study1/results.csv") <(cut -d, -f1-7,9- "$tmp/study3/results.csv")
same "study in parts: probes.csv" "$tmp/study1/probes.csv" "$tmp/study3/probes.csv"
expect "study --part on rank 1 under mpirun" 2 "^rank 1: kiln: error: --part splits a study without mpirun" -- \
    "$mpirun" -np 1 "$kiln" study "${study[@]}" --out "$tmp/study4" : -np 1 "$kiln" study "${study[@]}" --part 0/2 --out "$tmp/study4"
expect "study --part beyond N" 2 "--part 3/3: expected K/N" -- "$kiln" study "${study[@]}" --part 3/3 --out "$tmp/study3"

echo "mpi tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
