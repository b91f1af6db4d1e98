"""The forecasting job: an LSTM forecaster that adapts to the series, beside the baselines.

Symbols: N time points, S series, F features, T input length, h horizon, W forecast origins,
Q quantiles, m seasonal period.

``train(ForecastConfig(...)) -> Result``:

1. reads one series (``csv`` + ``target``), many (``id`` column: long format; ``wide``: one
   series per column) or, by default, statsmodels' weekly Mauna Loa CO2;
2. resolves every automatic choice from the data and says why on stderr: the season (from the
   autocorrelation, the timestamps only a hint; :mod:`lstmkit.data.season`), the input length,
   validation and test sizes (scaled to the series length and season);
3. with ``search`` (the default) tries a handful of candidates on the validation split (the
   ``diff`` or ``level`` representation, :mod:`lstmkit.data.timeseries`; a longer or shorter
   input; a smaller model), then a seed ensemble (median of K models) if it lowers the
   validation error by at least 2%, and refits the winner on train + validation for as many
   epochs as it needed before; every training goes through :class:`lstmkit.train.Trainer`;
4. scores a rolling origin over the test split (every forecast from data up to its origin only)
   against naive, seasonal naive, ETS, ARIMA and Theta from statsmodels, fitted on the same data;
5. writes ``config.json`` (the resolved config: it reproduces the run), ``metrics.json``,
   ``model.pt`` and ``forecast.png`` into ``out``, and prints one table
   (:mod:`lstmkit.jobs.forecast_report`).

With ``quantiles`` (default 0.1, 0.5, 0.9) the model is trained with the pinball loss and cannot
cross its quantiles; its median is the point forecast; the metrics add interval coverage,
the mean pinball loss and the CRPS (approximated from the quantiles). The intervals are
calibrated on the validation split (split conformal: one factor >= 1 around the median that makes
the outermost interval hold its nominal share of validation points), then applied to the test.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, fields, replace

import numpy as np
import pandas as pd
import torch

from .._io import prepare_out
from .._threads import limited_threads
from ..data.missing import METHODS as IMPUTE_METHODS
from ..data.scaling import StandardScaler
from ..data.season import detect_season
from ..data.split import chronological_split, resolve_size
from ..data.timeseries import (
    Prepared,
    SeriesSpec,
    co2_frame,
    future_times,
    infer_freq,
    read_frame,
    season_hint,
)
from ..models.forecaster import MODES, Forecaster, ForecasterConfig, median_index
from ..train.checkpoint import atomic_write, load_checkpoint
from ..train.metrics import forecast_metrics, mase_scale
from ..train.trainer import TrainConfig, Trainer
from ._config import config_from
from .forecast_baselines import baseline_forecasts
from .forecast_report import format_table, write

SEARCH_BUDGET = 40_000  # training windows x input length per epoch, beyond which search is off


@dataclass
class ForecastConfig:
    """Every ``lstmkit forecast`` flag (same name, same default). ``None`` = chosen from the data."""

    csv: str | None = None
    target: str | None = None
    time: str | None = None
    covariates: list[str] = field(default_factory=list)
    id: str | None = None  # long format: the column naming each series (one global model)
    wide: bool = False  # wide format: every numeric column except --time is a series
    horizon: int = 13
    input_len: int | None = None
    test_size: int | float | None = None
    val_size: int | float | None = None
    season: int | None = None
    transform: str | None = None  # "diff" | "level"; None: searched (diff without search)
    log: bool | None = None  # model log levels; None: searched where the target is > 0 (off without search)
    mode: str = "direct"
    impute: str = "ffill"
    hidden_size: int | None = None  # None: 64 (one series) / 48 (many), smaller one searched
    num_layers: int = 1
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    patience: int = 8
    quantiles: list[float] | None = field(default_factory=lambda: [0.1, 0.5, 0.9])
    search: bool | None = None  # None: on where it is cheap (<= SEARCH_BUDGET window-steps)
    ensemble: int | None = None  # K models (median); None: 3 if it helps on validation, else 1
    eval_stride: int = 1
    seed: int = 0
    threads: int = 1
    no_progress: bool = False
    out: str = os.path.join("runs", "forecast")

    def __post_init__(self) -> None:
        for name in ("horizon", "epochs", "batch_size", "num_layers", "eval_stride", "threads",
                     "patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        for name in ("input_len", "hidden_size", "ensemble", "season"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}: expected an int >= 1 (or None: chosen from the data), got {v!r}")
        if self.log not in (None, True, False):
            raise ValueError(f"log: expected true, false or None (searched), got {self.log!r}")
        if self.transform not in (None, "diff", "level", "sdiff"):
            raise ValueError(f"transform: expected 'diff', 'level', 'sdiff' or None, got {self.transform!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {self.mode!r}")
        if self.impute not in IMPUTE_METHODS:
            raise ValueError(f"impute: expected one of {IMPUTE_METHODS}, got {self.impute!r}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if self.quantiles is not None:
            q = list(self.quantiles)
            bad = [v for v in q if not (isinstance(v, (int, float)) and 0.0 < v < 1.0)]
            if not q or bad:
                raise ValueError(f"quantiles: expected levels strictly between 0 and 1, got {q}")
            q = sorted({float(v) for v in q} | {0.5})  # the median is the point forecast
            self.quantiles = q
        if self.id and self.wide:
            raise ValueError("id/wide: expected one of them (long or wide format), got both")

    def to_dict(self) -> dict:
        return asdict(self)


def config_from_flags(flags: dict, path: str | None = None) -> ForecastConfig:
    """The config of ``lstmkit forecast train``: ``flags`` over the fields of a TOML file or of a
    run's saved ``config.json`` (which reproduces that run; :mod:`lstmkit.jobs._config`)."""
    return config_from(ForecastConfig, flags, path)


