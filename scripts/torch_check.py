#!/usr/bin/python3
"""Cross-check a Kiln checkpoint with PyTorch.

Builds the torch.nn.Sequential equivalent of a Kiln network TOML file (module
names are the Kiln layer names, so state_dict keys match the checkpoint's tensor
names exactly), loads the checkpoint's parameters with strict=True, and
evaluates on the MNIST test set: accuracy and mean softmax cross-entropy, which
should agree with `kiln eval NETWORK --checkpoint FILE` to within float rounding.

Usage:
    /usr/bin/python3 scripts/torch_check.py NETWORK.toml CHECKPOINT.safetensors \
        [--data DIR] [--json]

Needs Debian's python3-torch (apt-get install python3-torch libopenblas0-pthread).
The `safetensors` package is used if importable, else a small built-in reader.
--data defaults to $KILN_DATA, else data/mnist in this repository. Runs on one
CPU thread unless OMP_NUM_THREADS / OPENBLAS_NUM_THREADS say otherwise.

Any error (missing file, a checkpoint for another network, tensor names or
shapes that do not match) is one line on stderr and exit status 1.
"""

import argparse
import json
import os
import re
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


# --- The network TOML ------------------------------------------------------------

ACTIVATIONS = ("relu", "tanh", "sigmoid", "none")
LAYER_KEYS = {
    "conv": {"type", "name", "filters", "kernel", "stride", "padding", "activation"},
    "maxpool": {"type", "name", "size", "stride"},
    "avgpool": {"type", "name", "size", "stride"},
    "dense": {"type", "name", "units", "activation"},
    "dropout": {"type", "name", "rate"},
    "globalavgpool": {"type", "name"},
    "batchnorm": {"type", "name", "momentum", "epsilon", "activation"},
}
IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
NETWORK_NAME = re.compile(r"[A-Za-z0-9_.\-]+\Z")


