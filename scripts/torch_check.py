#!/usr/bin/python3
"""Cross-check a Kiln checkpoint with PyTorch.

Reads the network file through Kiln itself (`kiln check NETWORK.toml --json`:
the validated layers, their inputs, shapes and parameter tensors), builds the
equivalent torch module, a graph whose forward walks the layers in file order,
each reading its named inputs (add: their sum, then the activation; concat:
torch.cat along channels), with modules named as the Kiln layers so that
state_dict keys are the checkpoint's tensor names exactly; loads the checkpoint
with load_state_dict(strict=True), and evaluates on the MNIST test set:
accuracy and mean softmax cross-entropy, which should agree with
`kiln eval NETWORK --checkpoint FILE` to within float rounding.

Usage:
    /usr/bin/python3 scripts/torch_check.py NETWORK.toml CHECKPOINT.safetensors \
        [--data DIR] [--limit-test N] [--kiln PATH] [--json]

Needs Debian's python3-torch (apt-get install python3-torch libopenblas0-pthread).
The `safetensors` package is used if importable, else a small built-in reader.
--data defaults to $KILN_DATA, else data/mnist in this repository; --kiln to
build/kiln in this repository (`kiln check` needs no compiled network). Runs on one
CPU thread unless OMP_NUM_THREADS / OPENBLAS_NUM_THREADS say otherwise.

Any error (missing file, an invalid network file, a checkpoint for another
network or architecture, tensor names or shapes that do not match) is one line
on stderr and exit status 1.
"""

import argparse
import json
import os
import struct
import sys

# Before numpy/torch are imported: keep BLAS to one thread (a shared 2-core box).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

PROG = "torch_check"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_BATCH = 1000


class CheckError(Exception):
    """A user-facing problem: reported as one line on stderr, exit 1."""


def one_line(text):
    return " ".join(str(text).split())


# --- The network, as Kiln reads it ---------------------------------------------------

def default_kiln():
    """build/kiln in this repository (where the build puts it)."""
    return os.path.join(REPO, "build", "kiln")


def load_network(path, kiln=None):
    """The validated network from `kiln check PATH --json` (runtime/cli/network_json.h): name,
    hash, input, layers in file order with their inputs, shapes, spec and parameters."""
    import subprocess

    kiln = kiln or default_kiln()
    if not os.access(kiln, os.X_OK):
        raise CheckError(f"{kiln}: not an executable kiln (build it: cmake --build build; or pass --kiln PATH)")
    try:
        p = subprocess.run([kiln, "check", path, "--json"], capture_output=True, text=True)
    except OSError as e:
        raise CheckError(f"{kiln}: cannot run: {e.strerror}")
    if p.returncode != 0:  # Kiln's own one-line message: FILE:LINE:COL: error: ...
        raise CheckError(p.stderr.strip() or f"{kiln} check {path} --json exited with {p.returncode}")
    try:
        net = json.loads(p.stdout)
    except ValueError as e:
        raise CheckError(f"{kiln} check {path} --json printed no JSON object: {e}")
    net["source"] = path
    return net


# --- The torch model -----------------------------------------------------------------

def _module(l, flat):
    """The torch module of one layer with parameters or a window (None for add and concat)."""
    import torch.nn as nn

    kind, spec, (c, h, w) = l["type"], l["spec"], _chw(l["in"][0])
    if kind == "conv":
        return nn.Conv2d(c, spec["filters"], spec["kernel"], stride=spec["stride"], padding=spec["padding"])
    if kind == "dense":
        return nn.Linear(c * h * w, spec["units"])
    if kind == "batchnorm":  # after a dense layer: per unit of [N, units]
        bn = nn.BatchNorm1d if flat else nn.BatchNorm2d
        return bn(c, eps=spec["epsilon"], momentum=spec["momentum"])
    if kind == "maxpool":
        return nn.MaxPool2d(spec["size"], stride=spec["stride"])
    if kind == "avgpool":
        return nn.AvgPool2d(spec["size"], stride=spec["stride"])
    if kind == "globalavgpool":
        return nn.AdaptiveAvgPool2d(1)
    if kind == "dropout":
        return nn.Dropout(spec["rate"])
    if kind in ("add", "concat"):
        return None
    raise CheckError(f"layer '{l['name']}': kind '{kind}' has no PyTorch equivalent in torch_check.py")


def _chw(shape):
    return shape["channels"], shape["height"], shape["width"]