@dataclass
class Candidate:
    input_len: int
    transform: str
    hidden_size: int
    log: bool = False

    def label(self) -> str:
        return f"T={self.input_len} {'log ' if self.log else ''}{self.transform} H={self.hidden_size}"


@dataclass
class Result:
    """What ``train`` returns (and writes into ``config.out``)."""

    config: ForecastConfig  # resolved: every automatic choice filled in
    metrics: dict  # model -> metric -> value (means over series)
    per_series: dict  # series -> model -> metrics
    choices: dict  # what was chosen automatically and why
    search: list  # [{candidate, val_mase, epochs}]
    forecasts: dict  # series -> {"origins", "actual", model -> (W, h) levels, "lstm_q": (W, h, Q)}
    seconds: float
    out: str


# --- loading --------------------------------------------------------------------------------
@dataclass
class Series:
    name: str
    values: np.ndarray  # (N, 1+C) with NaN
    times: pd.DatetimeIndex | None
    freq: str | None


def _frame(cfg: ForecastConfig, data: pd.DataFrame | None) -> tuple[pd.DataFrame, str]:
    if data is not None:
        return data, "a DataFrame"
    if cfg.csv:
        try:
            return pd.read_csv(cfg.csv), cfg.csv
        except FileNotFoundError:
            raise FileNotFoundError(f"csv: no such file {cfg.csv!r}") from None
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
            raise ValueError(f"csv {cfg.csv!r}: expected a CSV file, got {e}") from None
    if cfg.target not in (None, "co2") or cfg.covariates or cfg.id or cfg.wide:
        raise ValueError("target/covariates/id/wide: need --csv (the default data has one column, co2)")
    cfg.target, cfg.time = "co2", "date"
    return co2_frame(), "statsmodels co2 (weekly Mauna Loa)"


def load_series(cfg: ForecastConfig, data: pd.DataFrame | None = None) -> tuple[list[Series], str]:
    """The series the config names: one, or many (``id`` / ``wide``)."""
    df, source = _frame(cfg, data)
    if cfg.wide:
        if cfg.covariates:
            raise ValueError("covariates: not supported with wide (one series per column)")
        cols = [c for c in df.columns if c != cfg.time and pd.api.types.is_numeric_dtype(df[c])]
        if not cols:
            raise ValueError(f"wide: expected numeric series columns, got {list(df.columns)}")
        out = []
        for c in cols:
            v, t = read_frame(df, c, cfg.time)
            ok = np.flatnonzero(np.isfinite(v[:, 0]))
            if len(ok) == 0:
                raise ValueError(f"series {c!r}: every value is missing")
            sl = slice(ok[0], ok[-1] + 1)  # each column's own span
            tt = t[sl] if t is not None else None
            out.append(Series(str(c), v[sl], tt, infer_freq(tt)))
        return out, source
    if not cfg.target:
        raise ValueError("target: required with csv (the column to forecast)")
    if cfg.id:
        if cfg.id not in df.columns:
            raise ValueError(f"column {cfg.id!r} (id): not in the data; expected one of {list(df.columns)}")
        out = []
        for key, part in df.groupby(cfg.id, sort=False):
            if len(part) < 2:
                raise ValueError(f"id {cfg.id!r}: series {key!r} has {len(part)} point; expected at "
                                 f"least 2 per series (is {cfg.id!r} really the series id?)")
            v, t = read_frame(part.reset_index(drop=True), cfg.target, cfg.time, cfg.covariates)
            out.append(Series(str(key), v, t, infer_freq(t)))
        return out, source
    v, t = read_frame(df, cfg.target, cfg.time, cfg.covariates)
    return [Series(cfg.target, v, t, infer_freq(t))], source


