#!/usr/bin/python3
"""The network as data, and PyTorch agreeing with Kiln on chains and graphs.

    torch_check_test.py json  KILN REPO   `kiln check --json`: parses, lists each layer's inputs,
                                          shapes, spec and parameters as the network file says;
                                          errors stay one line
    torch_check_test.py torch KILN REPO MNIST_DIR
                                          scripts/torch_check.py builds a graph module from it whose
                                          tensors are Kiln's; on checkpoints of short `kiln train` runs
                                          (lenet5, a chain; branches and resnet, graphs) it agrees with
                                          `kiln eval` on the test images; its errors are one line

Exit 0 if every check passed, 1 otherwise (each failure is printed), 77 (skipped)
for `torch` when /usr/bin/python3 has no PyTorch.
"""

import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

failures = []


def expect(ok, what):
    print(f"{'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        failures.append(what)


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True)


def one_line_error(p, code, pattern):
    """Exit `code`, nothing on stdout, one stderr line containing `pattern`."""
    lines = p.stderr.splitlines()
    return p.returncode == code and not p.stdout and len(lines) == 1 and pattern in lines[0]


def fnv1a64(text):
    h = 14695981039346656037
    for b in text.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def check_json(kiln, repo, tmp):
    path = os.path.join(repo, "networks", "branches.toml")
    p = run([kiln, "check", path, "--json"])
    expect(p.returncode == 0 and not p.stderr, f"kiln check {path} --json exits 0, stderr empty")
    net = json.loads(p.stdout)
    layers = {l["name"]: l for l in net["layers"]}
    expect(net["name"] == "branches", "name")
    expect([l["name"] for l in net["layers"]] ==
           ["conv1", "pool1", "wide", "narrow", "both", "conv3", "residual", "pool2", "classifier"],
           "layers in file order")
    expect(net["input"] == {"width": 28, "height": 28, "channels": 1, "classes": 10, "mean": 0.1307,
                            "std": 0.3081}, "input")
    inputs = {n: l["inputs"] for n, l in layers.items()}
    expect(inputs == {"conv1": ["input"], "pool1": ["conv1"], "wide": ["pool1"], "narrow": ["pool1"],
                      "both": ["wide", "narrow"], "conv3": ["both"], "residual": ["conv3", "both"],
                      "pool2": ["residual"], "classifier": ["pool2"]}, f"inputs by name: {inputs}")
    expect([l["type"] for l in net["layers"]] ==
           ["conv", "maxpool", "conv", "conv", "concat", "conv", "add", "maxpool", "dense"], "types")
    both, res = layers["both"], layers["residual"]
    expect(both["in"] == [{"channels": 16, "height": 14, "width": 14}] * 2 and
           both["out"] == {"channels": 32, "height": 14, "width": 14}, "concat: in and out shapes")
    expect(res["activation"] == "relu" and res["params"] == [] and res["flops"] == 32 * 14 * 14,
           "add: activation, no parameters, one FLOP per element")
    expect(layers["conv1"]["spec"] == {"filters": 16, "kernel": 5, "stride": 1, "padding": 2, "activation": "relu"},
           f"conv spec, padding \"same\" resolved: {layers['conv1']['spec']}")
    expect(layers["pool1"]["spec"] == {"size": 2, "stride": 2}, "maxpool spec, stride defaulted")
    expect(layers["classifier"]["spec"] == {"units": 10, "activation": "none"} and
           layers["classifier"]["in"] == [{"channels": 32, "height": 7, "width": 7}], "dense spec and input")
    params = [q for l in net["layers"] for q in l["params"]]
    expect([q["name"] for q in layers["narrow"]["params"]] == ["narrow.weight", "narrow.bias"] and
           layers["narrow"]["params"][0]["shape"] == [16, 16, 1, 1], "conv parameters: names and shapes")
    expect(layers["classifier"]["params"][0]["shape"] == [10, 32 * 7 * 7], "dense weight [out, in]")
    offsets_ok = all(a["offset"] + a["count"] == b["offset"] for a, b in zip(params, params[1:]))
    expect(params[0]["offset"] == 0 and offsets_ok and
           params[-1]["offset"] + params[-1]["count"] == net["param_count"], "parameter offsets tile the vector")
    expect(net["flops"] == sum(l["flops"] for l in net["layers"]), "flops: the layers' sum")
    expect(net["hash"] == fnv1a64(net["canonical"]), "hash: FNV-1a 64 of the canonical text")
    expect("layer both concat  inputs=wide,narrow\n" in net["canonical"] and
           "layer wide conv filters=16 kernel=3 stride=1 padding=1 activation=relu\n" in net["canonical"],
           "canonical text: inputs only where a layer does not read the previous one")
    expect(net["train"]["optimizer"] == "adam" and net["train"]["learning_rate"] == 0.001 and
           net["train"]["label_smoothing"] == 0 and net["train"]["momentum"] == 0.9, "[train] with defaults")

    # The chain networks' hash is the one their checkpoints record: lenet5's text has no inputs.
    p = run([kiln, "check", os.path.join(repo, "networks", "lenet5.toml"), "--json"])
    lenet = json.loads(p.stdout)
    expect(p.returncode == 0 and "inputs=" not in lenet["canonical"], "lenet5: a chain's canonical text")

    # Every kind, batchnorm and dropout after a dense layer, numbers of every form.
    with open(os.path.join(tmp, "kinds.toml"), "w") as f:
        f.write(ALL_KINDS)
    p = run([kiln, "check", os.path.join(tmp, "kinds.toml"), "--json"])
    kinds = {l["name"]: l for l in json.loads(p.stdout)["layers"]} if p.returncode == 0 else {}
    expect(p.returncode == 0 and {l["type"] for l in kinds.values()} ==
           {"conv", "maxpool", "avgpool", "globalavgpool", "batchnorm", "dropout", "dense", "add", "concat"},
           "every kind")
    expect(kinds and kinds["training"]["spec"] == {"momentum": 0.01, "epsilon": 1e-05, "activation": "tanh"} and
           [q["name"] for q in kinds["training"]["params"]] ==
           ["training.weight", "training.bias", "training.running_mean", "training.running_var"] and
           [q["buffer"] for q in kinds["training"]["params"]] == [False, False, True, True],
           "batchnorm: spec, parameters and buffers")
    expect(kinds and kinds["forward"]["spec"] == {"rate": 0.25} and kinds["pool"]["spec"] == {"size": 3, "stride": 1}
           and kinds["gap"]["spec"] == {} and kinds["sum"]["spec"] == {"activation": "none"},
           "dropout, avgpool, globalavgpool and add spec")
    expect(kinds and kinds["cat"]["inputs"] == ["hidden", "sum"], "concat of two dense outputs")

    # Errors stay as without --json: one line naming the file, line and column.
    with open(os.path.join(tmp, "bad.toml"), "w") as f:
        f.write(ALL_KINDS.replace('inputs = ["hidden", "sum"]', 'inputs = ["hidden", "later"]'))
    p = run([kiln, "check", os.path.join(tmp, "bad.toml"), "--json"])
    expect(one_line_error(p, 1, "bad.toml:") and ": error: " in p.stderr and "later" in p.stderr,
           f"an unknown input: one line with FILE:LINE:COL ({p.stderr.strip()})")
    p = run([kiln, "check", os.path.join(tmp, "none.toml"), "--json"])
    expect(one_line_error(p, 1, "none.toml: error"), "a missing file: one line")