def _graph_module_class():
    import torch
    import torch.nn as nn

    acts = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}

    class KilnGraph(nn.Module):
        """A Kiln network as a torch module: forward walks the layers in file order, each
        reading its named inputs' outputs. Modules are registered under the layer names,
        so that state_dict() keys are the checkpoint's (`<layer>.weight`, ...).

        An output is [N, C, H, W], or [N, units] from a dense layer (and from a
        batchnorm or dropout or join of such outputs): flattened before a dense layer,
        unflattened to (units, 1, 1) where a kind needs an image."""

        def __init__(self, net):
            super().__init__()
            index = {l["name"]: i for i, l in enumerate(net["layers"])}
            steps, modules, flat = [], [], []  # flat[i]: layer i's output is [N, units]
            for l in net["layers"]:
                ins = [-1 if n == "input" else index[n] for n in l["inputs"]]
                in_flat = [i >= 0 and flat[i] for i in ins]
                keeps_form = l["type"] in ("batchnorm", "dropout", "add", "concat")
                flat.append(l["type"] == "dense" or (keeps_form and all(in_flat)))
                m = _module(l, flat[-1])
                if m is not None:
                    modules.append((l["name"], m))
                steps.append((l["name"], l["type"], ins, l["activation"], flat[-1]))
            self._kiln_steps = steps  # before the modules: a layer may be named so
            for name, m in modules:
                # A Kiln name may be an nn.Module attribute ("forward", "train", ...):
                # add_module refuses it, but state_dict() walks _modules only.
                self._modules[name] = m

        def train(self, mode=True):
            # nn.Module.train assigns self.training, which it refuses when a child
            # module has that name (a Kiln layer may be called "training").
            object.__setattr__(self, "training", mode)
            for m in self.children():
                m.train(mode)
            return self

        def forward(self, x):
            outs = []  # by layer index; x for -1
            for name, kind, ins, activation, out_flat in self._kiln_steps:
                xs = [x if i < 0 else outs[i] for i in ins]
                if kind == "dense":
                    y = self._modules[name](xs[0].flatten(1))
                else:
                    if not out_flat:  # an image is needed: a dense output is (units, 1, 1)
                        xs = [t.view(t.shape[0], t.shape[1], 1, 1) if t.dim() == 2 else t for t in xs]
                    if kind == "add":
                        y = sum(xs[1:], xs[0])
                    elif kind == "concat":
                        y = torch.cat(xs, dim=1)
                    else:
                        y = self._modules[name](xs[0])
                if activation != "none":
                    y = acts[activation](y)
                outs.append(y)
            return outs[-1].flatten(1)  # [N, classes]

    return KilnGraph


def build_model(net):
    """The network as a torch module in evaluation mode, checked against Kiln's
    parameter list: the same tensor names and shapes, in the same order."""
    model = _graph_module_class()(net)
    have = [(k, list(v.shape)) for k, v in model.state_dict().items() if not k.endswith(".num_batches_tracked")]
    want = [(p["name"], p["shape"]) for l in net["layers"] for p in l["params"]]
    if have != want:
        raise CheckError(f"network '{net['name']}': the torch module's tensors {have} are not Kiln's {want}")
    return model.eval()


# --- The checkpoint ----------------------------------------------------------------------