# --- automatic choices ----------------------------------------------------------------------
def resolve(cfg: ForecastConfig, series: list[Series]) -> dict:
    """Fill the config's ``None`` fields from the data; returns {field: reason}."""
    h, why = cfg.horizon, {}
    lengths = [len(s.values) for s in series]
    n_min, n_med = min(lengths), int(np.median(lengths))
    many = len(series) > 1
    if cfg.season is None:
        found = [detect_season(s.values[:, 0], hint=season_hint(s.freq)) for s in series]
        if many:
            m, count = Counter(f.season for f in found).most_common(1)[0]
            why["season"] = f"{m}: the most common among {len(series)} series ({count} of them)"
        else:
            m = found[0].season
            why["season"] = f"{m}: {found[0].reason}"
        cfg.season = int(m)
    elif cfg.season >= n_min:
        raise ValueError(f"season: expected a period shorter than the series ({n_min} points), "
                         f"got {cfg.season}")
    m = cfg.season
    if many:  # short series: the M-competition convention, one horizon each
        if cfg.test_size is None:
            cfg.test_size = h
            why["test_size"] = f"{h}: the last horizon of every series"
        if cfg.val_size is None:
            cfg.val_size = h
            why["val_size"] = f"{h}: the horizon before the test part of every series"
    else:
        cap = max(h, int(0.2 * n_min))
        for name in ("test_size", "val_size"):
            if getattr(cfg, name) is None:
                want = max(2 * m if m > 1 else 0, 4 * h)
                got = min(max(want, h), cap)
                setattr(cfg, name, got)
                why[name] = (f"{got}: " + ("2 seasons or 4 horizons" if got == want else
                                           f"20% of the {n_min} points (capped)") +
                             f", at least the horizon {h}")
    n_test = resolve_size(cfg.test_size, n_min, "test_size")
    n_val = resolve_size(cfg.val_size, n_min, "val_size")
    if n_test < h:
        raise ValueError(f"test_size: expected at least horizon={h} test points, got {n_test}")
    n_train = n_min - n_test - n_val
    if cfg.input_len is None:
        want = max(m if m > 1 else 0, 2 * h, 8)
        cap = max(2, (n_med - n_test - n_val) // 2 if many else n_train // 3)
        cfg.input_len = int(min(want, cap, 256))
        why["input_len"] = (f"{cfg.input_len}: " + ("one season, " if m > 1 else "") +
                            "at least 2 horizons and 8 steps" +
                            (f", capped to leave training windows ({n_train} training points)"
                             if cfg.input_len < want else ""))
    if many:
        n_max = max(lengths) - n_test - n_val
        if n_train < 2 or n_max < h + 2:
            raise ValueError(f"series: the shortest series keeps {n_train} training points and the "
                             f"longest {n_max} after {n_test} test and {n_val} validation points; "
                             f"expected at least 2 each and horizon + 2 = {h + 2} in one of them")
    elif n_train < cfg.input_len + h + 1:
        need = cfg.input_len + h + 1
        raise ValueError(f"series: {n_min} points leave {n_train} for training after {n_test} test "
                         f"and {n_val} validation points; expected at least {need} "
                         f"(input_len + horizon + 1); give a smaller --input-len/--val-size/--test-size")
    if cfg.hidden_size is None:
        cfg.hidden_size = 48 if many else 64
    if cfg.search is None:
        windows = sum(max(0, len(s.values) - n_test - n_val - h - (1 if many else cfg.input_len))
                      for s in series)
        cost = windows * cfg.input_len
        cfg.search = cost <= SEARCH_BUDGET
        why["search"] = (f"{'on' if cfg.search else 'off'}: {windows} training windows x input "
                         f"{cfg.input_len} = {cost} steps per epoch "
                         + ("<=" if cfg.search else ">") + f" {SEARCH_BUDGET} "
                         + ("(cheap enough to try a few candidates)" if cfg.search else
                            "(the defaults have plenty of data; --search forces it)"))
    return why


# --- the LSTM -------------------------------------------------------------------------------
def _steps_out(mode: str, transform: str) -> bool:
    """True where the model emits per-step differences (recursive on diff): the path is their
    cumulative sum; every other combination emits the path itself."""
    return mode == "recursive" and transform == "diff"


def make_loss(mode: str, transform: str, quantiles: list[float] | None):
    """loss_fn(model, batch) for the Trainer: MSE, or the mean pinball loss, on the path."""
    steps = _steps_out(mode, transform)
    q = torch.tensor(quantiles, dtype=torch.float32) if quantiles else None

    def loss_fn(model, batch):
        x, fut, z, offset = batch
        out = model(x, fut)  # (B, h[, Q])
        path = to_path(out, offset, steps)
        if q is None:
            return torch.nn.functional.mse_loss(path, z)
        err = z.unsqueeze(-1) - path  # (B, h, Q)
        return torch.maximum(q * err, (q - 1) * err).mean()

    return loss_fn


def to_path(out: torch.Tensor, offset: torch.Tensor, steps: bool) -> torch.Tensor:
    if not steps:
        return out
    off = offset.reshape((-1,) + (1,) * (out.dim() - 1))
    return torch.cumsum(out + off, dim=1)


@dataclass
class Part:
    """One series made ready: the prepared features, its split and its origins."""

    series: Series
    prep: Prepared
    train: slice
    val: slice
    test: slice
    origins: dict  # "train" | "val" | "refit" | "test" -> (W,)

    @property
    def spec_T(self) -> int:
        return self.prep.spec.input_len

    @property
    def spec_h(self) -> int:
        return self.prep.spec.horizon

    def actual(self, origins: np.ndarray) -> np.ndarray:
        """The observed values of the h steps after each origin: (W, h), NaN where missing."""
        return self.prep.observed[origins[:, None] + np.arange(1, self.spec_h + 1)]

    def mase_scale(self, stop: int) -> float:
        """MASE's denominator on the observed values before ``stop``: the in-sample seasonal
        naive error, the naive one where the season gives none (NaN only for a flat series)."""
        y = self.prep.observed[:stop]
        scale = mase_scale(y, self.prep.spec.season)
        return scale if np.isfinite(scale) else mase_scale(y, 1)


def _parts(cfg: ForecastConfig, series: list[Series], transform: str, refit: bool,
           log: bool = False, scalers: dict | None = None) -> list[Part]:
    """Each series prepared and split. The scaler (and seasonal-difference statistics) are fitted
    on the training split, or on train + validation with ``refit``, unless ``scalers`` (a saved
    run's, {series: state}) gives a series the very ones its models were trained with."""
    h, T, many = cfg.horizon, cfg.input_len, len(series) > 1
    parts = []
    for s in series:
        n = len(s.values)
        tr, va, te = chronological_split(n, cfg.test_size, cfg.val_size, min_train=2)
        spec = SeriesSpec(target=s.name, time=cfg.time, covariates=list(cfg.covariates),
                          input_len=T, horizon=h, season=cfg.season, impute=cfg.impute, freq=s.freq,
                          transform=transform, log=log)
        fit_stop = va.stop if refit else tr.stop
        saved = (scalers or {}).get(s.name)
        scaler = StandardScaler().load_state_dict(saved) if saved is not None else None
        prep = Prepared(spec, s.values, s.times, scaler=scaler, train=slice(0, fit_stop),
                        sdiff_stats=saved.get("sdiff") if saved is not None else None)
        prep.extend(h)
        first = 1 if many else T
        o = {
            "train": np.arange(first, tr.stop - h),
            "val": np.arange(max(first, va.start - 1), va.stop - h),
            "refit": np.arange(first, va.stop - h),
            "test": np.arange(te.start - 1, n - h, cfg.eval_stride),
        }
        parts.append(Part(s, prep, tr, va, te, {k: v.astype(np.int64) for k, v in o.items()}))
    return parts


def _dataset(parts: list[Part], key: str):
    ws = [p.prep.windows(p.origins[key], p.spec_T, p.spec_h) for p in parts if len(p.origins[key])]
    if not ws:
        return None
    cat = lambda a: torch.from_numpy(np.concatenate(a))
    return torch.utils.data.TensorDataset(
        cat([w.x for w in ws]), cat([w.future for w in ws]), cat([w.z for w in ws]),
        cat([w.step_offset.astype(np.float32) for w in ws]))


def fit_model(cfg: ForecastConfig, cand: Candidate, parts: list[Part], train_key: str, val_key: str | None,
              seed: int, out_dir: str, epochs: int | None = None):
    """Train one Forecaster through the Trainer; returns (model, trainer)."""
    p0 = parts[0].prep
    torch.manual_seed(seed)
    mcfg = ForecasterConfig(input_size=p0.input_size, horizon=cfg.horizon, mode=cfg.mode,
                            hidden_size=cand.hidden_size, num_layers=cfg.num_layers,
                            n_future=p0.n_future, quantiles=cfg.quantiles)
    model = Forecaster(mcfg)
    ds = _dataset(parts, train_key)
    if ds is None:
        raise ValueError(f"series: no training window of input_len {cand.input_len} + horizon "
                         f"{cfg.horizon} fits in the training split; give a smaller --input-len")
    # no generator of its own: the Trainer reseeds torch every epoch, so the shuffle depends only
    # on (seed, epoch) and a resumed run replays what an uninterrupted one does
    train_loader = torch.utils.data.DataLoader(ds, batch_size=cfg.batch_size, shuffle=True)
    val_loader = None
    if val_key:
        vds = _dataset(parts, val_key)
        val_loader = torch.utils.data.DataLoader(vds, batch_size=1024) if vds is not None else None
    tcfg = TrainConfig(epochs=epochs or cfg.epochs, lr=cfg.lr, seed=seed,
                       patience=cfg.patience if val_key else None,
                       progress=False if cfg.no_progress else None, resume=True)
    extra = dict(model_config=mcfg, candidate=asdict(cand))
    trainer = Trainer(model, make_loss(cfg.mode, cand.transform, cfg.quantiles), tcfg, out_dir, extra=extra)
    trainer.fit(train_loader, val_loader)
    if val_loader is not None:
        trainer.load_best()
    return model, trainer


def best_epoch(trainer: Trainer) -> int:
    vals = [(r["val_loss"], r["epoch"]) for r in trainer.history if r.get("val_loss") is not None]
    return min(vals)[1] if vals else trainer.epoch


@torch.no_grad()
def predict_paths(models: list[Forecaster], prep: Prepared, origins: np.ndarray) -> np.ndarray:
    """Median over the models of each one's forecast, in levels: (W, h) or (W, h, Q)."""
    spec = prep.spec
    w = prep.windows(origins, spec.input_len, spec.horizon)
    x, fut = torch.from_numpy(w.x), torch.from_numpy(w.future)
    off = torch.from_numpy(w.step_offset.astype(np.float32))
    outs = []
    for m in models:
        m.eval()
        path = to_path(m(x, fut), off, _steps_out(m.config.mode, spec.transform))
        outs.append(w.to_levels(path.double().numpy()))
    return np.median(np.stack(outs), axis=0)


def _point(pred: np.ndarray, quantiles) -> np.ndarray:
    return pred if pred.ndim == 2 else pred[..., median_index(quantiles)]


def quantile_metrics(actual: np.ndarray, q_pred: np.ndarray, quantiles: list[float], scale: float) -> dict:
    """Coverage of each central interval, mean pinball loss and CRPS (2 x the mean pinball over
    the levels, its quantile approximation), the last two also divided by the MASE scale."""
    ok = np.isfinite(actual)
    a, p = actual[ok], q_pred[ok]  # (P,), (P, Q)
    q = np.asarray(quantiles)
    err = a[:, None] - p
    pin = np.maximum(q * err, (q - 1) * err)  # (P, Q)
    out = {"pinball": float(pin.mean()), "crps": float(2 * pin.mean())}
    out["scaled_crps"] = out["crps"] / scale if scale and np.isfinite(scale) else float("nan")
    for j in range(len(q) // 2):
        lo, hi = q[j], q[len(q) - 1 - j]
        if hi > lo:
            cover = float(np.mean((a >= p[:, j]) & (a <= p[:, len(q) - 1 - j])))
            out[f"coverage_{round(100 * (hi - lo))}"] = cover
    return out


def widen(q: np.ndarray, c: float, quantiles) -> np.ndarray:
    """Quantiles (..., Q) moved away from the median by the factor ``c`` (order kept for c > 0)."""
    if q.ndim < 3 or c == 1.0:
        return q
    mid = median_index(quantiles)
    med = q[..., mid:mid + 1]
    return med + c * (q - med)


def interval_scale(parts: list[Part], models, quantiles) -> float:
    """Split-conformal calibration on the validation split (held out from ``models``): the factor
    (>= 1) by which the outermost interval must be widened around the median to hold its
    nominal share of the validation points, with the finite-sample correction."""
    need = []
    for p in parts:
        o = p.origins["val"]
        if not len(o):
            continue
        q = predict_paths(models, p.prep, o)  # (W, h, Q)
        a = p.actual(o)  # (W, h)
        med, lo, hi = q[..., median_index(quantiles)], q[..., 0], q[..., -1]
        with np.errstate(divide="ignore", invalid="ignore"):
            c = np.maximum((med - a) / np.maximum(med - lo, 1e-12), (a - med) / np.maximum(hi - med, 1e-12))
        need.append(c[np.isfinite(a)])
    c = np.concatenate(need) if need else np.array([])
    if c.size < 5:
        return 1.0
    level = quantiles[-1] - quantiles[0]
    k = min(1.0, np.ceil((c.size + 1) * level) / c.size)
    # only ever widen: a validation split of a few dozen points is too little evidence to narrow
    # what the pinball loss fitted on every training window (narrowing lowered test coverage on
    # the benchmark suite from 0.73 to 0.69)
    return float(np.clip(np.quantile(c, k), 1.0, 10.0))


def _score(parts: list[Part], models, key: str, quantiles) -> float:
    """Mean over series of the validation MAE / MASE scale (the search's criterion)."""
    errs = []
    for p in parts:
        o = p.origins[key]
        if not len(o):
            continue
        pred = _point(predict_paths(models, p.prep, o), quantiles)
        actual = p.actual(o)
        scale = p.mase_scale(p.train.stop)
        ok = np.isfinite(actual)
        errs.append(np.abs(pred - actual)[ok].mean() / (scale if np.isfinite(scale) else 1.0))
    return float(np.mean(errs)) if errs else math.inf


def score_test(cfg: ForecastConfig, parts: list[Part], models, c_int: float,
               baselines: bool = True) -> tuple[dict, dict]:
    """A rolling origin over each part's test split, the LSTM (intervals widened by ``c_int``)
    beside the baselines on the same origins: ({series: {model: metrics}}, {series: forecasts})."""
    per_series, forecasts = {}, {}
    it = parts
    try:
        from tqdm.auto import tqdm

        it = tqdm(parts, desc="baselines", leave=False,
                  disable=cfg.no_progress or not sys.stderr.isatty() or len(parts) < 3 or not baselines)
    except ImportError:  # pragma: no cover
        pass
    for p in it:
        o, prep = p.origins["test"], p.prep
        if not len(o):
            continue
        actual = p.actual(o)  # (W, h); NaN = not observed
        lstm = widen(predict_paths(models, prep, o), c_int, cfg.quantiles)
        preds = {"lstm": _point(lstm, cfg.quantiles)}
        if baselines:
            preds.update(baseline_forecasts(prep.raw_level, p.val.stop, o, cfg.horizon, cfg.season))
        scale = p.mase_scale(p.val.stop)
        ms = {k: forecast_metrics(actual, v, scale) for k, v in preds.items()}
        if cfg.quantiles:
            ms["lstm"].update(quantile_metrics(actual, lstm, cfg.quantiles, scale))
        per_series[p.series.name] = ms
        forecasts[p.series.name] = dict(origins=o, actual=actual, **preds,
                                        **({"lstm_q": lstm} if cfg.quantiles else {}))
    return per_series, forecasts


# --- the job --------------------------------------------------------------------------------
def _tag(cfg: ForecastConfig, name: str, cand: Candidate, seed: int, epochs: int | None = None) -> str:
    """A training's folder under ``out/train``: its name plus a hash of everything it depends on,
    so rerunning the same command resumes a killed run, and a changed one never resumes a stale one."""
    import hashlib

    keep = {k: v for k, v in cfg.to_dict().items() if k not in ("out", "no_progress", "threads")}
    key = json.dumps([keep, asdict(cand), seed, epochs], sort_keys=True, default=str)
    return f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:8]}"


