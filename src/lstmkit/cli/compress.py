"""``lstmkit compress CHECKPOINT --method ...``: a smaller model, with its size and agreement."""

from __future__ import annotations

from ..export.compress import METHODS


def add_parser(sub) -> None:
    p = sub.add_parser("compress", help="compress a checkpoint (int8, half, pruning, low rank)",
                       description="Compress an lstmkit checkpoint and write the result plus "
                       "compress.json (bytes, parameters, max abs difference of the outputs from "
                       "the original on random inputs). Fine-tuning after pruning or low rank "
                       "needs the task's data: see lstmkit.export.compress.fine_tune.")
    p.add_argument("checkpoint", help="checkpoint file or folder holding model.pt")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--amount", type=float, default=0.5, help="magnitude: fraction of weights zeroed")
    p.add_argument("--keep", type=float, default=0.5,
                   help="prune: hidden units kept (a fraction < 1, or a count)")
    p.add_argument("--rank", type=float, default=0.25,
                   help="low-rank: rank (a fraction <= 1 of full rank, or a count)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..export.checkpoints import compress_checkpoint

    info = compress_checkpoint(args.checkpoint, args.out, args.method, amount=args.amount,
                               keep=args.keep, rank=args.rank)
    for k, v in info.items():
        print(f"{k:>26}: {v}")
    return 0