def _int(table, key, where, lo, default=None):
    if key not in table:
        if default is None:
            raise CheckError(f"{where}: missing required key '{key}'")
        return default
    v = table[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise CheckError(f"{where}: '{key}' must be an integer >= {lo}, got {v!r}")
    return v


def _num(table, key, where, default):
    v = table.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise CheckError(f"{where}: '{key}' must be a number, got {v!r}")
    return float(v)


def _activation(table, where):
    a = table.get("activation", "none")
    if a not in ACTIVATIONS:
        raise CheckError(f"{where}: 'activation' must be one of {', '.join(ACTIVATIONS)}; got {a!r}")
    return a


def load_network(path):
    """The resolved network: name, input, and layers with defaults and names filled in."""
    import tomllib

    try:
        with open(path, "rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise CheckError(f"{path}: cannot read network file: {e.strerror}")
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise CheckError(f"{path}: invalid TOML: {e}")

    header = doc.get("network", {})
    name = header.get("name")
    if name is None:  # Kiln's default: the file name without its extension
        base = os.path.basename(path)
        dot = base.rfind(".")
        name = base if dot <= 0 else base[:dot]
    if not isinstance(name, str) or not NETWORK_NAME.match(name):
        raise CheckError(f"{path}: invalid network name {name!r}")

    inp = doc.get("input")
    if not isinstance(inp, dict):
        raise CheckError(f"{path}: missing [input] table")
    w = "[input]"
    net_in = {
        "width": _int(inp, "width", w, 1),
        "height": _int(inp, "height", w, 1),
        "channels": _int(inp, "channels", w, 1),
        "classes": _int(inp, "classes", w, 2),
        "mean": _num(inp, "mean", w, 0.0),
        "std": _num(inp, "std", w, 1.0),
    }
    if net_in["std"] <= 0:
        raise CheckError(f"{path}: [input]: 'std' must be positive")

    tables = doc.get("layer")
    if not isinstance(tables, list) or not tables:
        raise CheckError(f"{path}: the network has no [[layer]] tables")

    counts, used, layers = {}, {}, []
    c, h, wd = net_in["channels"], net_in["height"], net_in["width"]
    for index, t in enumerate(tables, 1):
        where = f"{path}: layer {index}"
        if not isinstance(t, dict):
            raise CheckError(f"{where}: not a table")
        kind = t.get("type")
        if kind not in LAYER_KEYS:
            raise CheckError(f"{where}: unknown layer type {kind!r} (expected conv, maxpool, avgpool, dense, dropout, globalavgpool, batchnorm)")
        unknown = sorted(set(t) - LAYER_KEYS[kind])
        if unknown:
            raise CheckError(f"{where}: unknown key '{unknown[0]}' for a {kind} layer")
        # Kiln counts every layer of a kind, named or not: conv, conv(name=x), conv -> conv1, x, conv3.
        counts[kind] = counts.get(kind, 0) + 1
        lname = t.get("name", f"{kind}{counts[kind]}")
        if not isinstance(lname, str) or not IDENTIFIER.match(lname):
            raise CheckError(f"{where}: 'name' must be an identifier, got {lname!r}")
        if lname in used:
            raise CheckError(f"{where}: name '{lname}' is already used by layer {used[lname]}")
        used[lname] = index
        where = f"{path}: layer '{lname}'"

        layer = {"kind": kind, "name": lname, "in": (c, h, wd)}
        if kind == "conv":
            k = _int(t, "kernel", where, 1)
            s = _int(t, "stride", where, 1, 1)
            if t.get("padding") == "same":  # odd kernel, stride 1 (Kiln checks)
                p = (k - 1) // 2
            else:
                p = _int(t, "padding", where, 0, 0)
            if p >= k:
                raise CheckError(f"{where}: 'padding' must be less than 'kernel' ({k}), got {p}")
            layer.update(filters=_int(t, "filters", where, 1), kernel=k, stride=s, padding=p,
                         activation=_activation(t, where))
            window, pad = k, p
        elif kind in ("maxpool", "avgpool"):
            size = _int(t, "size", where, 1)
            s = _int(t, "stride", where, 1, size)
            layer.update(size=size, stride=s)
            window, pad = size, 0
        elif kind == "dropout":
            rate = t.get("rate")
            if not isinstance(rate, (int, float)) or isinstance(rate, bool) or not 0 <= rate < 1:
                raise CheckError(f"{where}: 'rate' must be a number in [0, 1)")
            layer.update(rate=float(rate))
            window, pad, s = 1, 0, 1
        elif kind == "globalavgpool":
            window, pad, s = None, 0, 1
        elif kind == "batchnorm":
            momentum, epsilon = _num(t, "momentum", where, 0.1), _num(t, "epsilon", where, 1e-5)
            if not 0 <= momentum <= 1 or not epsilon > 0:
                raise CheckError(f"{where}: 'momentum' must be in [0, 1] and 'epsilon' positive")
            layer.update(momentum=momentum, epsilon=epsilon, activation=_activation(t, where))
            window, pad, s = 1, 0, 1
        else:
            layer.update(units=_int(t, "units", where, 1), activation=_activation(t, where))

        if kind == "dense":
            c, h, wd = layer["units"], 1, 1
        elif kind == "globalavgpool":
            h, wd = 1, 1
        else:
            hp, wp = h + 2 * pad, wd + 2 * pad
            if window > hp or window > wp:
                raise CheckError(f"{where}: window {window} is larger than the input {hp}x{wp}")
            h, wd = (hp - window) // s + 1, (wp - window) // s + 1
            if kind == "conv":
                c = layer["filters"]
        layer["out"] = (c, h, wd)
        layers.append(layer)

    last = layers[-1]
    if last["kind"] != "dense" or last["units"] != net_in["classes"]:
        raise CheckError(f"{path}: the last layer must be dense with units = [input] classes "
                         f"({net_in['classes']})")
    return {"name": name, "input": net_in, "layers": layers, "source": path}


def _fmt_number(x):
    """fmt's "{}" for a double (shortest round trip, no ".0" on integral values)."""
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def network_hash(net):
    """Kiln's Network::hash(): FNV-1a 64 of Network::canonical() (model/describe.cpp)."""
    i = net["input"]
    out = "kiln-network 1\n"
    out += (f"input channels={i['channels']} height={i['height']} width={i['width']} "
            f"classes={i['classes']} mean={_fmt_number(i['mean'])} std={_fmt_number(i['std'])}\n")
    for l in net["layers"]:
        if l["kind"] == "conv":
            spec = (f"filters={l['filters']} kernel={l['kernel']} stride={l['stride']} "
                    f"padding={l['padding']} activation={l['activation']}")
        elif l["kind"] == "dense":
            spec = f"units={l['units']} activation={l['activation']}"
        elif l["kind"] == "dropout":
            spec = f"rate={_fmt_number(l['rate'])}"
        elif l["kind"] == "globalavgpool":
            spec = ""
        elif l["kind"] == "batchnorm":
            spec = (f"momentum={_fmt_number(l['momentum'])} epsilon={_fmt_number(l['epsilon'])} "
                    f"activation={l['activation']}")
        else:
            spec = f"size={l['size']} stride={l['stride']}"
        out += f"layer {l['name']} {l['kind']} {spec}\n"
    h = 14695981039346656037
    for b in out.encode():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


# --- The torch model -----------------------------------------------------------------

def build_model(net):
    import torch.nn as nn

    acts = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}
    modules = []  # (name, module); helper modules get names with '-', which no Kiln name has
    flat = False  # whether the running tensor is [N, features] rather than [N, C, H, W]
    for l in net["layers"]:
        name, (c, h, w) = l["name"], l["in"]
        if l["kind"] == "batchnorm" and flat:  # after a dense layer: per unit of [N, units]
            modules.append((name, nn.BatchNorm1d(c, eps=l["epsilon"], momentum=l["momentum"])))
        elif l["kind"] == "dense":
            if not flat:
                modules.append((f"{name}-flatten", nn.Flatten()))
            modules.append((name, nn.Linear(c * h * w, l["units"])))
            flat = True
        else:
            if flat:  # after a dense layer the activation is (units, 1, 1)
                modules.append((f"{name}-unflatten", nn.Unflatten(1, (c, h, w))))
                flat = False
            if l["kind"] == "conv":
                modules.append((name, nn.Conv2d(c, l["filters"], l["kernel"], stride=l["stride"],
                                                padding=l["padding"])))
            elif l["kind"] == "maxpool":
                modules.append((name, nn.MaxPool2d(l["size"], stride=l["stride"])))
            elif l["kind"] == "dropout":
                modules.append((name, nn.Dropout(l["rate"])))
            elif l["kind"] == "globalavgpool":
                modules.append((name, nn.AdaptiveAvgPool2d(1)))
            elif l["kind"] == "batchnorm":
                modules.append((name, nn.BatchNorm2d(c, eps=l["epsilon"], momentum=l["momentum"])))
            else:
                modules.append((name, nn.AvgPool2d(l["size"], stride=l["stride"])))
        if l.get("activation", "none") != "none":
            modules.append((f"{name}-{l['activation']}", acts[l["activation"]]()))

    model = nn.Sequential()
    for name, m in modules:
        try:
            model.add_module(name, m)
        except KeyError:
            # A Kiln name that is also an nn.Module attribute ("forward", "train", ...):
            # add_module refuses it, but state_dict() and Sequential.forward only walk _modules.
            model._modules[name] = m
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
    """Loads the parameters into `model`; returns (metadata, hash_ok)."""
    metadata, tensors = read_safetensors(path)
    if metadata.get("format", "kiln") != "kiln":
        raise CheckError(f"{path}: not a kiln checkpoint (format {metadata.get('format')!r})")
    if "network" not in metadata:
        raise CheckError(f"{path}: metadata has no network name")
    if metadata["network"] != net["name"]:
        raise CheckError(f"{path}: checkpoint is for network '{metadata['network']}', "
                         f"not '{net['name']}' ({net['source']})")
    hash_ok = metadata.get("hash") == network_hash(net)

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
    return metadata, hash_ok


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
                         f"CHECKPOINT.safetensors [--data DIR] [--json])")


