#!/usr/bin/python3
"""Kiln against PyTorch on the same networks, side by side on this machine.

For each network: first a correctness check (a checkpoint from a one-step
`kiln train` is evaluated by `kiln eval` and by the equivalent torch model on
the same test images: accuracy must match and the loss agree within 1e-4),
then `kiln bench` and the same three measurements in PyTorch: a training step,
batched inference and batch-1 latency, each the median of timed repetitions
after warm-up. Kiln and PyTorch take turns for --rounds rounds, and each
figure and each ratio is the median over the rounds, so that a change in the
machine's speed during the run falls on both sides. See bench/README.md.

PyTorch gets the set-up its CPU performance guide recommends: a pooling
allocator (tcmalloc preloaded: the script restarts itself with LD_PRELOAD; Kiln
runs without it, with its own allocator settings), torch.set_num_threads(--threads)
and one BLAS thread. --torch-malloc glibc shows PyTorch with glibc's malloc.

Usage:
    /usr/bin/python3 bench/compare.py [NETWORK ...] [--threads 2] [--batch 64]
        [--infer-batch 256] [--repeats 30] [--rounds 3] [--kiln build/kiln]
        [--data DIR] [--peak-gflops X] [--torch-malloc tcmalloc|glibc] [--json FILE]

NETWORK defaults to every network in networks/.

--peak-gflops: the machine's peak for "% of peak"; by default bench/peak.c
measures it (compiled with cc -march=native) before the networks run.
"""

import argparse
import glob
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"  # Debian's libtcmalloc-minimal4


def torch_malloc_choice(argv):
    """--torch-malloc's value, read before argparse: the choice decides whether to restart."""
    for i, a in enumerate(argv):
        if a == "--torch-malloc" and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--torch-malloc="):
            return a.split("=", 1)[1]
    return "tcmalloc"


# The allocator must be preloaded before the process starts: restart with it once.
if (torch_malloc_choice(sys.argv[1:]) == "tcmalloc" and os.path.exists(TCMALLOC)
        and TCMALLOC not in os.environ.get("LD_PRELOAD", "")):
    env = dict(os.environ, LD_PRELOAD=(TCMALLOC + " " + os.environ.get("LD_PRELOAD", "")).strip())
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

# Before torch is imported: its OpenBLAS must not start threads of its own.
os.environ["OPENBLAS_NUM_THREADS"] = "1"

CHECK_IMAGES = 256
LOSS_TOLERANCE = 1e-4

spec = importlib.util.spec_from_file_location("torch_check", os.path.join(REPO, "scripts", "torch_check.py"))
torch_check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(torch_check)

import torch  # noqa: E402  (after OPENBLAS_NUM_THREADS)
import torch.nn.functional as F  # noqa: E402


def fail(message):
    print(f"compare: error: {message}", file=sys.stderr)
    sys.exit(1)


def kiln_env():
    """Kiln runs with its own allocator settings, never with PyTorch's preloaded one."""
    env = dict(os.environ)
    preload = " ".join(l for l in env.pop("LD_PRELOAD", "").split() if "tcmalloc" not in l)
    if preload:
        env["LD_PRELOAD"] = preload
    return env


def torch_setup(args):
    """What PyTorch runs with, one line for the output."""
    preloaded = TCMALLOC in os.environ.get("LD_PRELOAD", "")
    malloc = f"tcmalloc preloaded ({TCMALLOC})" if preloaded else "glibc malloc"
    if args.torch_malloc == "tcmalloc" and not preloaded:
        malloc += f" (asked for tcmalloc, but {TCMALLOC} is missing: apt-get install libtcmalloc-minimal4)"
    return (f"{malloc}, torch.set_num_threads({args.threads}), OPENBLAS_NUM_THREADS="
            f"{os.environ.get('OPENBLAS_NUM_THREADS')}, model.train()/eval() and torch.inference_mode() as usual")


def run_json(cmd):
    """Runs a kiln command and returns the JSON object it prints last."""
    p = subprocess.run(cmd, capture_output=True, text=True, env=kiln_env())
    if p.returncode != 0:
        fail(f"{' '.join(cmd)} exited with {p.returncode}: {p.stderr.strip() or p.stdout.strip()}")
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    if not lines:
        fail(f"{' '.join(cmd)} printed no JSON: {p.stdout.strip()}")
    return json.loads(lines[-1])


