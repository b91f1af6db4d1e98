"""Forecasting benchmark: lstmkit's forecaster against naive, seasonal naive, ETS, ARIMA and
Theta on real series shipped by installed packages, plus one many-series collection (M1 yearly,
one global LSTM across its 181 series).

Run: ``python -m benchmarks.forecast [--only NAME ...] [--epochs N]``. Every series goes through
``lstmkit.jobs.forecast.train`` with its defaults (season, sizes, search, ensemble chosen from the
data), only the horizon and the test size fixed per series (the field's usual choices). Prints
MAE, RMSE, MASE and sMAPE per series and model, the geometric mean of MASE relative to seasonal
naive, the mean rank, the number of first places and the LSTM's 80% interval coverage, as
markdown (benchmarks/README.md holds a measured copy). The sunspot series is not in the suite:
it is kept as the unseen check of issue 9.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np
import torch

from lstmkit.data import datasets
from lstmkit.jobs.forecast import ForecastConfig, train

MODELS = ("lstm", "naive", "seasonal_naive", "ets", "arima", "theta")

# name, target, time column, covariates, horizon, test size
SUITE = [
    ("nile", "volume", "year", [], 3, 20),
    ("macro_realgdp", "realgdp", "quarter", [], 4, 24),
    ("elnino", "temperature", "month", [], 12, 60),
    ("elec_equip", "orders", "date", [], 12, 36),
    ("fertility_japan", "fertility", "year", [], 3, 10),
    ("elecdemand_daily", "demand", "date", ["temp_max"], 7, 56),
    ("visnights_nswmetro", "nights", "quarter", [], 4, 16),
    ("us_employment_private", "employed", "month", [], 12, 48),
    ("taylor_hourly", "demand", "hour", [], 24, 168),
    ("wineind", "sales", "month", [], 12, 24),
    ("woolyrnq", "tonnes", "quarter", [], 4, 16),
]
COLLECTION = ("m1_yearly", "value", "year", "series", 6)


def run_one(name, target, time_col, covariates, horizon, test_size, out, epochs, id_col=None):
    cfg = ForecastConfig(target=target, time=time_col, covariates=covariates, id=id_col,
                         horizon=horizon, test_size=test_size, epochs=epochs, no_progress=True,
                         out=os.path.join(out, name), eval_stride=4 if name == "taylor_hourly" else 1)
    logs = []
    t0 = time.perf_counter()
    res = train(cfg, data=datasets.load(name), echo=lambda *_: None, log=logs.append)
    secs = time.perf_counter() - t0
    print(f"  {name}: {res.choices['model']}, season {res.config.season}, input {res.config.input_len}, "
          f"{secs:.0f} s", file=sys.stderr)
    return res, secs


def table(rows: dict) -> str:
    """rows: series -> (metrics {model: {...}}, seconds, choices) -> markdown."""
    out = ["| series | model | MAE | RMSE | MASE | sMAPE% | rank |", "|---|---|---|---|---|---|---|"]
    for name, (m, _, _) in rows.items():
        order = sorted(MODELS, key=lambda k: m[k]["mase"])
        for k in MODELS:
            star = "**" if order[0] == k else ""
            out.append(f"| {name if k == 'lstm' else ''} | {k} | {m[k]['mae']:.4g} | {m[k]['rmse']:.4g} | "
                       f"{star}{m[k]['mase']:.3f}{star} | {m[k]['smape']:.2f} | {order.index(k) + 1} |")
    return "\n".join(out)


def summary(rows: dict) -> str:
    rel = {k: [] for k in MODELS}
    ranks = {k: [] for k in MODELS}
    firsts = {k: 0 for k in MODELS}
    for m, _, _ in rows.values():
        order = sorted(MODELS, key=lambda k: m[k]["mase"])
        firsts[order[0]] += 1
        for k in MODELS:
            rel[k].append(m[k]["mase"] / m["seasonal_naive"]["mase"])
            ranks[k].append(order.index(k) + 1)
    out = ["| model | geo-mean relative MASE | mean rank | first places |", "|---|---|---|---|"]
    for k in MODELS:
        gm = float(np.exp(np.mean(np.log(rel[k]))))
        out.append(f"| {k} | {gm:.3f} | {np.mean(ranks[k]):.2f} | {firsts[k]} of {len(rows)} |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", help="run only these series (names as in the suite)")
    ap.add_argument("--epochs", type=int, default=30, help="max epochs per training (default 30)")
    ap.add_argument("--no-collection", action="store_true", help="skip M1 yearly")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    out = tempfile.mkdtemp(prefix="lstmkit-bench-forecast-")
    rows, t_all = {}, time.perf_counter()
    for name, target, tcol, cov, h, test in SUITE:
        if args.only and name not in args.only:
            continue
        res, secs = run_one(name, target, tcol, cov, h, test, out, args.epochs)
        rows[name] = (res.metrics, secs, res)
    coll = None
    if not args.no_collection and (not args.only or COLLECTION[0] in args.only):
        name, target, tcol, id_col, h = COLLECTION
        res, secs = run_one(name, target, tcol, [], h, None, out, args.epochs, id_col=id_col)
        coll = (res.metrics, secs, res)
    wall = time.perf_counter() - t_all
    print(f"## Forecasting suite ({len(rows)} series)\n")
    print(table(rows))
    print()
    if rows:
        print(summary(rows))
        cov = [r.metrics["lstm"].get("coverage_80", float("nan")) for _, _, r in rows.values()]
        print("\nLSTM 80% interval coverage per series: " +
              ", ".join(f"{n} {c:.2f}" for n, c in zip(rows, cov)) + f"; mean {np.nanmean(cov):.3f}")
        print("\nchoices: " + "; ".join(f"{n}: {r.choices['model']}, m={r.config.season}, "
                                        f"{s:.0f} s" for n, (_, s, r) in rows.items()))
    if coll is not None:
        m, secs, res = coll
        print(f"\n## M1 yearly: {res.choices['n_series']} series, one global LSTM "
              f"({res.choices['model']}), mean over series, {secs:.0f} s\n")
        print("| model | sMAPE% | MASE | MAE |\n|---|---|---|---|")
        for k in MODELS:
            print(f"| {k} | {m[k]['smape']:.2f} | {m[k]['mase']:.3f} | {m[k]['mae']:.4g} |")
        print(f"\nglobal LSTM 80% interval coverage: {m['lstm'].get('coverage_80', float('nan')):.3f}")
    print(f"\nwall time {wall:.0f} s (python -m benchmarks.forecast, one thread)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
