"""``lstmkit seq2seq``: encoder-decoder with attention: train, translate, evaluate.

``lstmkit seq2seq train --task g2p|dates [--tsv PATH] --attention KIND --out DIR`` trains (and the
no-attention baseline unless ``--no-compare-none``), prints the table and writes DIR/metrics.json,
DIR/model.pt, DIR/attention.png and DIR/accuracy_by_length.png.
``lstmkit seq2seq translate --checkpoint DIR [--beam-width K --n-best N] TEXT ...`` (or lines on stdin).
``lstmkit seq2seq evaluate --checkpoint DIR [--tsv PATH]`` scores on the test split (or a TSV).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields

from ..models.attention import KINDS
from ..models.seq2seq import SCHEDULES


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..jobs.seq2seq import Seq2SeqJobConfig

    d = Seq2SeqJobConfig()
    p = sub.add_parser("seq2seq", help="encoder-decoder with attention: train, translate, evaluate",
                       description="Sequence to sequence with attention (G2P, dates, your TSV).")
    s2 = p.add_subparsers(dest="seq2seq_command", required=True)

    t = s2.add_parser("train", help="train on a task or a TSV, score on its held-out split")
    t.add_argument("--task", choices=["g2p", "dates"], default=d.task)
    t.add_argument("--tsv", metavar="PATH", help="your data: source<TAB>target per line")
    t.add_argument("--src-tokens", choices=["char", "space"], default=d.src_tokens, help="TSV tokens")
    t.add_argument("--tgt-tokens", choices=["char", "space"], default=d.tgt_tokens, help="TSV tokens")
    t.add_argument("--attention", choices=list(KINDS), default=d.attention, metavar="KIND",
                   help=", ".join(KINDS))
    t.add_argument("--no-input-feeding", dest="input_feeding", action="store_false")
    t.add_argument("--unidirectional", dest="bidirectional", action="store_false")
    t.add_argument("--scheduled-sampling", choices=list(SCHEDULES), default=d.scheduled_sampling,
                   metavar="SCHEDULE", help="teacher-forcing decay: " + ", ".join(SCHEDULES))
    t.add_argument("--decay-k", type=float, metavar="X", default=d.decay_k)
    t.add_argument("--decay-c", type=float, metavar="X", default=d.decay_c)
    t.add_argument("--label-smoothing", type=float, metavar="X", default=d.label_smoothing)
    for name in ("embedding_dim", "hidden_size", "num_layers", "decoder_layers", "epochs", "batch_size",
                 "beam_width", "max_train", "max_test", "n_dates", "seed"):
        t.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name), metavar="N")
    t.add_argument("--dropout", type=float, metavar="X", default=d.dropout)
    t.add_argument("--lr", type=float, metavar="X", default=d.lr)
    t.add_argument("--no-compare-none", dest="compare_none", action="store_false",
                   help="skip training the no-attention baseline")
    t.add_argument("--out", required=True, metavar="DIR")
    t.add_argument("--no-progress", dest="progress", action="store_const", const=False, default=None)
    t.set_defaults(func=run_train)

    tr = s2.add_parser("translate", help="translate texts with a trained model")
    tr.add_argument("--checkpoint", required=True, metavar="DIR")
    tr.add_argument("--beam-width", type=int, default=1)
    tr.add_argument("--n-best", type=int, default=1)
    tr.add_argument("--coverage-penalty", type=float, default=0.0)
    tr.add_argument("texts", nargs="*", metavar="TEXT", help="sources (default: lines of stdin)")
    tr.set_defaults(func=run_translate)

    e = s2.add_parser("evaluate", help="score a trained model on its test split or a TSV")
    e.add_argument("--checkpoint", required=True, metavar="DIR")
    e.add_argument("--tsv", metavar="PATH")
    e.add_argument("--beam-width", type=int, default=None)
    e.add_argument("--max-test", type=int, default=None)
    e.add_argument("--out", metavar="DIR", help="write metrics.json here")
    e.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from ..jobs.seq2seq import Seq2SeqJobConfig, train

    names = {f.name for f in fields(Seq2SeqJobConfig)}
    kw = {k: v for k, v in vars(args).items() if k in names}
    res = train(Seq2SeqJobConfig(**kw))
    _err(f"wrote {res.out}")
    return 0


def run_translate(args: argparse.Namespace) -> int:
    from ..jobs.seq2seq import predict

    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ValueError("texts: expected at least one source (arguments or lines on stdin), got none")
    out = predict(args.checkpoint, texts, beam_width=args.beam_width, n_best=args.n_best,
                  coverage_penalty=args.coverage_penalty, warn=_err)
    for text, hyps in zip(texts, out):
        if args.n_best == 1:
            print(f"{text}\t{hyps[0][0]}")
        else:
            for rank, (h, sc) in enumerate(hyps, 1):
                print(f"{text}\t{rank}\t{h}\t{sc:.4f}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from ..jobs.seq2seq import evaluate, table

    metrics = evaluate(args.checkpoint, tsv=args.tsv, beam_width=args.beam_width, max_test=args.max_test,
                       out=args.out)
    print(table(metrics))
    if args.out is None:
        keys = ("exact_match", "ter", "wer")
        _err(json.dumps({k: {m: v[m] for m in keys} for k, v in metrics["models"].items()}))
    return 0
