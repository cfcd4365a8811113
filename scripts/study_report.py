#!/usr/bin/python3
"""Turn the results folder of `kiln study` into a report with plots.

Usage:
    /usr/bin/python3 scripts/study_report.py OUT_DIR

Reads from OUT_DIR (as written by `kiln study`):
    study.json          what was run: command, networks, seeds, epochs, recipe,
                        machine, budget, the axes of the study, probe settings,
                        network descriptions, the data set ("data": name, dir,
                        class_names; MNIST when absent); "complete": false marks
                        a partial run
    results.csv         one row per network and seed: network,seed,hidden_conv,
                        hidden_dense,params,mflops,epochs,train_seconds,
                        test_accuracy,test_loss (accuracy a fraction in [0,1])
    curves.csv          optional; per epoch: network,seed,epoch,train_loss,
                        train_accuracy,test_loss,test_accuracy,images_per_s
    probes.csv          optional; linear probes per hidden layer: network,seed,
                        layer_index,layer,kind,shape,features,pooled,
                        probe_train_accuracy,probe_test_accuracy
    inspect/NET.json    optional; one trained network looked at closely: a test
                        image and every hidden layer's activations, the first conv
                        layer's filters, the confusion matrix, misclassified images,
                        the class names (digits when absent) that label them

Writes into OUT_DIR:
    report.md           readable on its own, links the plots relatively
    plots/*.png         accuracy_vs_{conv,dense,params,time}.png, learning_curves.png,
                        probes.png and, per inspected network, filters_NET.png,
                        activations_NET.png, confusion_NET.png, misclassified_NET.png

Every sentence about the results is computed from the numbers. Prints one line,
`report: OUT_DIR/report.md (N plots)`; any error is one line on stderr naming the
file (and line) and exit status 1. Output is deterministic for the same input.
"""

import csv
import json
import math
import os
import statistics
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

RESULTS_COLUMNS = {"network": str, "seed": int, "hidden_conv": int, "hidden_dense": int,
                   "params": int, "mflops": float, "epochs": int, "train_seconds": float,
                   "test_accuracy": float, "test_loss": float}
CURVES_COLUMNS = {"network": str, "seed": int, "epoch": int, "train_loss": float,
                  "train_accuracy": float, "test_loss": float, "test_accuracy": float,
                  "images_per_s": float}
PROBES_COLUMNS = {"network": str, "seed": int, "layer_index": int, "layer": str, "kind": str,
                  "shape": str, "features": int, "pooled": int,
                  "probe_train_accuracy": float, "probe_test_accuracy": float}
FRACTIONS = ("test_accuracy", "train_accuracy", "probe_train_accuracy", "probe_test_accuracy")
X_NAMES = {"hidden_conv": ("conv layers", "conv"),
           "hidden_dense": ("hidden dense layers", "dense"),
           "params": ("parameters", "params")}
PROBE_THRESHOLD = 0.98
PNG_META = {"Software": None}


class ReportError(Exception):
    """A problem with the input, reported as one line naming the file."""


# ----------------------------------------------------------------------------- input

def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise ReportError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ReportError(f"{path}: malformed JSON: {e}") from None


def read_csv(path, columns):
    """Rows of a CSV file as dicts of typed values; checks every row."""
    try:
        f = open(path, newline="", encoding="utf-8")
    except FileNotFoundError:
        raise ReportError(f"{path}: missing") from None
    with f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise ReportError(f"{path}: empty (no header line)")
        header = [h.strip() for h in header]
        absent = [c for c in columns if c not in header]
        if absent:
            raise ReportError(f"{path}:1: header lacks column(s) {', '.join(absent)}")
        rows = []
        for fields in reader:
            line = reader.line_num
            if not fields or all(not x.strip() for x in fields):
                continue
            if len(fields) != len(header):
                raise ReportError(f"{path}:{line}: expected {len(header)} fields, got {len(fields)}")
            row = {}
            for name, value in zip(header, fields):
                if name not in columns:
                    continue
                try:
                    row[name] = columns[name](value.strip())
                except ValueError:
                    raise ReportError(f"{path}:{line}: column {name}: bad value {value!r}") from None
                if columns[name] is float and not math.isfinite(row[name]):
                    raise ReportError(f"{path}:{line}: column {name}: not finite: {value!r}")
                if name in FRACTIONS and not 0.0 <= row[name] <= 1.0:
                    raise ReportError(f"{path}:{line}: column {name}: {value} is not a fraction in [0,1]")
            rows.append(row)
    return rows


def check_unique(rows, keys, path):
    seen = set()
    for row in rows:
        key = tuple(row[k] for k in keys)
        if key in seen:
            raise ReportError(f"{path}: duplicate row for {', '.join(map(str, key))}")
        seen.add(key)


