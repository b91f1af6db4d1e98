"""Per-call cost of one streaming step through the public cells (no autograd), B=1, H=256.

    python -m benchmarks.cells

Median over 7 rounds of 2000 calls each (after 200 warm-up calls), 2 threads, engines
interleaved round by round.
"""

from __future__ import annotations

import statistics
import time

import torch

import lstmkit as lk


def per_call_us(cell, x, hx, n: int = 2000) -> float:
    with torch.no_grad():
        for _ in range(200):
            cell(x, hx)
        t0 = time.perf_counter()
        for _ in range(n):
            cell(x, hx)
        return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    torch.set_num_threads(2)
    torch.set_flush_denormal(True)
    torch.manual_seed(0)
    B, H = 1, 256
    cells = {
        "torch.nn.LSTMCell": torch.nn.LSTMCell(H, H),
        "lk.LSTMCell (auto: torch's step)": lk.LSTMCell(H, H),
        "lk.LSTMCell(peephole) reference": lk.LSTMCell(H, H, peephole=True, engine="reference"),
        "lk.LSTMCell(peephole) auto (fused step)": lk.LSTMCell(H, H, peephole=True),
    }
    x, hx = torch.randn(B, H), (torch.randn(B, H), torch.randn(B, H))
    times: dict[str, list[float]] = {k: [] for k in cells}
    for _ in range(7):
        for name, cell in cells.items():
            times[name].append(per_call_us(cell, x, hx))
    base = statistics.median(times["torch.nn.LSTMCell"])
    print("| cell | µs per call | ratio to torch.nn.LSTMCell |\n|---|---|---|")
    for name, ts in times.items():
        m = statistics.median(ts)
        print(f"| {name} | {m:.1f} | {m / base:.2f} |")


if __name__ == "__main__":
    main()
