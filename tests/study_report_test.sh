#!/usr/bin/env bash
# scripts/study_report.py on small synthetic `kiln study` folders: a full one
# (3 networks x 2 seeds, curves, probes, inspect files), a 1-seed 1-epoch one with
# nothing optional, and broken ones (missing results.csv, malformed rows), which
# must fail with one line on stderr naming the file; study_compare.py and
# study_ranks.py beside it.
# Usage: bash tests/study_report_test.sh /path/to/scripts/study_report.py
set -u
script=${1:?usage: study_report_test.sh STUDY_REPORT_PY}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
passed=0 failed=0

check() {  # check NAME COMMAND...: passes when the command succeeds
    local name=$1
    shift
    if "$@"; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAIL: $name"; fi
}
contains() { grep -qF -- "$2" "$1" 2>/dev/null || { echo "  $1 lacks: $2"; return 1; }; }

# make_study DIR SEEDS EPOCHS: a synthetic results folder. Accuracies, by hand:
#   conv0-dense1 0.9750 0.9770 -> mean 97.60, sample std 0.14
#   conv1-dense1 0.9880 0.9890 -> mean 98.85, sample std 0.07
#   conv2-dense1 0.9900 0.9912 -> mean 99.06, sample std 0.08
make_study() {
    "$py" - "$@" <<'EOF'
import json, os, sys
out, nseeds, nepochs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(os.path.join(out, "inspect"), exist_ok=True)
nets = {"conv0-dense1": (0, 1, 101770, 0.10, [0.9750, 0.9770]),
        "conv1-dense1": (1, 1, 401642, 1.30, [0.9880, 0.9890]),
        "conv2-dense1": (2, 1, 206922, 2.10, [0.9900, 0.9912]),
        "res1": (1, 0, 20000, 1.00, [0.9800, 0.9810]),
        "res2": (2, 0, 30000, 2.00, [0.9850, 0.9852])}
seeds = [1, 2][:nseeds]
study = {"command": "kiln study networks/study --seeds 2", "networks": list(nets) + ["conv3-dense1"],
         "seeds": seeds, "epochs": nepochs,
         "recipe": {"optimizer": "adam", "learning_rate": 0.002, "lr_schedule": "cosine", "batch": 64, "weight_decay": 0},
         "threads": 2, "machine": "Test CPU (2 cores)", "train_images": 60000, "test_images": 10000,
         "wall_seconds": 123.4, "complete": True,
         "axes": [{"name": "conv depth", "question": "How many conv blocks?", "x": "hidden_conv",
                   "networks": ["conv0-dense1", "conv1-dense1", "conv2-dense1", "conv3-dense1"]},
                  {"name": "residual depth", "x": "hidden_conv", "networks": ["res1", "res2"]},
                  {"name": "dense depth", "x": "hidden_dense", "networks": ["conv2-dense1", "conv2-dense9"]},
                  {"name": "width", "x": "params", "networks": ["conv1-dense1", "conv2-dense1"]},
                  {"name": "reference", "x": None, "networks": ["conv2-dense1"], "reference_accuracy": 0.9921,
                   "reference": "Somebody (2019), 15 epochs"}],
         "probe": {"epochs": 3, "max_features": 8192, "train_images": 60000, "optimizer": "adam",
                   "learning_rate": 0.001, "seed": 1},
         "descriptions": {n: f"synthetic network {n}" for n in nets}}
json.dump(study, open(os.path.join(out, "study.json"), "w"), indent=1)
with open(os.path.join(out, "results.csv"), "w") as f:
    f.write("network,seed,hidden_conv,hidden_dense,params,mflops,epochs,train_seconds,test_accuracy,test_loss\n")
    for n, (c, d, p, mf, accs) in nets.items():
        for s, a in zip(seeds, accs):
            f.write(f"{n},{s},{c},{d},{p},{mf},{nepochs},{10 * (c + 1) + s},{a},{1 - a:.4f}\n")
with open(os.path.join(out, "curves.csv"), "w") as f:
    f.write("network,seed,epoch,train_loss,train_accuracy,test_loss,test_accuracy,images_per_s\n")
    for n, (c, d, p, mf, accs) in nets.items():
        for s, a in zip(seeds, accs):
            for e in range(1, nepochs + 1):
                acc = a - 0.01 * (nepochs - e)
                f.write(f"{n},{s},{e},{0.5 / e},{acc},{1 - acc},{acc},{5000 - 1000 * c}\n")
if nseeds > 1:
    with open(os.path.join(out, "probes.csv"), "w") as f:
        f.write("network,seed,layer_index,layer,kind,shape,features,pooled,probe_train_accuracy,probe_test_accuracy\n")
        for n, (c, d, p, mf, accs) in nets.items():
            layers = [("input", "input", "1x28x28", 784, 0)]
            for i in range(1, c + 1):
                layers += [(f"conv{i}", "conv", "16x28x28", 3136, 1), (f"maxpool{i}", "maxpool", "16x14x14", 3136, 0)]
            layers.append(("dense1", "dense", "128", 128, 0))
            for s in seeds:
                for k, (name, kind, shape, feat, pooled) in enumerate(layers):
                    acc = min(0.99, 0.92 + 0.03 * k)
                    f.write(f"{n},{s},{k},{name},{kind},{shape},{feat},{pooled},{acc + 0.002},{acc}\n")
    image = [((i % 28) * (i // 28) % 7) / 6 for i in range(784)]
    def inspect(net, conv):
        layers = []
        if conv:
            layers += [{"name": "conv1", "kind": "conv", "shape": [4, 28, 28], "values": [(i % 13) / 13 for i in range(4 * 784)]},
                       {"name": "maxpool1", "kind": "maxpool", "shape": [4, 14, 14], "values": [(i % 5) / 5 for i in range(4 * 196)]}]
        layers.append({"name": "dense1", "kind": "dense", "shape": [32], "values": [(i % 7) - 3 for i in range(32)]})
        confusion = [[980 if i == j else (i + j) % 3 for j in range(10)] for i in range(10)]
        return {"network": net, "seed": 1, "test_index": 0, "label": 7, "image": image, "layers": layers,
                "filters": {"layer": "conv1", "shape": [4, 1, 3, 3], "values": [(i % 9 - 4) / 4 for i in range(36)]} if conv else None,
                "confusion": confusion,
                "misclassified": [{"index": 10 + k, "label": 4, "predicted": 9, "confidence": 0.99 - 0.1 * k, "image": image}
                                  for k in range(3)]}
    json.dump(inspect("conv1-dense1", True), open(os.path.join(out, "inspect", "conv1-dense1.json"), "w"))
    json.dump(inspect("conv0-dense1", False), open(os.path.join(out, "inspect", "conv0-dense1.json"), "w"))
EOF
}

# Every plots/*.png linked from the report exists and starts with the PNG magic bytes.
links_ok() {
    local dir=$1 n=0 link
    for link in $(grep -o '(plots/[^)]*\.png)' "$dir/report.md" 2>/dev/null | tr -d '()' | sort -u); do
        n=$((n + 1))
        [ "$(head -c 8 "$dir/$link" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = "89504e470d0a1a0a" ] ||
            { echo "  $dir/$link: missing or not a PNG"; return 1; }
    done
    [ "$n" -ge "${2:-1}" ] || { echo "  only $n linked plots, want >= ${2:-1}"; return 1; }
}

# expect_fail NAME DIR PATTERN: non-zero exit, one stderr line matching PATTERN, no stdout.
expect_fail() {
    local name=$1 dir=$2 pattern=$3
    "$py" "$script" "$dir" >"$tmp/out" 2>"$tmp/err"
    local code=$?
    if [ "$code" -ne 0 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ] && grep -Eq -- "$pattern" "$tmp/err" && [ ! -s "$tmp/out" ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAIL: $name (exit $code; stderr: $(head -c 300 "$tmp/err"))"
    fi
}

# --- a full study: 3 networks, 2 seeds, 2 epochs, probes, two inspect files
full=$tmp/full
make_study "$full" 2 2
"$py" "$script" "$full" >"$tmp/out" 2>"$tmp/err"
code=$?
check "full: exit 0 (stderr: $(head -c 300 "$tmp/err"))" [ "$code" -eq 0 ]
check "full: one stdout line" grep -Eqx "report: $full/report.md \([0-9]+ plots\)" "$tmp/out"
check "full: empty stderr" [ ! -s "$tmp/err" ]
check "full: report.md exists" [ -s "$full/report.md" ]
r=$full/report.md
check "full: axis table header" contains "$r" "| Network | conv layers | Test accuracy (%) | Error (%) | Params | MFLOPs | Train s (mean) | Seeds |"
check "full: side by side" contains "$r" "| conv layers | conv depth: test accuracy (%) | residual depth: test accuracy (%) |"
check "full: side by side row" contains "$r" "| 2 | 99.06 ± 0.08 | 98.51 ± 0.01 |"
check "full: side by side computed" contains "$r" "Residual depth against conv depth, by conv layers: 1: −0.80 points (beyond the seed-to-seed spread); 2: −0.55 points"
check "full: overall table header" contains "$r" "| # | Network | Test accuracy (%) |"
check "full: conv0 mean ± std" contains "$r" "| conv0-dense1 | 0 | 97.60 ± 0.14 | 2.40 | 101,770 | 0.10 | 11.5 | 2 |"
check "full: conv1 mean ± std" contains "$r" "98.85 ± 0.07"
check "full: conv2 mean ± std" contains "$r" "| conv2-dense1 | 2 | 99.06 ± 0.08 | 0.94 | 206,922 | 2.10 | 31.5 | 2 |"
check "full: best computed" contains "$r" "The best setting is **conv2-dense1** (2 conv layers): 99.06 % test accuracy"
check "full: error cut computed" contains "$r" "the error rate falls by 1.46 points (61 % fewer errors)"
check "full: spread verdicts" contains "$r" "conv0-dense1 → conv1-dense1: +1.25 points (beyond the seed-to-seed spread); conv1-dense1 → conv2-dense1: +0.21 points (beyond"
check "full: width axis tie" contains "$r" "conv1-dense1 → conv2-dense1"
check "full: reference compared" contains "$r" "against 99.21 % reported (Somebody (2019), 15 epochs): −0.15 points"
check "full: missing network noted" contains "$r" "without results: conv3-dense1"
check "full: dense axis with 1 network skipped" bash -c "[ -s '$r' ] && ! grep -q '## Axis: dense depth' '$r'"
check "full: probe table" contains "$r" "| conv1-dense1 | input 92.00 | conv1 95.00* | maxpool1 98.00 | dense1 "
check "full: probe threshold sentence" contains "$r" "**conv2-dense1**: first layer above 98 %: conv2 (depth 3, 99.00 %)"
check "full: probe conv gain" contains "$r" "conv1 raises separability over the raw pixels by +3.00 points"
check "full: confusion sentence" contains "$r" "9,800 of"
check "full: budget" contains "$r" "wall time 123.4 s (2.1 min)"
check "full: not partial" bash -c "[ -s '$r' ] && ! grep -q 'Partial study' '$r'"
check "full: linked PNGs" links_ok "$full" 12
for f in accuracy_vs_conv accuracy_vs_params accuracy_vs_time learning_curves probes filters_conv1-dense1 \
         activations_conv1-dense1 confusion_conv1-dense1 misclassified_conv1-dense1 activations_conv0-dense1; do
    check "full: $f.png linked" contains "$r" "(plots/$f.png)"
done
check "full: no filters plot without conv" [ ! -e "$full/plots/filters_conv0-dense1.png" ]
nplots=$(ls "$full"/plots/*.png 2>/dev/null | wc -l)
check "full: plot count printed" grep -q "($nplots plots)" "$tmp/out"
# Deterministic: a second run writes the same bytes.
(cd "$full" && md5sum report.md plots/*.png) >"$tmp/sum1" 2>/dev/null
"$py" "$script" "$full" >/dev/null 2>&1
check "full: deterministic" bash -c "cd '$full' && md5sum -c --quiet '$tmp/sum1' 2>/dev/null"

# --- 1 seed, 1 epoch, no probes and no inspect files, partial
one=$tmp/one
make_study "$one" 1 1
sed -i 's/"complete": true/"complete": false/' "$one/study.json"
"$py" "$script" "$one" >"$tmp/out" 2>"$tmp/err"
code=$?
check "one seed: exit 0 (stderr: $(head -c 300 "$tmp/err"))" [ "$code" -eq 0 ]
check "one seed: std n/a" contains "$one/report.md" "| conv0-dense1 | 0 | 97.50 ± n/a | 2.50 |"
check "one seed: spread unknown" contains "$one/report.md" "spread unknown with one seed"
check "one seed: partial" contains "$one/report.md" "**Partial study**"
check "one seed: no probes sentence" contains "$one/report.md" "No probes.csv"
check "one seed: linked PNGs" links_ok "$one" 4

# --- the same study on another data set: its name in the header, class names in the sentences
fashion=$tmp/fashion
make_study "$fashion" 2 2
"$py" - "$fashion" <<'EOF'
import json, os, sys
out = sys.argv[1]
names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
study = json.load(open(os.path.join(out, "study.json")))
study["data"] = {"name": "Fashion-MNIST", "dir": "/usr/share/datasets/fashion-mnist", "class_names": names}
json.dump(study, open(os.path.join(out, "study.json"), "w"))
for net in ("conv1-dense1", "conv0-dense1"):
    path = os.path.join(out, "inspect", f"{net}.json")
    data = json.load(open(path))
    data["class_names"] = names
    json.dump(data, open(path, "w"))
EOF
"$py" "$script" "$fashion" >"$tmp/out" 2>"$tmp/err"
code=$?
check "fashion: exit 0 (stderr: $(head -c 300 "$tmp/err"))" [ "$code" -eq 0 ]
check "fashion: data set named" contains "$fashion/report.md" "- Data: Fashion-MNIST, 60,000 training images"
check "fashion: class names in the confusion sentence" contains "$fashion/report.md" \
    "Most frequent mistakes (true→predicted): T-shirt/top→Pullover (2), T-shirt/top→Sandal (2), T-shirt/top→Bag (2)."
check "fashion: linked PNGs" links_ok "$fashion" 12
check "fashion: MNIST study says MNIST" contains "$full/report.md" "- Data: MNIST, 60,000 training images"
mkdir -p "$tmp/badnames/inspect" && cp "$fashion/study.json" "$fashion/results.csv" "$tmp/badnames/"
"$py" -c 'import json, sys; d = json.load(open(sys.argv[1])); d["class_names"] = d["class_names"][:9]; json.dump(d, open(sys.argv[2], "w"))' \
    "$fashion/inspect/conv1-dense1.json" "$tmp/badnames/inspect/conv1-dense1.json"
expect_fail "class names short of the classes" "$tmp/badnames" "inspect/conv1-dense1\.json: 9 class_names for a 10-class confusion matrix"

# --- scripts/study_compare.py: the MNIST study and a Fashion-MNIST one side by side
# (Fashion accuracies: MNIST's minus 0.08 + 0.01 per conv layer, so the axis spans differ)
compare=$(dirname "$script")/study_compare.py
fashion2=$tmp/fashion2
cp -r "$fashion" "$fashion2"
"$py" - "$fashion2/results.csv" <<'EOF2'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
for r in rows:
    r["test_accuracy"] = f"{float(r['test_accuracy']) - 0.08 - 0.01 * int(r['hidden_conv']):.4f}"
with open(sys.argv[1], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
EOF2
both=$tmp/both
"$py" "$compare" "$both" "$full" "$fashion2" >"$tmp/out" 2>"$tmp/err"
code=$?
check "compare: exit 0 (stderr: $(head -c 300 "$tmp/err"))" [ "$code" -eq 0 ]
check "compare: one stdout line" grep -Eqx "report: $both/report.md \([0-9]+ plots\)" "$tmp/out"
r=$both/report.md
check "compare: title" contains "$r" "# Kiln study on MNIST and Fashion-MNIST"
check "compare: axis header" contains "$r" "| Network | conv layers | Params | MNIST: test accuracy (%) | Fashion-MNIST: test accuracy (%) | published (%) |"
check "compare: row with published figure" contains "$r" "| conv0-dense1 | 0 | 101,770 | 97.60 ± 0.14 | 89.60 ± 0.14 | Fashion-MNIST 87.10 (Xiao et al. 2017, MLP of 100 units) |"
check "compare: spans computed" contains "$r" "On MNIST its networks span 1.46 points (conv0-dense1 97.60 % to conv2-dense1 99.06 %); on Fashion-MNIST its networks span 0.79 points (conv2-dense1 89.06 % to conv1-dense1 89.85 %)."
check "compare: per data set sentences" contains "$r" "On Fashion-MNIST: The best setting is **conv1-dense1** (1 conv layer): 89.85 %"
check "compare: side by side per data set" contains "$r" "### Fashion-MNIST, side by side: conv depth, residual depth"
check "compare: convergence table" contains "$r" "| Network | MNIST: last epoch (points) | MNIST: train accuracy (%) |"
check "compare: last epoch's gain, train accuracy" contains "$r" "| conv1-dense1 | +1.00 | 98.85 |"
check "compare: convergence sentence" contains "$r" "On MNIST the last of 2 epochs changed the networks' test accuracy by +1.00"
check "compare: probes table" contains "$r" "| Network | MNIST: pixels | MNIST: last hidden layer | MNIST: network | Fashion-MNIST: pixels |"
check "compare: linked PNGs" links_ok "$both" 4
for f in accuracy_vs_depth accuracy_vs_params accuracy_vs_time probes; do
    check "compare: $f.png linked" contains "$r" "(plots/$f.png)"
done
"$py" "$compare" "$tmp/both1" "$full" >"$tmp/out" 2>"$tmp/err"
check "compare: one folder is a usage error" [ $? -eq 2 ]
"$py" "$compare" "$tmp/both2" "$full" "$tmp/absent" >"$tmp/out" 2>"$tmp/err"
code=$?
check "compare: a missing folder is named" [ "$code" -eq 1 ]
check "compare: a missing folder's line" contains "$tmp/err" "$tmp/absent: not a directory"
mkdir "$tmp/cmp_nores" && cp "$full/study.json" "$tmp/cmp_nores/"
"$py" "$compare" "$tmp/both3" "$full" "$tmp/cmp_nores" >"$tmp/out" 2>"$tmp/err"
code=$?
check "compare: a folder without results fails" [ "$code" -eq 1 ]
check "compare: with one line" [ "$(wc -l <"$tmp/err")" -eq 1 ]
check "compare: a folder without results is named" contains "$tmp/err" "cmp_nores/results.csv: missing"

# --- broken folders
mkdir "$tmp/nores" && cp "$full/study.json" "$tmp/nores/"
expect_fail "missing results.csv" "$tmp/nores" "results\.csv.*missing"
mkdir "$tmp/short" && cp "$full/study.json" "$full/results.csv" "$tmp/short/"
sed -i '4s/,[^,]*$//' "$tmp/short/results.csv"
expect_fail "short row" "$tmp/short" "results\.csv:4: expected 10 fields, got 9"
mkdir "$tmp/badnum" && cp "$full/study.json" "$full/results.csv" "$tmp/badnum/"
sed -i '3s/0\.977,/zero,/' "$tmp/badnum/results.csv"
expect_fail "non-number" "$tmp/badnum" "results\.csv:3: column test_accuracy"
mkdir "$tmp/badcurve" && cp "$full/study.json" "$full/results.csv" "$tmp/badcurve/"
printf 'network,seed,epoch\nx,1,1\n' >"$tmp/badcurve/curves.csv"
expect_fail "curves header" "$tmp/badcurve" "curves\.csv:1: header lacks"
mkdir "$tmp/nostudy" && cp "$full/results.csv" "$tmp/nostudy/"
expect_fail "missing study.json" "$tmp/nostudy" "study\.json.*missing"
mkdir -p "$tmp/badinspect/inspect" && cp "$full/study.json" "$full/results.csv" "$tmp/badinspect/"
echo '{"image": [1, 2' >"$tmp/badinspect/inspect/conv1-dense1.json"
expect_fail "bad inspect json" "$tmp/badinspect" "inspect/conv1-dense1\.json: malformed JSON"

# --- study_ranks.py: runs of 3, 1, 1, 1 minutes taken in order by 2 ranks end
# at 3 minutes (rank 1 takes the three short ones), by 1 rank at 6
ranks="$(dirname "$script")/study_ranks.py"
printf '%s\n' "compiling a.toml: forward, train, features ... 30.0 s" \
    "[  1/4] a seed 1: test accuracy 99.00% in 170.0 s of training; study 25% done, 3.0 min so far" \
    "[  2/4] b seed 1: test accuracy 99.00% in 50.0 s of training; study 50% done, 4.0 min so far" \
    "[  3/4] a seed 2: test accuracy 99.00% in 50.0 s of training; study 75% done, 5.0 min so far" \
    "[  4/4] b seed 2: test accuracy 99.00% in 50.0 s of training; study 100% done, 6.0 min so far" >"$tmp/study.log"
"$py" "$ranks" "$tmp/study.log" --ranks 1,2 >"$tmp/out" 2>"$tmp/err"
check "ranks: runs" [ $? -eq 0 ]
check "ranks: 1 and 2 ranks" contains "$tmp/out" "| $tmp/study.log | 4 | 0.5 min | 6.0 min | 3.0 min |"
echo "no runs here" >"$tmp/notalog"
"$py" "$ranks" "$tmp/notalog" >"$tmp/out" 2>"$tmp/err"
check "ranks: a file without runs fails" [ $? -eq 1 ]
check "ranks: names it" contains "$tmp/err" "$tmp/notalog: error:"
"$py" "$ranks" "$tmp/absent.log" >"$tmp/out" 2>"$tmp/err"
check "ranks: a missing log fails" [ $? -eq 1 ]
check "ranks: with one line naming it" [ "$(wc -l <"$tmp/err")" -eq 1 ] && contains "$tmp/err" "$tmp/absent.log: error: cannot read"

echo "study_report_test: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