def main(argv):
    ap = ArgParser(prog="torch_check.py", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("network", metavar="NETWORK.toml")
    ap.add_argument("checkpoint", metavar="CHECKPOINT.safetensors")
    ap.add_argument("--data", metavar="DIR",
                    default=os.environ.get("KILN_DATA") or os.path.join(REPO, "data", "mnist"),
                    help="folder with t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte "
                         "(default: $KILN_DATA, else data/mnist in the repository)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    net = load_network(args.network)
    if not os.path.isfile(args.checkpoint):
        raise CheckError(f"{args.checkpoint}: no such checkpoint file")
    try:
        import torch
    except ImportError:
        raise CheckError("PyTorch is not installed (apt-get install python3-torch libopenblas0-pthread)")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 1))

    model = build_model(net)
    metadata, hash_ok = load_checkpoint(model, net, args.checkpoint)
    if not hash_ok:
        print(f"{PROG}: warning: {args.checkpoint}: hash {metadata.get('hash')} differs from "
              f"{network_hash(net)} computed for {args.network} (architecture changed, or Kiln's "
              f"canonical form did)", file=sys.stderr)
    images, labels = load_mnist_test(args.data, net)
    r = evaluate(model, net, images, labels)

    epoch = str(metadata.get("epoch", ""))
    if args.json:
        print(json.dumps({"network": net["name"], "checkpoint": args.checkpoint,
                          "epoch": int(epoch) if epoch.isdigit() else None, "images": r["images"],
                          "correct": r["correct"], "accuracy": r["accuracy"], "loss": r["loss"],
                          "hash_ok": hash_ok, "torch": torch.__version__}))
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
