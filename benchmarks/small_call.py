"""Small-call overhead: one forward of a tiny layer (default T=3, B=2, H=8) against torch.nn.

The per-call Python cost of lstmkit's layers (argument checks, state, engine choice, the
runner) is what dominates at these sizes. With ``--base DIR`` a second copy of lstmkit (for
example an export of an older commit: ``git archive REV src | tar -x -C DIR``) is loaded in the
same process under another name and the two are timed alternately (in a new order every
round), so that the machine's load falls on both alike; the clock is the process's CPU time by
default, which leaves out the time spent waiting for a core on a shared machine.

    python benchmarks/small_call.py --reps 1000 --rounds 40 --base /tmp/base/src
"""

from __future__ import annotations

import argparse
import importlib
import random
import sys
import time
import timeit

import torch


def load_alias(src: str, alias: str, modules: tuple[str, ...] = ("lstmkit.nn", "lstmkit.kernels")):
    """Import the lstmkit under ``src`` (and its ``modules``) as ``alias`` (the current one is
    put back after); its families are pointed at its own kernels (the registry names them by
    absolute module name)."""
    saved = {k: v for k, v in sys.modules.items() if k == "lstmkit" or k.startswith("lstmkit.")}
    for k in saved:
        del sys.modules[k]
    sys.path.insert(0, src)
    try:
        mod = importlib.import_module("lstmkit")
        for name in modules:
            importlib.import_module(name)
        # the package exports its layers lazily (importlib by absolute name at first access):
        # resolve them now, while "lstmkit" is this copy, or they would come from the current one
        for name in getattr(mod, "__all__", ()):
            setattr(mod, name, getattr(mod, name))
        for k in [k for k in sys.modules if k == "lstmkit" or k.startswith("lstmkit.")]:
            sys.modules[alias + k[len("lstmkit"):]] = sys.modules.pop(k)
    finally:
        sys.path.remove(src)
        sys.modules.update(saved)
    registry = sys.modules.get(alias + ".functional.registry")
    for fam in registry.families() if registry is not None else ():
        if fam.fused and fam.fused.startswith("lstmkit."):
            object.__setattr__(fam, "fused", alias + fam.fused[len("lstmkit"):])  # a frozen dataclass
    return mod


def cases(lk, T: int, B: int, H: int):
    """name -> (module, input) for one lstmkit."""
    torch.manual_seed(0)
    x = torch.randn(T, B, H)
    return {
        "LSTM auto": (lk.LSTM(H, H), x),
        "LSTM reference": (lk.LSTM(H, H, engine="reference"), x),
        "GRU auto": (lk.GRU(H, H), x),
        "LSTM lengths": (lk.LSTM(H, H), x, [T, T - 1]),
        # 2 layers x 2 directions on our engines (auto serves the plain LSTM with torch's own)
        "LSTM peephole 2L bidir": (lk.LSTM(H, H, 2, bidirectional=True, peephole=True), x),
        "LSTM fused 2L bidir": (lk.LSTM(H, H, 2, bidirectional=True, engine="fused"), x),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--T", type=int, default=3)
    ap.add_argument("--B", type=int, default=2)
    ap.add_argument("--H", type=int, default=8)
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--base", help="src/ folder of another lstmkit to compare (loaded as base)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="cpu: this process's CPU time (the time it waits for a core on a shared "
                         "machine is left out); wall: perf_counter")
    args = ap.parse_args()
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    torch.set_num_threads(1)
    import lstmkit as lk

    trees = {"this": lk}
    if args.base:
        trees["base"] = load_alias(args.base, "lstmkit_base")
    torch.manual_seed(0)
    x = torch.randn(args.T, args.B, args.H)
    ref = {"torch.nn.LSTM": torch.nn.LSTM(args.H, args.H), "torch.nn.GRU": torch.nn.GRU(args.H, args.H)}
    runs = {}
    for name, m in ref.items():
        runs[name] = (lambda m=m: m(x))
    for tag, mod in trees.items():
        for name, (m, inp, *lens) in cases(mod, args.T, args.B, args.H).items():
            if lens:
                runs[f"{name} [{tag}]"] = (lambda m=m, inp=inp, n=lens[0]: m(inp, lengths=n))
            else:
                runs[f"{name} [{tag}]"] = (lambda m=m, inp=inp: m(inp))
    best = {k: float("inf") for k in runs}
    with torch.no_grad():
        for fn in runs.values():
            fn()
        order = list(runs)
        for r in range(args.rounds):  # alternate: each round times every case once, in a new order
            random.Random(r).shuffle(order)
            for k in order:
                t = timeit.Timer(runs[k], timer=clock).timeit(number=args.reps)
                best[k] = min(best[k], t / args.reps)
    print(f"T={args.T} B={args.B} H={args.H}, no_grad, 1 thread, {args.clock} time, best of "
          f"{args.rounds} x {args.reps} calls (us per call)")
    for k, v in best.items():
        print(f"  {k:28s} {v * 1e6:8.2f}")


if __name__ == "__main__":
    main()
