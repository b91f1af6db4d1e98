"""``lstmkit forecast``: train an LSTM forecaster, score it against classical baselines.

Symbols: N time points, F features, T input length, h horizon, W forecast origins.

``lstmkit forecast [--csv PATH --target COL --time COL --covariates ...] --horizon N --out DIR``
trains on the train split (early stopping on validation), then evaluates with a rolling origin
over the test split: at every origin t the LSTM, naive, seasonal naive and ETS forecast
t+1..t+h from data up to t only. Missing values are forward-filled by default because that is
causal (interpolation would use the value after a gap, i.e. after the origin). Writes
DIR/metrics.json, DIR/forecast.png, DIR/model.pt (and DIR/train/ with the Trainer's
checkpoints and metrics.csv), and prints the table.

``lstmkit forecast predict --checkpoint DIR --csv PATH`` forecasts h steps beyond the end.

Without ``--csv`` it runs on statsmodels' weekly Mauna Loa CO2 (season 52).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import warnings

import numpy as np
import torch

from ..data.timeseries import (
    Prepared,
    SeriesSpec,
    co2_frame,
    future_times,
    infer_freq,
    infer_season,
    read_csv,
    read_frame,
    split_for,
)
from ..data.windows import make_windows, window_origins
from ..models.forecaster import Forecaster, ForecasterConfig
from ..train.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from ..train.metrics import forecast_metrics, mase_scale
from ..train.trainer import TrainConfig, Trainer

MODELS = ("lstm", "naive", "seasonal_naive", "ets")


# --- baselines -------------------------------------------------------------------------------
def naive_forecast(level: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Last value repeated: (W, h)."""
    return np.repeat(level[origins][:, None], horizon, axis=1)


