"""The forecasting baselines a practitioner tries first, from statsmodels, on rolling origins.

Symbols: N time points, W forecast origins, h horizon, m seasonal period.

Every function takes the series' levels (N,), the end of the fitting data ``fit_end``, the
origins (W,) and the horizon, and returns (W, h) forecasts that use only data up to each
origin: naive, seasonal naive, ETS (Holt-Winters, damped trend, chosen by AIC), ARIMA (the order
chosen the way auto.arima does, on a small grid) and Theta. statsmodels' state-space filters
run on one BLAS thread (:mod:`lstmkit._threads`).

>>> import numpy as np
>>> y = np.arange(10.0)
>>> naive_forecast(y, np.array([4, 6]), 2).tolist()
[[4.0, 4.0], [6.0, 6.0]]
>>> seasonal_naive_forecast(y, np.array([4]), 3, season=2).tolist()
[[3.0, 4.0, 3.0]]
"""

from __future__ import annotations

import warnings

import numpy as np

from .._threads import blas_threads
from ..data.season import seasonal_naive_index


def naive_forecast(level: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Last value repeated: (W, h)."""
    return np.repeat(level[origins][:, None], horizon, axis=1)


def seasonal_naive_forecast(level: np.ndarray, origins: np.ndarray, horizon: int,
                            season: int) -> np.ndarray:
    """The value one season before each target step (only data up to the origin): (W, h)."""
    return level[seasonal_naive_index(origins, horizon, season)]


def _ets_model(y: np.ndarray, season: int):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "add" if 1 < season and len(y) >= 2 * season + 2 else None
    trend = "add" if len(y) >= 10 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ExponentialSmoothing(y, trend=trend, seasonal=seasonal,
                                    seasonal_periods=season if seasonal else None,
                                    initialization_method="estimated").fit(), seasonal, trend


def ets_forecast(level: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int,
                 season: int) -> np.ndarray:
    """statsmodels Holt-Winters (additive trend [+ additive season]) fitted on ``level[:fit_end]``;
    its fitted parameters then run the same recursions forward in one causal pass, so the
    forecast at origin t uses data up to t only. This equals statsmodels' own forecast from a
    model with those parameters fixed, fitted on ``level[:t+1]`` (tested to 1e-8)."""
    res, seasonal, trend = _ets_model(level[:fit_end], season)
    p = res.params
    a = p["smoothing_level"]
    b = p["smoothing_trend"] if trend else 0.0
    m = season if seasonal else 1
    g = p["smoothing_seasonal"] if seasonal else 0.0
    s = list(p["initial_seasons"]) if seasonal else [0.0]
    lv, tr = p["initial_level"], (p["initial_trend"] if trend else 0.0)
    want = {int(o): i for i, o in enumerate(origins)}
    out = np.empty((len(origins), horizon))
    k = np.arange(1, horizon + 1)
    for t in range(int(origins.max()) + 1):
        sm = s[t] if seasonal else 0.0
        new_l = a * (level[t] - sm) + (1 - a) * (lv + tr)
        new_b = b * (new_l - lv) + (1 - b) * tr if trend else 0.0
        s.append(g * (level[t] - lv - tr) + (1 - g) * sm if seasonal else 0.0)
        lv, tr = new_l, new_b
        if t in want:
            seas = np.array([s[t + 1 + (kk - 1) % m] for kk in k]) if seasonal else 0.0
            out[want[t]] = lv + k * tr + seas
    return out


def _fourier(n0: int, n: int, m: int, k: int) -> np.ndarray:
    t = np.arange(n0, n0 + n)[:, None] * np.arange(1, k + 1)[None, :]  # (n, k)
    return np.column_stack([np.sin(2 * np.pi * t / m), np.cos(2 * np.pi * t / m)])


def seasonal_strength(y: np.ndarray, season: int) -> float:
    """Hyndman's strength of seasonality from statsmodels' STL: max(0, 1 - var(R) / var(S + R))."""
    from statsmodels.tsa.seasonal import STL

    r = STL(np.asarray(y, dtype=np.float64), period=season, robust=True).fit()
    v = np.var(r.seasonal + r.resid)
    return float(max(0.0, 1.0 - np.var(r.resid) / v)) if v > 0 else 0.0


def arima_order(y: np.ndarray, season: int) -> dict:
    """ARIMA order the way auto.arima decides it, on a small grid: d from the KPSS test; for
    seasons up to 24 a seasonal difference with a seasonal MA(1) (the airline model's seasonal
    part) where STL's seasonal strength is >= 0.64, for longer seasons 3 Fourier harmonics as
    regressors; then (p, q) by AIC over (0,0) (1,0) (0,1) (1,1) (2,0) (0,2)."""

    with blas_threads(1):
        return _arima_order(y, season)


def _arima_order(y: np.ndarray, season: int) -> dict:
    from statsmodels.tsa.statespace.sarimax import SARIMAX
    from statsmodels.tsa.stattools import kpss

    d, x = 0, np.asarray(y, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while d < 2 and len(x) > 10 and np.std(x) > 0 and kpss(x, regression="c", nlags="auto")[1] < 0.05:
            x, d = np.diff(x), d + 1
    so, fourier = (0, 0, 0, 0), 0
    if 1 < season <= 24 and len(y) >= 3 * season + 2 and seasonal_strength(y, season) >= 0.64:
        so = (0, 1, 1, season)
    elif season > 24 and len(y) >= 2 * season:
        fourier = min(3, season // 2)
    exog = _fourier(0, len(y), season, fourier) if fourier else None
    trend = "c" if d == 0 and so[1] == 0 else ("t" if d + so[1] == 1 and len(y) > 20 else "n")
    best = None
    for p, q in [(0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (0, 2)]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                r = SARIMAX(y, exog=exog, order=(p, d, q), seasonal_order=so, trend=trend).fit(disp=False)
        except (np.linalg.LinAlgError, ValueError):
            continue
        if np.isfinite(r.aic) and (best is None or r.aic < best[0]):
            best = (r.aic, (p, d, q), r.params)
    if best is None:
        return dict(order=(0, 1, 0), seasonal_order=(0, 0, 0, 0), trend="n", fourier=0, params=None)
    return dict(order=best[1], seasonal_order=so, trend=trend, fourier=fourier, params=best[2])


def arima_forecast(level: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int,
                   season: int) -> np.ndarray:
    """ARIMA chosen by AIC and fitted on ``level[:fit_end]``; its parameters then filter the
    series and every origin's forecast conditions on data up to it only (dynamic prediction)."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    spec = arima_order(level[:fit_end], season)
    n = int(origins.max()) + horizon + 1
    f = spec["fourier"]
    exog = _fourier(0, n, season, f) if f else None
    y = np.concatenate([level[:min(n, len(level))], np.full(max(0, n - len(level)), np.nan)])
    y[int(origins.max()) + 1:] = np.nan  # never condition on anything after the last origin
    with warnings.catch_warnings(), blas_threads(1):
        warnings.simplefilter("ignore")
        mod = SARIMAX(y, exog=exog, order=spec["order"], seasonal_order=spec["seasonal_order"],
                      trend=spec["trend"])
        params = spec["params"] if spec["params"] is not None else mod.start_params
        res = mod.filter(params)
        out = np.empty((len(origins), horizon))
        for i, t in enumerate(origins):
            out[i] = res.predict(start=int(t) + 1, end=int(t) + horizon, dynamic=True)
    # an explosive fit (short series, d = 2) can leave any plausible range: fall back to the
    # random walk with drift (ARIMA(0,1,0) + drift) at those origins, as forecasting tools do
    span = float(np.ptp(level[:fit_end])) or 1.0
    bad = ~np.isfinite(out).all(axis=1) | (np.abs(out - level[origins][:, None]).max(axis=1) > 10 * span)
    if bad.any():
        drift = (level[fit_end - 1] - level[0]) / max(fit_end - 1, 1)
        out[bad] = level[origins[bad]][:, None] + drift * np.arange(1, horizon + 1)
    return out


def theta_forecast(level: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int,
                   season: int) -> np.ndarray:
    """statsmodels' Theta method (Assimakopoulos & Nikolopoulos), deseasonalised when m > 1,
    refitted at every origin on the data up to it (it is cheap: an OLS line and an SES)."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    out = np.empty((len(origins), horizon))
    for i, t in enumerate(origins):
        y = level[:int(t) + 1]
        period = season if season > 1 and len(y) >= 2 * season else 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                r = ThetaModel(y, period=period, deseasonalize=period > 1, method="additive"
                               if np.any(y <= 0) else "auto").fit()
                out[i] = np.asarray(r.forecast(horizon))
            except (ValueError, np.linalg.LinAlgError):
                out[i] = y[-1]
    return out


def baseline_forecasts(level: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int,
                       season: int) -> dict[str, np.ndarray]:
    """Every baseline's (W, h) forecasts; ETS/ARIMA fitted on ``level[:fit_end]`` (train + val)."""
    return {
        "naive": naive_forecast(level, origins, horizon),
        "seasonal_naive": seasonal_naive_forecast(level, origins, horizon, season),
        "ets": ets_forecast(level, fit_end, origins, horizon, season),
        "arima": arima_forecast(level, fit_end, origins, horizon, season),
        "theta": theta_forecast(level, fit_end, origins, horizon, season),
    }
