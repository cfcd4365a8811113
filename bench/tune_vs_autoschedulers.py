#!/usr/bin/env python3
"""Kiln's schedules against Halide's autoschedulers, network by network.

For each network it runs `kiln-tune NETWORK --compare`, which compiles the
network's training and inference pipelines in Halide's JIT for the build's
target, once with the schedule the build uses (the hand-written schedule with
schedules/NETWORK.toml's settings) and once with each autoscheduler's
(Mullapudi2016, Adams2019, Li2018, run as the generator runs them), then times
them all in turns and reports each one's fastest call. With two threads it
times what one core runs in kiln: halves of the batches, one thread (see
schedules/tune.cpp). Ratios are autoscheduler time / kiln time: above 1, kiln
is faster.

A network whose run dies (an autoscheduler crashing, or running out of the
memory limit) is run again one autoscheduler at a time, so that the others'
figures are kept and the culprit is named.

    python3 bench/tune_vs_autoschedulers.py                 # every networks/*.toml
    python3 bench/tune_vs_autoschedulers.py lenet5 vgg-mini --markdown table.md
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AUTOSCHEDULERS = ["Mullapudi2016", "Adams2019", "Li2018"]
GOAL = 1.3
PIPES = ("training", "inference")


def run_compare(tuner, network, autoschedulers, args):
    """kiln-tune --compare for one network; its JSON figures, or why it died."""
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        cmd = [str(tuner), str(ROOT / "networks" / f"{network}.toml"), "--compare", "--json", out.name,
               "--autoschedulers", ",".join(autoschedulers), "--repeats", str(args.repeats),
               "--rounds", str(args.rounds), "--threads", str(args.threads)]
        limit = args.memory_gb << 30

        def cap_memory():  # an autoscheduler that runs away with memory fails alone, not the machine
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

        start = time.time()
        with open(args.log, "a") as log:
            log.write(f"$ {' '.join(cmd)}\n")
            log.flush()
            try:
                proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      preexec_fn=cap_memory, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                return None, f"timed out after {args.timeout} s"
            log.write(proc.stdout + proc.stderr)
        print(proc.stdout, end="", flush=True)
        if proc.returncode != 0:
            why = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit {proc.returncode}"
            if "std::bad_alloc" in proc.stderr:
                why = f"out of memory (std::bad_alloc at the {args.memory_gb} GB limit), {why}"
            return None, f"{why} after {time.time() - start:.0f} s"
        return json.load(open(out.name)), None


def compare_network(tuner, network, args):
    """The figures of one network: kiln's and each autoscheduler's, per pipeline."""
    figures, why = run_compare(tuner, network, args.autoschedulers, args)
    if figures is not None:
        return figures
    print(f"{network}: the run died ({why}); again, one autoscheduler at a time", flush=True)
    merged = {"schedules": {}}
    for name in args.autoschedulers:
        one, why = run_compare(tuner, network, [name], args)
        if one is None:
            merged["schedules"][name] = {p: {"error": f"kiln-tune died: {why}"} for p in PIPES}
            continue
        for key in ("network", "target", "train_batch", "infer_batch", "one_core_halves"):
            merged.setdefault(key, one[key])
        merged["schedules"].setdefault("kiln", one["schedules"]["kiln"])
        entry = one["schedules"][name]
        for pipe in PIPES:  # the ratio against kiln's time of the same run
            entry[pipe]["kiln_ms"] = one["schedules"]["kiln"][pipe].get("ms")
        merged["schedules"][name] = entry
    if "kiln" not in merged["schedules"]:
        merged["error"] = why
    return merged


def cell(schedules, name, pipe):
    entry = schedules.get(name, {}).get(pipe, {})
    if "ms" not in entry:
        return "failed: " + entry.get("error", "not run")[:90].replace("|", "/"), None
    kiln = entry.get("kiln_ms") or schedules["kiln"][pipe]["ms"]
    ratio = entry["ms"] / kiln
    return f"{entry['ms']:.2f} ms ({ratio:.2f}x)", ratio


def markdown(results, args):
    head = "| network | pipeline | kiln | " + " | ".join(args.autoschedulers) + " | least ratio |"
    rows = [head, "|" + "---|" * (4 + len(args.autoschedulers))]
    for network, r in results.items():
        if "schedules" not in r or "kiln" not in r["schedules"]:
            rows.append(f"| {network} | | kiln-tune failed: {r.get('error', '?')} |" + " |" * len(args.autoschedulers))
            continue
        for pipe in PIPES:
            batch = r["train_batch"] if pipe == "training" else r["infer_batch"]
            kiln = r["schedules"]["kiln"][pipe]
            cells, ratios = [], []
            for name in args.autoschedulers:
                text, ratio = cell(r["schedules"], name, pipe)
                cells.append(text)
                if ratio is not None:
                    ratios.append(ratio)
            least = f"{min(ratios):.2f}x" + ("" if min(ratios) >= GOAL else f" (below {GOAL}x)") if ratios else "-"
            rows.append(f"| {network} | {pipe} ({batch} images) | {kiln['ms']:.2f} ms | " + " | ".join(cells) +
                        f" | {least} |")
    return "\n".join(rows) + "\n"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("networks", nargs="*", help="network names (default: every networks/*.toml)")
    p.add_argument("--build", default=str(ROOT / "build"), help="the build folder holding kiln-tune")
    p.add_argument("--autoschedulers", default=",".join(AUTOSCHEDULERS))
    p.add_argument("--threads", type=int, default=2, help="as kiln runs (2: halves of the batches on one core each)")
    p.add_argument("--repeats", type=int, default=10, help="calls per turn (the fastest counts)")
    p.add_argument("--rounds", type=int, default=3, help="turns of every schedule")
    p.add_argument("--memory-gb", type=int, default=12, help="address-space limit of each kiln-tune run")
    p.add_argument("--timeout", type=int, default=1800, help="seconds per kiln-tune run")
    p.add_argument("--markdown", help="write the table here too")
    p.add_argument("--log", default=os.devnull, help="kiln-tune's output and errors, appended")
    args = p.parse_args()
    args.autoschedulers = [a for a in args.autoschedulers.split(",") if a]
    tuner = Path(args.build) / "kiln-tune"
    networks = args.networks or sorted(f.stem for f in (ROOT / "networks").glob("*.toml"))
    env = {k: os.environ[k] for k in ("HL_BEAM_SIZE",) if k in os.environ}
    print(f"kiln vs Halide's autoschedulers, {args.threads} threads, {args.rounds} rounds x {args.repeats} calls; "
          f"{env or 'no HL_ variables set'}", flush=True)
    results = {}
    for network in networks:
        r = compare_network(tuner, network, args)
        results[network] = r
    table = markdown(results, args)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