def read_safetensors(path):
    """(metadata dict, {name: torch tensor}) from a safetensors file."""
    import torch

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckError(f"{path}: cannot read checkpoint: {e.strerror}")

    try:
        import safetensors.torch  # noqa: F401  (only if installed; Debian bookworm lacks it)
        have_lib = True
    except ImportError:
        have_lib = False

    if len(data) < 8:
        raise CheckError(f"{path}: {len(data)} bytes, too short for a safetensors header")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise CheckError(f"{path}: header length {n} reaches beyond the end of the file")
    try:
        header = json.loads(data[8:8 + n])
    except (ValueError, UnicodeDecodeError) as e:
        raise CheckError(f"{path}: invalid JSON header: {e}")
    if not isinstance(header, dict):
        raise CheckError(f"{path}: JSON header is not an object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict):
        raise CheckError(f"{path}: \"__metadata__\" is not an object")

    if have_lib:
        try:
            tensors = safetensors.torch.load(data)
        except Exception as e:  # the library's own validation
            raise CheckError(f"{path}: {e}")
        return metadata, tensors

    import numpy as np

    body = memoryview(data)[8 + n:]
    tensors = {}
    for name, e in header.items():
        try:
            dtype, shape, (begin, end) = e["dtype"], list(e["shape"]), e["data_offsets"]
        except (TypeError, KeyError, ValueError):
            raise CheckError(f"{path}: tensor '{name}': malformed header entry")
        if not all(isinstance(d, int) and d >= 0 for d in shape + [begin, end]) or begin > end:
            raise CheckError(f"{path}: tensor '{name}': bad shape or data_offsets")
        if end > len(body):
            raise CheckError(f"{path}: tensor '{name}': data_offsets [{begin}, {end}] reach past "
                             f"the {len(body)} bytes of data")
        if dtype != "F32":
            raise CheckError(f"{path}: tensor '{name}' is {dtype}, expected F32")
        count = 1
        for d in shape:
            count *= d
        if end - begin != 4 * count:
            raise CheckError(f"{path}: tensor '{name}': shape {shape} needs {4 * count} bytes, "
                             f"data_offsets give {end - begin}")
        array = np.frombuffer(body[begin:end], dtype="<f4").astype(np.float32).reshape(shape)
        tensors[name] = torch.from_numpy(array)
    return metadata, tensors


def load_checkpoint(model, net, path):
    """Loads the parameters into `model` strictly by name; returns the checkpoint's metadata.
    A checkpoint whose recorded hash is not the network's is refused, as `kiln eval` does."""
    metadata, tensors = read_safetensors(path)
    if metadata.get("format", "kiln") != "kiln":
        raise CheckError(f"{path}: not a kiln checkpoint (format {metadata.get('format')!r})")
    if "network" not in metadata:
        raise CheckError(f"{path}: metadata has no network name")
    if metadata["network"] != net["name"]:
        raise CheckError(f"{path}: checkpoint is for network '{metadata['network']}', "
                         f"not '{net['name']}' ({net['source']})")
    if metadata.get("hash") != net["hash"]:
        raise CheckError(f"{path}: checkpoint is for network '{metadata['network']}' (hash "
                         f"{metadata.get('hash')}), not '{net['name']}' (hash {net['hash']}) of {net['source']}")

    params = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    expected = model.state_dict()
    # Kiln keeps no num_batches_tracked (PyTorch reads it only with momentum=None,
    # which Kiln does not offer): a batchnorm module's own 0 stands in for it.
    for k, v in expected.items():
        if k.endswith(".num_batches_tracked") and k not in params:
            params[k] = v
    missing = [k for k in expected if k not in params]
    extra = sorted(k for k in params if k not in expected)
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"missing tensor(s) {', '.join(missing)}")
        if extra:
            problems.append(f"unexpected tensor(s) {', '.join(extra)}")
        raise CheckError(f"{path}: {'; '.join(problems)} (network '{net['name']}' from "
                         f"{net['source']} has {', '.join(expected)})")
    for k, want in expected.items():
        got = params[k]
        if tuple(got.shape) != tuple(want.shape):
            raise CheckError(f"{path}: tensor '{k}' has shape {list(got.shape)}, "
                             f"network '{net['name']}' needs {list(want.shape)}")
        if got.dtype != want.dtype:
            raise CheckError(f"{path}: tensor '{k}' is {got.dtype}, expected {want.dtype}")
    try:
        model.load_state_dict(params, strict=True)
    except RuntimeError as e:
        raise CheckError(f"{path}: load_state_dict: {one_line(e)}")
    return metadata


# --- MNIST ------------------------------------------------------------------------------------

def read_idx(path, magic, dims):
    import numpy as np

    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise CheckError(f"{path}: cannot read: {e.strerror}")
    head = 4 + 4 * dims
    if len(data) < head or struct.unpack(">I", data[:4])[0] != magic:
        raise CheckError(f"{path}: not an IDX file with magic 0x{magic:08x}")
    shape = struct.unpack(f">{dims}I", data[4:head])
    count = 1
    for d in shape:
        count *= d
    if len(data) - head != count:
        raise CheckError(f"{path}: header says {count} bytes of data, the file has {len(data) - head}")
    return np.frombuffer(data, dtype=np.uint8, offset=head).reshape(shape)


