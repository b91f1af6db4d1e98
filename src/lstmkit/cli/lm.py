"""``lstmkit lm``: flags -> ``jobs.lm`` (argparse only; the job lives in ``lstmkit.jobs.lm``).

``lstmkit lm train [--text PATH ...] --out DIR`` trains a character (or word) LSTM language model
with validation, early stopping and the best weights restored, prints it beside Kneser-Ney and
unigram baselines, and writes DIR/config.json, metrics.json, model.pt, tokenizer.json, loss.png.
Without ``--text`` it trains on the Python standard library's own source files.

``lstmkit lm generate --checkpoint DIR --prompt TEXT --strategy greedy|sample|beam ...`` prints
the prompt followed by the generated text.
"""

from __future__ import annotations

import argparse

from ..functional.lstm import STEP_WEIGHTS
from ..jobs import lm as job
from ..train.trainer import PRECISIONS
from . import _launch

_D = job.LMConfig(out="-")  # the defaults, shown in --help


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="LSTM language model: train, generate")
    lm_sub = p.add_subparsers(dest="lm_command", required=True)

    t = lm_sub.add_parser("train", help="train on text files (default: the Python stdlib sources)",
                          usage="lstmkit lm train --out DIR [--text PATH ...] [options]")
    t.add_argument("--text", nargs="+", metavar="PATH", help="UTF-8 text files (default: stdlib .py files)")
    t.add_argument("--out", metavar="DIR", help="output folder (required, here or in --config)")
    t.add_argument("--config", metavar="FILE.toml", help="the same fields as the flags; flags win")

    def opt(flag: str, type_, help_: str, metavar: str = "N") -> None:
        name = flag[2:].replace("-", "_")
        default = getattr(_D, name)
        t.add_argument(flag, type=type_, default=default, metavar=metavar,
                       help=f"{help_} ({'auto' if default is None else default})")

    t.add_argument("--level", choices=["char", "word"], default=_D.level, help="(char)")
    t.add_argument("--precision", choices=PRECISIONS, default=_D.precision,
                   help="training precision: bfloat16 runs the forward under torch.autocast with "
                        "float32 weights; validation and test are scored in float32 (float32)")
    opt("--max-steps", int, "optimizer steps")
    opt("--max-time", float, "training budget in seconds, 0: none", "S")
    opt("--seed", int, "seed")
    opt("--batch-size", int, "parallel streams")
    opt("--bptt", int, "truncated-BPTT chunk length")
    opt("--embedding-dim", int, "embedding size (== hidden size when tied)")
    opt("--hidden-size", int, "LSTM units")
    opt("--num-layers", int, "LSTM layers")
    opt("--dropout", float, "dropout between LSTM layers", "P")
    opt("--embedding-dropout", float, "dropout on the embeddings", "P")
    opt("--output-dropout", float, "dropout on the LSTM output", "P")
    t.add_argument("--no-tie-weights", dest="tie_weights", action="store_false",
                   help="separate decoder weights (default: decoder = embedding)")
    opt("--lr", float, "AdamW learning rate (warm-up, then cosine)", "X")
    opt("--weight-decay", float, "AdamW weight decay", "X")
    opt("--warmup-steps", int, "LR warm-up steps; auto: 5%% of max-steps, <= 30")
    opt("--val-every", int, "validate every N steps; auto: ~4 times an epoch")
    opt("--patience", int, "validations without gain before stopping")
    opt("--lr-drops", int, "times patience first divides the LR by 4")
    opt("--val-fraction", float, "validation part of the text", "F")
    opt("--test-fraction", float, "test part of the text (scored once, at the end)", "F")
    opt("--max-chars", int, "cap on the default stdlib corpus")
    opt("--ngram-order", int, "order of the Kneser-Ney baseline")
    t.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    t.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start afresh even if --out holds an interrupted run of this config")
    _launch.add_flags(t)
    t.set_defaults(func=run_train)

    g = lm_sub.add_parser("generate", help="generate text from a trained model")
    g.add_argument("--checkpoint", required=True, metavar="DIR", help="the --out folder of `lm train`")
    g.add_argument("--prompt", required=True)
    g.add_argument("--strategy", choices=["greedy", "sample", "beam"], default="sample")
    g.add_argument("--temperature", type=float, default=1.0)
    g.add_argument("--top-k", type=int, default=None)
    g.add_argument("--top-p", type=float, default=None)
    g.add_argument("--beam-width", type=int, default=4)
    g.add_argument("--max-new-tokens", type=int, default=200)
    g.add_argument("--max-context", type=int, default=None,
                   help="longest prompt in tokens (default: the checkpoint's, 16 x bptt)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--step-weights", choices=STEP_WEIGHTS, default="full",
                   help="weight precision of each generated token's LSTM step (default full)")
    g.set_defaults(func=run_generate)


def run_train(args: argparse.Namespace) -> int:
    code = _launch.maybe_launch(args)
    if code is not None:
        return code
    flags = {name: getattr(args, name) for name in job.config_fields()}
    job.train(job.config_from_flags(flags, args.config))
    return 0


def run_generate(args: argparse.Namespace) -> int:
    print(job.predict(args.checkpoint, args.prompt, strategy=args.strategy,
                      temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                      beam_width=args.beam_width, max_new_tokens=args.max_new_tokens,
                      max_context=args.max_context, seed=args.seed, step_weights=args.step_weights))
    return 0