def network_file(name, kiln):
    """networks/NAME.toml, else the file whose [network] name is NAME."""
    direct = os.path.join(REPO, "networks", f"{name}.toml")
    if os.path.isfile(direct):
        return direct
    for path in sorted(glob.glob(os.path.join(REPO, "networks", "*.toml"))):
        try:
            if torch_check.load_network(path, kiln)["name"] == name:
                return path
        except torch_check.CheckError:
            pass
    fail(f"no network file for '{name}' in {os.path.join(REPO, 'networks')}")


def check(args, name, net):
    """Kiln and torch compute the same function: same accuracy, loss within LOSS_TOLERANCE."""
    with tempfile.TemporaryDirectory(prefix="kiln-compare-") as out:
        common = ["--threads", str(args.threads), "--data", args.data, "--limit-test", str(CHECK_IMAGES)]
        # One step on one batch, one more image held out (seed-keras's plateau schedule needs some).
        p = subprocess.run([args.kiln, "train", name, "--epochs", "1", "--limit-train", str(args.batch + 1),
                            "--batch", str(args.batch), "--validation", "1", "--out", out, "--no-progress"] + common,
                           capture_output=True, text=True, env=kiln_env())
        if p.returncode != 0:
            fail(f"kiln train {name}: {p.stderr.strip() or p.stdout.strip()}")
        ckpt = os.path.join(out, "checkpoint.safetensors")
        kiln = run_json([args.kiln, "eval", name, "--checkpoint", ckpt, "--json"] + common)
        model = torch_check.build_model(net)
        torch_check.load_checkpoint(model, net, ckpt)  # refuses another architecture's checkpoint
    images, labels = torch_check.load_mnist_test(args.data, net)
    ours = torch_check.evaluate(model, net, images[:CHECK_IMAGES], labels[:CHECK_IMAGES])
    diff = abs(kiln["loss"] - ours["loss"])
    ok = kiln["images"] == ours["images"] and kiln["correct"] == ours["correct"] and diff <= LOSS_TOLERANCE
    print(f"{name}: check on {ours['images']} test images: Kiln {kiln['correct']} correct, loss "
          f"{kiln['loss']:.6f}; PyTorch {ours['correct']} correct, loss {ours['loss']:.6f}; "
          f"|loss difference| {diff:.1e} -> {'OK' if ok else 'MISMATCH'}")
    return ok, {"images": ours["images"], "kiln_correct": kiln["correct"], "kiln_loss": kiln["loss"],
                "torch_correct": ours["correct"], "torch_loss": ours["loss"],
                "loss_difference": diff, "ok": ok}


def median_seconds(call, repeats, warmup=5):
    for _ in range(warmup):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_optimizer(model, train):
    """The optimizer `kiln bench` steps with (runtime/training/optimizer.h: PyTorch's update rules), at lr 1e-6."""
    kind, decay = train["optimizer"], train["weight_decay"]
    betas = (train["beta1"], train["beta2"])
    if kind == "adam":
        return torch.optim.Adam(model.parameters(), lr=1e-6, betas=betas, eps=train["epsilon"], weight_decay=decay)
    if kind == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=1e-6, betas=betas, eps=train["epsilon"], weight_decay=decay)
    if kind == "rmsprop":
        return torch.optim.RMSprop(model.parameters(), lr=1e-6, alpha=train["alpha"], eps=train["epsilon"],
                                   momentum=train["momentum"], weight_decay=decay)
    return torch.optim.SGD(model.parameters(), lr=1e-6, momentum=train["momentum"], nesterov=train["nesterov"],
                           weight_decay=decay)


def torch_bench(args, net):
    train = net["train"]  # Kiln's [train] settings, every default filled in
    i = net["input"]
    shape = (i["channels"], i["height"], i["width"])
    model = torch_check.build_model(net)
    # As `kiln bench`: the [train] table's optimizer at a tiny rate (the weights stay sane).
    sgd = torch_optimizer(model, train)
    x = torch.rand(args.batch, *shape)
    y = torch.arange(args.batch) % i["classes"]

    def step():
        sgd.zero_grad()
        F.cross_entropy(model(x), y).backward()
        sgd.step()

    model.train()
    train_s = median_seconds(step, args.repeats)
    model.eval()
    xi, x1 = torch.rand(args.infer_batch, *shape), torch.rand(1, *shape)
    with torch.inference_mode():
        infer_s = median_seconds(lambda: model(xi), args.repeats)
        latency_s = median_seconds(lambda: model(x1), 10 * args.repeats, warmup=20)
    return {"train_images_per_s": args.batch / train_s, "infer_images_per_s": args.infer_batch / infer_s,
            "latency_us_batch1": latency_s * 1e6}