# Each kind once; a dense output feeds a batchnorm, a dropout, an add and a concat.
# Layer names that are nn.Module attributes ("training", "forward") on purpose.
ALL_KINDS = """
[input]
width = 12
height = 12
channels = 1
classes = 4

[[layer]]
type = "conv"
name = "c"
filters = 3
kernel = 3
stride = 2
padding = 1
activation = "sigmoid"

[[layer]]
type = "avgpool"
name = "pool"
size = 3
stride = 1

[[layer]]
type = "globalavgpool"
name = "gap"

[[layer]]
type = "dense"
name = "hidden"
units = 6

[[layer]]
type = "batchnorm"
name = "training"
momentum = 0.01
epsilon = 1e-5
activation = "tanh"

[[layer]]
type = "dropout"
name = "forward"
rate = 0.25

[[layer]]
type = "add"
name = "sum"
inputs = ["forward", "hidden"]

[[layer]]
type = "concat"
name = "cat"
inputs = ["hidden", "sum"]

[[layer]]
type = "maxpool"
name = "m"
size = 1

[[layer]]
type = "dense"
name = "out"
units = 4
"""


def check_torch(kiln, repo, mnist, tmp):
    sys.dont_write_bytecode = True  # no __pycache__ in the source tree
    sys.path.insert(0, os.path.join(repo, "scripts"))
    import torch
    import torch_check

    script = [sys.executable, os.path.join(repo, "scripts", "torch_check.py")]

    # The graph module for every kind: Kiln's tensor names and shapes (build_model checks),
    # modules under the layer names, a forward pass of the right shape in both modes.
    with open(os.path.join(tmp, "kinds.toml"), "w") as f:
        f.write(ALL_KINDS)
    net = torch_check.load_network(os.path.join(tmp, "kinds.toml"), kiln)
    model = torch_check.build_model(net)
    expect(type(model).__name__ == "KilnGraph" and not isinstance(model, torch.nn.Sequential), "a graph module")
    expect(isinstance(model._modules["training"], torch.nn.BatchNorm1d) and
           isinstance(model._modules["c"], torch.nn.Conv2d), "batchnorm after dense is BatchNorm1d; modules by name")
    x = torch.rand(5, 1, 12, 12)
    with torch.no_grad():
        y_eval = model(x)
        y_train = model.train()(x)
    expect(tuple(y_eval.shape) == (5, 4) and tuple(y_train.shape) == (5, 4) and model.training and
           model._modules["training"].training, "forward in evaluation and training: [N, classes]")

    # Short runs, then PyTorch and `kiln eval` on the same test images.
    for name in ("lenet5", "branches", "resnet"):
        out = os.path.join(tmp, name)
        limits = ["--limit-test", "500", "--data", mnist]
        p = run([kiln, "train", name, "--epochs", "1", "--limit-train", "640", "--batch", "64", "--no-progress",
                 "--out", out] + limits)
        expect(p.returncode == 0, f"kiln train {name} --epochs 1 --limit-train 640 ({p.stderr.strip()})")
        ckpt = os.path.join(out, "checkpoint.safetensors")
        p = run([kiln, "eval", name, "--checkpoint", ckpt, "--json"] + limits)
        ours = json.loads(p.stdout) if p.returncode == 0 else {}
        p = run(script + [os.path.join(repo, "networks", f"{name}.toml"), ckpt, "--kiln", kiln, "--json"] + limits)
        theirs = json.loads(p.stdout) if p.returncode == 0 else {}
        agree = (ours and theirs and ours["images"] == theirs["images"] == 500 and
                 ours["correct"] == theirs["correct"] and abs(ours["loss"] - theirs["loss"]) <= 1e-5)
        expect(agree, f"{name}: kiln eval {ours.get('correct')} correct, loss {ours.get('loss')}; PyTorch "
                      f"{theirs.get('correct')} correct, loss {theirs.get('loss')} ({p.stderr.strip()})")

    # Errors: one line, exit 1.
    lenet_ckpt = os.path.join(tmp, "lenet5", "checkpoint.safetensors")
    branches_toml = os.path.join(repo, "networks", "branches.toml")
    p = run(script + [branches_toml, lenet_ckpt, "--kiln", kiln])
    expect(one_line_error(p, 1, "checkpoint is for network 'lenet5'"), f"another network's checkpoint: {p.stderr.strip()}")
    # Same name and tensors, another architecture (the join's activation): refused by its hash.
    with open(branches_toml) as f:
        changed = f.read().replace('inputs = ["conv3", "both"]\nactivation = "relu"', 'inputs = ["conv3", "both"]')
    with open(os.path.join(tmp, "branches.toml"), "w") as f:
        f.write(changed)
    p = run(script + [os.path.join(tmp, "branches.toml"), os.path.join(tmp, "branches", "checkpoint.safetensors"),
                      "--kiln", kiln, "--limit-test", "10"])
    expect(one_line_error(p, 1, "(hash "), f"the same tensors, another architecture: {p.stderr.strip()}")
    with open(os.path.join(tmp, "bad.toml"), "w") as f:
        f.write(ALL_KINDS.replace("units = 4", "units = 5"))
    p = run(script + [os.path.join(tmp, "bad.toml"), lenet_ckpt, "--kiln", kiln])
    expect(one_line_error(p, 1, "bad.toml:") and "error" in p.stderr, f"an invalid network file: {p.stderr.strip()}")
    p = run(script + [branches_toml, lenet_ckpt, "--kiln", os.path.join(tmp, "no-kiln")])
    expect(one_line_error(p, 1, "no-kiln: not an executable"), f"no kiln binary: {p.stderr.strip()}")


def main(argv):
    mode, kiln, repo = argv[0], argv[1], argv[2]
    with tempfile.TemporaryDirectory(prefix="kiln-torch-check-") as tmp:
        if mode == "json":
            check_json(kiln, repo, tmp)
        else:
            try:
                import torch  # noqa: F401
            except ImportError:
                print("skipped: no PyTorch for this python (apt-get install python3-torch)")
                return 77
            check_torch(kiln, repo, argv[3], tmp)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
