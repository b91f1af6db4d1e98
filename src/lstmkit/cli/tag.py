"""``lstmkit tag train|predict``: label every token with a BiLSTM (softmax or CRF).

``lstmkit tag train [--dataset stdlib_tokens | --conll FILE [--test-conll FILE]] --out DIR``
trains on the training split (validation: whole files of it), scores the held-out test split
beside the most-frequent-tag baseline, and writes DIR/metrics.json, config.json, model.pt,
confusion.png. ``lstmkit tag predict --checkpoint DIR (--conll FILE | --source FILE.py)``.
"""

from __future__ import annotations

import argparse

from ..jobs import tag as job
from ._labelled import add_common_flags, start


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="sequence labelling: BiLSTM(-CRF) vs most-frequent-tag "
                                   "(default data: Python stdlib tokens)",
                       description=__doc__.split("\n\n")[0])
    d = job.TagConfig()  # the train action's defaults: the config's own
    p.add_argument("action", choices=["train", "predict"])
    p.add_argument("--dataset", default=None, help=f"catalogue name (default {d.dataset})")
    p.add_argument("--conll", help="'token tag' lines, blank line between sentences")
    p.add_argument("--test-conll", help="test data (default: hold out --test-size sentences)")
    p.add_argument("--source", help="predict: a Python file, tokenised by tokenize")
    p.add_argument("--test-size", type=float, default=d.test_size)
    p.add_argument("--val-size", type=float, default=d.val_size, help="of the training data")
    p.add_argument("--crf", action="store_true", default=d.crf,
                   help="linear-chain CRF output (Viterbi)")
    p.add_argument("--no-chars", dest="chars", action="store_false", default=d.chars,
                   help="no character BiLSTM")
    p.add_argument("--cell", choices=["lstm", "gru", "rnn"], default=d.cell)
    for name in ("hidden_size", "epochs", "patience", "batch_size"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name))
    p.add_argument("--lr", type=float, default=d.lr)
    add_common_flags(p, d)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if start(args):
        job.predict(args.checkpoint, conll=args.conll, source=args.source, out=args.out,
                    threads=args.threads)
        return 0
    if args.conll and args.dataset:
        raise ValueError("--dataset/--conll: expected one of them, got both")
    d = job.TagConfig()
    cfg = job.TagConfig(
        dataset=None if args.conll else (args.dataset or d.dataset), conll=args.conll,
        test_conll=args.test_conll, test_size=args.test_size, val_size=args.val_size,
        out=args.out or d.out, crf=args.crf, chars=args.chars,
        cell=args.cell, hidden_size=args.hidden_size, epochs=args.epochs, patience=args.patience,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, baselines=not args.no_baselines,
        progress=False if args.no_progress else None, precision=args.precision, threads=args.threads)
    job.train(cfg)
    print(f"wrote {cfg.out}/metrics.json, config.json, model.pt, confusion.png")
    return 0
