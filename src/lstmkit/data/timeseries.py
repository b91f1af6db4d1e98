"""Time series for forecasting: load and validate, impute, scale, build model windows.

Symbols: N time points, F features per step, C user covariates, K calendar features,
T input length, h horizon, W windows, S series.

Three representations of the target (``SeriesSpec.transform``), all per window, all ending in
the same kind of target: the path ``z_k = (y_{t+k} - a_k) / s`` for k = 1..h, where ``t`` is
the window's origin, ``a`` its anchor and ``s`` its scale, so a forecast goes back to levels
as ``a + s * z``:

- ``diff``: the input carries first differences ``d_t = y_t - y_{t-1}`` standardised with the
  training split's mean and std (``s`` = that std). Differences of a trending series are
  stationary, so the test period looks like training whatever its level (an LSTM fed raw levels
  cannot leave the range it was trained on).
- ``level``: the input carries the window's levels relative to its last value, divided by the
  window's mean absolute difference (``s``): per-window scaling, the way global models
  (DeepAR, N-BEATS) put series of any size on one scale.
- ``sdiff`` (seasonal series): the input carries seasonal differences ``y_t - y_{t-m}``
  (standardised on the training split) and the anchor is the seasonal naive forecast, so the
  model learns a correction to "same as one season ago" (the ES-RNN idea of letting a
  classical forecast carry the season), anchor ``a_k = y_{t+k-m*ceil(k/m)}``.
  For ``diff`` and ``level`` the anchor is the last value ``y_t``.

The loss is taken on the path (the level error of every step), so errors cannot pile up unseen
along the horizon.

Feature layout per step (F = 1 + C + (1 + C) + K), known-future calendar features last:
``[target, covariates..., missing(target), missing(covariates)..., calendar...]``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .missing import impute
from .scaling import StandardScaler
from .season import parse_time_column, seasonal_naive_index

SEASON_BY_FREQ = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4,
                  "QE": 4, "min": 60}
TRANSFORMS = ("diff", "level", "sdiff")


@dataclass
class SeriesSpec:
    """What to read and how to featurise it (saved with the checkpoint)."""

    target: str
    time: str | None = None
    covariates: list[str] = field(default_factory=list)
    input_len: int = 52
    horizon: int = 13
    season: int = 1
    impute: str = "interpolate"
    freq: str | None = None  # pandas frequency string of the time index, when known
    transform: str = "diff"  # "diff" | "level" | "sdiff" (module docstring)
    log: bool = False  # model log levels (multiplicative seasonality/growth); forecasts come back exp'd

    def __post_init__(self) -> None:
        if not isinstance(self.log, bool):
            raise TypeError(f"log: expected a bool, got {self.log!r}")
        if self.transform not in TRANSFORMS:
            raise ValueError(f"transform: expected one of {TRANSFORMS}, got {self.transform!r}")
        if self.transform == "sdiff" and self.season < 2:
            raise ValueError(f"transform: 'sdiff' needs a season >= 2, got season={self.season}")

    def to_dict(self) -> dict:
        return asdict(self)


def co2_frame() -> pd.DataFrame:
    """statsmodels' weekly Mauna Loa CO2 (1958-2001, 2284 weeks, 59 missing), bundled with it."""
    from statsmodels.datasets import co2

    df = co2.load_pandas().data
    return df.rename_axis("date").reset_index()


def read_frame(df: pd.DataFrame, target: str, time: str | None = None,
               covariates: list[str] | None = None):
    """Validate columns -> (values (N, 1+C) float with NaN, times DatetimeIndex or None)."""
    covariates = list(covariates or [])
    for col in [target, *covariates] + ([time] if time else []):
        if col not in df.columns:
            raise ValueError(f"column {col!r}: not in the data; expected one of {list(df.columns)}")
    if target in covariates:
        raise ValueError(f"covariates: the target {target!r} cannot also be a covariate")
    times = None
    if time:
        if df[time].isna().any():
            raise ValueError(f"column {time!r} (--time): expected a timestamp on every row, got blanks")
        times, _ = parse_time_column(df[time], time)
        if times.hasnans:
            raise ValueError(f"column {time!r} (--time): expected a timestamp on every row, got blanks")
        if times.has_duplicates:
            dup = times[times.duplicated()][0]
            raise ValueError(f"column {time!r} (--time): expected unique timestamps, got {dup} twice")
        if not times.is_monotonic_increasing:
            raise ValueError(f"column {time!r} (--time): expected timestamps sorted ascending, "
                             f"they are not")
    cols = []
    for col in [target, *covariates]:
        s = df[col]
        num = pd.to_numeric(s, errors="coerce")
        bad = num.isna() & s.notna()
        if bad.any():
            raise ValueError(f"column {col!r}: expected numbers, got {s[bad].iloc[0]!r}")
        cols.append(num.to_numpy(dtype=np.float64))
    values = np.stack(cols, axis=1)  # (N, 1+C)
    values[~np.isfinite(values)] = np.nan
    return values, times