def default_kiln():
    """build/kiln (where the build puts it), else build/runtime/kiln (where older builds did)."""
    for path in (os.path.join(REPO, "build", "kiln"), os.path.join(REPO, "build", "runtime", "kiln")):
        if os.access(path, os.X_OK):
            return path
    return os.path.join(REPO, "build", "kiln")


def measure_peak(threads):
    """GFLOP/s of bench/peak.c (register-only FMA chains) on `threads` threads, or None without a C compiler."""
    with tempfile.TemporaryDirectory(prefix="kiln-peak-") as d:
        exe = os.path.join(d, "peak")
        try:
            subprocess.run(["cc", "-O2", "-march=native", "-ffp-contract=fast", os.path.join(REPO, "bench", "peak.c"),
                            "-o", exe, "-lpthread"], check=True, capture_output=True, text=True)
            p = subprocess.run([exe, str(threads)], check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as e:
            print(f"compare: warning: could not measure the peak ({e}); pass --peak-gflops for % of peak",
                  file=sys.stderr)
            return None
        return float(p.stdout.strip())


def machine(threads):
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "threads": threads,
            "python": platform.python_version(), "torch_malloc": os.environ.get("LD_PRELOAD", "") or "glibc"}


MEASURES = ("train_images_per_s", "infer_images_per_s", "latency_us_batch1", "train_gflops", "infer_gflops")


def speedup(measure, kiln, torch):
    """Above 1: Kiln is faster (throughput Kiln/PyTorch, latency PyTorch/Kiln)."""
    return torch / kiln if measure.startswith("latency") else kiln / torch


def summarize(network, check, rounds):
    """The median over the rounds of each side's figures and of each ratio."""
    kiln = {m: statistics.median(r["kiln"][m] for r in rounds) for m in MEASURES}
    torch_ = {m: statistics.median(r["torch"][m] for r in rounds) for m in MEASURES}
    ratios = {m: [speedup(m, r["kiln"][m], r["torch"][m]) for r in rounds] for m in MEASURES}
    return {"network": network, "check": check, "kiln": kiln, "torch": torch_, "rounds": rounds,
            "speedup": {m: statistics.median(v) for m, v in ratios.items()},
            "speedup_min": {m: min(v) for m, v in ratios.items()},
            "speedup_max": {m: max(v) for m, v in ratios.items()}}


