#!/usr/bin/python3
"""Set two or more `kiln study` folders side by side: the same study run on different
data sets (MNIST and Fashion-MNIST, say).

Usage:
    /usr/bin/python3 scripts/study_compare.py OUT_DIR STUDY_DIR STUDY_DIR [STUDY_DIR...]

Reads each STUDY_DIR as scripts/study_report.py does (study.json, results.csv and,
when there, curves.csv and probes.csv). Writes OUT_DIR/report.md and OUT_DIR/plots/:
a table per axis of the first study with a column per data set (mean ± std over
seeds) and, where one exists for the same shape, a published figure beside it;
accuracy against depth (each axis varying the conv count, plain against residual),
against parameters and against training time, a panel per data set; the linear
probes layer by layer for each data set; whether the networks had converged (what
their last epoch changed, from curves.csv); and sentences computed from the numbers.
Prints `report: OUT_DIR/report.md (N plots)`; an error is one line on stderr naming
the file, exit status 1.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import study_report as sr  # noqa: E402
from study_report import plt, pct, pts, acc_cell, cap, table  # noqa: E402

# Published test accuracies for networks of the same shape as a study network, by data
# set. Xiao, Rasul and Vollgraf (2017), "Fashion-MNIST", benchmark table: the best
# setting of scikit-learn's LogisticRegression, and MLPClassifier with one hidden layer
# of 100 units (ours has 128).
PUBLISHED = {
    "Fashion-MNIST": {
        "conv0-dense0": (0.842, "Xiao et al. 2017, logistic regression"),
        "conv0-dense1": (0.871, "Xiao et al. 2017, MLP of 100 units"),
    },
}


class Study:
    """One `kiln study` folder: what was run and its per-network statistics."""

    def __init__(self, path):
        self.path = path
        self.study = sr.load_json(os.path.join(path, "study.json"))
        if not isinstance(self.study, dict):
            raise sr.ReportError(f"{os.path.join(path, 'study.json')}: not a JSON object")
        results_path = os.path.join(path, "results.csv")
        results = sr.read_csv(results_path, sr.RESULTS_COLUMNS)
        if not results:
            raise sr.ReportError(f"{results_path}: no result rows")
        sr.check_unique(results, ("network", "seed"), results_path)
        optional = {}
        for name, columns in (("curves.csv", sr.CURVES_COLUMNS), ("probes.csv", sr.PROBES_COLUMNS)):
            p = os.path.join(path, name)
            optional[name] = sr.read_csv(p, columns) if os.path.exists(p) else []
        self.curves = optional["curves.csv"]
        self.stats = sr.network_stats(results, self.curves)
        self.probes = sr.probe_means(optional["probes.csv"])
        self.data = sr.data_name(self.study)

    def series(self, networks, x):
        present = [self.stats[n] for n in networks if n in self.stats]
        return sorted(present, key=lambda s: s[x]) if x in sr.X_NAMES else present


def section_header(studies):
    lines = ["# Kiln study on " + " and ".join(s.data for s in studies), "",
             "The same study run on each data set, set side by side. Accuracy is on each data set's test set, "
             "as mean ± sample standard deviation over seeds (n/a with one seed).", "",
             "| data set | folder | command | seeds | epochs | wall time | recipe |", "|---|---|---|---|---|---|---|"]
    for s in studies:
        st = s.study
        wall = st.get("wall_seconds")
        recipe = ", ".join(f"{k} = {v}" for k, v in (st.get("recipe") or {}).items())
        lines.append(f"| {s.data} | `{s.path}` | `{st.get('command', 'n/a')}` | "
                     f"{', '.join(map(str, st.get('seeds') or []))} | {st.get('epochs', 'n/a')} | "
                     f"{f'{wall / 60:.1f} min' if isinstance(wall, (int, float)) else 'n/a'} | {recipe} |")
    lines.append("")
    if len({repr(s.study.get("recipe")) for s in studies}) > 1 or len({s.study.get("epochs") for s in studies}) > 1:
        lines += ["> The folders were trained with different recipes or epochs: differences below mix data set "
                  "and recipe.", ""]
    if len({s.data for s in studies}) < len(studies):
        lines += ["> Two folders are on the same data set: their columns differ only by what else changed.", ""]
    return lines


def published_cell(data, name):
    ref = PUBLISHED.get(data, {}).get(name)
    return f"{pct(ref[0])} ({ref[1]})" if ref else ""


def axis_cross_sentence(studies, axis):
    """How much the axis matters on each data set: the spread from its worst to its best network."""
    parts = []
    for s in studies:
        series = s.series(axis.get("networks", []), axis.get("x"))
        if len(series) < 2:
            continue
        best, worst = max(series, key=lambda t: t["acc"]), min(series, key=lambda t: t["acc"])
        parts.append(f"on {s.data} its networks span {100 * (best['acc'] - worst['acc']):.2f} points "
                     f"({worst['name']} {pct(worst['acc'])} % to {best['name']} {pct(best['acc'])} %)")
    return cap("; ".join(parts)) + "." if parts else ""


def section_axes(studies):
    lines = []
    for axis in studies[0].study.get("axes") or []:
        x = axis.get("x")
        names = [n for n in axis.get("networks", []) if any(n in s.stats for s in studies)]
        if not names:
            continue
        order = [t["name"] for t in studies[0].series(names, x)] + \
                [n for n in names if n not in studies[0].stats]
        published = any(published_cell(s.data, n) for s in studies for n in order)
        header = ["Network"] + ([sr.X_NAMES[x][0]] if x in ("hidden_conv", "hidden_dense") else []) + ["Params"]
        header += [f"{s.data}: test accuracy (%)" for s in studies] + (["published (%)"] if published else [])
        rows = []
        for n in order:
            any_stats = next(s.stats[n] for s in studies if n in s.stats)
            row = [n] + ([str(any_stats[x])] if x in ("hidden_conv", "hidden_dense") else []) + [sr.count(any_stats["params"])]
            row += [acc_cell(s.stats[n]) if n in s.stats else "" for s in studies]
            if published:
                row.append("; ".join(c for c in (f"{s.data} {published_cell(s.data, n)}" for s in studies
                                                 if published_cell(s.data, n)) if c))
            rows.append(row)
        lines += [f"## Axis: {axis.get('name', '?')}", ""]
        if axis.get("question"):
            lines += [f"*{axis['question']}*", ""]
        lines += table(header, rows) + [""]
        text = [axis_cross_sentence(studies, axis)]
        if x in sr.X_NAMES:
            for s in studies:
                series = s.series(names, x)
                if len(series) >= 2:
                    text.append(f"On {s.data}: " + sr.axis_sentences(series, x))
        lines += ["**What the numbers say.** " + " ".join(t for t in text if t), ""]
    return lines


def panels(studies, title):
    fig, axes = plt.subplots(1, len(studies), figsize=(6.5 * len(studies), 4.8), squeeze=False)
    fig.suptitle(title + " (mean ± std over seeds; dots = single seeds)", fontsize=10)
    return fig, list(zip(studies, axes[0]))


def plot_depth(plots, studies):
    """Error rate against conv layers, a line per axis that varies it, a panel per data set."""
    fig, pairs = panels(studies, "Test error rate against the number of conv layers")
    for s, ax in pairs:
        values = []
        for axis, series in sr.axis_series(s.study, s.stats, "hidden_conv"):
            values += sr.plot_series(ax, series, "hidden_conv", axis.get("name"))
        ax.set_xlabel("conv layers")
        ax.set_title(s.data, fontsize=10)
        sr.error_axis(ax, values)
        if values:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return plots.save(fig, "accuracy_vs_depth.png")


def plot_against(plots, studies, key, xlabel, name):
    """Every network's error rate against key (params, training seconds), a panel per data set."""
    fig, pairs = panels(studies, f"Test error rate against {xlabel}")
    for s, ax in pairs:
        values = []
        for axis, series in sr.axis_series(s.study, s.stats, "hidden_conv") + sr.axis_series(s.study, s.stats, "params"):
            ax.plot([t[key] for t in series], [100 * t["err"] for t in series], "--", linewidth=1,
                    label=axis.get("name"))
        for t in s.stats.values():
            values += sr.plot_series(ax, [t], key, None)
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(s.data, fontsize=10)
        sr.error_axis(ax, values)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return plots.save(fig, name)


