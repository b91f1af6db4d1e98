"""Why ``engine="auto"`` sends projected LSTMs to the fused kernel: torch has no oneDNN path
for ``proj_size`` (it warns and runs its default implementation).

    python -m benchmarks.proj

Forward+backward of ``lk.LSTM(256, 256, proj_size=128)`` at T=50, B=16, median of 7 rounds of 5.
"""

from __future__ import annotations

import statistics
import time
import warnings

import torch

import lstmkit as lk


def main() -> None:
    warnings.simplefilter("ignore")  # torch's "projections not supported with oneDNN"
    torch.set_num_threads(2)
    torch.manual_seed(0)
    x = torch.randn(50, 16, 256)
    times: dict[str, list[float]] = {"vendor": [], "fused": []}
    layers = {e: lk.LSTM(256, 256, proj_size=128, engine=e) for e in times}
    for _ in range(7):
        for engine, m in layers.items():  # alternated round by round
            t0 = time.perf_counter()
            for _ in range(5):
                y, _ = m(x)
                y.sum().backward()
            times[engine].append((time.perf_counter() - t0) / 5 * 1e3)
    for engine, ts in times.items():
        print(f"{engine}: {statistics.median(ts):.1f} ms")


if __name__ == "__main__":
    main()
