"""Flags and dispatch shared by ``lstmkit classify`` and ``lstmkit tag`` (same job shape)."""

from __future__ import annotations

import argparse

from ..train.trainer import PRECISIONS


def add_common_flags(p: argparse.ArgumentParser, defaults) -> None:
    """The flags after the job's own: seed, baselines, progress, threads, checkpoint, out; the
    defaults are read from ``defaults``, the job's config dataclass built with no arguments."""
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--no-baselines", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--threads", type=int, default=defaults.threads,
                   help=f"torch and BLAS threads (default {defaults.threads})")
    p.add_argument("--precision", choices=PRECISIONS, default=defaults.precision,
                   help=f"bfloat16: train under autocast, score in float32 ({defaults.precision})")
    p.add_argument("--checkpoint", help="predict: model.pt or a training --out DIR")
    p.add_argument("--out", help=f"output directory (default {defaults.out})")


def start(args: argparse.Namespace) -> bool:
    """True when the action is predict (and --checkpoint is given)."""
    if args.action != "predict":
        return False
    if not args.checkpoint:
        raise ValueError("--checkpoint: required for predict")
    return True
