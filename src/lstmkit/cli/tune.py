"""``lstmkit tune JOB --trials N``: flags -> :class:`lstmkit.jobs.tune.TuneConfig` (argparse only).

The search (Optuna TPE, pruning, resumable study, re-evaluation, plots) lives in
:mod:`lstmkit.jobs.tune`. Job fields held fixed are given as ``--set name=value`` (a JSON value
or a string), e.g. ``--set csv=sales.csv --set horizon=12`` or ``--set max_steps=300``.
"""

from __future__ import annotations

import argparse
import json

from ..jobs import tune as job
from . import _launch


def _pair(s: str) -> tuple[str, object]:
    if "=" not in s:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {s!r}")
    k, v = s.split("=", 1)
    try:
        return k.strip().replace("-", "_"), json.loads(v)
    except json.JSONDecodeError:
        return k.strip().replace("-", "_"), v


def add_parser(sub: argparse._SubParsersAction) -> None:
    d = job.TuneConfig()
    p = sub.add_parser("tune", help="hyperparameter search with Optuna (TPE, pruning, resumable)",
                       usage="lstmkit tune {forecast,lm} [--trials N] [--timeout S] "
                             "[--storage sqlite:///study.db] [options]")
    a = p.add_argument
    a("job", choices=job.JOBS)
    a("--trials", type=int, default=d.trials, metavar="N", help=f"finished trials in the study ({d.trials})")
    a("--timeout", type=float, metavar="S", help="seconds for this worker (default: none)")
    a("--storage", metavar="URL", help="optuna RDB URL (default sqlite:///OUT/study.db); "
                                       "run the same command in several processes to share it")
    a("--study-name", metavar="NAME", help="(default tune-JOB)")
    a("--pruner", choices=job.PRUNERS, default=d.pruner, help=f"({d.pruner})")
    a("--seeds", type=int, default=d.seeds, metavar="K", help=f"re-evaluation seeds ({d.seeds})")
    a("--seed", type=int, default=d.seed, metavar="S")
    a("--no-final", dest="final", action="store_false",
      help="forecast: skip the test-split run of the best and default configs")
    a("--set", dest="base", type=_pair, action="append", default=[], metavar="NAME=VALUE",
      help="a job config field held fixed (repeatable)")
    a("--out", default=d.out, metavar="DIR", help=f"({d.out})")
    _launch.add_flags(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    code = _launch.maybe_launch(args)
    if code is not None:
        return code
    job.run(job.TuneConfig(job=args.job, trials=args.trials, timeout=args.timeout,
                           storage=args.storage, study_name=args.study_name, pruner=args.pruner,
                           seeds=args.seeds, seed=args.seed, final=args.final,
                           base=dict(args.base), out=args.out))
    return 0
