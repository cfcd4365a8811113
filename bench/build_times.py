#!/usr/bin/env python3
"""How long each network takes to build: its three pipelines generated and compiled
for this machine (`kiln build FILE` into an empty cache), and, with --halide-passes,
the same with Halide 14's own lowering passes (KILN_HALIDE_PASSES=1: see
generator/fast_lowering.cpp), the two taking turns network by network.

  bench/build_times.py [FILES...] [--kiln build/kiln] [--halide-passes] [--json]

Default FILES: networks/*.toml and networks/study/**/*.toml (the study's plans
excluded). Each network gets its schedules/NAME.toml when there is one, as the
CMake build does. Wall time and CPU time (user + system of the generator and the
compiler) are printed per build; the machine's load average at the start is
printed too, since a busy machine stretches the wall time.
"""
import argparse
import glob
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def network_files():
    files = sorted(glob.glob(os.path.join(ROOT, "networks", "*.toml")))
    files += sorted(f for f in glob.glob(os.path.join(ROOT, "networks", "study", "**", "*.toml"), recursive=True)
                    if os.path.basename(f) != "study.toml")
    return files


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def build_once(kiln, file, halide_passes):
    """Seconds (wall, cpu) of `kiln build FILE` into a fresh cache."""
    cache = tempfile.mkdtemp(prefix="kiln-build-times-")
    env = dict(os.environ, KILN_CACHE=cache)
    env.pop("KILN_HALIDE_PASSES", None)
    if halide_passes:
        env["KILN_HALIDE_PASSES"] = "1"
    cmd = [kiln, "build", file]
    schedule = os.path.join(ROOT, "schedules", os.path.splitext(os.path.basename(file))[0] + ".toml")
    if os.path.dirname(os.path.abspath(file)) == os.path.join(ROOT, "networks") and os.path.exists(schedule):
        cmd += ["--schedule", schedule]
    try:
        cpu0, t0 = children_cpu(), time.monotonic()
        done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall, cpu = time.monotonic() - t0, children_cpu() - cpu0
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if done.returncode != 0:
        sys.exit(f"build_times: {file}: kiln build failed: {done.stderr.strip().splitlines()[-1:]}")
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*")
    ap.add_argument("--kiln", default=os.path.join(ROOT, "build", "kiln"))
    ap.add_argument("--halide-passes", action="store_true",
                    help="also build each network with Halide's own lowering passes, in turns")
    ap.add_argument("--json", action="store_true", help="one JSON object per network instead of a table")
    args = ap.parse_args()
    if not os.access(args.kiln, os.X_OK):
        sys.exit(f"build_times: {args.kiln}: error: not an executable kiln (build first, or give --kiln)")
    files = args.files or network_files()
    print(f"# kiln build into an empty cache, target host; load average {os.getloadavg()[0]:.2f} at the start; "
          f"{os.cpu_count()} CPUs", flush=True)
    if not args.json:
        head = "| network | wall s | CPU s |" + (" Halide's passes: wall s | CPU s |" if args.halide_passes else "")
        print(head)
        print("|---|---|---|" + ("---|---|" if args.halide_passes else ""), flush=True)
    for file in files:
        name = os.path.splitext(os.path.relpath(file, os.path.join(ROOT, "networks")))[0]
        wall, cpu = build_once(args.kiln, file, False)
        row = {"network": name, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1)}
        if args.halide_passes:
            hw, hc = build_once(args.kiln, file, True)
            row.update(halide_passes_wall_s=round(hw, 1), halide_passes_cpu_s=round(hc, 1))
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            cells = [name, f"{wall:.1f}", f"{cpu:.1f}"]
            if args.halide_passes:
                cells += [f"{row['halide_passes_wall_s']:.1f}", f"{row['halide_passes_cpu_s']:.1f}"]
            print("| " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
