"""``--nproc N`` (and the multi-node flags) for a job's ``train``: relaunch under torchrun.

``lstmkit <job> train --nproc 2 ...`` runs ``torchrun --standalone --nproc-per-node 2 -m lstmkit
<job> train ...`` (the same flags minus these); every process runs the job and the Trainer
inside it trains data parallel (see :mod:`lstmkit.train.distributed`). Across machines, run the
same command on each with ``--nnodes N --node-rank i --rdzv HOST:PORT``.
"""

from __future__ import annotations

import argparse
import os

from ..train import distributed

_FLAGS = ("--nproc", "--nnodes", "--node-rank", "--rdzv")


def add_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data parallel (torchrun)")
    g.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="processes on this machine (default 1); the batch is split across them")
    g.add_argument("--nnodes", type=int, default=1, metavar="N", help="machines (default 1)")
    g.add_argument("--node-rank", type=int, default=0, metavar="I", help="this machine's index")
    g.add_argument("--rdzv", metavar="HOST:PORT", help="rendezvous address (multi-node)")


def _strip(argv: list[str]) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in _FLAGS:
            skip = True
            continue
        if a.split("=", 1)[0] in _FLAGS:
            continue
        out.append(a)
    return out


def maybe_launch(args: argparse.Namespace) -> int | None:
    """Relaunch under torchrun when asked (and not already inside it); the exit code, or None
    when this process should run the job itself."""
    if args.nproc < 1:
        raise ValueError(f"nproc: expected an int >= 1, got {args.nproc}")
    if (args.nproc == 1 and args.nnodes <= 1) or "RANK" in os.environ:
        return None
    return distributed.launch(_strip(args._argv), args.nproc, nnodes=args.nnodes,
                              node_rank=args.node_rank, rdzv=args.rdzv)
