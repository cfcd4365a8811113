#!/usr/bin/env bash
# The kiln command as a user meets it: every bad input gets one clear line on
# stderr naming the file (and line and column where there is one) and a non-zero
# exit; good input works. Usage: cli_test.sh KILN NETWORKS_DIR MNIST_DIR
set -u
kiln=$1 networks=$2 mnist=$3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

# expect NAME EXIT_CODE STDERR_REGEX -- COMMAND...: stderr must be one line matching the
# pattern, or empty when the pattern is "".
expect() {
    local name=$1 code=$2 pattern=$3
    shift 4
    "$@" >"$tmp/out" 2>"$tmp/err"
    local got=$?
    local lines
    lines=$(wc -l <"$tmp/err")
    local stderr_ok
    if [ -z "$pattern" ]; then [ ! -s "$tmp/err" ] && stderr_ok=1 || stderr_ok=0
    else grep -Eq -- "$pattern" "$tmp/err" && [ "$lines" -le 1 ] && stderr_ok=1 || stderr_ok=0; fi
    if [ "$got" -eq "$code" ] && [ "$stderr_ok" -eq 1 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $name (exit $got, want $code; stderr: $(head -c 400 "$tmp/err"))"
    fi
}

printf '[input]\nwidth = 28\nheight = 28\nchannels = 1\nclasses = 10\n[[layer]]\ntype = "dense"\nunits = [10\n' >"$tmp/syntax.toml"
printf '[input]\nwidth = 28\nheight = 28\nchannels = 1\nclasses = 10\n[[layer]]\ntype = "dense"\nunits = 9\n' >"$tmp/classes.toml"
printf '[input]\nwidth = 28\nheight = 28\nchannels = 1\nclasses = 10\n[[layer]]\ntype = "conv"\nfiltres = 3\n' >"$tmp/key.toml"
: >"$tmp/empty.toml"
mkdir "$tmp/nodata"
head -c 1000 "$mnist/t10k-images-idx3-ubyte" >"$tmp/t10k-images-idx3-ubyte"
cp "$mnist/t10k-labels-idx1-ubyte" "$tmp/"
printf 'not a checkpoint' >"$tmp/bad.safetensors"

expect "check accepts lenet5" 0 "" -- "$kiln" check "$networks/lenet5.toml"
expect "check: TOML syntax error" 1 "syntax.toml:8:[0-9]+: error:" -- "$kiln" check "$tmp/syntax.toml"
expect "check: last layer does not match classes" 1 "classes.toml:8:[0-9]+: error: .*classes" -- "$kiln" check "$tmp/classes.toml"
expect "check: unknown key" 1 "key.toml:8:1: error: .*filtres" -- "$kiln" check "$tmp/key.toml"
expect "check: empty file" 1 "empty.toml.*error" -- "$kiln" check "$tmp/empty.toml"
expect "check: missing file" 1 "nope.toml: error" -- "$kiln" check "$tmp/nope.toml"
expect "train: unknown network" 2 "no network named 'nope'" -- "$kiln" train nope
expect "train: bad flag value" 2 "--batch" -- "$kiln" train lenet5 --batch 0
expect "bench: unknown network" 2 "no network named 'nope'" -- "$kiln" bench nope
expect "tune: unknown network" 2 "no network named 'nope'" -- "$kiln" tune nope
expect "tune: unknown autoscheduler" 2 "unknown autoscheduler 'Bogus'" -- \
    "$kiln" tune logistic --minutes 0 --repeats 1 --autoschedulers Bogus --out "$tmp/bogus.toml"
# kiln tune hands --autoschedulers and --out to kiln-tune: none tried, the settings written there.
expect "tune: no autoscheduler, --out" 0 "" -- \
    "$kiln" tune logistic --minutes 0 --repeats 1 --autoschedulers "" --out "$tmp/tuned.toml"
if grep -q "no autoscheduler" "$tmp/out" && grep -q '^\[schedule\.' "$tmp/tuned.toml" 2>/dev/null &&
    [ ! -e "$tmp/bogus.toml" ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "FAIL: tune: --autoschedulers \"\" and --out not taken (stdout: $(head -c 400 "$tmp/out"))"
fi
expect "train: unknown flag" 2 "--bogus" -- "$kiln" train lenet5 --bogus
expect "train: missing data" 1 "nodata/train-images-idx3-ubyte: error" -- "$kiln" train lenet5 --data "$tmp/nodata" --out "$tmp/run"
expect "eval: corrupt checkpoint" 1 "bad.safetensors: error" -- "$kiln" eval lenet5 --checkpoint "$tmp/bad.safetensors" --data "$mnist"
expect "eval: missing checkpoint" 1 "none.safetensors: error" -- "$kiln" eval lenet5 --checkpoint "$tmp/none.safetensors" --data "$mnist"

# A real short run, then its checkpoint through eval, and through eval of another network.
expect "train: short run" 0 "" -- "$kiln" train lenet5 --epochs 1 --limit-train 2000 --limit-test 1000 --no-progress --data "$mnist" --out "$tmp/run"
accuracy_line=$(grep -Eo 'test accuracy [0-9.]+%' "$tmp/out")
expect "eval: json" 0 "" -- "$kiln" eval lenet5 --checkpoint "$tmp/run/checkpoint.safetensors" --data "$mnist" --limit-test 1000 --json
json_accuracy=$(grep -Eo '"accuracy":[0-9.e-]+' "$tmp/out" | cut -d: -f2)
if [ -n "$json_accuracy" ] && [ "$(awk -v a="$json_accuracy" 'BEGIN { printf "test accuracy %.2f%%", 100 * a }')" = "$accuracy_line" ]; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); echo "FAIL: eval --json accuracy ($json_accuracy) disagrees with train ($accuracy_line)"
fi
expect "eval: checkpoint of another network" 1 "is for network 'lenet5'.*not 'mlp'" -- "$kiln" eval mlp --checkpoint "$tmp/run/checkpoint.safetensors" --data "$mnist"
expect "eval: truncated test images" 1 "t10k-images-idx3-ubyte: error" -- "$kiln" eval lenet5 --checkpoint "$tmp/run/checkpoint.safetensors" --data "$tmp"
expect "list names every network" 0 "" -- "$kiln" list
for n in lenet5 vgg-mini logistic mlp; do
    grep -q "^$n " "$tmp/out" || { failed=$((failed + 1)); echo "FAIL: kiln list lacks $n"; }
done

# A network file outside the repository, compiled on demand into a cache: the first
# command compiles (one progress line on stderr), the next loads the cache.
export KILN_CACHE="$tmp/cache"
mkdir "$tmp/user"
sed 's/name = "lenet5"/name = "mynet"/; s/filters = 6/filters = 8/' "$networks/lenet5.toml" >"$tmp/user/mynet.toml"
"$kiln" train "$tmp/user/mynet.toml" --epochs 1 --limit-train 1000 --limit-test 300 --no-progress --data "$mnist" \
    --out "$tmp/user/run" >"$tmp/out" 2>"$tmp/err"
if [ $? -eq 0 ] && grep -Eq "^compiling .*mynet.toml: forward, train, features \.\.\. [0-9.]+ s$" "$tmp/err" &&
    grep -q "test accuracy" "$tmp/out"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: train a network file (stderr: $(head -c 400 "$tmp/err"))"; fi
expect "eval: a network file, from the cache" 0 "" -- "$kiln" eval "$tmp/user/mynet.toml" \
    --checkpoint "$tmp/user/run/checkpoint.safetensors" --data "$mnist" --limit-test 300
expect "build: a cached file compiles nothing" 0 "" -- "$kiln" build "$tmp/user/mynet.toml"
# A damaged library in the cache is rebuilt, not loaded.
for lib in "$KILN_CACHE"/mynet-*/lib.so; do : >"$lib"; done
"$kiln" build "$tmp/user/mynet.toml" >"$tmp/out" 2>"$tmp/err"
if [ $? -eq 0 ] && grep -q "^compiling" "$tmp/err"; then passed=$((passed + 1)); else
    failed=$((failed + 1)); echo "FAIL: a damaged cache entry is not rebuilt ($(head -c 300 "$tmp/err"))"; fi
cp "$tmp/syntax.toml" "$tmp/user/broken.toml"
expect "build: a bad network file, before compiling" 1 "broken.toml:8:[0-9]+: error:" -- "$kiln" build "$tmp/user/broken.toml"
printf '[schedule]\nconv_channel_block = "eight"\n' >"$tmp/user/mynet.schedule.toml"
expect "build: a bad schedule file beside it" 1 "mynet.schedule.toml:2:[0-9]+: error:" -- "$kiln" build "$tmp/user/mynet.toml"
rm "$tmp/user/mynet.schedule.toml"
expect "build: a name, not a file" 2 "build takes a network file" -- "$kiln" build lenet5
expect "train: --schedule for a compiled-in network" 2 "--schedule applies to a network file" -- "$kiln" train lenet5 --schedule x.toml
: >"$tmp/notadir"
KILN_CACHE="$tmp/notadir/cache" expect "build: a cache that cannot be made" 1 "notadir/cache: error: cannot create the cache folder" -- "$kiln" build "$tmp/user/mynet.toml"
unset KILN_CACHE

# The study: bad flags and files, then a tiny real study with its report.
printf 'networks = 1\n' > "$tmp/plan.toml"
expect "study: bad --seeds" 2 "--seeds" -- "$kiln" study --seeds 0
expect "study: missing network file" 1 "nope.toml: error: cannot read file" -- "$kiln" study "$tmp/nope.toml" --out "$tmp/study"
expect "study: bad plan" 1 "plan.toml:1:1: error" -- "$kiln" study --plan "$tmp/plan.toml" --out "$tmp/study"
expect "study: tiny run with report" 0 "" -- "$kiln" study "$networks/study/conv0-dense0.toml" "$networks/study/conv1-dense1.toml" \
    --epochs 1 --seeds 1 --limit-train 500 --limit-test 200 --no-progress --data "$mnist" --out "$tmp/study"
grep -q "^report: .*report.md" "$tmp/out" || { failed=$((failed + 1)); echo "FAIL: tiny study printed no report line"; }
for f in study.json results.csv curves.csv probes.csv report.md inspect/conv1-dense1.json plots/filters_conv1-dense1.png plots/probes.png; do
    [ -s "$tmp/study/$f" ] || { failed=$((failed + 1)); echo "FAIL: tiny study lacks $f"; }
done

# Gzipped data: the MNIST checkpoint scores the same on gzipped test files as on plain ones.
mkdir "$tmp/mnist-gz"
for f in t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do gzip -c "$mnist/$f" >"$tmp/mnist-gz/$f.gz"; done
expect "eval: gzipped test files" 0 "" -- "$kiln" eval lenet5 --checkpoint "$tmp/run/checkpoint.safetensors" --data "$tmp/mnist-gz" --limit-test 1000 --json
gz_accuracy=$(grep -Eo '"accuracy":[0-9.e-]+' "$tmp/out" | cut -d: -f2)
[ -n "$gz_accuracy" ] && [ "$gz_accuracy" = "$json_accuracy" ] ||
    { failed=$((failed + 1)); echo "FAIL: eval on gzipped files ($gz_accuracy) differs from plain ($json_accuracy)"; }
head -c 100000 "$tmp/mnist-gz/t10k-images-idx3-ubyte.gz" >"$tmp/t10k-images-idx3-ubyte.gz"
mkdir "$tmp/cut-gz" && cp "$tmp/t10k-images-idx3-ubyte.gz" "$tmp/mnist-gz/t10k-labels-idx1-ubyte.gz" "$tmp/cut-gz/"
expect "eval: truncated gzip file" 1 "cut-gz/t10k-images-idx3-ubyte.gz: error: gzip stream truncated" -- \
    "$kiln" eval lenet5 --checkpoint "$tmp/run/checkpoint.safetensors" --data "$tmp/cut-gz"

# Fashion-MNIST (Debian's dataset-fashion-mnist, installed by scripts/install-deps.sh): gzipped
# files, a short run that must learn, eval agreeing with it, a tiny study naming the classes.
fashion=/usr/share/datasets/fashion-mnist
if [ ! -s "$fashion/t10k-labels-idx1-ubyte.gz" ]; then
    failed=$((failed + 1)); echo "FAIL: $fashion lacks Fashion-MNIST: install dataset-fashion-mnist (bash scripts/install-deps.sh)"
else
    expect "fashion: short run" 0 "" -- "$kiln" train lenet5 --epochs 1 --limit-train 3000 --limit-test 1000 --no-progress \
        --data "$fashion" --out "$tmp/fashion-run"
    fashion_line=$(grep -Eo 'test accuracy [0-9.]+%' "$tmp/out")
    fashion_percent=$(echo "$fashion_line" | grep -Eo '[0-9.]+')
    # Chance is 10%; one epoch on 3,000 images reached 74.00% when this was written.
    awk -v a="${fashion_percent:-0}" 'BEGIN { exit !(a >= 60) }' ||
        { failed=$((failed + 1)); echo "FAIL: lenet5 on Fashion-MNIST did not learn ($fashion_line)"; }
    expect "fashion: eval json" 0 "" -- "$kiln" eval lenet5 --checkpoint "$tmp/fashion-run/checkpoint.safetensors" \
        --data "$fashion" --limit-test 1000 --json
    fashion_json=$(grep -Eo '"accuracy":[0-9.e-]+' "$tmp/out" | cut -d: -f2)
    [ -n "$fashion_json" ] && [ "$(awk -v a="$fashion_json" 'BEGIN { printf "test accuracy %.2f%%", 100 * a }')" = "$fashion_line" ] ||
        { failed=$((failed + 1)); echo "FAIL: fashion eval --json ($fashion_json) disagrees with train ($fashion_line)"; }
    expect "fashion: tiny study" 0 "" -- "$kiln" study "$networks/study/conv1-dense1.toml" --epochs 1 --seeds 1 \
        --limit-train 500 --limit-test 200 --no-progress --data "$fashion" --out "$tmp/fashion-study"
    grep -q '"name": "Fashion-MNIST"' "$tmp/fashion-study/study.json" ||
        { failed=$((failed + 1)); echo "FAIL: fashion study.json does not name Fashion-MNIST"; }
    grep -q '"Ankle boot"' "$tmp/fashion-study/inspect/conv1-dense1.json" ||
        { failed=$((failed + 1)); echo "FAIL: fashion inspect file lacks the class names"; }
    grep -q "^- Data: Fashion-MNIST, 500 training images" "$tmp/fashion-study/report.md" ||
        { failed=$((failed + 1)); echo "FAIL: fashion report does not name its data"; }
    expect "study: MNIST folder refused for Fashion-MNIST" 1 "study.json: error: this folder holds a study with other settings" -- \
        "$kiln" study "$networks/study/conv0-dense0.toml" "$networks/study/conv1-dense1.toml" \
        --epochs 1 --seeds 1 --limit-train 500 --limit-test 200 --no-progress --data "$fashion" --out "$tmp/study"
fi

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
