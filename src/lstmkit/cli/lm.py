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

from ..jobs import lm as job

_D = job.LMConfig(out="-")  # the defaults, shown in --help


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="LSTM language model: train, generate")
    lm_sub = p.add_subparsers(dest="lm_command", required=True)

    t = lm_sub.add_parser("train", help="train on text files (default: the Python stdlib sources)",
                          formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    t.add_argument("--text", nargs="+", metavar="PATH", help="UTF-8 text files (default: stdlib .py files)")
    t.add_argument("--out", required=True, metavar="DIR")
    t.add_argument("--level", choices=["char", "word"], default=_D.level)
    t.add_argument("--max-steps", type=int, default=_D.max_steps)
    t.add_argument("--max-time", type=float, default=_D.max_time, metavar="S",
                   help="training budget in seconds (0: none)")
    t.add_argument("--seed", type=int, default=_D.seed)
    t.add_argument("--batch-size", type=int, default=_D.batch_size)
    t.add_argument("--bptt", type=int, default=_D.bptt)
    t.add_argument("--embedding-dim", type=int, default=_D.embedding_dim)
    t.add_argument("--hidden-size", type=int, default=_D.hidden_size)
    t.add_argument("--num-layers", type=int, default=_D.num_layers)
    t.add_argument("--dropout", type=float, default=_D.dropout, help="between LSTM layers")
    t.add_argument("--embedding-dropout", type=float, default=_D.embedding_dropout)
    t.add_argument("--output-dropout", type=float, default=_D.output_dropout)
    t.add_argument("--no-tie-weights", dest="tie_weights", action="store_false",
                   help="separate decoder weights (tied: decoder = embedding)")
    t.add_argument("--lr", type=float, default=_D.lr)
    t.add_argument("--weight-decay", type=float, default=_D.weight_decay)
    t.add_argument("--warmup-steps", type=int, default=None, help="default: 5%% of max-steps, <= 30")
    t.add_argument("--val-every", type=int, default=None, help="default: ~4 times an epoch")
    t.add_argument("--patience", type=int, default=_D.patience, help="validations without gain")
    t.add_argument("--val-fraction", type=float, default=_D.val_fraction)
    t.add_argument("--test-fraction", type=float, default=_D.test_fraction)
    t.add_argument("--max-chars", type=int, default=_D.max_chars, help="cap on the stdlib corpus")
    t.add_argument("--ngram-order", type=int, default=_D.ngram_order, help="Kneser-Ney baseline")
    t.add_argument("--no-progress", dest="progress", action="store_false")
    t.add_argument("--no-resume", dest="resume", action="store_false",
                   help="start afresh even if --out holds an interrupted run of this config")
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
    g.set_defaults(func=run_generate)


def run_train(args: argparse.Namespace) -> int:
    kw = {name: getattr(args, name) for name in job.config_fields()}
    if kw["max_time"] is not None and kw["max_time"] <= 0:
        kw["max_time"] = None
    job.train(job.LMConfig(**kw))
    return 0


def run_generate(args: argparse.Namespace) -> int:
    print(job.predict(args.checkpoint, args.prompt, strategy=args.strategy,
                      temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                      beam_width=args.beam_width, max_new_tokens=args.max_new_tokens,
                      max_context=args.max_context, seed=args.seed))
    return 0
