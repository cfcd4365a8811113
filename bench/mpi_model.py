#!/usr/bin/env python3
"""Modelled efficiency of kiln's data-parallel training on N machines.

    bench/mpi_model.py NETWORK PARAMS IMAGES_PER_S [--batch 64] [--cores 2] [--latency-us 10]

IMAGES_PER_S is one machine's training rate with a shard per core (kiln bench's
train_images_per_s); PARAMS the network's parameter count (kiln list). Per step,
with the batch cut into S = cores x N shards (one per core of every machine):
  compute  = batch / (N x IMAGES_PER_S)
  exchange = (N - 1) x (cores x 4 x PARAMS / W + latency)   kiln: every other
             machine's shards arrive whole (MPI_Allgatherv, a ring of N - 1 steps)
  allreduce= 2 (N - 1) / N x 4 x PARAMS / W + 2 (N - 1) x latency   for comparison:
             what a ring all-reduce (PyTorch DDP) moves, in no fixed order
and the efficiency is compute / (compute + exchange): the exchange follows the
compute (kiln does not overlap them). Scores and losses (a few KB) are left out.
Prints a markdown table for N = 1 .. 32 at 10 and 100 Gbit/s.
"""
import argparse


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("network")
    ap.add_argument("params", type=int)
    ap.add_argument("images_per_s", type=float)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--latency-us", type=float, default=10.0)
    a = ap.parse_args()
    vector = 4.0 * a.params  # bytes of one shard's gradient
    latency = a.latency_us * 1e-6
    print(f"| {a.network}: N machines | shards | compute ms | 10 Gbit/s: exchange ms, efficiency "
          f"(all-reduce) | 100 Gbit/s: exchange ms, efficiency (all-reduce) |")
    print("|---|---|---|---|---|")
    n = 1
    while a.cores * n <= a.batch:
        compute = a.batch / (n * a.images_per_s)
        cells = []
        for gbit in (10, 100):
            w = gbit * 1e9 / 8
            exchange = (n - 1) * (a.cores * vector / w + latency)
            allreduce = 2 * (n - 1) / n * vector / w + 2 * (n - 1) * latency
            cells.append(f"{1e3 * exchange:.2f}, {compute / (compute + exchange):.0%} "
                         f"({compute / (compute + allreduce):.0%})")
        print(f"| {n} | {a.cores * n} | {1e3 * compute:.2f} | {cells[0]} | {cells[1]} |")
        n *= 2


if __name__ == "__main__":
    main()
