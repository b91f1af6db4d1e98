"""``lstmkit inspect CHECKPOINT``: what a trained LM, forecaster or classifier does inside (gates, saturation,
hidden-state trajectories, interpretable cells, attributions), as PNGs."""

from __future__ import annotations

import os


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="gates, saturation, trajectories, cells, attributions (PNG)",
                       description="Inspect a trained model: for an `lstmkit lm train` folder, gate "
                       "heatmaps over held-out text, gate saturation (Karpathy et al. 2015 Fig. 3), "
                       "the hidden-state PCA trajectory, and the search for cells tracking "
                       "strings, bracket depth, indentation and the position in the line (chosen "
                       "on the validation text, re-scored on the test text), with the text "
                       "coloured by the best ones. For an `lstmkit forecast` folder: gates, "
                       "saturation, PCA and the attribution of the first forecast step to its "
                       "input steps (integrated gradients via captum, and saliency). For an "
                       "`lstmkit classify` folder: gates, saturation, PCA over training examples "
                       "and (series) the attribution of the predicted class.")
    p.add_argument("checkpoint", help="the --out folder of `lstmkit lm train`, `forecast` or "
                   "`classify`")
    p.add_argument("--out", default=None, metavar="DIR", help="default: CHECKPOINT/inspect")
    p.add_argument("--chars", type=int, default=16_000, help="LM: characters of validation and "
                   "of test text to run")
    p.add_argument("--top", type=int, default=1, help="LM: cells reported per feature")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..analysis import inspection as I

    if args.chars < 1000 and os.path.exists(args.checkpoint) and I.is_lm_folder(args.checkpoint):
        raise ValueError(f"--chars: expected at least 1000, got {args.chars}")
    I.inspect_checkpoint(args.checkpoint, args.out, chars=args.chars, top=args.top)
    return 0
