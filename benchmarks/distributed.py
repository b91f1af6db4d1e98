"""Data-parallel throughput of the Trainer: 1 vs 2 (vs more, where cores allow) processes.

Run: ``python -m benchmarks.distributed [--worlds 1,2] [--repeats 3] [--steps 40]``. Each world
size trains the same LSTM regression (T=24, I=H=64, global batch 64) for ``--steps`` optimizer
steps through ``lstmkit.train.Trainer`` in processes started by
``lstmkit.train.distributed.spawn`` (gloo on loopback, 1 torch thread each), timed from the
first step to the last (process start and imports excluded), median of ``--repeats`` launches.
Prints a markdown table (examples/s, speed-up over 1 process, efficiency) and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile

from lstmkit.train import _ddp_cases as cases
from lstmkit.train.distributed import spawn


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--worlds", default="1,2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--T", type=int, default=24)
    ap.add_argument("--H", type=int, default=64)
    a = ap.parse_args(argv)
    worlds = [int(w) for w in a.worlds.split(",")]
    load0 = os.getloadavg()[0]
    rates: dict[int, list[float]] = {w: [] for w in worlds}
    for _ in range(a.repeats):
        for w in worlds:  # alternated, so load drifts hit every world size alike
            with tempfile.TemporaryDirectory() as d:
                spawn(cases.throughput, w, d, a.steps, a.batch, a.T, a.H, timeout=600)
                rates[w].append(float(open(os.path.join(d, "rate.txt")).read().split()[0]))
    base = statistics.median(rates[worlds[0]])
    print(f"T={a.T} I=H={a.H} global batch {a.batch}, {a.steps} steps, 1 thread per process, "
          f"{os.cpu_count()} cores, load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end\n")
    print("| processes | examples/s (median) | runs | speed-up | efficiency |")
    print("|---|---|---|---|---|")
    for w in worlds:
        r = statistics.median(rates[w])
        runs = ", ".join(f"{v:.0f}" for v in rates[w])
        print(f"| {w} | {r:.0f} | {runs} | {r / base:.2f}x | {r / base / w:.0%} |")


if __name__ == "__main__":
    main()