def table(results, peak):
    rows = []
    labels = {"train_images_per_s": ("train images/s", "{:.0f}"), "infer_images_per_s": ("infer images/s", "{:.0f}"),
              "latency_us_batch1": ("batch-1 latency µs", "{:.1f}"), "train_gflops": ("train GFLOP/s", "{:.2f}"),
              "infer_gflops": ("infer GFLOP/s", "{:.2f}")}
    for r in results:
        k, t = r["kiln"], r["torch"]
        for m in MEASURES:
            label, fmt = labels[m]
            rows.append([r["network"], label, fmt.format(k[m]), fmt.format(t[m]), f"{r['speedup'][m]:.2f}",
                         f"{r['speedup_min'][m]:.2f}-{r['speedup_max'][m]:.2f}"])
            if peak and "GFLOP/s" in label:
                rows.append([r["network"], label.replace("GFLOP/s", "% of peak"), f"{100 * k[m] / peak:.1f}",
                             f"{100 * t[m] / peak:.1f}", "", ""])
    head = ["network", "measure", "Kiln", "PyTorch", "speedup", "rounds"]
    widths = [max(len(x) for x in col) for col in zip(head, *rows)]
    line = lambda cells: "  ".join(c.ljust(w) if j < 2 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths)))
    print(line(head))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    print("speedup: Kiln/PyTorch for throughput, PyTorch/Kiln for latency: above 1 means Kiln is faster;")
    print("figures and speedup are medians over the rounds, `rounds` the lowest and highest round's speedup.")
    if peak:
        print("GFLOP/s and % of peak count the direct method's FLOPs: a network whose schedule runs 3x3 layers by")
        print("Winograd (conv_algorithm) does fewer multiplies, so its figure can pass 100% of the FMA peak.")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("networks", nargs="*", metavar="NETWORK",
                    default=[os.path.basename(f)[:-5] for f in sorted(glob.glob(os.path.join(REPO, "networks", "*.toml")))])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64, help="images per training step")
    ap.add_argument("--infer-batch", type=int, default=256, help="images per inference call")
    ap.add_argument("--repeats", type=int, default=30, help="timed repetitions (batch-1 latency: 10x)")
    ap.add_argument("--rounds", type=int, default=3, help="turns of Kiln then PyTorch, per network")
    ap.add_argument("--kiln", default=default_kiln(), help="the kiln binary (default: build/kiln)")
    ap.add_argument("--data", default=os.environ.get("KILN_DATA") or os.path.join(REPO, "data", "mnist"),
                    help="MNIST folder for the correctness check")
    ap.add_argument("--peak-gflops", type=float,
                    help="the machine's peak GFLOP/s at --threads (default: measured by bench/peak.c)")
    ap.add_argument("--torch-malloc", choices=["tcmalloc", "glibc"], default="tcmalloc",
                    help="PyTorch's allocator: tcmalloc preloaded (its recommended set-up, the default) or glibc's")
    ap.add_argument("--json", metavar="FILE", help="write all numbers to FILE")
    args = ap.parse_args()
    if min(args.threads, args.batch, args.infer_batch, args.repeats, args.rounds) < 1:
        fail("--threads, --batch, --infer-batch, --repeats and --rounds must be positive")
    if not os.access(args.kiln, os.X_OK):
        fail(f"{args.kiln}: not an executable (build it: ninja -C build kiln)")
    torch.set_num_threads(args.threads)

    info = machine(args.threads)
    print(f"machine: {info['cpu']}, {info['cores']} cores; PyTorch {info['torch']}; {args.threads} threads; "
          f"batch {args.batch}, inference batch {args.infer_batch}, {args.repeats} repeats, {args.rounds} rounds")
    print(f"PyTorch set-up: {torch_setup(args)}")
    print(f"Kiln set-up: {args.kiln} bench --threads {args.threads} (its own allocator settings, no LD_PRELOAD)")
    if args.peak_gflops is None:
        args.peak_gflops = measure_peak(args.threads)
        if args.peak_gflops:
            print(f"peak: {args.peak_gflops:.1f} GFLOP/s measured (bench/peak.c: FMA chains in vector registers, "
                  f"{args.threads} threads)")
    results, all_ok = [], True
    for name in args.networks:
        try:
            net = torch_check.load_network(network_file(name, args.kiln), args.kiln)
            ok, chk = check(args, name, net)
        except torch_check.CheckError as e:
            fail(torch_check.one_line(e))
        all_ok = all_ok and ok
        rounds = []
        for i in range(args.rounds):
            kiln = run_json([args.kiln, "bench", name, "--threads", str(args.threads), "--batch", str(args.batch),
                             "--infer-batch", str(args.infer_batch), "--repeats", str(args.repeats), "--json"])
            torch_ = torch_bench(args, net)
            torch_["train_gflops"] = torch_["train_images_per_s"] * kiln["train_gflops"] / kiln["train_images_per_s"]
            torch_["infer_gflops"] = torch_["infer_images_per_s"] * kiln["infer_gflops"] / kiln["infer_images_per_s"]
            rounds.append({"kiln": kiln, "torch": torch_})
            print(f"{name}: round {i + 1}: Kiln self-check: forward and training scores differ by at most "
                  f"{kiln['self_check_max_score_difference']:.1e}; training speedup "
                  f"{speedup('train_images_per_s', kiln['train_images_per_s'], torch_['train_images_per_s']):.2f}, "
                  f"inference {speedup('infer_images_per_s', kiln['infer_images_per_s'], torch_['infer_images_per_s']):.2f}")
        results.append(summarize(name, chk, rounds))

    print()
    table(results, args.peak_gflops)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": info, "settings": {k: v for k, v in vars(args).items() if k != "networks"},
                       "results": results, "check_ok": all_ok}, f, indent=2)
            f.write("\n")
    if not all_ok:
        print("compare: error: Kiln and PyTorch disagree (see the check lines above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
