#!/usr/bin/env python3
"""How long a study would take on P ranks, from the log of a run on one.

Under mpirun, `kiln study`'s ranks take the study's runs in order as they free
up (runtime/cli/main.cpp, cmd_study). This replays that: each run's wall time
is read from the log `kiln study` printed (the minutes between one run's
"[k/N] ... min so far" line and the previous one: training, evaluation, and on
seed 1 the probes and inspection), and the runs are dealt in order to whichever
of P ranks is free first. Compiling the networks is listed apart: each machine
compiles what it trains, once (a shared $KILN_CACHE compiles each network once).

It assumes every rank has a machine like the one the log comes from to itself;
it is a computation from measured run times, not a measurement on P machines.

Usage: scripts/study_ranks.py LOG... [--ranks 1,2,3,4]
"""
import argparse
import heapq
import re


def run_minutes(path):
    """(minutes of each run in order, minutes of compiling) from a study's log."""
    so_far, compile_seconds = [0.0], 0.0
    with open(path) as f:
        for line in f:
            m = re.search(r"compiling .*\.\.\. ([0-9.]+) s", line)
            if m:
                compile_seconds += float(m.group(1))
            m = re.search(r"^\[\s*\d+/\d+\].* ([0-9.]+) min so far", line)
            if m:
                so_far.append(float(m.group(1)))
    return [b - a for a, b in zip(so_far, so_far[1:])], compile_seconds / 60


def wall_on(ranks, runs):
    """Minutes until the last run ends when `ranks` take `runs` in order as they free up."""
    free = [0.0] * ranks
    for minutes in runs:
        heapq.heappush(free, heapq.heappop(free) + minutes)
    return max(free)


def rank_counts(text):
    """--ranks: comma-separated positive integers."""
    try:
        counts = [int(p) for p in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got '{text}'")
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+")
    parser.add_argument("--ranks", type=rank_counts, default=[1, 2, 3, 4], help="comma-separated rank counts")
    args = parser.parse_args()
    ranks = args.ranks
    logs = []  # (path, runs, compile minutes): all read before anything is printed
    for path in args.logs:
        try:
            runs, compile_minutes = run_minutes(path)
        except (OSError, UnicodeDecodeError) as e:
            raise SystemExit(f"{path}: error: cannot read: {getattr(e, 'strerror', None) or e}")
        if not runs:
            raise SystemExit(f"{path}: error: no '[k/N] ... min so far' lines: not a kiln study log")
        logs.append((path, runs, compile_minutes))
    totals = {p: 0.0 for p in ranks}
    print("| log | runs | compiling | " + " | ".join(f"{p} rank{'s' if p > 1 else ''}" for p in ranks) + " |")
    print("|---|---|---|" + "---|" * len(ranks))
    for path, runs, compile_minutes in logs:
        walls = {p: wall_on(p, runs) for p in ranks}
        for p in ranks:
            totals[p] += walls[p]
        print(f"| {path} | {len(runs)} | {compile_minutes:.1f} min | " +
              " | ".join(f"{walls[p]:.1f} min" for p in ranks) + " |")
    if len(logs) > 1:
        compiles = max(c for _, _, c in logs)
        print(f"| all, one after the other, compiling once | | {compiles:.1f} min | " +
              " | ".join(f"{totals[p] + compiles:.1f} min" for p in ranks) + " |")

if __name__ == "__main__":
    main()