def train(config: ForecastConfig, data: pd.DataFrame | None = None, echo=print, log=None) -> Result:
    """Run the whole job (module docstring); ``data`` replaces ``config.csv`` when given."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    with limited_threads(config.threads):  # a small recurrent model runs fastest on one thread
        return _train(config, data, echo, log)


def _train(cfg: ForecastConfig, data, echo, log) -> Result:
    t_start = time.perf_counter()
    series, source = load_series(cfg, data)
    given = {f.name for f in fields(cfg) if getattr(cfg, f.name) is not None}
    why = resolve(cfg, series)
    many = len(series) > 1
    for k, v in why.items():
        log(f"forecast: {k} = {v}")
    created = prepare_out(cfg.out)
    work = os.path.join(cfg.out, "train")
    try:
        res = _fit_and_score(cfg, series, source, given, why, work, many, log)
    except BaseException:
        if created:
            shutil.rmtree(cfg.out, ignore_errors=True)
        raise
    res.seconds = time.perf_counter() - t_start
    n_pts = sum(len(s.values) for s in series)
    p0 = res.forecasts[next(iter(res.forecasts))]
    title = (f"{len(series)} series, {n_pts} points" if many else f"{n_pts} points") + \
        f", test {res.choices['n_test']}, {len(p0['origins'])} rolling origins" + \
        ("" if not many else " each") + f", horizon {cfg.horizon}, season {cfg.season}; " \
        f"lstm {res.choices['model']} in {res.choices['train_seconds']:.1f} s"
    echo(format_table(res.metrics, title))
    echo(f"wrote {cfg.out}/metrics.json, config.json, forecast.png, model.pt in {res.seconds:.1f} s")
    return res



def log_allowed(series) -> bool:
    """Whether the search may model log levels: every target value of every series is > 0."""
    return all(np.nanmin(s.values[:, 0]) > 0 for s in series)

def _search(cfg: ForecastConfig, series: list[Series], base: Candidate, given: set, n_train: int,
            run, searched: list, log) -> tuple:
    """Candidates on the validation split, each changing one thing of the best so far that the
    config left open: the representation (diff / level / sdiff), log levels, a longer or shorter
    input (bounded by ``n_train``, the shortest training split), a smaller model. ``run(cand,
    seed, tag)`` trains one; each is logged and appended to ``searched``. Returns the best
    (validation MASE, candidate, model, trainer)."""
    many = len(series) > 1
    results = {}

    def trial(cand):
        tag = f"search-{'log-' if cand.log else ''}{cand.transform}-T{cand.input_len}-H{cand.hidden_size}"
        if tag in results:
            return results[tag]
        model, trainer, ps = run(cand, cfg.seed, tag)
        score = _score(ps, [model], "val", cfg.quantiles)
        results[tag] = (score, cand, model, trainer)
        searched.append(dict(candidate=cand.label(), val_mase=round(score, 4),
                             epochs=best_epoch(trainer)))
        log(f"forecast: search {cand.label():<22} validation MASE {score:.4f} "
            f"({trainer.epoch} epochs)")
        return results[tag]

    best = trial(base)
    if "transform" not in given:
        flip = "level" if base.transform == "diff" else "diff"
        other = Candidate(base.input_len, flip, base.hidden_size, base.log)
        r = trial(other)
        best = min(best, r, key=lambda t: t[0])
        if cfg.season > 1:  # a correction to the seasonal naive forecast
            r = trial(Candidate(base.input_len, "sdiff", base.hidden_size, base.log))
            best = min(best, r, key=lambda t: t[0])
    if "log" not in given and log_allowed(series):
        # multiplicative growth or seasonality is additive in logs
        b = best[1]
        r = trial(Candidate(b.input_len, b.transform, b.hidden_size, True))
        best = min(best, r, key=lambda t: t[0])
    if "input_len" not in given:
        T = best[1].input_len
        longer = 2 * T if (2 * T <= (n_train // 3 if not many else 2 * n_train)) else None
        alt = longer or max(2, T // 2)
        if alt != T:
            r = trial(Candidate(alt, best[1].transform, best[1].hidden_size, best[1].log))
            best = min(best, r, key=lambda t: t[0])
    if "hidden_size" not in given:
        r = trial(Candidate(best[1].input_len, best[1].transform, max(8, best[1].hidden_size // 2),
                            best[1].log))
        best = min(best, r, key=lambda t: t[0])
    return best


def _fit_and_score(cfg, series, source, given, why, work, many, log) -> Result:
    base_t = cfg.transform or ("level" if many else "diff")
    base = Candidate(cfg.input_len, base_t, cfg.hidden_size, bool(cfg.log))
    searched: list[dict] = []
    parts_cache: dict = {}

    def parts_for(cand: Candidate, refit: bool):
        key = (cand.transform, cand.input_len, cand.log, refit)
        if key not in parts_cache:
            c = replace(cfg, input_len=cand.input_len)
            parts_cache[key] = _parts(c, series, cand.transform, refit, cand.log)
        return parts_cache[key]

    def run(cand: Candidate, seed: int, tag: str):
        tag = _tag(cfg, tag, cand, seed)
        ps = parts_for(cand, False)
        c = replace(cfg, input_len=cand.input_len)
        model, trainer = fit_model(c, cand, ps, "train", "val", seed, os.path.join(work, tag))
        return model, trainer, ps

    t0 = time.perf_counter()
    winner, members, epochs_needed = base, 1, None
    if cfg.search:
        n_train = min(p.train.stop for p in parts_for(base, False))  # the shortest training split
        score, winner, model, trainer = _search(cfg, series, base, given, n_train, run, searched, log)
        epochs_needed = max(2, best_epoch(trainer))
        # a seed ensemble: the median of K models, kept only where it lowers the validation error
        K = cfg.ensemble if cfg.ensemble is not None else 3
        if K > 1:
            ms = [model]
            for k in range(1, K):
                mk, _, _ = run(winner, cfg.seed + k, f"ensemble-{k}")
                ms.append(mk)
            e_score = _score(parts_for(winner, False), ms, "val", cfg.quantiles)
            keep = cfg.ensemble is not None or e_score < 0.98 * score
            log(f"forecast: ensemble of {K} validation MASE {e_score:.4f} vs {score:.4f} alone: "
                + ("kept" if keep else "not worth its cost (needs 2% better)"))
            searched.append(dict(candidate=f"{winner.label()} x{K} seeds", val_mase=round(e_score, 4),
                                 epochs=epochs_needed))
            members = K if keep else 1
        val_models = ms if members > 1 else [model]
        val_parts = parts_for(winner, False)
        # refit on train + validation for as many epochs as the winner needed
        ps = parts_for(winner, True)
        c = replace(cfg, input_len=winner.input_len)
        models, trainers = [], []
        for k in range(members):
            m_, tr_ = fit_model(c, winner, ps, "refit", None, cfg.seed + k,
                                os.path.join(work, _tag(cfg, f"refit-{k}", winner, cfg.seed + k,
                                                        epochs_needed)),
                                epochs=epochs_needed)
            models.append(m_)
            trainers.append(tr_)
        log(f"forecast: chose {winner.label()}" + (f" x{members} seeds" if members > 1 else "") +
            f"; refitted on train + validation for {epochs_needed} epochs")
    else:
        K = cfg.ensemble or 1
        models, trainers = [], []
        for k in range(K):
            m_, tr_, ps = run(winner, cfg.seed + k, f"model-{k}")
            models.append(m_)
            trainers.append(tr_)
        members = K
        ps = parts_for(winner, False)
        val_models, val_parts = models, ps
    c_int = interval_scale(val_parts, val_models, cfg.quantiles) if cfg.quantiles else 1.0
    if cfg.quantiles:
        log(f"forecast: intervals x{c_int:.2f} around the median, so that the "
            f"{round(100 * (cfg.quantiles[-1] - cfg.quantiles[0]))}% interval holds that share of the "
            f"validation points (split-conformal calibration)")
    train_s = time.perf_counter() - t0
    cfg.input_len, cfg.transform, cfg.hidden_size, cfg.ensemble = (winner.input_len, winner.transform,
                                                                  winner.hidden_size, members)
    cfg.log = winner.log
    per_series, forecasts = score_test(cfg, ps, models, c_int)
    metrics = {k: {m: float(np.nanmean([ps_[k][m] for ps_ in per_series.values()]))
                   for m in per_series[next(iter(per_series))][k]}
               for k in per_series[next(iter(per_series))]}
    choices = dict(why, model=f"{winner.label()}" + (f" x{members}" if members > 1 else ""),
                   interval_scale=float(c_int), n_test=ps[0].test.stop - ps[0].test.start,
                   train_seconds=round(train_s, 2), source=source, n_series=len(series))
    res = Result(cfg, metrics, per_series, choices, searched, forecasts, 0.0, cfg.out)
    write(res, models, ps, trainers)
    return res


# --- predict / evaluate from a saved run ----------------------------------------------------
def load(checkpoint: str) -> tuple[ForecastConfig, list[Forecaster], dict]:
    """A saved run -> (its resolved config, its models, its per-series scalers)."""
    path = os.path.join(checkpoint, "model.pt") if os.path.isdir(checkpoint) else checkpoint
    ck = load_checkpoint(path)
    for key in ("model_config", "forecast_config", "models", "scalers"):
        if key not in ck:
            raise ValueError(f"checkpoint {path!r}: expected a forecast checkpoint with {key!r}")
    cfg = ForecastConfig(**ck["forecast_config"])
    mcfg = ForecasterConfig(**ck["model_config"])
    models = []
    for sd in ck["models"]:
        m = Forecaster(mcfg)
        m.load_state_dict(sd)
        models.append(m)
    models[0].interval_scale = float(ck.get("interval_scale", 1.0))
    return cfg, models, ck["scalers"]


def predict(checkpoint: str, csv: str | None = None, data: pd.DataFrame | None = None,
            out: str | None = None, echo=print) -> dict[str, np.ndarray]:
    """Forecast ``horizon`` steps past the end of each series in ``csv`` (or ``data``) with a
    saved run: {series: (h,) median, or (h, Q) quantiles}. Writes ``out/predictions.csv``."""
    cfg, models, scalers = load(checkpoint)
    if csv is None and data is None:
        raise ValueError("csv: expected the series to forecast from (a CSV with the run's columns)")
    run_cfg = ForecastConfig(**{**cfg.to_dict(), "csv": csv})
    series, _ = load_series(run_cfg, data)
    rows, result = [], {}
    qs = cfg.quantiles or []
    for s in series:
        n = len(s.values)
        if n < 2:
            raise ValueError(f"csv: series {s.name!r} has {n} points; expected at least 2")
        spec = SeriesSpec(target=s.name, time=cfg.time, covariates=list(cfg.covariates),
                          input_len=cfg.input_len, horizon=cfg.horizon, season=cfg.season,
                          impute=cfg.impute, freq=s.freq, transform=cfg.transform, log=bool(cfg.log))
        sc = scalers.get(s.name) or next(iter(scalers.values()))
        prep = Prepared(spec, s.values, s.times, scaler=StandardScaler().load_state_dict(sc),
                        sdiff_stats=sc.get("sdiff"))
        if prep.input_size != models[0].config.input_size:
            raise ValueError(f"csv: expected {models[0].config.input_size} features like the "
                             f"checkpoint, got {prep.input_size}")
        prep.extend(cfg.horizon)
        pred = widen(predict_paths(models, prep, np.array([n - 1])), models[0].interval_scale,
                     qs)[0]  # (h[, Q])
        result[s.name] = pred
        when = future_times(s.times, s.freq, n, cfg.horizon)
        keys = ([str(t.date()) if t.time() == t.time().min else str(t) for t in when]
                if when is not None else [str(n + k) for k in range(cfg.horizon)])
        for k, key in enumerate(keys):
            med = _point(pred[None], qs)[0, k] if pred.ndim == 2 else pred[k]
            qv = [f"{v:.6g}" for v in pred[k]] if pred.ndim == 2 else []
            rows.append([s.name, key, f"{med:.6g}", *qv])
    name_t = cfg.time or "step"
    head = ["series", name_t, f"{cfg.target or 'value'}_forecast"] + [f"q{q:g}" for q in qs]
    if len(series) == 1:
        head, rows = head[1:], [r[1:] for r in rows]
    text = "\n".join(",".join(r) for r in [head, *rows]) + "\n"
    if out:
        os.makedirs(out, exist_ok=True)
        atomic_write(os.path.join(out, "predictions.csv"), lambda p: open(p, "w").write(text))
    echo(text.rstrip())
    return result


def evaluate(checkpoint: str, data: pd.DataFrame | None = None, csv: str | None = None) -> dict:
    """Re-score a saved run's models on the test split of ``data``/``csv`` (its own config's
    split and origins): {series: {"lstm": metrics}}. The inputs are scaled with the scalers saved
    with the run (what its models were trained with: fitted on train + validation after the
    search, on the training split without it); a series the run did not have gets its own, fitted
    as the run would have."""
    cfg, models, scalers = load(checkpoint)
    cfg.csv = csv or cfg.csv
    series, _ = load_series(cfg, data)
    parts = _parts(cfg, series, cfg.transform, refit=bool(cfg.search), log=bool(cfg.log),
                   scalers=scalers)
    return score_test(cfg, parts, models, models[0].interval_scale, baselines=False)[0]
