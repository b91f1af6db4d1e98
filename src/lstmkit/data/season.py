"""Seasonal period from the data, and time columns that hold periods (years, quarters, months).

Symbols: N time points, m seasonal period, K lags examined.

:func:`detect_season` reads the period off the autocorrelation function (statsmodels' ``acf``)
of the series after two kinds of detrending, averaged: first differences (robust to stochastic
trends: a random walk has no spurious peaks) and the residual of a straight-line fit (which
keeps smooth cycles such as the ~11-year sunspot cycle, whose differences are noisy). The period
is the smallest lag that is a local peak of that average, whose score is within 10% of the best
peak (so 12 wins over its multiple 24, and 24 over 168 in hourly data when both are as strong),
and which is clearly above noise. A period implied by the timestamps (12 for monthly data) is
only a hint: it wins when its own score is close to the best one, never when the data show no
such cycle (seasonally adjusted series get m = 1).

>>> import numpy as np
>>> t = np.arange(300)
>>> y = 0.05 * t + np.sin(2 * np.pi * t / 11) + 0.3 * np.random.default_rng(0).normal(size=300)
>>> detect_season(y).season
11
>>> detect_season(np.random.default_rng(1).normal(size=200).cumsum()).season
1
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MIN_SCORE = 0.3  # the averaged autocorrelation a peak needs to count as a season
MIN_PROMINENCE = 0.15  # how far it must rise above the trough between half its lag and it


@dataclass(frozen=True)
class Season:
    season: int
    score: float  # averaged autocorrelation at that lag (0 when m = 1)
    reason: str  # one line for the user: why this period


def _acf(x: np.ndarray, nlags: int) -> np.ndarray:
    from statsmodels.tsa.stattools import acf

    if np.std(x) < 1e-12:
        return np.zeros(nlags + 1)
    return acf(x, nlags=nlags, fft=True)


def acf_score(y: np.ndarray, max_lag: int) -> np.ndarray:
    """Average of the ACF of the differences and of the linearly detrended levels: (max_lag + 1,)."""
    y = np.asarray(y, dtype=np.float64)
    n = len(y)
    t = np.arange(n)
    resid = y - np.polyval(np.polyfit(t, y, 1), t)
    return 0.5 * (_acf(np.diff(y), max_lag) + _acf(resid, max_lag))


def detect_season(y: np.ndarray, hint: int | None = None, max_season: int | None = None) -> Season:
    """Seasonal period of ``y`` (N,) from its autocorrelation; ``hint`` (from the timestamps) wins
    only where the data support it. NaNs are interpolated first. Needs 3 cycles to call a period."""
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(y)
    if ok.sum() < 8:
        return Season(1, 0.0, f"too short to look for a season ({int(ok.sum())} points)")
    idx = np.arange(len(y))
    y = np.interp(idx, idx[ok], y[ok])
    n = len(y)
    max_lag = min(n // 3, max_season or 10**9, 800)
    if max_lag < 2:
        return Season(1, 0.0, f"too short to look for a season ({n} points)")
    r = acf_score(y, max_lag + 1)  # one extra lag to judge the peak at max_lag
    noise = 2.5 / np.sqrt(n)
    # a peak: a local maximum, above noise, standing clear of the trough since half its lag
    # (a trending series' slowly decaying ACF has small wiggles that are no season)
    peaks = [k for k in range(2, max_lag + 1) if r[k] > r[k - 1] and r[k] >= r[k + 1]
             and r[k] >= max(MIN_SCORE, noise) and r[k] - r[k // 2:k].min() >= MIN_PROMINENCE]
    hint_ok = hint is not None and 2 <= hint <= max_lag
    if not peaks:
        why = f"no autocorrelation peak above {max(MIN_SCORE, noise):.2f} up to lag {max_lag}"
        if hint_ok:
            why += f" (the timestamps suggest {hint}; the data do not show it: ACF {r[hint]:.2f})"
        return Season(1, 0.0, why)
    best = max(r[k] for k in peaks)
    if hint_ok and r[hint] >= 0.8 * best and r[hint] >= MIN_SCORE:
        return Season(int(hint), float(r[hint]),
                      f"the timestamps suggest {hint} and the data agree (ACF {r[hint]:.2f})")
    close = [k for k in peaks if r[k] >= 0.9 * best]
    first = min(close)  # the fundamental, not a multiple; of near-equal lags the highest
    m = max((k for k in close if k <= 1.2 * first), key=lambda k: r[k])
    why = f"autocorrelation peak at lag {m} (ACF {r[m]:.2f})"
    if hint is not None and hint > 1:
        why += f"; the timestamps suggested {hint} (ACF {r[hint] if hint <= max_lag else float('nan'):.2f})"
    return Season(int(m), float(r[m]), why)


# --- time columns ---------------------------------------------------------------------------
_YEAR_RANGE = (1000, 2999)


def parse_time_column(col: pd.Series, name: str) -> tuple[pd.DatetimeIndex, str | None]:
    """A time column -> (timestamps, pandas frequency or None).

    Integer years (``1749, 1750, ...``) and period strings (``"1990Q1"``, ``"Q1 1965"``,
    ``"1939 Jan"``, ``"2001-03"``) are parsed as periods (stamped at their start), not as
    nanoseconds since 1970; anything else goes through ``pandas.to_datetime``."""
    s = col.dropna()
    if pd.api.types.is_bool_dtype(s):
        raise ValueError(f"column {name!r} (--time): expected timestamps or periods, got booleans")
    if pd.api.types.is_numeric_dtype(s):
        v = s.to_numpy(dtype=np.float64)
        if len(v) and np.all(v == np.round(v)) and _YEAR_RANGE[0] <= v.min() and v.max() <= _YEAR_RANGE[1]:
            steps = np.diff(v)
            if len(steps) == 0 or np.all(steps >= 1):
                idx = pd.PeriodIndex([pd.Period(int(x), freq="Y") for x in col], freq="Y")
                return idx.to_timestamp(how="start"), "YS"
        raise ValueError(f"column {name!r} (--time): expected timestamps, years ({_YEAR_RANGE[0]}-"
                         f"{_YEAR_RANGE[1]}) or period strings, got numbers like {s.iloc[0]!r}; "
                         f"leave --time out to use the row order")
    text = col.astype(str).str.strip()
    # quarters: "1990Q1", "1990 Q1", "Q1 1965"
    q = text.str.extract(r"^(?:(\d{4})\s*-?\s*Q([1-4])|Q([1-4])\s*-?\s*(\d{4}))$")
    if q.notna().any(axis=1).all():
        year = q[0].fillna(q[3]).astype(int)
        qq = q[1].fillna(q[2]).astype(int)
        idx = pd.PeriodIndex([pd.Period(year=y, quarter=k, freq="Q") for y, k in zip(year, qq)])
        return idx.to_timestamp(how="start"), "QS"
    if text.str.fullmatch(r"\d{4}").all():
        return parse_time_column(text.astype(int), name)
    try:
        times = pd.DatetimeIndex(pd.to_datetime(text, format="mixed"))
    except (ValueError, TypeError):
        try:  # "1939 Jan", "Jan 1980"
            times = pd.DatetimeIndex([pd.Period(x, freq="M").to_timestamp() for x in text])
        except (ValueError, TypeError) as e:
            raise ValueError(f"column {name!r} (--time): expected timestamps or periods, "
                             f"got {text.iloc[0]!r} ({e})") from None
    return times, None


def seasonal_naive_index(origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Where the seasonal naive forecast reads each target step: for origin t and step k
    (1..h), the point one (or more) whole seasons before t + k that is at or before t
    (``t + k - m * ceil(k / m)``, clipped at 0): (W, h) indices.

    >>> seasonal_naive_index(np.array([5]), 3, 2).tolist()
    [[4, 5, 4]]
    """
    k = np.arange(1, horizon + 1)
    back = season * ((k - 1) // season + 1)  # (h,) the smallest multiple of m >= k
    return np.maximum(np.asarray(origins)[:, None] + k - back, 0)