def seasonal_naive_forecast(level: np.ndarray, origins: np.ndarray, horizon: int,
                            season: int) -> np.ndarray:
    """The value one season before each target step (only data up to the origin): (W, h)."""
    k = np.arange(1, horizon + 1)
    back = season * ((k - 1) // season + 1)  # (h,) smallest multiple of the season >= k
    return level[origins[:, None] + k - back]


def ets_forecast(level: np.ndarray, fit_end: int, origins: np.ndarray, horizon: int,
                 season: int) -> np.ndarray:
    """statsmodels Holt-Winters (additive trend [+ additive season]) fitted on ``level[:fit_end]``;
    its fixed parameters then filter the series in one causal pass, so the forecast at origin t
    uses data up to t only (the same numbers as refitting with those parameters at every t)."""
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    seasonal = "add" if season > 1 and fit_end >= 2 * season + 2 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = ExponentialSmoothing(level[:fit_end], trend="add", seasonal=seasonal,
                                   seasonal_periods=season if seasonal else None,
                                   initialization_method="estimated").fit()
    p = res.params
    a, b = p["smoothing_level"], p["smoothing_trend"]
    m = season if seasonal else 1
    g = p["smoothing_seasonal"] if seasonal else 0.0
    s = list(p["initial_seasons"]) if seasonal else [0.0]
    lv, tr = p["initial_level"], p["initial_trend"]
    want = {int(o): i for i, o in enumerate(origins)}
    out = np.empty((len(origins), horizon))
    k = np.arange(1, horizon + 1)
    for t in range(int(origins.max()) + 1):
        sm = s[t] if seasonal else 0.0
        new_l = a * (level[t] - sm) + (1 - a) * (lv + tr)
        new_b = b * (new_l - lv) + (1 - b) * tr
        s.append(g * (level[t] - lv - tr) + (1 - g) * sm if seasonal else 0.0)
        lv, tr = new_l, new_b
        if t in want:
            seas = np.array([s[t + 1 + (kk - 1) % m] for kk in k]) if seasonal else 0.0
            out[want[t]] = lv + k * tr + seas
    return out


# --- LSTM ------------------------------------------------------------------------------------
def _tensors(prep: Prepared, origins: np.ndarray, horizon: int):
    spec = prep.spec
    x, y, _ = make_windows(prep.features, prep.d_scaled, spec.input_len, horizon, origins=origins)
    fut = prep.future_features(origins, horizon)
    return torch.from_numpy(x), torch.from_numpy(fut).float(), torch.from_numpy(y)


def forecast_loss(model, batch) -> torch.Tensor:
    """MSE on the cumulative sum of scaled differences, i.e. on the level path."""
    x, fut, y = batch
    pred = model(x, fut)  # (B, h)
    return torch.nn.functional.mse_loss(pred.cumsum(1), y.cumsum(1))


@torch.no_grad()
def predict_levels(model: Forecaster, prep: Prepared, origins: np.ndarray) -> np.ndarray:
    model.eval()
    x, fut, _ = _tensors_x(prep, origins, model.config.horizon)
    return prep.to_levels(model(x, fut).double().numpy(), origins)


def _tensors_x(prep: Prepared, origins: np.ndarray, horizon: int):
    back = np.arange(-prep.spec.input_len + 1, 1)
    x = prep.features[origins[:, None] + back]  # (W, T, F)
    return torch.from_numpy(x), torch.from_numpy(prep.future_features(origins, horizon)).float(), None


def _pad_future(prep: Prepared, horizon: int) -> None:
    """Append the calendar rows of ``horizon`` future steps so forecasts past the end have them."""
    if prep.n_future == 0:
        return
    from ..data.timeseries import calendar_features

    ft = future_times(prep.times, prep.spec.freq, len(prep.times), horizon)
    extra = np.zeros((horizon, prep.features.shape[1]), np.float32)
    extra[:, -prep.n_future:] = calendar_features(ft)
    prep.features = np.concatenate([prep.features, extra])


# --- the job ---------------------------------------------------------------------------------
def _load(args) -> tuple[SeriesSpec, np.ndarray, object]:
    if args.csv:
        if not args.target:
            raise ValueError("--target: required with --csv (the column to forecast)")
        values, times = read_csv(args.csv, args.target, args.time, args.covariates)
        target, time_col = args.target, args.time
    else:
        if args.target not in (None, "co2") or args.covariates:
            raise ValueError("--target/--covariates: need --csv (the default data has one column, co2)")
        target, time_col = "co2", "date"
        values, times = read_frame(co2_frame(), target, time_col)
    freq = infer_freq(times)
    season = args.season if args.season is not None else infer_season(freq)
    if season < 1:
        raise ValueError(f"--season: expected >= 1, got {season}")
    spec = SeriesSpec(target=target, time=time_col, covariates=list(args.covariates or []),
                      input_len=args.input_len, horizon=args.horizon, season=season,
                      impute=args.impute, freq=freq)
    return spec, values, times


def _prepare_out(out: str) -> tuple[str, bool]:
    """Make sure --out can be written before any work; returns (work dir inside it, created)."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"--out {out!r}: expected a directory, got an existing file")
    created = not os.path.exists(out)
    try:
        os.makedirs(out, exist_ok=True)
        work = tempfile.mkdtemp(prefix=".work-", dir=out)
    except OSError as e:
        if created and os.path.isdir(out) and not os.listdir(out):
            os.rmdir(out)
        raise ValueError(f"--out {out!r}: expected a writable directory, got {e.strerror or e}") from None
    return work, created


def run_forecast(args: argparse.Namespace, echo=print) -> dict:
    """Train + rolling-origin evaluation; returns {"metrics": ..., "seconds": ..., ...}."""
    t_start = time.perf_counter()
    threads = torch.get_num_threads()
    # a small recurrent model runs fastest on one thread (more threads spin on a busy machine)
    torch.set_num_threads(getattr(args, "threads", 1))
    try:
        return _run_forecast(args, echo, t_start)
    finally:
        torch.set_num_threads(threads)


def _run_forecast(args: argparse.Namespace, echo, t_start: float) -> dict:
    for name in ("horizon", "input_len", "epochs", "batch_size", "hidden_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    spec, values, times = _load(args)
    n = len(values)
    tr, va, te = split_for(n, spec, args.test_size, args.val_size)
    if te.stop - te.start < spec.horizon:
        raise ValueError(f"--test-size: expected at least horizon={spec.horizon} test points, "
                         f"got {te.stop - te.start}")
    prep = Prepared(spec, values, times, scaler=None, train=tr)
    T, h = spec.input_len, spec.horizon
    o_train = window_origins(n, T, h, 1, first=T, last=tr.stop - 1 - h)
    o_val = window_origins(n, T, h, 1, first=max(T, va.start - 1), last=va.stop - 1 - h)
    o_test = window_origins(n, T, h, args.eval_stride, first=te.start - 1)
    if len(o_train) < 1:
        raise ValueError(f"series: the train split ({tr.stop} points) is shorter than "
                         f"input_len + horizon + 1 = {T + h + 1}")
    work, created = _prepare_out(args.out)
    try:
        torch.manual_seed(args.seed)
        cfg = ForecasterConfig(input_size=prep.features.shape[1], horizon=h, mode=args.mode,
                               hidden_size=args.hidden_size, num_layers=args.num_layers,
                               n_future=prep.n_future)
        model = Forecaster(cfg)
        g = torch.Generator().manual_seed(args.seed)
        ds = torch.utils.data.TensorDataset(*_tensors(prep, o_train, h))
        train_loader = torch.utils.data.DataLoader(ds, batch_size=args.batch_size, shuffle=True,
                                                   generator=g)
        val_loader = None
        if len(o_val):
            vds = torch.utils.data.TensorDataset(*_tensors(prep, o_val, h))
            val_loader = torch.utils.data.DataLoader(vds, batch_size=512)
        tcfg = TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed, patience=args.patience,
                           progress=False if args.no_progress else None, resume=False)
        extra = dict(model_config=cfg, series_spec=spec.to_dict(), scaler=prep.scaler.state_dict())
        trainer = Trainer(model, forecast_loss, tcfg, os.path.join(work, "train"), extra=extra)
        t0 = time.perf_counter()
        history = trainer.fit(train_loader, val_loader)
        train_s = time.perf_counter() - t0
        trainer.load_best()

        level, observed = prep.level, prep.observed
        actual = observed[o_test[:, None] + np.arange(1, h + 1)]  # (W, h); NaN = not observed
        preds = {
            "lstm": predict_levels(model, prep, o_test),
            "naive": naive_forecast(level, o_test, h),
            "seasonal_naive": seasonal_naive_forecast(level, o_test, h, spec.season),
            "ets": ets_forecast(level, te.start, o_test, h, spec.season),
        }
        scale = mase_scale(observed[tr], spec.season)
        metrics = {k: forecast_metrics(actual, p, scale) for k, p in preds.items()}

        save_checkpoint(os.path.join(work, "model.pt"), model=model.state_dict(), model_config=cfg,
                        series_spec=spec.to_dict(), scaler=prep.scaler.state_dict(),
                        train_config=tcfg, epoch=trainer.epoch, step=trainer.step, metrics=metrics)
        report = {**metrics, "setup": dict(
            data=args.csv or "statsmodels co2 (weekly Mauna Loa)", n_points=n,
            train=tr.stop, val=va.stop - va.start, test=te.stop - te.start, origins=len(o_test),
            horizon=h, input_len=T, season=spec.season, mode=args.mode, epochs_run=trainer.epoch,
            seed=args.seed, train_seconds=round(train_s, 2))}
        atomic_write(os.path.join(work, "metrics.json"),
                     lambda p: open(p, "w").write(json.dumps(report, indent=2) + "\n"))
        _plot(os.path.join(work, "forecast.png"), prep, te, o_test, preds, metrics, h)
        for name in ("metrics.json", "forecast.png", "model.pt"):
            os.replace(os.path.join(work, name), os.path.join(args.out, name))
        dst = os.path.join(args.out, "train")
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        os.replace(os.path.join(work, "train"), dst)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if created and not os.listdir(args.out):
            os.rmdir(args.out)
        raise
    shutil.rmtree(work, ignore_errors=True)
    secs = time.perf_counter() - t_start
    echo(format_table(metrics, f"{n} points, test {te.stop - te.start}, {len(o_test)} rolling "
                               f"origins, horizon {h}, season {spec.season}; "
                               f"{trainer.epoch} epochs in {train_s:.1f} s"))
    echo(f"wrote {args.out}/metrics.json, forecast.png, model.pt in {secs:.1f} s")
    return {"metrics": metrics, "seconds": secs, "history": history, "out": args.out}


def format_table(metrics: dict, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'model':<16}{'MAE':>9}{'RMSE':>9}{'MAPE%':>9}{'sMAPE%':>9}{'MASE':>9}")
    for name, m in metrics.items():
        lines.append(f"{name:<16}" + "".join(f"{m[k]:>9.4f}" for k in
                                             ("mae", "rmse", "mape", "smape", "mase")))
    return "\n".join(lines)


def _plot(path: str, prep: Prepared, te: slice, origins, preds, metrics, h: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x_all = prep.times if prep.times is not None else np.arange(len(prep.level))
    lo = max(0, te.start - 2 * (te.stop - te.start))
    fig, ax = plt.subplots(figsize=(10, 4.5))
    ax.plot(x_all[lo:], prep.observed[lo:], color="black", lw=1.2, label="actual")
    tgt = origins + h
    for name, style in (("lstm", "-"), ("seasonal_naive", ":"), ("ets", "--")):
        ax.plot(x_all[tgt], preds[name][:, -1], style, lw=1.2,
                label=f"{name} (MAE {metrics[name]['mae']:.3g})")
    ax.axvline(x_all[te.start], color="grey", lw=0.8)
    ax.set_title(f"{prep.spec.target}: rolling-origin forecasts {h} steps ahead over the test split")
    ax.legend(loc="upper left")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)


def run_predict(args: argparse.Namespace, echo=print) -> np.ndarray:
    if not args.checkpoint or not args.csv:
        raise ValueError("forecast predict: expected --checkpoint DIR and --csv PATH")
    path = args.checkpoint
    if os.path.isdir(path):
        path = os.path.join(path, "model.pt")
    ck = load_checkpoint(path)
    for key in ("model_config", "series_spec", "scaler", "model"):
        if key not in ck:
            raise ValueError(f"--checkpoint {path!r}: expected a forecast checkpoint with {key!r}")
    spec = SeriesSpec(**ck["series_spec"])
    cfg = ForecasterConfig(**ck["model_config"])
    from ..data.scaling import StandardScaler

    values, times = read_csv(args.csv, spec.target, spec.time, spec.covariates)
    n = len(values)
    if n < spec.input_len + 1:
        raise ValueError(f"--csv: {n} points is shorter than input_len + 1 = {spec.input_len + 1}")
    prep = Prepared(spec, values, times, scaler=StandardScaler().load_state_dict(ck["scaler"]))
    if prep.features.shape[1] != cfg.input_size:
        raise ValueError(f"--csv: expected {cfg.input_size} features like the checkpoint, "
                         f"got {prep.features.shape[1]}")
    _pad_future(prep, spec.horizon)
    model = Forecaster(cfg)
    model.load_state_dict(ck["model"])
    pred = predict_levels(model, prep, np.array([n - 1]))[0]  # (h,)
    when = future_times(times, spec.freq, n, spec.horizon)
    keys = [str(t.date()) if t.time() == t.time().min else str(t) for t in when] if when is not None \
        else [str(n + k) for k in range(spec.horizon)]
    lines = [f"{spec.time or 'step'},{spec.target}_forecast"] + [f"{k},{v:.6g}" for k, v in zip(keys, pred)]
    text = "\n".join(lines) + "\n"
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        atomic_write(os.path.join(args.out, "predictions.csv"), lambda p: open(p, "w").write(text))
    echo(text.rstrip())
    return pred


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("forecast", help="LSTM forecasting vs naive / seasonal naive / ETS "
                                        "(default data: weekly Mauna Loa CO2)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("action", nargs="?", default="train", choices=["train", "predict"],
                   help="train (default): train and evaluate; predict: forecast from --checkpoint")
    p.add_argument("--csv", help="CSV file (default: statsmodels' weekly Mauna Loa CO2)")
    p.add_argument("--target", help="column to forecast")
    p.add_argument("--time", help="timestamp column (sorted, unique); enables calendar features")
    p.add_argument("--covariates", nargs="*", default=[], help="extra numeric input columns")
    p.add_argument("--horizon", type=int, default=13, help="steps ahead (default 13)")
    p.add_argument("--input-len", type=int, default=52, help="input window length (default 52)")
    p.add_argument("--test-size", type=_size, default=104, help="count or fraction (default 104)")
    p.add_argument("--val-size", type=_size, default=104, help="count or fraction (default 104)")
    p.add_argument("--season", type=int, default=None, help="seasonal period (default: inferred)")
    p.add_argument("--mode", default="direct", choices=["single", "direct", "recursive", "seq2seq"])
    p.add_argument("--impute", default="ffill", choices=["ffill", "interpolate"],
                   help="missing values (ffill is causal; interpolate looks past the gap)")
    p.add_argument("--hidden-size", type=int, default=64)
    p.add_argument("--num-layers", type=int, default=1)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--eval-stride", type=int, default=1, help="step between test origins")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint", help="predict: model.pt or the --out DIR of a training run")
    p.add_argument("--out", help="output directory (default runs/forecast; predict: optional)")
    p.set_defaults(func=run)


def _size(s: str) -> int | float:
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {s!r}") from None


def run(args: argparse.Namespace) -> int:
    try:
        if args.action == "predict":
            run_predict(args)
        else:
            if args.out is None:
                args.out = os.path.join("runs", "forecast")
            run_forecast(args)
    except FloatingPointError as e:
        print(f"lstmkit forecast: error: {e}", file=sys.stderr)
        return 1
    return 0
