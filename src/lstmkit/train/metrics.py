"""Forecast error metrics: MAE, RMSE, MAPE, sMAPE (percent) and MASE.

Symbols: W forecasts (origins), h horizon. Arrays may hold NaN where the actual value is
missing; those points are skipped, never scored against an imputed value.

>>> import numpy as np
>>> m = forecast_metrics(np.array([1.0, 2.0]), np.array([1.0, 4.0]), mase_scale=1.0)
>>> m["mae"], m["rmse"]
(1.0, 1.4142135623730951)
"""

from __future__ import annotations

import numpy as np


def mase_scale(train: np.ndarray, season: int = 1) -> float:
    """Mean absolute error of the in-sample seasonal naive forecast on the training series."""
    train = np.asarray(train, dtype=np.float64)
    m = season if len(train) > season else 1
    diff = np.abs(train[m:] - train[:-m])
    diff = diff[np.isfinite(diff)]
    scale = float(diff.mean()) if diff.size else float("nan")
    return scale if scale > 0 else float("nan")


def forecast_metrics(actual: np.ndarray, pred: np.ndarray, mase_scale: float) -> dict[str, float]:
    """Errors over every finite (actual, pred) pair of the two same-shape arrays."""
    actual = np.asarray(actual, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if actual.shape != pred.shape:
        raise ValueError(f"pred: expected shape {actual.shape} like actual, got {pred.shape}")
    ok = np.isfinite(actual) & np.isfinite(pred)
    if not ok.any():
        raise ValueError("actual: no finite values to score")
    a, p = actual[ok], pred[ok]
    err = p - a
    nz = np.abs(a) > 1e-12
    denom = np.abs(a) + np.abs(p)
    mae = float(np.abs(err).mean())
    return {
        "mae": mae,
        "rmse": float(np.sqrt((err ** 2).mean())),
        "mape": float(100 * np.abs(err[nz] / a[nz]).mean()) if nz.any() else float("nan"),
        "smape": float(100 * np.mean(np.where(denom > 0, 2 * np.abs(err) / np.maximum(denom, 1e-12),
                                              0.0))),
        "mase": mae / mase_scale if mase_scale and np.isfinite(mase_scale) else float("nan"),
    }