def load_inspect(path):
    """An inspect/NET.json file, checked enough that the plots cannot crash on it."""
    data = load_json(path)

    def need(cond, what):
        if not cond:
            raise ReportError(f"{path}: {what}")

    need(isinstance(data, dict), "not a JSON object")
    image = data.get("image")
    need(isinstance(image, list) and len(image) == 784, "image must be 784 numbers")
    for layer in data.get("layers") or []:
        shape, values = layer.get("shape"), layer.get("values")
        need(isinstance(shape, list) and isinstance(values, list), f"layer {layer.get('name')}: shape and values needed")
        need(len(values) == int(np.prod(shape)), f"layer {layer.get('name')}: {len(values)} values for shape {shape}")
    filters = data.get("filters")
    if filters:
        need(len(filters.get("values", [])) == int(np.prod(filters.get("shape", [0]))), "filters: values do not match shape")
        need(len(filters["shape"]) == 4, "filters: shape must be [out, in, ky, kx]")
    confusion = data.get("confusion")
    if confusion is not None:
        need(isinstance(confusion, list) and all(isinstance(r, list) and len(r) == len(confusion) for r in confusion),
             "confusion must be a square matrix")
    for m in data.get("misclassified") or []:
        need(isinstance(m.get("image"), list) and len(m["image"]) == 784, "misclassified image must be 784 numbers")
    names = data.get("class_names")
    if names is not None:
        need(isinstance(names, list) and names and all(isinstance(n, str) and n for n in names),
             "class_names must be a list of non-empty strings")
        need(confusion is None or len(names) == len(confusion),
             f"{len(names)} class_names for a {len(confusion or [])}-class confusion matrix")
        labels = [data.get("label")] + [v for m in data.get("misclassified") or [] for v in (m.get("label"), m.get("predicted"))]
        need(all(isinstance(k, int) and 0 <= k < len(names) for k in labels if k is not None),
             "a label or prediction outside class_names")
    return data


def class_name(data, k):
    """Label k as the pictures show it: its class name, or the label itself."""
    names = data.get("class_names")
    return names[k] if names and isinstance(k, int) and 0 <= k < len(names) else str(k)


# ----------------------------------------------------------------------------- numbers

def mean(xs):
    return sum(xs) / len(xs)


def std(xs):
    """Sample standard deviation over seeds; None with fewer than two."""
    return statistics.stdev(xs) if len(xs) >= 2 else None


def network_stats(results, curves):
    """Per network: the seeds' accuracies and the means the report uses."""
    stats = {}
    for row in results:
        s = stats.setdefault(row["network"], {"name": row["network"], "rows": []})
        s["rows"].append(row)
    for s in stats.values():
        rows = sorted(s["rows"], key=lambda r: r["seed"])
        accs = [r["test_accuracy"] for r in rows]
        s.update(seeds=[r["seed"] for r in rows], accs=accs, n=len(rows),
                 acc=mean(accs), std=std(accs), err=1 - mean(accs),
                 hidden_conv=rows[0]["hidden_conv"], hidden_dense=rows[0]["hidden_dense"],
                 params=rows[0]["params"], mflops=rows[0]["mflops"], epochs=rows[0]["epochs"],
                 train_s=mean([r["train_seconds"] for r in rows]),
                 loss=mean([r["test_loss"] for r in rows]))
        speeds = [c["images_per_s"] for c in curves if c["network"] == s["name"]]
        s["images_per_s"] = mean(speeds) if speeds else None
    return stats


def spread_verdict(a, b):
    """Whether two networks' mean accuracies differ by more than their seed spread."""
    if a["std"] is None or b["std"] is None:
        return "spread unknown with one seed"
    if indistinguishable(a, b):
        return "within the seed-to-seed spread"
    return "beyond the seed-to-seed spread"


def indistinguishable(a, b):
    """|Δmean| < std1 + std2 (equal means count as indistinguishable even with zero spread)."""
    if a["std"] is None or b["std"] is None:
        return False
    d = abs(b["acc"] - a["acc"])
    return d < a["std"] + b["std"] or d == 0


# ----------------------------------------------------------------------------- formatting

def pct(x):
    return f"{100 * x:.2f}"


def pts(d):
    """A difference of two fractions in percentage points, signed."""
    return f"{round(100 * d, 2) + 0.0:+.2f}".replace("-", "−")


def acc_cell(s):
    return f"{pct(s['acc'])} ± {'n/a' if s['std'] is None else pct(s['std'])}"


def acc_text(s):
    """Mean accuracy for a sentence: with its spread when there is one."""
    return f"{pct(s['acc'])} %" if s["std"] is None else f"{acc_cell(s)} %"


def cap(text):
    return text[:1].upper() + text[1:]


def count(n):
    return f"{n:,}"


def ratio(a, b):
    return f"{a / b:.1f}×" if b else "n/a"


def md_escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * len(header)) + "|"]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return lines


def x_value(s, x):
    return s.get(x) if x in X_NAMES else None


def x_label(s, x):
    if x == "hidden_conv":
        return f"{s[x]} conv layer{'s' if s[x] != 1 else ''}"
    if x == "hidden_dense":
        return f"{s[x]} hidden dense layer{'s' if s[x] != 1 else ''}"
    if x == "params":
        return f"{count(s['params'])} parameters"
    return s["name"]


# ----------------------------------------------------------------------------- plots

class Plots:
    """Writes PNGs into OUT_DIR/plots and remembers how many it wrote."""

    def __init__(self, out_dir):
        self.dir = os.path.join(out_dir, "plots")
        os.makedirs(self.dir, exist_ok=True)
        self.names = set()

    @property
    def written(self):
        return len(self.names)

    def save(self, fig, name):
        fig.savefig(os.path.join(self.dir, name), dpi=100, metadata=PNG_META)
        plt.close(fig)
        self.names.add(name)
        return f"plots/{name}"


