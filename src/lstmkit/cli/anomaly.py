"""``lstmkit anomaly train|score``: flags -> :class:`lstmkit.jobs.anomaly.AnomalyConfig` (argparse only).

The job (detectors, thresholds, baselines, metrics, artefacts) lives in :mod:`lstmkit.jobs.anomaly`.
"""

from __future__ import annotations

import argparse
import warnings
from dataclasses import fields

from ..jobs import anomaly as job
from ._types import count_or_fraction


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = job.AnomalyConfig()
    p = sub.add_parser("anomaly", help="LSTM anomaly detection (EncDec-AD, LSTM-AD) vs one-liners, "
                                       "Isolation Forest and matrix-profile discords",
                       usage="lstmkit anomaly [train|score] [options]",
                       description="Train an LSTM detector on the normal part of a series, choose its "
                                   "threshold without the test labels, and score the test part beside "
                                   "the baselines (default data: UCR anomaly archive #135).")
    a = p.add_argument
    a("action", nargs="?", default="train", choices=["train", "score"],
      help="train (default) or score new data with --checkpoint")
    a("--dataset", metavar="NAME", help="catalogue name (lstmkit datasets --task anomaly; default "
                                        "kdd_tsad_135)")
    a("--csv", metavar="PATH", help="your series: numeric value column(s), optional --label column")
    a("--value", nargs="*", default=[], metavar="COL", help="CSV value columns (default: all numeric)")
    a("--label", metavar="COL", help="CSV 0/1 anomaly label column")
    a("--train-size", type=count_or_fraction, default=d.train_size, metavar="N",
      help=f"CSV: first points (count or fraction) that train (default {d.train_size})")
    a("--detector", default=d.detector, choices=job.DETECTORS,
      help="autoencoder (EncDec-AD, default) or forecast (LSTM-AD)")
    a("--latent-only", action="store_true", help="autoencoder: decode from the latent state alone")
    a("--window", type=int, metavar="T", help="window / TBPTT length (default: from the season, <= 64)")
    a("--horizon", type=int, default=d.horizon, metavar="L", help=f"forecast: values predicted per step "
                                                                  f"(default {d.horizon})")
    a("--hidden-size", type=int, default=d.hidden_size, metavar="H")
    a("--num-layers", type=int, default=d.num_layers, metavar="L")
    a("--epochs", type=int, default=d.epochs, metavar="N")
    a("--batch-size", type=int, default=d.batch_size, metavar="B")
    a("--lr", type=float, default=d.lr, metavar="LR")
    a("--patience", type=int, default=d.patience, metavar="N")
    a("--threshold", choices=job.THRESHOLDS, help="percentile, fbeta or dynamic (default: fbeta with "
                                                  "a labelled validation series, else percentile)")
    a("--percentile", type=float, default=d.percentile, metavar="Q")
    a("--beta", type=float, default=d.beta, metavar="B", help=f"F-beta threshold's beta (default {d.beta})")
    a("--no-baselines", dest="baselines", action="store_false", help="skip the baseline detectors")
    a("--seed", type=int, default=d.seed, metavar="S")
    a("--threads", type=int, default=d.threads, metavar="N", help="torch threads (default 1)")
    a("--no-progress", action="store_true", help="no progress bars")
    a("--config", metavar="FILE", help="TOML, or a run's config.json (reproduces it); flags win")
    a("--checkpoint", metavar="DIR", help="score: a training run's --out (or its model.pt)")
    a("--out", metavar="DIR", help="output directory (default runs/anomaly; score: CHECKPOINT/score)")
    p.set_defaults(func=run)


def config_from_args(args: argparse.Namespace) -> job.AnomalyConfig:
    kw = {f.name: getattr(args, f.name) for f in fields(job.AnomalyConfig) if hasattr(args, f.name)}
    return job.config_from_flags(kw, getattr(args, "config", None))


def run(args: argparse.Namespace) -> int:
    warnings.filterwarnings("default", category=UserWarning, module="lstmkit")
    if args.action == "score":
        if not args.checkpoint:
            raise ValueError("anomaly score: expected --checkpoint DIR (a training run's --out)")
        job.score(args.checkpoint, csv=args.csv, dataset=args.dataset, label=args.label,
                  value=args.value or None, out=args.out)
        return 0
    job.train(config_from_args(args))
    return 0
