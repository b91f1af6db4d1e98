"""``lstmkit lm``: train a character/word LSTM language model and generate text with it.

``lstmkit lm train [--text PATH ...] [--level char|word] [--max-steps N] [--max-time S] [--seed S] --out DIR``
writes DIR/model.pt (config + weights), DIR/tokenizer.json and DIR/metrics.json
(``val_loss`` nats/token, ``val_ppl`` per token, ``val_bpc`` bits per character, and the
unigram baseline's bits per character on the same validation text). Without ``--text`` it
trains on the Python standard library's own source files.

``lstmkit lm generate --checkpoint DIR --prompt TEXT --strategy greedy|sample|beam ...`` prints
the prompt followed by the generated text.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

import torch

from ..data.text import EOS_ID, atomic_write_text, load_tokenizer, make_tokenizer, read_corpus, stdlib_corpus
from ..decoding import beam_search, greedy, sample
from ..models.language_model import (
    LanguageModel,
    LanguageModelConfig,
    evaluate_language_model,
    fit_language_model,
    lm_metrics,
    load_language_model,
    save_language_model,
)


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


def unigram_bpc(text: str) -> float:
    """Entropy (bits per character) of the text's own character frequencies: the unigram baseline."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lm", help="LSTM language model: train, generate")
    lm_sub = p.add_subparsers(dest="lm_command", required=True)

    t = lm_sub.add_parser("train", help="train on text files (default: the Python stdlib sources)")
    t.add_argument("--text", nargs="+", metavar="PATH", help="UTF-8 text files (default: stdlib .py files)")
    t.add_argument("--level", choices=["char", "word"], default="char")
    t.add_argument("--max-steps", type=int, default=2000)
    t.add_argument("--max-time", type=float, default=None, metavar="SECONDS")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", required=True, metavar="DIR")
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--bptt", type=int, default=64)
    t.add_argument("--embedding-dim", type=int, default=64)
    t.add_argument("--hidden-size", type=int, default=256)
    t.add_argument("--num-layers", type=int, default=1)
    t.add_argument("--dropout", type=float, default=0.0, help="embedding/output/between-layer dropout")
    t.add_argument("--lr", type=float, default=3e-3)
    t.add_argument("--val-fraction", type=float, default=0.1)
    t.add_argument("--max-chars", type=int, default=1_000_000, help="cap on the default stdlib corpus")
    t.add_argument("--no-progress", action="store_true")
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
    if not 0 < args.val_fraction < 1:
        raise ValueError(f"--val-fraction: expected a number in (0, 1), got {args.val_fraction}")
    for name in ("batch_size", "bptt", "max_steps"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}")
    if args.text:
        texts = read_corpus(args.text, echo=_err)
        source = f"{len(texts)} file(s)"
    else:
        texts = stdlib_corpus(args.max_chars)
        source = f"the Python standard library ({len(texts)} files)"
    text = "\n".join(texts)
    n_val = max(1, int(len(text) * args.val_fraction))
    train_text, val_text = text[:-n_val], text[-n_val:]
    tok = make_tokenizer(args.level, [train_text], **({"min_freq": 1} if args.level == "word" else {}))
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)
    if len(train_ids) < 2 * args.batch_size:
        raise ValueError(f"text: the training part has {len(train_ids)} tokens, --batch-size "
                         f"{args.batch_size} needs at least {2 * args.batch_size}; give more text or a "
                         f"smaller --batch-size")
    if len(val_ids) < 2:
        raise ValueError(f"text: the validation part has {len(val_ids)} tokens, need at least 2; "
                         f"give more text or a larger --val-fraction")
    _err(f"lm train: {source}, {len(train_text):,} train / {len(val_text):,} val chars, "
         f"{args.level} vocabulary {len(tok):,} (incl. 4 specials + 256 bytes)")
    torch.manual_seed(args.seed)
    d = args.dropout
    config = LanguageModelConfig(vocab_size=len(tok), embedding_dim=args.embedding_dim,
                                 hidden_size=args.hidden_size, num_layers=args.num_layers, dropout=d,
                                 embedding_dropout=d, output_dropout=d)
    model = LanguageModel(config)
    fit = fit_language_model(model, train_ids, batch_size=args.batch_size, bptt=args.bptt, lr=args.lr,
                             max_steps=args.max_steps, max_time=args.max_time, seed=args.seed,
                             progress=not args.no_progress)
    val_batch = max(1, min(16, len(val_ids) // (args.bptt + 1)))
    loss = evaluate_language_model(model, val_ids, batch_size=val_batch, bptt=args.bptt)
    # the evaluated stream: batchify drops the tail, and each row's first token is not predicted
    n_eval = (len(val_ids) // val_batch - 1) * val_batch
    n_chars = len(val_text) * n_eval / len(val_ids)
    metrics = lm_metrics(loss, n_eval, n_chars)
    metrics.update({"unigram_bpc": unigram_bpc(val_text), "train_loss": fit["train_loss"],
                    "steps": fit["steps"], "seconds": fit["seconds"], "level": args.level,
                    "vocab_size": len(tok), "train_chars": len(train_text), "val_chars": len(val_text)})
    out = Path(args.out)
    save_language_model(model, out / "model.pt", level=args.level, bptt=args.bptt,
                        max_context=16 * args.bptt)
    tok.save(out / "tokenizer.json")
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"val cross-entropy {metrics['val_loss']:.4f} nats/token, perplexity {metrics['val_ppl']:.2f}, "
          f"{metrics['val_bpc']:.3f} bits/char (unigram {metrics['unigram_bpc']:.3f}) after "
          f"{fit['steps']} steps in {fit['seconds']:.1f} s; wrote {out}")
    return 0


def run_generate(args: argparse.Namespace) -> int:
    ckpt = Path(args.checkpoint)
    model_path = ckpt / "model.pt" if ckpt.is_dir() else ckpt
    tok_path = model_path.parent / "tokenizer.json"
    for p in (model_path, tok_path):
        if not p.exists():
            raise FileNotFoundError(f"--checkpoint: {p} not found (expected the --out folder of `lm train`)")
    model, extra = load_language_model(model_path)
    tok = load_tokenizer(tok_path)
    if len(tok) != model.config.vocab_size:
        raise ValueError(f"--checkpoint: tokenizer has {len(tok)} tokens but the model expects "
                         f"{model.config.vocab_size}")
    if args.max_new_tokens < 0:
        raise ValueError(f"--max-new-tokens: expected >= 0, got {args.max_new_tokens}")
    prompt = args.prompt
    if not prompt:
        raise ValueError("--prompt: expected at least one character, got an empty prompt")
    unknown = tok.unknown(prompt)
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        how = "encoded as UTF-8 byte tokens" if tok.byte_fallback else "mapped to <unk>"
        _err(f"note: the prompt has {len(unknown)} {tok.level}(s) not seen in training ({shown}); "
             f"{how}, so the model knows little about them")
    ids = tok.encode(prompt)
    max_context = args.max_context or int(extra.get("max_context", 1024))
    if max_context < 1:
        raise ValueError(f"--max-context: expected >= 1, got {max_context}")
    if len(ids) > max_context:
        _err(f"note: the prompt is {len(ids)} tokens, longer than the context of {max_context}; "
             f"only its last {max_context} tokens condition the generation (--max-context to change)")
        ids = ids[-max_context:]
    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    with torch.no_grad():
        last, state = model.prime(ids)
        if args.strategy == "greedy":
            new = greedy(model.step, last, state, max_new_tokens=args.max_new_tokens, eos_id=EOS_ID)[0]
        elif args.strategy == "sample":
            new = sample(model.step, last, state, max_new_tokens=args.max_new_tokens,
                         temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
                         generator=g, eos_id=EOS_ID)[0]
        else:
            hyps = beam_search(model.step, last, state, beam_width=args.beam_width,
                               max_new_tokens=args.max_new_tokens, eos_id=EOS_ID)
            for i, h in enumerate(hyps):
                _err(f"beam {i}: score {h.score:.4f}, log-prob {h.log_prob:.3f}, {len(h.tokens)} tokens")
            new = torch.tensor(hyps[0].tokens, dtype=torch.long)
    print(prompt + tok.decode(new))
    return 0
