"""``lstmkit ablate``: Greff et al.'s eight LSTM variants trained with the same budget and
seeds, ranked with confidence intervals."""

from __future__ import annotations


def add_parser(sub) -> None:
    from ..analysis.ablate import VARIANTS, AblateConfig

    d, q = AblateConfig(), AblateConfig.quick()

    p = sub.add_parser("ablate", help="Greff et al.'s LSTM variants ranked (char LM on the stdlib)",
                       description="Train the peephole LSTM and its eight one-change variants (NIG, "
                       "NFG, NOG, NIAF, NOAF, CIFG, NP, FGR) with the same data, steps and seeds on "
                       "a character LM of Python's standard library, and rank them by validation "
                       "bits/char with 95%% t intervals over seeds (the test text is never read).")
    p.add_argument("--quick", action="store_true", help="a small budget (about a minute)")
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"some of {','.join(VARIANTS)}")
    p.add_argument("--seeds", type=int, default=None, help=f"({d.seeds}; quick {q.seeds})")
    p.add_argument("--steps", type=int, default=None,
                   help=f"optimizer steps per run ({d.steps}; quick {q.steps})")
    p.add_argument("--hidden-size", type=int, default=None,
                   help=f"({d.hidden_size}; quick {q.hidden_size})")
    p.add_argument("--out", default="ablate", metavar="DIR", help="writes ablate.png, ablate.json")
    p.set_defaults(func=run)


def run(args) -> int:
    from dataclasses import replace

    from tqdm import tqdm

    from ..analysis.ablate import AblateConfig, ablate, format_table, save

    cfg = AblateConfig.quick() if args.quick else AblateConfig()
    over = {k: v for k, v in (("seeds", args.seeds), ("steps", args.steps),
                              ("hidden_size", args.hidden_size)) if v is not None}
    cfg = replace(cfg, variants=tuple(v for v in args.variants.split(",") if v), **over)
    res = ablate(cfg, progress=lambda jobs: tqdm(jobs, desc="ablate", unit="run", leave=False))
    print(format_table(res))
    print(f"wrote {save(res, args.out)}")
    return 0
