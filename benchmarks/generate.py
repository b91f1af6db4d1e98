"""Greedy generation speed of the language model: a one-step layer call through the packed step
kernel (what ``lk.LSTM`` runs in eval without gradients) against the one-step sequence call it
replaced, same model, same tokens (checked equal).

    python -m benchmarks.generate [--tokens 300] [--runs 3] [--hidden 256] [--layers 2]
"""

from __future__ import annotations

import argparse
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
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=args.vocab, hidden_size=args.hidden,
                                              num_layers=args.layers)).eval()
    real = lk.LSTM._streams
    paths = {"packed step": real, "one-step sequence call": lambda *a: False}
    rates: dict[str, list[float]] = {k: [] for k in paths}
    outs = {}
    try:
        with torch.no_grad():
            greedy(model.step, torch.tensor([1]), max_new_tokens=5)  # packs the weights
            for _ in range(args.runs):  # alternated run by run
                for name, fn in paths.items():
                    lk.LSTM._streams = fn
                    t0 = time.perf_counter()
                    outs[name] = greedy(model.step, torch.tensor([1]), max_new_tokens=args.tokens)
                    rates[name].append(args.tokens / (time.perf_counter() - t0))
    finally:
        lk.LSTM._streams = real
    same = torch.equal(*outs.values())
    print(f"greedy generation, LM {args.layers} x {args.hidden}, vocab {args.vocab}, B=1, 1 thread; "
          f"same tokens on both paths: {same}")
    print("| path | tokens/s (median of runs) | runs |\n|---|---|---|")
    for name, r in rates.items():
        print(f"| {name} | {sorted(r)[len(r) // 2]:.0f} | {', '.join(f'{v:.0f}' for v in r)} |")
    if not same:
        raise SystemExit("the two paths generated different tokens")


if __name__ == "__main__":
    main()
