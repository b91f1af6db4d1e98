"""Sliding windows over a (multivariate) series, and back.

Symbols: N time points, F features, T input length, h horizon, W number of windows.

A window with origin ``t`` (the last input index) has inputs ``series[t-T+1 : t+1]`` and
targets ``target[t+1 : t+h+1]``: a forecast made at ``t`` only sees data up to ``t``.

>>> import numpy as np
>>> s = np.arange(10.0)[:, None]
>>> x, y, origins = make_windows(s, s[:, 0], input_len=3, horizon=2, stride=2)
>>> x[0, :, 0].tolist(), y[0].tolist(), origins.tolist()
([0.0, 1.0, 2.0], [3.0, 4.0], [2, 4, 6])
>>> np.array_equal(windows_to_series(x, stride=2), s[:7])
True
"""

from __future__ import annotations

import numpy as np


def window_origins(n: int, input_len: int, horizon: int, stride: int = 1,
                   first: int | None = None, last: int | None = None) -> np.ndarray:
    """Origins t with a full input window and full targets, in [first, last] (inclusive)."""
    for name, v, lo in (("input_len", input_len, 1), ("horizon", horizon, 1), ("stride", stride, 1)):
        if not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name}: expected an int >= {lo}, got {v!r}")
    lo = input_len - 1 if first is None else max(first, input_len - 1)
    hi = n - 1 - horizon if last is None else min(last, n - 1 - horizon)
    return np.arange(lo, hi + 1, stride, dtype=np.int64)


def make_windows(series: np.ndarray, target: np.ndarray, input_len: int, horizon: int,
                 stride: int = 1, origins: np.ndarray | None = None):
    """series (N, F), target (N,) -> x (W, T, F), y (W, h), origins (W,)."""
    series = np.asarray(series)
    if series.ndim != 2:
        raise ValueError(f"series: expected (N, F), got shape {series.shape}")
    n = series.shape[0]
    if n < input_len + horizon:
        raise ValueError(f"series: {n} points is shorter than input_len + horizon = "
                         f"{input_len} + {horizon}")
    if origins is None:
        origins = window_origins(n, input_len, horizon, stride)
    back = np.arange(-input_len + 1, 1)  # (T,)
    ahead = np.arange(1, horizon + 1)  # (h,)
    x = series[origins[:, None] + back]  # (W, T, F)
    y = np.asarray(target)[origins[:, None] + ahead]  # (W, h)
    return x, y, origins


def windows_to_series(x: np.ndarray, stride: int = 1) -> np.ndarray:
    """Inverse of the input windowing: x (W, T, F) taken with ``stride`` <= T -> the covered series."""
    W, T = x.shape[:2]
    if stride > T:
        raise ValueError(f"stride: expected <= input_len {T} to cover the series, got {stride}")
    out = np.empty(((W - 1) * stride + T,) + x.shape[2:], dtype=x.dtype)
    for w in range(W):
        out[w * stride:w * stride + T] = x[w]
    return out
