"""What the forecasting job writes and prints: its table, ``forecast.png`` and the run's files.

Symbols: h horizon, W forecast origins, Q quantiles.

>>> print(format_table({"lstm": dict(mae=1.0, rmse=2.0, smape=3.0, mase=0.5)}, "title"))
title
model                  MAE      RMSE   sMAPE%     MASE
lstm                     1         2    3.000   0.5000
"""

from __future__ import annotations

import json
import os

import numpy as np

from ..train.checkpoint import atomic_write, save_checkpoint


def write(res, models, parts: list, trainers) -> None:
    """``config.json``, ``metrics.json``, ``model.pt`` and ``forecast.png`` into ``res.out``
    (``res``: a ``jobs.forecast.Result``; ``parts``: its ``Part`` per series. Untyped here: this
    module sits below ``jobs.forecast`` and does not import it)."""
    cfg, out = res.config, res.out
    atomic_write(os.path.join(out, "config.json"),
                 lambda p: open(p, "w").write(json.dumps(cfg.to_dict(), indent=2) + "\n"))
    report = {**res.metrics, "setup": dict(res.choices, search=res.search,
                                           epochs_run=[t.epoch for t in trainers])}
    if len(res.per_series) > 1:
        report["per_series"] = res.per_series
    atomic_write(os.path.join(out, "metrics.json"),
                 lambda p: open(p, "w").write(json.dumps(report, indent=2, default=float) + "\n"))
    scalers = {p.series.name: {**p.prep.scaler.state_dict(), "sdiff": p.prep.sdiff_stats} for p in parts}
    save_checkpoint(os.path.join(out, "model.pt"), kind="forecaster",
                    models=[m.state_dict() for m in models],
                    interval_scale=float(res.choices["interval_scale"]),  # unrounded, as the run used it
                    model_config=models[0].config, forecast_config=cfg.to_dict(), scalers=scalers,
                    metrics=res.metrics)
    plot(os.path.join(out, "forecast.png"), res, parts)


def format_table(metrics: dict, title: str = "") -> str:
    lines = [title] if title else []
    has_q = any("coverage_80" in m for m in metrics.values())
    lines.append(f"{'model':<16}{'MAE':>10}{'RMSE':>10}{'sMAPE%':>9}{'MASE':>9}" +
                 (f"{'cover80':>9}{'CRPS':>10}" if has_q else ""))
    for name, m in metrics.items():
        row = f"{name:<16}{m['mae']:>10.4g}{m['rmse']:>10.4g}{m['smape']:>9.3f}{m['mase']:>9.4f}"
        if has_q:
            row += (f"{m['coverage_80']:>9.2f}{m['crps']:>10.4g}" if "coverage_80" in m else
                    f"{'':>9}{'':>10}")
        lines.append(row)
    return "\n".join(lines)


def plot(path: str, res, parts: list, max_panels: int = 4) -> None:
    """Rolling h-step-ahead forecasts over the test split, with the LSTM's outer quantile band
    shaded; one panel per series (the first ``max_panels``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cfg, h = res.config, res.config.horizon
    shown = [p for p in parts if p.series.name in res.forecasts][:max_panels]
    fig, axes = plt.subplots(len(shown), 1, figsize=(10, 3.2 * len(shown) + 0.8), squeeze=False)
    for ax, p in zip(axes[:, 0], shown):
        f, prep = res.forecasts[p.series.name], p.prep
        x_all = prep.times if prep.times is not None else np.arange(prep.n)
        n_test = p.test.stop - p.test.start
        lo = max(0, p.test.start - 3 * n_test)
        ax.plot(x_all[lo:prep.n], prep.observed[lo:], color="black", lw=1.2, label="actual")
        o = f["origins"]
        single = len(o) == 1
        k = slice(None) if single else -1  # one origin: its whole path; else the h-step points
        tgt = o[0] + np.arange(1, h + 1) if single else o + h
        if "lstm_q" in f:
            q = f["lstm_q"]
            lo_q, hi_q = (q[0, :, 0], q[0, :, -1]) if single else (q[:, -1, 0], q[:, -1, -1])
            ql, qh = cfg.quantiles[0], cfg.quantiles[-1]
            ax.fill_between(x_all[tgt], lo_q, hi_q, color="tab:blue", alpha=0.25,
                            label=f"lstm {round(100 * (qh - ql))}% interval")
        for name, style in (("lstm", "-"), ("seasonal_naive", ":"), ("ets", "--"), ("arima", "-.")):
            v = f[name][0] if single else f[name][:, k]
            mase = res.per_series[p.series.name][name]["mase"]
            ax.plot(x_all[tgt], v, style, lw=1.2, label=f"{name} (MASE {mase:.3g})")
        ax.axvline(x_all[p.test.start], color="grey", lw=0.8)
        ax.set_title(f"{p.series.name}: " + (f"forecast of the last {h} steps" if single else
                                             f"rolling-origin forecasts {h} steps ahead over the test split"),
                     fontsize=10)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)
