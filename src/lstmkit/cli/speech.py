"""``lstmkit speech``: flags -> ``jobs.speech`` (argparse only; the job lives in ``lstmkit.jobs.speech``).

``lstmkit speech data`` synthesises the spoken digit strings (espeak-ng + sox) into the cache;
``lstmkit speech train --out DIR`` trains the BiLSTM-CTC recogniser and writes config.json,
metrics.json (greedy vs beam vs beam+LM, per voice, per SNR), model.pt, posteriors.png and
wer_snr.png; ``lstmkit speech transcribe --checkpoint DIR FILE...`` prints one transcript per
file; ``lstmkit speech evaluate --checkpoint DIR --out DIR2`` scores a saved model on a test split.
"""

from __future__ import annotations

import argparse
import json

from ..jobs import speech as job

_D = job.SpeechConfig()  # the defaults, shown in --help


def _auto(v):
    return "auto" if v is None else v


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("speech", help="speech recognition: BiLSTM + CTC, beam search with an LM")
    ss = p.add_subparsers(dest="speech_command", required=True)

    def data_flags(q):
        q.add_argument("--data", metavar="DIR", help="your folder of WAV files (default: synthesised digits)")
        q.add_argument("--transcripts", metavar="FILE", help="'NAME TRANSCRIPT' lines (DIR/transcripts.txt)")
        q.add_argument("--cache", metavar="DIR",
                       help="synthesised data cache ($LSTMKIT_CACHE or ~/.cache/lstmkit)")
        q.add_argument("--utterances", type=int, default=_D.utterances, metavar="N",
                       help=f"({_D.utterances})")
        q.add_argument("--seed", type=int, default=_D.seed, help=f"({_D.seed})")

    d = ss.add_parser("data", help="synthesise the digit strings into the cache")
    d.add_argument("--cache", metavar="DIR")
    d.add_argument("--utterances", type=int, default=_D.utterances, metavar="N")
    d.add_argument("--seed", type=int, default=_D.seed)
    d.set_defaults(func=run_data)

    t = ss.add_parser("train", help="train and evaluate a recogniser")
    t.add_argument("--out", default=_D.out, metavar="DIR", help=f"({_D.out})")
    t.add_argument("--config", metavar="FILE.toml", help="any SpeechConfig fields; flags win")
    data_flags(t)

    def opt(flag, type_, help_, metavar="N"):
        name = flag[2:].replace("-", "_")
        t.add_argument(flag, type=type_, default=getattr(_D, name), metavar=metavar,
                       help=f"{help_} ({_auto(getattr(_D, name))})")

    t.add_argument("--features", choices=["logmel", "mfcc"], default=_D.features)
    opt("--hidden-size", int, "LSTM units per direction")
    opt("--num-layers", int, "LSTM layers")
    t.add_argument("--unidirectional", dest="bidirectional", action="store_false",
                   help="a causal LSTM (streamable; global CMVN)")
    opt("--subsample", int, "frames stacked into one")
    opt("--batch-size", int, "utterances per batch")
    opt("--lr", float, "AdamW learning rate", "X")
    opt("--max-steps", int, "optimizer steps")
    opt("--max-time", float, "training budget in seconds, 0: none", "S")
    opt("--noise-prob", float, "share of training utterances with added noise", "P")
    t.add_argument("--no-spec-augment", dest="spec_augment", action="store_false")
    opt("--beam-width", int, "prefix beam width")
    t.add_argument("--lm", metavar="DIR",
                   help="an `lstmkit lm train` folder for fusion (default: char n-gram)")
    opt("--lm-weight", float, "LM weight; auto: chosen on the validation voices", "X")
    opt("--insertion-bonus", float, "per-character bonus; auto: chosen with the weight", "X")
    opt("--max-test", int, "test utterances per condition; auto: all")
    t.add_argument("--no-progress", dest="progress", action="store_false", default=None,
                   help="no progress bar")
    t.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start afresh even if --out holds an interrupted run")
    t.set_defaults(func=run_train)

    r = ss.add_parser("transcribe", help="transcribe audio files with a trained model")
    r.add_argument("--checkpoint", required=True, metavar="DIR")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--decoder", choices=list(job.DECODERS), default="beam+lm")
    r.set_defaults(func=run_transcribe)

    e = ss.add_parser("evaluate", help="score a trained model on a test split")
    e.add_argument("--checkpoint", required=True, metavar="DIR")
    e.add_argument("--out", required=True, metavar="DIR")
    data_flags(e)
    e.add_argument("--max-test", type=int, default=None, metavar="N")
    e.set_defaults(func=run_evaluate)


def run_data(args) -> int:
    print(json.dumps(job.make_data(args.cache, args.utterances, args.seed), indent=2))
    return 0


def run_train(args) -> int:
    kw = {k: getattr(args, k) for k in job.config_fields() if hasattr(args, k)}
    job.train(job.config_from_flags(kw, args.config))
    return 0


def run_transcribe(args) -> int:
    for f, text in zip(args.files, job.transcribe(args.checkpoint, args.files, args.decoder)):
        print(f"{f}\t{text}")
    return 0


def run_evaluate(args) -> int:
    job.evaluate(args.checkpoint, out=args.out, data=args.data, transcripts=args.transcripts,
                 cache=args.cache, utterances=args.utterances, seed=args.seed, max_test=args.max_test)
    return 0