def load_mnist_test(data_dir, net):
    images = read_idx(os.path.join(data_dir, "t10k-images-idx3-ubyte"), 0x00000803, 3)
    labels = read_idx(os.path.join(data_dir, "t10k-labels-idx1-ubyte"), 0x00000801, 1)
    if images.shape[0] != labels.shape[0]:
        raise CheckError(f"{data_dir}: {images.shape[0]} test images but {labels.shape[0]} labels")
    i = net["input"]
    if i["channels"] != 1 or images.shape[1:] != (i["height"], i["width"]):
        raise CheckError(f"{data_dir}: images are {images.shape[2]}x{images.shape[1]} with 1 channel, "
                         f"but network '{net['name']}' takes {i['width']}x{i['height']} with "
                         f"{i['channels']}")
    if labels.size and int(labels.max()) >= i["classes"]:
        raise CheckError(f"{data_dir}: label {int(labels.max())} is not below the network's "
                         f"{i['classes']} classes")
    return images, labels


def evaluate(model, net, images, labels):
    import numpy as np
    import torch
    import torch.nn.functional as F

    mean = torch.tensor(net["input"]["mean"], dtype=torch.float32)
    std = torch.tensor(net["input"]["std"], dtype=torch.float32)
    correct, loss_sum = 0, 0.0
    with torch.inference_mode():
        for start in range(0, len(labels), EVAL_BATCH):
            x = torch.from_numpy(np.array(images[start:start + EVAL_BATCH]))  # a writable copy
            x = x.to(torch.float32).div_(255.0).unsqueeze(1)  # [N, 1, H, W]
            x = (x - mean) / std
            y = torch.from_numpy(labels[start:start + EVAL_BATCH].astype(np.int64))
            scores = model(x)
            correct += int((scores.argmax(dim=1) == y).sum())
            loss_sum += float(F.cross_entropy(scores.double(), y, reduction="sum"))
    n = len(labels)
    return {"images": n, "correct": correct,
            "accuracy": correct / n if n else 0.0, "loss": loss_sum / n if n else 0.0}


# --- Main ----------------------------------------------------------------------------------------

class ArgParser(argparse.ArgumentParser):
    def error(self, message):  # a usage mistake is one line and exit 1 too
        raise CheckError(f"{message} (usage: torch_check.py NETWORK.toml "
                         f"CHECKPOINT.safetensors [--data DIR] [--limit-test N] [--kiln PATH] [--json])")


def main(argv):
    ap = ArgParser(prog="torch_check.py", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("network", metavar="NETWORK.toml")
    ap.add_argument("checkpoint", metavar="CHECKPOINT.safetensors")
    ap.add_argument("--data", metavar="DIR",
                    default=os.environ.get("KILN_DATA") or os.path.join(REPO, "data", "mnist"),
                    help="folder with t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
                         "(default: $KILN_DATA, else data/mnist in the repository)")
    ap.add_argument("--limit-test", metavar="N", type=int,
                    help="use only the first N test images (as kiln eval --limit-test)")
    ap.add_argument("--kiln", metavar="PATH", default=default_kiln(),
                    help="the kiln binary that reads the network file (default: build/kiln in the repository)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    if args.limit_test is not None and args.limit_test < 1:
        raise CheckError(f"--limit-test must be positive, got {args.limit_test}")
    net = load_network(args.network, args.kiln)
    if not os.path.isfile(args.checkpoint):
        raise CheckError(f"{args.checkpoint}: no such checkpoint file")
    try:
        import torch
    except ImportError:
        raise CheckError("PyTorch is not installed (apt-get install python3-torch libopenblas0-pthread)")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))

    model = build_model(net)
    metadata = load_checkpoint(model, net, args.checkpoint)
    images, labels = load_mnist_test(args.data, net)
    if args.limit_test is not None:
        images, labels = images[:args.limit_test], labels[:args.limit_test]
    r = evaluate(model, net, images, labels)

    epoch = str(metadata.get("epoch", ""))
    if args.json:
        print(json.dumps({"network": net["name"], "checkpoint": args.checkpoint,
                          "epoch": int(epoch) if epoch.isdigit() else None, "images": r["images"],
                          "correct": r["correct"], "accuracy": r["accuracy"], "loss": r["loss"],
                          "hash": net["hash"], "torch": torch.__version__}))
    else:
        print(f"{net['name']} after epoch {metadata.get('epoch', '?')} (PyTorch {torch.__version__}): "
              f"test accuracy {100 * r['accuracy']:.2f}% ({r['correct']} of {r['images']}), "
              f"loss {r['loss']:.6f}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except CheckError as e:
        print(f"{PROG}: error: {one_line(e)}", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # anything unforeseen: still one line
        print(f"{PROG}: error: {type(e).__name__}: {one_line(e)}", file=sys.stderr)
        sys.exit(1)