def error_axis(ax, values):
    """Error rate on a log axis when all values allow it (small errors become visible)."""
    ax.set_ylabel("test error rate (%)  [= 100 − accuracy]")
    if values and min(values) > 0:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
    ax.grid(True, which="both", alpha=0.3)


def line_style(i):
    """Colour and dash for the i-th network's line: distinct for up to 40 networks."""
    return {"color": plt.get_cmap("tab20")(i % 20), "linestyle": "-" if i < 20 else "--"}


def outside_legend(ax):
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))


def plot_series(ax, series, xkey, label):
    """Mean error with std error bars and each seed as a dot, for networks along one axis."""
    xs = [s[xkey] for s in series]
    means = [100 * s["err"] for s in series]
    stds = [100 * (s["std"] or 0) for s in series]
    line = ax.errorbar(xs, means, yerr=stds, marker="o", capsize=4, label=label)
    color = line[0].get_color()
    for s in series:
        ax.scatter([s[xkey]] * s["n"], [100 * (1 - a) for a in s["accs"]], s=12, color=color, alpha=0.5, zorder=3)
        ax.annotate(f"{pct(s['acc'])}%", (s[xkey], 100 * s["err"]), textcoords="offset points",
                    xytext=(6, 6), fontsize=8)
    return [100 * (1 - a) for s in series for a in s["accs"]]


def plot_axes_vs(plots, axes_series, x, name, title):
    fig, ax = plt.subplots(figsize=(7, 4.5))
    values = []
    for axis, series in axes_series:
        values += plot_series(ax, series, x, axis["name"])
    ax.set_xlabel(X_NAMES[x][0])
    if x == "params":
        ax.set_xscale("log")
    else:
        ax.set_xticks(sorted({s[x] for _, series in axes_series for s in series}))
    error_axis(ax, values)
    ax.set_title(title + "\n(mean ± std over seeds; dots = single seeds; labels = mean accuracy)", fontsize=10)
    if len(axes_series) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return plots.save(fig, name)


def plot_all_vs(plots, stats, key, name, xlabel, title, axes_series=()):
    """Every network as a labelled point: error rate against params or training time;
    the networks of each axis in axes_series joined by a dashed line."""
    fig, ax = plt.subplots(figsize=(8, 5))
    values = []
    for axis, series in axes_series:
        ax.plot([s[key] for s in series], [100 * s["err"] for s in series], "--", color="grey",
                linewidth=1, label=f"axis: {axis.get('name')}")
    for s in stats:
        values += plot_series(ax, [s], key, None)
        ax.annotate(s["name"], (s[key], 100 * s["err"]), textcoords="offset points", xytext=(6, -10), fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    error_axis(ax, values)
    ax.set_title(title, fontsize=10)
    if axes_series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return plots.save(fig, name)


def curve_means(curves):
    """{network: [(epoch, mean test acc, mean train loss, mean test loss)]} over seeds."""
    by = {}
    for c in curves:
        by.setdefault(c["network"], {}).setdefault(c["epoch"], []).append(c)
    return {net: [(e, mean([c["test_accuracy"] for c in cs]), mean([c["train_loss"] for c in cs]),
                   mean([c["test_loss"] for c in cs])) for e, cs in sorted(epochs.items())]
            for net, epochs in by.items()}


def plot_learning_curves(plots, means, order):
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 5))
    values = []
    for i, net in enumerate(n for n in order if n in means):
        epochs = [m[0] for m in means[net]]
        errs = [100 * (1 - m[1]) for m in means[net]]
        values += errs
        ax1.plot(epochs, errs, marker="o", label=net, **line_style(i))
        ax2.plot(epochs, [m[2] for m in means[net]], marker="o", label=net, **line_style(i))
    error_axis(ax1, values)
    ax1.set_xlabel("epoch")
    ax1.set_title("Test error rate per epoch (mean over seeds)", fontsize=10)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("training loss")
    if all(m[2] > 0 for net in order if net in means for m in means[net]):
        ax2.set_yscale("log")
        ax2.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
        ax2.yaxis.set_minor_formatter(matplotlib.ticker.FormatStrFormatter("%.2g"))
    ax2.grid(True, which="both", alpha=0.3)
    ax2.set_title("Training loss per epoch (mean over seeds)", fontsize=10)
    outside_legend(ax2)
    for ax in (ax1, ax2):
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.tight_layout()
    return plots.save(fig, "learning_curves.png")


