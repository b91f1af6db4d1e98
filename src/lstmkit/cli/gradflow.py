"""``lstmkit gradflow``: vanilla RNN vs GRU vs LSTM on the adding problem, the gradient reaching
each step and the success rate against sequence length."""

from __future__ import annotations


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in text.split(",") if v)
    except ValueError:
        raise ValueError(f"--lengths: expected comma-separated ints, got {text!r}") from None


def add_parser(sub) -> None:
    from ..analysis.gradflow import CELLS, GradflowConfig

    d = GradflowConfig()
    p = sub.add_parser("gradflow", help="vanishing gradients measured: RNN vs GRU vs LSTM",
                       description="On the adding problem: ||dLoss/dh_t|| against T - t at "
                       "initialisation and after training, and the success rate (|error| < 0.04) "
                       "against sequence length, for a vanilla RNN, a GRU and an LSTM with "
                       "forget-gate bias 0 and 1, each trained with the same budget.")
    p.add_argument("--lengths", default=",".join(map(str, d.lengths)),
                   help="sequence lengths to train at (the longest is also the probe length)")
    p.add_argument("--cells", default=",".join(d.cells), help=f"some of {','.join(CELLS)}")
    p.add_argument("--hidden-size", type=int, default=d.hidden_size)
    p.add_argument("--train-steps", type=int, default=d.train_steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default="gradflow", metavar="DIR", help="writes gradflow.png, .json")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from ..analysis.gradflow import GradflowConfig, format_table, gradflow, save

    cfg = GradflowConfig(lengths=_ints(args.lengths), cells=tuple(c for c in args.cells.split(",") if c),
                         hidden_size=args.hidden_size, train_steps=args.train_steps,
                         batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    res = gradflow(cfg, progress=lambda jobs: tqdm(jobs, desc="gradflow", unit="run", leave=False))
    print(format_table(res))
    print(f"wrote {save(res, args.out)}")
    return 0
