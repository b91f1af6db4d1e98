"""Greedy generation speed of the language model: a one-step layer call through the packed step
kernel (what ``lk.LSTM`` runs in eval without gradients), in each weight precision, against the
one-step sequence call it replaced; same model; the full-precision paths must give the same
tokens (checked), the reduced ones report how many of their tokens agree with them.

    python -m benchmarks.generate [--tokens 300] [--runs 3] [--hidden 256] [--layers 2]
    python -m benchmarks.generate --checkpoint RUN   # a trained `lstmkit lm train --out RUN`
    python -m benchmarks.generate --checkpoint RUN --score TEXT [--chars 20000]
        # and bits/char on held-out TEXT, stepped token by token in each precision
"""

from __future__ import annotations

import argparse
import math
import time

import torch

import lstmkit as lk
from lstmkit.decoding import greedy
from lstmkit.models.language_model import LanguageModel, LanguageModelConfig


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=300)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--vocab", type=int, default=100)
    ap.add_argument("--checkpoint", default=None, help="a trained LM (the --out folder of lm train); "
                    "default: an untrained one of --layers x --hidden, whose near-ties make reduced "
                    "precisions diverge from full precision sooner")
    ap.add_argument("--prompt", default="def ", help="with --checkpoint: the text to continue")
    ap.add_argument("--score", default=None, metavar="TEXT",
                    help="with --checkpoint: also bits/char on this held-out text file, one step a char")
    ap.add_argument("--chars", type=int, default=20_000, help="with --score: chars of it read")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    start = torch.tensor([1])
    if args.checkpoint:
        from lstmkit.jobs.lm import load

        model, tok, _ = load(args.checkpoint)
        c = model.config
        args.layers, args.hidden, args.vocab = c.num_layers, c.hidden_size, c.vocab_size
        ids = tok.encode(args.prompt)
        start = torch.tensor(ids[-1:])
    else:
        model = LanguageModel(LanguageModelConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                                                  num_layers=args.layers)).eval()
    real = lk.LSTM._streams
    paths = {f"packed step, {w}": (real, w) for w in ("full", "bfloat16", "int8")}
    paths["one-step sequence call"] = (lambda *a: False, "full")
    rates: dict[str, list[float]] = {k: [] for k in paths}
    outs = {}
    try:
        with torch.no_grad():
            for w in ("full", "bfloat16", "int8"):  # pack each precision once
                model.lstm.set_step_weights(w)
                greedy(model.step, start, max_new_tokens=5)
            for _ in range(args.runs):  # alternated run by run
                for name, (fn, w) in paths.items():
                    lk.LSTM._streams = fn
                    model.lstm.set_step_weights(w)
                    t0 = time.perf_counter()
                    outs[name] = greedy(model.step, start, max_new_tokens=args.tokens)
                    rates[name].append(args.tokens / (time.perf_counter() - t0))
    finally:
        lk.LSTM._streams = real
        model.lstm.set_step_weights("full")
    ref = outs["one-step sequence call"]
    same = torch.equal(outs["packed step, full"], ref)
    what = f"trained ({args.checkpoint})" if args.checkpoint else "untrained"
    print(f"greedy generation, {what} LM {args.layers} x {args.hidden}, vocab {args.vocab}, B=1, 1 thread; "
          f"full-precision paths give the same tokens: {same}")
    print("| path | tokens/s (median of runs) | runs | tokens equal to full precision |\n|---|---|---|---|")
    for name, r in rates.items():
        agree = (outs[name] == ref).float().mean().item()
        print(f"| {name} | {sorted(r)[len(r) // 2]:.0f} | {', '.join(f'{v:.0f}' for v in r)} | "
              f"{agree:.0%} |")
    if not same:
        raise SystemExit("the two full-precision paths generated different tokens")
    if args.checkpoint and args.score:
        with open(args.score, encoding="utf-8", errors="replace") as f:
            ids = torch.tensor(tok.encode(f.read()[:args.chars]))
        print(f"\n| step weights | bits/char on {args.score} ({len(ids) - 1} steps) | steps/s |"
              "\n|---|---|---|")
        for w in ("full", "bfloat16", "int8"):
            model.lstm.set_step_weights(w)
            state, nll, t0 = None, 0.0, time.perf_counter()
            with torch.no_grad():
                for i in range(len(ids) - 1):  # teacher-forced: each step sees the true char
                    lp, state = model.step(ids[i:i + 1], state)
                    nll -= lp[0, ids[i + 1]].item()
            rate = (len(ids) - 1) / (time.perf_counter() - t0)
            print(f"| {w} | {nll / (len(ids) - 1) / math.log(2):.6f} | {rate:.0f} |")
        model.lstm.set_step_weights("full")


if __name__ == "__main__":
    main()
