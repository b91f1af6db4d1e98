"""``lstmkit datasets``: list the offline dataset catalogue."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("datasets", help="list the bundled offline datasets",
                       description="List every dataset lstmkit can load offline, by task.")
    p.add_argument("--task", default=None, help="only this task (forecast, classify, tag, seq2seq, ...)")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..data import datasets

    entries = datasets.catalogue(args.task)
    if not entries:
        raise ValueError(f"--task: no datasets for {args.task!r}; tasks: "
                         f"{sorted({e.task for e in datasets.catalogue()})}")
    width = max(len(e.name) for e in entries)
    for e in entries:
        needs = f"  [needs {e.needs}]" if e.needs else ""
        print(f"{e.task:<9} {e.name:<{width}}  {e.provenance} ({e.licence}){needs}")
    return 0