def infer_freq(times: pd.DatetimeIndex | None) -> str | None:
    """pandas frequency string of ``times`` (the most common step where there are gaps)."""
    if times is None or len(times) < 3:
        return None
    with warnings.catch_warnings():  # pandas 3 warns that infer_freq will return an offset
        warnings.simplefilter("ignore")
        freq = pd.infer_freq(times)
    if freq is not None and not isinstance(freq, str):
        freq = freq.freqstr
    if freq is None:  # gaps: use the most common step
        step = pd.Series(times[1:] - times[:-1]).mode()[0]
        return pd.tseries.frequencies.to_offset(step).freqstr
    return freq


def season_hint(freq: str | None) -> int:
    """The seasonal period a pandas frequency suggests (weekly -> 52, daily -> 7, ...); 1 if
    unknown. Only a hint: :func:`lstmkit.data.season.detect_season` decides from the data."""
    if not freq:
        return 1
    base = "".join(c for c in freq.split("-")[0] if c.isalpha())
    if base.startswith("W"):
        return 52
    if freq.startswith("7D"):
        return 52
    return SEASON_BY_FREQ.get(base, 1)




def calendar_features(times: pd.DatetimeIndex | None) -> np.ndarray:
    """sin/cos of the fraction of the year: (N, 2), or (N, 0) without timestamps or when it is
    the same on every row (yearly data)."""
    if times is None or len(times) < 2:
        return np.zeros((0, 0))
    if times.day_of_year.nunique() == 1 and times.hour.nunique() == 1:
        return np.zeros((0, 0))
    frac = (times.day_of_year.to_numpy() - 1 + times.hour.to_numpy() / 24) / 365.25
    return np.stack([np.sin(2 * np.pi * frac), np.cos(2 * np.pi * frac)], axis=1)


def future_times(times: pd.DatetimeIndex | None, freq: str | None, n_last: int, horizon: int):
    """Timestamps of the ``horizon`` steps after the last one (None without timestamps)."""
    if times is None:
        return None
    off = pd.tseries.frequencies.to_offset(freq) if freq else (times[-1] - times[-2])
    return pd.DatetimeIndex([times[-1] + off * k for k in range(1, horizon + 1)])


@dataclass
class Windows:
    """Model inputs and targets at W origins: ``x`` (W, T, F) float32, ``future`` (W, h, K)
    float32, ``z`` (W, h) float32 target path (NaN where beyond the data), ``anchor`` (W, h)
    and ``scale`` (W,) float64 to map a path back to levels, ``step_offset`` (W,): the mean scaled
    difference (``diff`` only; a model that emits per-step differences adds it before cumsum)."""

    x: np.ndarray
    future: np.ndarray
    z: np.ndarray
    anchor: np.ndarray
    scale: np.ndarray
    step_offset: np.ndarray
    origins: np.ndarray
    log: bool = False  # the levels are logs: to_levels exponentiates

    def to_levels(self, path: np.ndarray) -> np.ndarray:
        """path (W, h[, Q]) in scaled units -> levels, same shape."""
        if path.ndim == 3:
            out = self.anchor[..., None] + self.scale[:, None, None] * path
        else:
            out = self.anchor + self.scale[:, None] * path
        return np.exp(out) if self.log else out


