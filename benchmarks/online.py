"""Online learning on a level shift: online (updates + replay + drift trigger) vs frozen vs
fine-tuning without replay vs retrain-from-scratch.

Run: ``python -m benchmarks.online [--seeds 0,1,2] [--out DIR]``. Two streams:

- ``shift``: an AR(1) (phi 0.7) plus a period-20 cycle of amplitude 10, 600 steps, the level
  raised by 15 at step 400 (generated from the seed); fitted on the first 200;
- ``nile``: the Nile's annual flow 1871-1970 (statsmodels; the dam at Aswan, 1898 = index 28,
  lowers the level), fitted on the first 25 points.

Prints per stream and model: MAE over the stream, before / after the change, over the first
2 rolling windows after it, the MAE of each model's final weights on the old regime (an offline
pass: forgetting), and the steps until the rolling MAE is back under 1.5x the pre-change level;
writes ``online-shift.png`` and ``online-nile.png``.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

from lstmkit.data import datasets
from lstmkit.jobs import online


def shift_series(seed: int, n: int = 600, at: int = 400) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    y = np.zeros(n)
    for t in range(1, n):
        y[t] = 0.7 * y[t - 1] + e[t]
    y += 10 * np.sin(2 * np.pi * np.arange(n) / 20)
    y[at:] += 15
    return y


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--out", default="benchmarks/out")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    load0 = os.getloadavg()[0]
    rows = []
    for seed in (int(s) for s in a.seeds.split(",")):
        y = shift_series(seed)
        r = online.run(y, online.OnlineConfig(warmup=200, change_point=400, fit_epochs=30, seed=seed))
        rows.append((f"shift seed {seed}", r))
        if seed == int(a.seeds.split(",")[0]):
            online.plot(os.path.join(a.out, "online-shift.png"), r, y,
                        f"AR(1) + cycle, level +15 at step 400 (seed {seed})")
    nile = datasets.load("nile")["volume"].to_numpy(dtype=float)
    r = online.run(nile, online.OnlineConfig(warmup=25, change_point=28, rolling=10, seed=0))
    rows.append(("nile", r))
    online.plot(os.path.join(a.out, "online-nile.png"), r, nile, "Nile flow 1871-1970 (Aswan dam 1898)")
    print(f"load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end\n")
    print("| stream | model | MAE | before | after | first 2 windows after | old regime (final weights) "
          "| recovery (steps) | drift alarms |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        for m in r["mae"]:
            rec = r["recovery_steps"][m]
            al = r["alarms"].get(m, "")
            print(f"| {name} | {m} | {r['mae'][m]:.3g} | {r['mae_before'][m]:.3g} | "
                  f"{r['mae_after'][m]:.3g} | {r['mae_first_after'][m]:.3g} | "
                  f"{r['old_regime_mae'][m]:.3g} | {'never' if rec is None else rec} | {al} |")


if __name__ == "__main__":
    main()