def plot_probes(plots, probe_means, order):
    fig, ax = plt.subplots(figsize=(10, 5))
    for i, net in enumerate(n for n in order if probe_means.get(n)):
        layers = probe_means[net]
        ax.plot([l["index"] for l in layers], [100 * l["test"] for l in layers], marker="o", label=net, **line_style(i))
    ax.axhline(100 * PROBE_THRESHOLD, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("layer depth (0 = input pixels)")
    ax.set_ylabel("linear probe test accuracy (%)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.grid(True, alpha=0.3)
    ax.set_title("How linearly separable each layer's activations are", fontsize=10)
    outside_legend(ax)
    fig.tight_layout()
    return plots.save(fig, "probes.png")


def plot_filters(plots, net, filters):
    o, c, kh, kw = filters["shape"]
    w = np.array(filters["values"], dtype=float).reshape(o, c, kh, kw)[:, 0]
    cols = min(8, o)
    rows = math.ceil(o / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.2 * rows + 0.6), squeeze=False)
    lim = float(np.abs(w).max()) or 1.0
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < o:
            ax.imshow(w[i], cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_title(str(i), fontsize=7)
    fig.suptitle(f"{net}: {filters.get('layer', 'first conv')} filters (input channel 0; red +, blue −)", fontsize=9)
    fig.tight_layout()
    return plots.save(fig, f"filters_{net}.png")


def plot_activations(plots, net, data):
    layers = data.get("layers") or []
    cols = 16
    fig = plt.figure(figsize=(cols * 0.9, 1.1 * (len(layers) + 1) + 0.4))
    grid = fig.add_gridspec(len(layers) + 1, cols)
    ax = fig.add_subplot(grid[0, 0])
    ax.imshow(np.array(data["image"]).reshape(28, 28), cmap="gray_r")
    ax.set_title(f"input (label {class_name(data, data.get('label'))})", fontsize=7, loc="left")
    ax.axis("off")
    for r, layer in enumerate(layers, start=1):
        values = np.array(layer["values"], dtype=float)
        shape = layer["shape"]
        title = f"{layer.get('name')} {'x'.join(map(str, shape))}"
        if len(shape) == 1 or all(d == 1 for d in shape[1:]):  # units (a dense layer's C x 1 x 1): a strip
            ax = fig.add_subplot(grid[r, :])
            ax.bar(range(len(values)), values, width=1.0, color="tab:blue")
            ax.set_xlim(-0.5, len(values) - 0.5)
            ax.set_yticks([])
            ax.tick_params(labelsize=6)
            ax.set_title(title, fontsize=7, loc="left")
            continue
        maps = values.reshape((1,) + tuple(shape)) if len(shape) == 2 else values.reshape(shape[0], -1, shape[-1])
        lo, hi = float(maps.min()), float(maps.max())
        for ch in range(min(cols, maps.shape[0])):
            ax = fig.add_subplot(grid[r, ch])
            ax.imshow(maps[ch], cmap="viridis", vmin=lo, vmax=hi if hi > lo else lo + 1)
            ax.axis("off")
            if ch == 0:
                ax.set_title(title, fontsize=7, loc="left")
    fig.suptitle(f"{net}: activations for test image {data.get('test_index')} (first {cols} channels per layer)", fontsize=9)
    fig.tight_layout()
    return plots.save(fig, f"activations_{net}.png")


def plot_confusion(plots, net, data):
    m = np.array(data["confusion"])
    fig, ax = plt.subplots(figsize=(6.5, 6))
    ax.imshow(np.log1p(m), cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=7,
                color="white" if np.log1p(v) > 0.6 * np.log1p(m.max()) else "black")
    names = [class_name(data, k) for k in range(len(m))]
    ax.set_xticks(range(len(m)))
    ax.set_yticks(range(len(m)))
    if any(not n.isdigit() for n in names):  # words: slanted below, so that they do not overlap
        ax.set_xticklabels(names, rotation=40, ha="right", fontsize=8)
        ax.set_yticklabels(names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true label")
    ax.set_title(f"{net}: confusion on the test set (colour: log count)", fontsize=10)
    fig.tight_layout()
    return plots.save(fig, f"confusion_{net}.png")


def plot_misclassified(plots, net, data):
    items = data["misclassified"]
    titles = [f"{class_name(data, m.get('label'))}→{class_name(data, m.get('predicted'))}" for m in items]
    size = 9 if max(len(t) for t in titles) <= 12 else 7  # class names: smaller, alike in every panel
    cols = min(4, len(items))
    rows = math.ceil(len(items) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2 * cols, 2.2 * rows + 0.4), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(items):
            m = items[i]
            ax.imshow(np.array(m["image"]).reshape(28, 28), cmap="gray_r")
            ax.set_title(f"{titles[i]} ({m.get('confidence', float('nan')):.2f})", fontsize=size)
    fig.suptitle(f"{net}: misclassified test images, most confident first (label→predicted (confidence))", fontsize=9)
    fig.tight_layout()
    return plots.save(fig, f"misclassified_{net}.png")


# ----------------------------------------------------------------------------- report sections

def section_header(study, stats, order):
    lines = ["# Kiln study report", ""]
    if study.get("complete") is False:
        lines += ["> **Partial study**: the run did not finish (study.json says complete = false); "
                  "the numbers below cover only what was written.", ""]
    missing = [n for n in study.get("networks", []) if n not in stats]
    if missing:
        lines += [f"> Networks in the study without results: {', '.join(missing)}.", ""]
    seeds = study.get("seeds") or sorted({seed for s in stats.values() for seed in s["seeds"]})
    recipe = study.get("recipe") or {}
    total_train = sum(r["train_seconds"] for s in stats.values() for r in s["rows"])
    lines += ["## What was run", "",
              f"- Command: `{study.get('command', 'n/a')}`",
              f"- Networks: {len(order)} with results ({', '.join(order)})",
              f"- Seeds: {', '.join(map(str, seeds))} ({len(seeds)} run{'s' if len(seeds) != 1 else ''} per network); "
              f"epochs: {study.get('epochs', 'n/a')}",
              "- Recipe (the same for every network): " + (", ".join(f"{k} = {v}" for k, v in recipe.items()) or "n/a")]
    wall = study.get("wall_seconds")
    wall_text = f"{wall:.1f} s ({wall / 60:.1f} min)" if isinstance(wall, (int, float)) else "n/a"
    lines += [f"- Budget: wall time {wall_text}, of which training {total_train:.1f} s (sum over runs, "
              f"excluding evaluation); machine: {study.get('machine', 'n/a')}, {study.get('threads', 'n/a')} threads",
              f"- Data: {data_name(study)}, {fmt_count(study.get('train_images'))} training images, "
              f"{fmt_count(study.get('test_images'))} test images"]
    probe = study.get("probe")
    if probe:
        lines.append(f"- Linear probes: softmax regression on each layer's activations, {probe.get('epochs')} epochs "
                     f"{probe.get('optimizer')} lr {probe.get('learning_rate')}, seed {probe.get('seed')}, "
                     f"{fmt_count(probe.get('train_images'))} training images; layers with more than "
                     f"{fmt_count(probe.get('max_features'))} features are 2x2-average-pooled first")
    lines += ["", "Accuracy is on the test set, as mean ± sample standard deviation over seeds"
              + (" (n/a: with one seed the spread is undefined, so no difference can be judged against it)."
                 if any(s["std"] is None for s in stats.values()) else "."), ""]
    descriptions = study.get("descriptions") or {}
    if descriptions:
        lines += ["### The networks", ""]
        lines += [f"- **{n}**: {descriptions[n]}" for n in order if n in descriptions]
        lines.append("")
    return lines


def data_name(study):
    data = study.get("data")
    name = data.get("name") if isinstance(data, dict) else None
    return md_escape(name) if isinstance(name, str) and name else "MNIST"


def fmt_count(n):
    return count(n) if isinstance(n, int) else "n/a"


def axis_table(series, x):
    header = ["Network"] + ([X_NAMES[x][0]] if x in ("hidden_conv", "hidden_dense") else []) + \
             ["Test accuracy (%)", "Error (%)", "Params", "MFLOPs", "Train s (mean)", "Seeds"]
    rows = [[s["name"]] + ([str(s[x])] if x in ("hidden_conv", "hidden_dense") else []) +
            [acc_cell(s), pct(s["err"]), count(s["params"]), f"{s['mflops']:.2f}", f"{s['train_s']:.1f}", str(s["n"])]
            for s in series]
    return table(header, rows)


def axis_sentences(series, x):
    """'What the numbers say' for one axis, computed from the series ordered by x."""
    best = max(series, key=lambda s: s["acc"])
    first = series[0]
    out = [f"The best setting is **{best['name']}** ({x_label(best, x)}): {pct(best['acc'])} % test accuracy, "
           f"error rate {pct(best['err'])} %."]
    if best is first:
        out.append(f"The smallest setting ({x_label(first, x)}) is already the best: adding more does not raise "
                   "the mean accuracy here.")
    else:
        cut = first["err"] - best["err"]
        out.append(f"From the smallest setting, {first['name']} ({x_label(first, x)}, error {pct(first['err'])} %), "
                   f"to the best, the error rate falls by {100 * cut:.2f} points "
                   f"({100 * cut / first['err']:.0f} % fewer errors)." if first["err"] > 0 else "")
    steps = [f"{a['name']} → {b['name']}: {pts(b['acc'] - a['acc'])} points ({spread_verdict(a, b)})"
             for a, b in zip(series, series[1:])]
    out.append("Step by step: " + "; ".join(steps) + ".")
    best_i = series.index(best)
    gains = [b["acc"] - a["acc"] for a, b in zip(series[:best_i + 1], series[1:best_i + 1])]
    if len(gains) >= 2 and gains[0] > 0 and gains[-1] < gains[0] / 2:
        out.append(f"Diminishing returns: the first step gains {pts(gains[0])} points, the last step up to the best "
                   f"only {pts(gains[-1])}.")
    if best_i < len(series) - 1:
        worst_after = min(series[best_i + 1:], key=lambda s: s["acc"])
        verdict = spread_verdict(best, worst_after)
        out.append(f"Beyond the best, more does not help: {worst_after['name']} is {pts(worst_after['acc'] - best['acc'])} "
                   f"points from the best ({verdict}).")
    if best is not first:
        out.append(f"The best costs {ratio(best['params'], first['params'])} the parameters "
                   f"({count(best['params'])} vs {count(first['params'])}), {ratio(best['mflops'], first['mflops'])} "
                   f"the MFLOPs and {ratio(best['train_s'], first['train_s'])} the training time "
                   f"({best['train_s']:.1f} s vs {first['train_s']:.1f} s per run) of the smallest.")
    ties = [s for s in series if s is not best and indistinguishable(s, best)]
    cheaper = [s for s in ties if s["params"] < best["params"]]
    if cheaper:
        c = min(cheaper, key=lambda s: s["params"])
        out.append(f"{c['name']} is within the seed-to-seed spread of the best with {count(c['params'])} parameters "
                   f"({ratio(c['params'], best['params'])} of the best's) and {c['train_s']:.1f} s of training.")
    return " ".join(o for o in out if o)


def reference_sentences(axis, series):
    ref = axis.get("reference_accuracy")
    out = []
    for s in series:
        if not isinstance(ref, (int, float)):
            out.append(f"{s['name']} reaches {acc_text(s)} (no reference figure given).")
            continue
        d = s["acc"] - ref
        text = (f"{s['name']} reaches {acc_text(s)} after {s['epochs']} epoch{'s' if s['epochs'] != 1 else ''} "
                f"of this study's recipe, against "
                f"{pct(ref)} % reported ({axis.get('reference', 'reference')}): {pts(d)} points, error rate "
                f"{pct(s['err'])} % vs {pct(1 - ref)} %.")
        if s["std"] is not None:
            inside = abs(d) <= 2 * s["std"]
            text += (f" The reported figure is {'inside' if inside else 'outside'} our mean ± 2 std "
                     f"({pct(s['acc'] - 2 * s['std'])}–{pct(s['acc'] + 2 * s['std'])} %).")
        out.append(text)
    return " ".join(out)


def section_axes(study, stats, plots):
    lines = []
    linked = {}
    for axis in study.get("axes") or []:
        x = axis.get("x")
        series = [stats[n] for n in axis.get("networks", []) if n in stats]
        is_reference = x is None and "reference_accuracy" in axis
        if len(series) < (1 if is_reference else 2):
            continue
        if x in X_NAMES:
            series.sort(key=lambda s: s[x])
        lines += [f"## Axis: {axis.get('name', '?')}", ""]
        if axis.get("question"):
            lines += [f"*{axis['question']}*", ""]
        lines += axis_table(series, x) + [""]
        lines += ["**What the numbers say.** " +
                  (reference_sentences(axis, series) if is_reference or x not in X_NAMES else axis_sentences(series, x)),
                  ""]
        if x == "params":
            lines += ["Plot: [accuracy_vs_params.png](plots/accuracy_vs_params.png) in the overall section below "
                      "(this axis is the dashed line).", ""]
        elif x in X_NAMES:
            name = f"accuracy_vs_{X_NAMES[x][1]}.png"
            if name in linked:
                lines += [f"Plot: see [{name}]({linked[name]}) above.", ""]
            else:
                link = plot_axes_vs(plots, axis_series(study, stats, x), x, name, f"Test error rate vs {X_NAMES[x][0]}")
                linked[name] = link
                lines += [f"![Test error rate vs {X_NAMES[x][0]}]({link})", ""]
    if not lines:
        lines = ["## Axes", "", "No axis of study.json has at least two networks with results; see the overall table.", ""]
    return lines


def axis_series(study, stats, x):
    """(axis, its present networks sorted by x) for every axis varying x with at least two networks."""
    out = []
    for axis in study.get("axes") or []:
        if axis.get("x") == x:
            series = sorted((stats[n] for n in axis.get("networks", []) if n in stats), key=lambda s: s[x])
            if len(series) >= 2:
                out.append((axis, series))
    return out


def section_side_by_side(study, stats):
    """Axes that vary the same count (plain and residual depth): a table by that count, a column per axis,
    and at each count both axes reach, the difference and whether it exceeds the seeds' spread."""
    lines = []
    for x in ("hidden_conv", "hidden_dense"):
        groups = axis_series(study, stats, x)
        if len(groups) < 2:
            continue
        by_axis = [(axis, {s[x]: s for s in series}) for axis, series in groups]
        values = sorted({v for _, m in by_axis for v in m})
        names = [axis.get("name", "?") for axis, _ in by_axis]
        lines += [f"## Side by side: {', '.join(names)}", ""]
        rows = [[str(v)] + [acc_cell(m[v]) if v in m else "" for _, m in by_axis] for v in values]
        lines += table([X_NAMES[x][0]] + [f"{n}: test accuracy (%)" for n in names], rows) + [""]
        (first_axis, first), others = by_axis[0], by_axis[1:]
        text = []
        for axis, m in others:
            common = [v for v in values if v in first and v in m]
            diffs = [f"{v}: {pts(m[v]['acc'] - first[v]['acc'])} points ({spread_verdict(first[v], m[v])})"
                     for v in common]
            if diffs:
                text.append(f"{cap(axis.get('name', '?'))} against {first_axis.get('name', '?')}, by {X_NAMES[x][0]}: "
                            + "; ".join(diffs) + ".")
        for axis, m in by_axis:
            best = max(m.values(), key=lambda s: s["acc"])
            deepest = m[max(m)]
            if deepest is not best:
                text.append(f"{cap(axis.get('name', '?'))}: the deepest ({deepest['name']}) is {pts(deepest['acc'] - best['acc'])} "
                            f"points from the best ({best['name']}, {spread_verdict(best, deepest)}).")
            else:
                text.append(f"{cap(axis.get('name', '?'))}: the deepest ({deepest['name']}) is the best.")
        lines += ["**What the numbers say.** " + " ".join(text), ""]
    return lines


def section_overall(study, stats, order, plots):
    ranked = sorted((stats[n] for n in order), key=lambda s: (-s["acc"], s["name"]))
    rows = [[str(i), s["name"], acc_cell(s), pct(s["err"]), f"{s['loss']:.4f}", count(s["params"]), f"{s['mflops']:.2f}",
             f"{s['train_s']:.1f}", "n/a" if s["images_per_s"] is None else f"{s['images_per_s']:.0f}", str(s["n"])]
            for i, s in enumerate(ranked, start=1)]
    lines = ["## All networks, by test accuracy", ""]
    lines += table(["#", "Network", "Test accuracy (%)", "Error (%)", "Test loss", "Params", "MFLOPs",
                    "Train s (mean)", "Train images/s", "Seeds"], rows) + [""]
    top, bottom = ranked[0], ranked[-1]
    text = f"Best overall: **{top['name']}** at {pct(top['acc'])} %"
    if len(ranked) > 1:
        text += (f"; worst: {bottom['name']} at {pct(bottom['acc'])} % ({ratio(bottom['err'], top['err'])} the best's "
                 f"error rate). The runner-up, {ranked[1]['name']}, is {pts(ranked[1]['acc'] - top['acc'])} points "
                 f"behind ({spread_verdict(top, ranked[1])})")
        fastest = min(ranked, key=lambda s: s["train_s"])
        text += (f". The fastest to train, {fastest['name']} ({fastest['train_s']:.1f} s), reaches "
                 f"{pct(fastest['acc'])} %")
    lines += [text + ".", ""]
    p = plot_all_vs(plots, ranked, "params", "accuracy_vs_params.png", "parameters (log scale)",
                    "Test error rate vs parameters, every network (mean ± std over seeds)",
                    axis_series(study, stats, "params"))
    t = plot_all_vs(plots, ranked, "train_s", "accuracy_vs_time.png",
                    "training seconds per run (log scale, excludes evaluation)",
                    "Test error rate vs training time, every network (mean ± std over seeds)")
    lines += [f"![Test error rate vs parameters]({p})", "", f"![Test error rate vs training time]({t})", ""]
    return lines


def probe_means(probes):
    """{network: [layer dicts ordered by index]} with probe accuracies averaged over seeds."""
    by = {}
    for p in probes:
        by.setdefault(p["network"], {}).setdefault(p["layer_index"], []).append(p)
    out = {}
    for net, layers in by.items():
        out[net] = [{"index": i, "name": ps[0]["layer"], "kind": ps[0]["kind"], "shape": ps[0]["shape"],
                     "features": ps[0]["features"], "pooled": any(p["pooled"] for p in ps),
                     "test": mean([p["probe_test_accuracy"] for p in ps]),
                     "train": mean([p["probe_train_accuracy"] for p in ps])}
                    for i, ps in sorted(layers.items())]
    return out


def probe_sentence(net, layers, stats):
    out = []
    over = next((l for l in layers if l["test"] > PROBE_THRESHOLD), None)
    if over:
        out.append(f"first layer above {100 * PROBE_THRESHOLD:.0f} %: {over['name']} (depth {over['index']}, "
                   f"{pct(over['test'])} %)")
    else:
        top = max(layers, key=lambda l: l["test"])
        out.append(f"no layer exceeds {100 * PROBE_THRESHOLD:.0f} % (best {top['name']}, {pct(top['test'])} %)")
    pixels = next((l for l in layers if l["index"] == 0), None)
    conv = next((l for l in layers if l["kind"] == "conv"), None)
    if pixels and conv:
        out.append(f"{conv['name']} raises separability over the raw pixels by {pts(conv['test'] - pixels['test'])} "
                   f"points ({pct(pixels['test'])} → {pct(conv['test'])} %)")
    pools = [(prev, l) for prev, l in zip(layers, layers[1:]) if "pool" in l["kind"]]
    if pools:
        out.append("pooling changes it by " + ", ".join(f"{pts(l['test'] - prev['test'])} points ({prev['name']} → {l['name']})"
                                                         for prev, l in pools))
    last = layers[-1]
    if net in stats and last["index"] > 0:
        out.append(f"the last hidden layer's probe ({pct(last['test'])} %) is {pts(last['test'] - stats[net]['acc'])} "
                   "points from the trained network's own accuracy")
    return f"- **{net}**: " + "; ".join(out) + "."


def section_probes(probes, stats, order, plots):
    lines = ["## Linear probes: how separable is each layer?", ""]
    if not probes:
        return lines + ["No probes.csv: no linear probes to report.", ""]
    means = probe_means(probes)
    nets = [n for n in order if n in means] + sorted(n for n in means if n not in order)
    depth = max(l["index"] for n in nets for l in means[n]) + 1
    rows = []
    for net in nets:
        cells = {l["index"]: f"{l['name']} {pct(l['test'])}{'*' if l['pooled'] else ''}" for l in means[net]}
        final = pct(stats[net]["acc"]) if net in stats else "n/a"
        rows.append([net] + [cells.get(i, "") for i in range(depth)] + [final])
    lines += ["Probe test accuracy (%) of a softmax regression trained on each layer's activations, by depth "
              "(0 = the input pixels); the last column is the trained network's own test accuracy. "
              "* = activations 2x2-average-pooled to fit the probe's feature limit.", ""]
    lines += table(["Network"] + [str(i) for i in range(depth)] + ["network"], rows) + [""]
    lines += [probe_sentence(net, means[net], stats) for net in nets] + [""]
    pixel = [l["test"] for n in nets for l in means[n] if l["index"] == 0]
    if pixel:
        span = pct(min(pixel)) if pct(min(pixel)) == pct(max(pixel)) else f"{pct(min(pixel))}–{pct(max(pixel))}"
        lines += [f"The raw pixels alone give {span} % with a linear classifier; "
                  "every point above that is separability the layers built.", ""]
    lines += [f"![Linear probe accuracy by layer]({plot_probes(plots, means, nets)})", ""]
    return lines


def section_pictures(out_dir, order, plots):
    lines = ["## Pictures: one trained network at a time (seed 1)", ""]
    found = False
    for net in order:
        path = os.path.join(out_dir, "inspect", f"{net}.json")
        if not os.path.exists(path):
            continue
        found = True
        data = load_inspect(path)
        lines += [f"### {net}", ""]
        filters = data.get("filters")
        if filters:
            lines += [f"![{net} filters]({plot_filters(plots, net, filters)})", ""]
        else:
            lines += ["No convolution: no filters to show.", ""]
        lines += [f"![{net} activations]({plot_activations(plots, net, data)})", ""]
        if data.get("confusion"):
            lines += [confusion_sentence(data), "", f"![{net} confusion]({plot_confusion(plots, net, data)})", ""]
        if data.get("misclassified"):
            lines += [f"![{net} misclassified]({plot_misclassified(plots, net, data)})", ""]
        else:
            lines += ["No misclassified images recorded.", ""]
    if not found:
        lines += ["No inspect/*.json files: no filters, activations or confusion matrices to show.", ""]
    return lines


def confusion_sentence(data):
    m = np.array(data["confusion"])
    total, right = int(m.sum()), int(np.trace(m))
    off = sorted(((int(m[i, j]), i, j) for i in range(len(m)) for j in range(len(m)) if i != j and m[i, j] > 0),
                 key=lambda t: (-t[0], t[1], t[2]))
    text = f"{right:,} of {total:,} test images right ({100 * right / total:.2f} %)." if total else "Empty confusion matrix."
    if off:
        text += " Most frequent mistakes (true→predicted): " + ", ".join(
            f"{md_escape(class_name(data, i))}→{md_escape(class_name(data, j))} ({c})" for c, i, j in off[:3]) + "."
    return text


def section_curves(curves, order, plots):
    lines = ["## Learning curves", ""]
    if not curves:
        return lines + ["No curves.csv: no learning curves to report.", ""]
    means = curve_means(curves)
    nets = [n for n in order if n in means] + sorted(n for n in means if n not in order)
    epochs = sorted({m[0] for n in nets for m in means[n]})
    rows = [[n] + [next((pct(m[1]) for m in means[n] if m[0] == e), "") for e in epochs] for n in nets]
    lines += ["Test accuracy (%) after each epoch, mean over seeds:", ""]
    lines += table(["Network"] + [f"epoch {e}" for e in epochs], rows) + [""]
    if len(epochs) >= 2:
        gains = [(means[n][-1][1] - means[n][-2][1], n) for n in nets if len(means[n]) >= 2]
        if gains:
            big = max(gains)
            lines += [f"The last epoch still adds {pts(big[0])} points at most ({big[1]}); "
                      f"{sum(1 for g, _ in gains if g < 0)} of {len(gains)} networks lose accuracy in it.", ""]
    else:
        lines += ["Only one epoch was run, so there is no trend to read.", ""]
    lines += [f"![Learning curves]({plot_learning_curves(plots, means, nets)})", ""]
    return lines


# ----------------------------------------------------------------------------- main

def build_report(out_dir):
    study = load_json(os.path.join(out_dir, "study.json"))
    if not isinstance(study, dict):
        raise ReportError(f"{os.path.join(out_dir, 'study.json')}: not a JSON object")
    results_path = os.path.join(out_dir, "results.csv")
    results = read_csv(results_path, RESULTS_COLUMNS)
    if not results:
        raise ReportError(f"{results_path}: no result rows")
    check_unique(results, ("network", "seed"), results_path)
    optional = {}
    for name, columns, keys in (("curves.csv", CURVES_COLUMNS, ("network", "seed", "epoch")),
                                ("probes.csv", PROBES_COLUMNS, ("network", "seed", "layer_index"))):
        path = os.path.join(out_dir, name)
        optional[name] = read_csv(path, columns) if os.path.exists(path) else []
        check_unique(optional[name], keys, path)
    stats = network_stats(results, optional["curves.csv"])
    order = [n for n in study.get("networks", []) if n in stats] + sorted(n for n in stats if n not in study.get("networks", []))
    plots = Plots(out_dir)
    lines = section_header(study, stats, order)
    lines += section_axes(study, stats, plots)
    lines += section_side_by_side(study, stats)
    lines += section_overall(study, stats, order, plots)
    lines += section_probes(optional["probes.csv"], stats, order, plots)
    lines += section_pictures(out_dir, order, plots)
    lines += section_curves(optional["curves.csv"], order, plots)
    report = os.path.join(out_dir, "report.md")
    with open(report, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    return report, plots.written


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        print("usage: study_report.py OUT_DIR", file=sys.stderr)
        return 2
    out_dir = argv[1].rstrip("/") or "/"
    if not os.path.isdir(out_dir):
        print(f"study_report: {out_dir}: not a directory", file=sys.stderr)
        return 1
    try:
        report, n = build_report(out_dir)
    except ReportError as e:
        print(f"study_report: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"study_report: {e.filename or out_dir}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"report: {report} ({n} plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
