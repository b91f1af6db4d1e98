"""``lstmkit tag train|predict``: label every token with a BiLSTM (softmax or CRF).

``lstmkit tag train [--dataset stdlib_tokens | --conll FILE [--test-conll FILE]] --out DIR``
trains on the training split (validation: whole files of it), scores the held-out test split
beside the most-frequent-tag baseline, and writes DIR/metrics.json, config.json, model.pt,
confusion.png. ``lstmkit tag predict --checkpoint DIR (--conll FILE | --source FILE.py)``.
"""

from __future__ import annotations

import argparse
import os

from ..jobs import tag as job
from ._labelled import add_common_flags, start


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tag", help="sequence labelling: BiLSTM(-CRF) vs most-frequent-tag "
                                   "(default data: Python stdlib tokens)",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=["train", "predict"])
    p.add_argument("--dataset", default=None, help="catalogue name (default stdlib_tokens)")
    p.add_argument("--conll", help="'token tag' lines, blank line between sentences")
    p.add_argument("--test-conll", help="test data (default: hold out --test-size sentences)")
    p.add_argument("--source", help="predict: a Python file, tokenised by tokenize")
    p.add_argument("--test-size", type=float, default=0.2)
    p.add_argument("--val-size", type=float, default=0.1, help="of the training data")
    p.add_argument("--crf", action="store_true", help="linear-chain CRF output (Viterbi)")
    p.add_argument("--no-chars", action="store_true", help="no character BiLSTM")
    p.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm")
    p.add_argument("--hidden-size", type=int, default=96)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--patience", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    add_common_flags(p, "tag")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if start(args):
        job.predict(args.checkpoint, conll=args.conll, source=args.source, out=args.out,
                    threads=args.threads)
        return 0
    if args.conll and args.dataset:
        raise ValueError("--dataset/--conll: expected one of them, got both")
    cfg = job.TagConfig(
        dataset=None if args.conll else (args.dataset or "stdlib_tokens"), conll=args.conll,
        test_conll=args.test_conll, test_size=args.test_size, val_size=args.val_size,
        out=args.out or os.path.join("runs", "tag"), crf=args.crf, chars=not args.no_chars,
        cell=args.cell, hidden_size=args.hidden_size, epochs=args.epochs, patience=args.patience,
        batch_size=args.batch_size, lr=args.lr, seed=args.seed, baselines=not args.no_baselines,
        progress=False if args.no_progress else None, threads=args.threads)
    job.train(cfg)
    print(f"wrote {cfg.out}/metrics.json, config.json, model.pt, confusion.png")
    return 0
