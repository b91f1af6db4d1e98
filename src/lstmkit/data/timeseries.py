"""Time series for forecasting: load and validate, impute, difference, scale, build features.

Symbols: N time points, F features per step, C user covariates, K calendar features,
T input length, h horizon, W windows.

Trend: an LSTM's output lives in a bounded range around what it saw in training, so a model fed
raw levels cannot forecast a trending series (CO2 keeps rising) beyond its training range.
We **model first differences**: the inputs carry ``d_t = y_t - y_{t-1}`` (scaled) and the model
predicts the next ``h`` differences; the forecast is ``y_t + cumsum(d)``. Differences of a
trending series are stationary, so the test period looks like training, whatever its level.
We chose this over per-window normalisation because it stays exact for every forecaster mode:
the recursive mode feeds its own predicted differences back in the same units it was trained
on, while a per-window anchor would shift under it. The loss is taken on ``cumsum`` of the
(scaled) differences, i.e. on the level error, so errors do not pile up unseen along the horizon.

Feature layout per step (F = 1 + C + (1 + C) + K), known-future calendar features last:
``[d_target, covariates..., missing(target), missing(covariates)..., calendar...]``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from .missing import impute
from .scaling import StandardScaler
from .split import chronological_split

SEASON_BY_FREQ = {"h": 24, "D": 7, "B": 5, "W": 52, "M": 12, "MS": 12, "ME": 12, "Q": 4, "QS": 4,
                  "QE": 4}


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
        try:
            times = pd.DatetimeIndex(pd.to_datetime(df[time]))
        except (ValueError, TypeError) as e:
            raise ValueError(f"column {time!r} (--time): expected timestamps, got {e}") from None
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


def read_csv(path: str, target: str, time: str | None = None, covariates: list[str] | None = None):
    try:
        df = pd.read_csv(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"--csv: no such file {path!r}") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"--csv {path!r}: expected a CSV file, got {e}") from None
    return read_frame(df, target, time, covariates)


def infer_freq(times: pd.DatetimeIndex | None) -> str | None:
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


def infer_season(freq: str | None) -> int:
    """Seasonal period from a pandas frequency (weekly -> 52, daily -> 7, ...); 1 if unknown."""
    if not freq:
        return 1
    base = "".join(c for c in freq.split("-")[0] if c.isalpha())
    if base.startswith("W"):
        return 52
    if freq.startswith("7D"):
        return 52
    return SEASON_BY_FREQ.get(base, 1)


def calendar_features(times: pd.DatetimeIndex | None) -> np.ndarray:
    """sin/cos of the fraction of the year: (N, 2), or (N, 0) without timestamps."""
    if times is None:
        return np.zeros((0, 0))
    frac = (times.day_of_year.to_numpy() - 1 + times.hour.to_numpy() / 24) / 365.25
    return np.stack([np.sin(2 * np.pi * frac), np.cos(2 * np.pi * frac)], axis=1)


def future_times(times: pd.DatetimeIndex | None, freq: str | None, n_last: int, horizon: int):
    """Timestamps of the ``horizon`` steps after the last one (None without timestamps)."""
    if times is None:
        return None
    off = pd.tseries.frequencies.to_offset(freq) if freq else (times[-1] - times[-2])
    return pd.DatetimeIndex([times[-1] + off * k for k in range(1, horizon + 1)])


class Prepared:
    """The featurised series: ``features`` (N, F), ``level`` (N,), ``d_scaled`` (N,), plus
    the split slices and the fitted scaler. Row 0 has no difference; windows start at 1."""

    def __init__(self, spec: SeriesSpec, values: np.ndarray, times, scaler: StandardScaler | None,
                 train: slice | None = None) -> None:
        names = [spec.target, *spec.covariates]
        filled, miss = impute(values, spec.impute, names)  # (N, 1+C) each
        self.level = filled[:, 0]  # (N,) imputed target levels
        self.observed = values[:, 0]  # (N,) with NaN where missing (for scoring)
        d = np.diff(filled[:, 0], prepend=np.nan)  # (N,)
        raw = np.column_stack([d, filled[:, 1:]])  # (N, 1+C)
        if scaler is None:
            scaler = StandardScaler().fit(raw[1:train.stop])
        self.scaler = scaler
        scaled = scaler.transform(raw)  # (N, 1+C)
        scaled[0] = 0.0
        cal = calendar_features(times)
        parts = [scaled, miss] + ([cal] if cal.size else [])
        self.features = np.column_stack(parts).astype(np.float32)  # (N, F)
        self.d_scaled = scaled[:, 0].astype(np.float32)  # (N,)
        self.n_future = cal.shape[1] if cal.size else 0
        self.times = times
        self.spec = spec

    def to_levels(self, pred_scaled: np.ndarray, origins: np.ndarray) -> np.ndarray:
        """pred (W, h) scaled differences -> (W, h) levels: y_t + cumsum(d)."""
        d = pred_scaled * self.scaler.scale_[0] + self.scaler.mean_[0]
        return self.level[origins][:, None] + np.cumsum(d, axis=1)

    def future_features(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        """Known-future features (calendar) for steps t+1..t+h: (W, h, K)."""
        k = self.n_future
        if k == 0:
            return np.zeros((len(origins), horizon, 0), np.float32)
        return self.features[origins[:, None] + np.arange(1, horizon + 1), -k:]


def split_for(n: int, spec: SeriesSpec, test_size, val_size):
    """Chronological split that leaves room for at least one training window."""
    need = spec.input_len + spec.horizon + 1
    if n < need:
        raise ValueError(f"series: {n} points is shorter than input_len + horizon + 1 = {need}")
    return chronological_split(n, test_size, val_size, min_train=need)
