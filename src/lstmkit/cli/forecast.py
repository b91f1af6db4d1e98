"""``lstmkit forecast``: flags -> :class:`lstmkit.jobs.forecast.ForecastConfig` (argparse only).

Symbols: h horizon. The job (automatic choices, search, baselines, artefacts) lives in
:mod:`lstmkit.jobs.forecast`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..jobs import forecast as job
from ..jobs import online
from . import _launch
from ._types import add_online_flags, boolean, count_or_fraction


def _quantiles(s: str) -> list[float] | None:
    if s.strip().lower() in ("", "none"):
        return None
    try:
        return [float(v) for v in s.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected levels like 0.1,0.5,0.9, got {s!r}") from None


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = job.ForecastConfig()
    p = sub.add_parser("forecast", help="LSTM forecasting vs naive / seasonal naive / ETS / ARIMA / "
                                        "Theta (default data: weekly Mauna Loa CO2)",
                       usage="lstmkit forecast [train|predict|online] [options]",
                       description="Train an LSTM forecaster that adapts to the series (season, sizes, "
                                   "a small search, seed ensemble, quantiles) and score it with a "
                                   "rolling origin beside the statsmodels baselines.")
    a = p.add_argument
    a("action", nargs="?", default="train", choices=["train", "predict", "online"],
      help="train (default), predict from --checkpoint, or online: replay the series as a stream "
           "(online vs frozen vs retrain-from-scratch)")
    a("--csv", metavar="PATH", help="CSV file (default: statsmodels' weekly Mauna Loa CO2)")
    a("--target", metavar="COL", help="column to forecast")
    a("--time", metavar="COL", help="time column: timestamps, years or periods like 1990Q1")
    a("--covariates", nargs="*", default=[], metavar="COL", help="extra numeric input columns")
    a("--id", metavar="COL", help="long format: the series id column (one global model)")
    a("--wide", action="store_true", help="wide format: every numeric column is a series")
    a("--horizon", type=int, metavar="N", default=d.horizon, help=f"steps ahead (default {d.horizon})")
    a("--input-len", type=int, metavar="N", help="input window (default: from season and horizon)")
    a("--test-size", type=count_or_fraction, metavar="N",
      help="count or fraction (default: from length and season)")
    a("--val-size", type=count_or_fraction, metavar="N",
      help="count or fraction (default: from length and season)")
    a("--season", type=int, metavar="M", help="seasonal period (default: from the data)")
    a("--transform", choices=["diff", "level", "sdiff"], metavar="T",
      help="diff, level or sdiff (default: searched)")
    a("--log", type=boolean, metavar="BOOL",
      help="model log levels, for multiplicative growth/seasonality (default: searched when > 0)")
    a("--mode", default=d.mode, choices=["single", "direct", "recursive", "seq2seq"], metavar="MODE",
      help="direct (default), single, recursive, seq2seq")
    a("--impute", default=d.impute, choices=["ffill", "interpolate"], metavar="HOW",
      help="ffill (default, causal) or interpolate")
    a("--hidden-size", type=int, metavar="H", help="LSTM units (default 64; 48 for many series)")
    a("--num-layers", type=int, default=d.num_layers, metavar="L")
    a("--epochs", type=int, default=d.epochs, metavar="N")
    a("--batch-size", type=int, default=d.batch_size, metavar="B")
    a("--lr", type=float, default=d.lr, metavar="LR")
    a("--patience", type=int, default=d.patience, metavar="N")
    a("--quantiles", type=_quantiles, metavar="Q,..", default=d.quantiles,
      help="levels, or 'none' (default 0.1,0.5,0.9)")
    a("--search", dest="search", action="store_const", const=True, default=None,
      help="try a few candidates, refit on train+val (default: where cheap)")
    a("--no-search", dest="search", action="store_const", const=False, help="one model, no refit")
    a("--ensemble", type=int, metavar="K", help="K seeds, median (default: 3 if it helps on validation)")
    a("--eval-stride", type=int, default=d.eval_stride, metavar="N", help="step between test origins")
    a("--seed", type=int, default=d.seed, metavar="S")
    a("--threads", type=int, default=d.threads, metavar="N", help="torch threads (default 1)")
    a("--no-progress", action="store_true", help="no progress bars")
    a("--checkpoint", metavar="DIR", help="predict: a training run's --out (or its model.pt)")
    a("--out", metavar="DIR", help="output directory (default runs/forecast)")
    a("--config", metavar="FILE", help="train: TOML, or a run's config.json (reproduces it); flags win")
    _launch.add_flags(p)
    od = online.OnlineConfig()
    o = p.add_argument_group("online (lstmkit forecast online)")
    add_online_flags(o, od, "points", "replayed windows")
    o.add_argument("--change-point", type=int, metavar="T", help="a known change, for the report")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> job.ForecastConfig:
    kw = {f.name: getattr(args, f.name) for f in fields(job.ForecastConfig) if hasattr(args, f.name)}
    return job.config_from_flags(kw, getattr(args, "config", None))


def run(args: argparse.Namespace) -> int:
    if args.config and args.action != "train":
        raise ValueError(f"--config: only for forecast train, got it with {args.action}")
    if args.action == "predict":
        if not args.checkpoint or not args.csv:
            raise ValueError("forecast predict: expected --checkpoint DIR and --csv PATH")
        job.predict(args.checkpoint, csv=args.csv, out=args.out)
    elif args.action == "online":
        cfg = online.OnlineConfig(warmup=args.warmup, update_every=args.update_every,
                                  replay=args.replay, change_point=args.change_point,
                                  seed=args.seed,
                                  **({"hidden_size": args.hidden_size} if args.hidden_size else {}))
        online.forecast_online(args.csv, target=args.target, time=args.time,
                               out=args.out or "runs/forecast-online", config=cfg,
                               progress=not args.no_progress)
    else:
        code = _launch.maybe_launch(args)
        if code is not None:
            return code
        job.train(config_from_args(args))
    return 0