def section_plots(plots, studies):
    lines = ["## Depth, parameters and training time", ""]
    if any(sr.axis_series(s.study, s.stats, "hidden_conv") for s in studies):
        lines += [f"![Test error rate against conv layers]({plot_depth(plots, studies)})", ""]
        for s in studies:
            side = sr.section_side_by_side(s.study, s.stats)
            lines += [line.replace("## Side by side:", f"### {s.data}, side by side:") for line in side]
    lines += [f"![Test error rate against parameters]({plot_against(plots, studies, 'params', 'parameters', 'accuracy_vs_params.png')})", "",
              f"![Test error rate against training time]({plot_against(plots, studies, 'train_s', 'training seconds per run', 'accuracy_vs_time.png')})", ""]
    return lines


def section_probes(plots, studies):
    lines = ["## Linear probes, layer by layer", ""]
    with_probes = [s for s in studies if s.probes]
    if not with_probes:
        return lines + ["No folder has probes.csv.", ""]
    fig, pairs = panels(with_probes, "Linear probe test accuracy by layer depth (0 = input pixels)")
    for s, ax in pairs:
        for i, (net, layers) in enumerate(sorted(s.probes.items())):
            ax.plot([l["index"] for l in layers], [100 * l["test"] for l in layers], marker="o", label=net,
                    **sr.line_style(i))
        ax.set_title(s.data, fontsize=10)
        ax.set_xlabel("layer depth")
        ax.set_ylabel("probe test accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    nets = sorted({n for s in with_probes for n in s.probes})
    header = ["Network"] + [f"{s.data}: {w}" for s in with_probes for w in ("pixels", "last hidden layer", "network")]
    rows = []
    for n in nets:
        row = [n]
        for s in with_probes:
            layers = s.probes.get(n) or []
            pixels = next((l for l in layers if l["index"] == 0), None)
            row += [pct(pixels["test"]) if pixels else "", f"{layers[-1]['name']} {pct(layers[-1]['test'])}" if layers else "",
                    pct(s.stats[n]["acc"]) if n in s.stats else ""]
        rows.append(row)
    lines += ["Probe test accuracy (%) of a softmax regression on a layer's activations (seed 1).", ""]
    lines += table(header, rows) + [""]
    text = []
    for s in with_probes:
        gaps = [(layers[-1]["test"] - s.stats[n]["acc"], n) for n, layers in s.probes.items() if n in s.stats and layers]
        pixels = [l["test"] for layers in s.probes.values() for l in layers if l["index"] == 0]
        if gaps and pixels:
            worst = min(gaps)
            gap = -worst[0]  # how far the probe falls short of its network; negative if every probe is above
            where = (f"is at most {100 * gap:.2f} points below its network ({worst[1]})" if gap > 0
                     else "is at or above its network for every network")
            text.append(f"On {s.data} a linear classifier on the raw pixels gets {pct(max(pixels))} %; the last hidden "
                        f"layer's probe {where}.")
    lines += ["**What the numbers say.** " + " ".join(text), ""] if text else []
    lines += [f"![Linear probes by layer]({plots.save(fig, 'probes.png')})", ""]
    return lines


def last_epoch(study):
    """Per network, over its seeds: the mean change of test accuracy in the last epoch
    and the mean train accuracy at the last epoch; networks with fewer than two epochs
    of curves are left out."""
    by_run = {}
    for c in study.curves:
        by_run.setdefault((c["network"], c["seed"]), []).append(c)
    out = {}
    for (net, _), rows in sorted(by_run.items()):
        rows.sort(key=lambda r: r["epoch"])
        if len(rows) >= 2:
            entry = out.setdefault(net, {"gains": [], "train": [], "epochs": rows[-1]["epoch"]})
            entry["gains"].append(rows[-1]["test_accuracy"] - rows[-2]["test_accuracy"])
            entry["train"].append(rows[-1]["train_accuracy"])
    return {net: {"gain": sr.mean(e["gains"]), "train": sr.mean(e["train"]), "epochs": e["epochs"]}
            for net, e in out.items()}


def section_convergence(studies):
    lines = ["## Convergence: what the last epoch changed", ""]
    per_study = [(s, last_epoch(s)) for s in studies]
    nets = []  # every network with curves in some folder, in the folders' order
    for s in studies:
        nets += [n for n in s.stats if n not in nets and any(n in e for _, e in per_study)]
    if not nets:
        return lines + ["No folder has curves.csv with two epochs or more.", ""]
    header = ["Network"] + [f"{s.data}: {w}" for s, _ in per_study for w in ("last epoch (points)", "train accuracy (%)")]
    rows = []
    for n in nets:
        row = [n]
        for _, e in per_study:
            row += [pts(e[n]["gain"]), pct(e[n]["train"])] if n in e else ["", ""]
        rows.append(row)
    lines += ["Test accuracy gained in the last epoch and train accuracy at the last epoch, means over seeds.", ""]
    lines += table(header, rows) + [""]
    text = []
    for s, e in per_study:
        if not e:
            continue
        top = max(e, key=lambda n: e[n]["gain"])
        low = min(e, key=lambda n: e[n]["gain"])
        epochs = sorted({v["epochs"] for v in e.values()})
        text.append(f"On {s.data} the last of {'/'.join(map(str, epochs))} epochs changed the networks' test accuracy "
                    f"by {pts(e[low]['gain'])} ({low}) to {pts(e[top]['gain'])} ({top}) points.")
    lines += ["**What the numbers say.** " + " ".join(text), ""] if text else []
    return lines


def build_report(out_dir, dirs):
    studies = [Study(d) for d in dirs]
    plots = sr.Plots(out_dir)
    lines = (section_header(studies) + section_axes(studies) + section_plots(plots, studies) +
             section_convergence(studies) + section_probes(plots, studies))
    report = os.path.join(out_dir, "report.md")
    with open(report, "w", encoding="utf-8") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    return report, plots.written


def main(argv):
    if len(argv) < 4 or argv[1] in ("-h", "--help"):
        print("usage: study_compare.py OUT_DIR STUDY_DIR STUDY_DIR [STUDY_DIR...]", file=sys.stderr)
        return 2
    for d in argv[2:]:
        if not os.path.isdir(d):
            print(f"study_compare: {d}: not a directory", file=sys.stderr)
            return 1
    try:
        os.makedirs(argv[1], exist_ok=True)
        report, n = build_report(argv[1], argv[2:])
    except sr.ReportError as e:
        print(f"study_compare: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"study_compare: {e.filename or argv[1]}: {e.strerror}", file=sys.stderr)
        return 1
    print(f"report: {report} ({n} plots)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