class Prepared:
    """One featurised series: ``features`` (N, F) with the target channel left to the
    transform, ``level`` (N,) imputed target in the model's units (its log with ``spec.log``),
    ``raw_level`` (N,) the imputed target itself, ``observed`` (N,) with NaN where missing, the
    fitted scaler (difference of the target + covariates, fitted on the training split) and
    ``n_future`` calendar channels. ``extend(h)`` appends h future calendar rows."""

    def __init__(self, spec: SeriesSpec, values: np.ndarray, times, scaler: StandardScaler | None,
                 train: slice | None = None, sdiff_stats: list[float] | None = None) -> None:
        names = [spec.target, *spec.covariates]
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 1:
            values = values[:, None]
        filled, miss = impute(values, spec.impute, names)  # (N, 1+C) each
        self.raw_level = filled[:, 0].copy()  # (N,) imputed target levels
        if spec.log:
            bad = np.flatnonzero(~(filled[:, 0] > 0))
            if bad.size:
                raise ValueError(f"log: expected a strictly positive target {spec.target!r}, got "
                                 f"{float(filled[bad[0], 0])!r} at row {bad[0]}")
            filled[:, 0] = np.log(filled[:, 0])
        self.level = filled[:, 0]  # (N,) imputed target in the model's units
        self.observed = values[:, 0]  # (N,) with NaN where missing (for scoring)
        self.n = len(self.level)
        d = np.diff(filled[:, 0], prepend=np.nan)  # (N,)
        raw = np.column_stack([d, filled[:, 1:]])  # (N, 1+C)
        if scaler is None:
            stop = train.stop if train is not None else self.n
            if stop < 2:
                raise ValueError(f"series {spec.target!r}: expected at least 2 training points, got {stop}")
            scaler = StandardScaler().fit(raw[1:stop])
        self.scaler = scaler
        scaled = scaler.transform(raw)  # (N, 1+C)
        scaled[0] = 0.0
        self.d_scaled = scaled[:, 0].astype(np.float32)  # (N,)
        cal = calendar_features(times)
        parts = [scaled, miss] + ([cal] if cal.size else [])
        self.features = np.column_stack(parts).astype(np.float32)  # (N, F)
        self.n_future = cal.shape[1] if cal.size else 0
        self.times = times
        self.spec = spec
        # a fallback scale for flat windows: the training split's mean absolute difference
        stop = train.stop if train is not None else self.n
        dd = np.abs(np.diff(self.level[:stop]))
        self.flat_scale = float(dd.mean()) if dd.size and dd.mean() > 0 else 1.0
        # seasonal differences' mean and std on the training split ("sdiff"; saved with the model)
        m = spec.season
        if sdiff_stats is None and m > 1:
            sd = self.level[m:stop] - self.level[:max(stop - m, 0)]
            sd_std = float(sd.std()) if sd.size > 1 else 0.0
            sdiff_stats = [float(sd.mean()) if sd.size else 0.0, sd_std if sd_std > 1e-12 else 1.0]
        self.sdiff_stats = sdiff_stats

    @property
    def input_size(self) -> int:
        return self.features.shape[1]

    def extend(self, horizon: int) -> None:
        """Append the calendar rows of ``horizon`` steps past the end (for forecasts beyond it)."""
        if self.n_future == 0 or self.features.shape[0] > self.n:
            return
        ft = future_times(self.times, self.spec.freq, self.n, horizon)
        extra = np.zeros((horizon, self.features.shape[1]), np.float32)
        extra[:, -self.n_future:] = calendar_features(pd.DatetimeIndex(list(self.times[-2:]) + list(ft)))[2:]
        self.features = np.concatenate([self.features, extra])

    def windows(self, origins: np.ndarray, input_len: int, horizon: int) -> Windows:
        """Windows at ``origins`` (each >= 1). History before the first point repeats it (so short
        series still give windows); targets past the end are NaN."""
        origins = np.asarray(origins, dtype=np.int64)
        T, h, n = input_len, horizon, self.n
        idx = np.clip(origins[:, None] + np.arange(-T + 1, 1), 0, None)  # (W, T)
        ahead = origins[:, None] + np.arange(1, h + 1)  # (W, h)
        x = self.features[idx].copy()  # (W, T, F)
        lv = self.level[idx]  # (W, T)
        anchor = np.repeat(self.level[origins][:, None], h, axis=1)  # (W, h)
        fut_lv = np.where(ahead < n, self.level[np.minimum(ahead, n - 1)], np.nan)  # (W, h)
        if self.spec.transform == "diff":
            s = float(self.scaler.scale_[0])
            scale = np.full(len(origins), s)
            x[..., 0] = np.where(idx >= 1, self.d_scaled[idx], 0.0)
            offset = np.full(len(origins), float(self.scaler.mean_[0]) / s)
        elif self.spec.transform == "sdiff":
            m = self.spec.season
            mu, s = self.sdiff_stats
            scale = np.full(len(origins), s)
            sd = self.level[idx] - self.level[np.clip(idx - m, 0, None)]  # (W, T)
            x[..., 0] = np.where(idx >= m, (sd - mu) / s, 0.0)
            anchor = self.level[seasonal_naive_index(origins, h, m)]  # (W, h) seasonal naive
            offset = np.zeros(len(origins))
        else:
            mad = np.abs(np.diff(lv, axis=1)).mean(axis=1) if T > 1 else np.zeros(len(origins))
            scale = np.where(mad > 1e-8 * max(self.flat_scale, 1e-12), mad, self.flat_scale)
            x[..., 0] = (lv - anchor[:, :1]) / scale[:, None]
            offset = np.zeros(len(origins))
        z = (fut_lv - anchor) / scale[:, None]  # (W, h)
        k = self.n_future
        if k:
            rows = self.features.shape[0]
            if ahead.max(initial=0) >= rows:
                raise ValueError(f"horizon: calendar features of {h} future steps are needed; call extend()")
            future = self.features[ahead][..., -k:]
        else:
            future = np.zeros((len(origins), h, 0), np.float32)
        return Windows(x.astype(np.float32), future.astype(np.float32), z.astype(np.float32),
                       anchor, scale, offset, origins, self.spec.log)

