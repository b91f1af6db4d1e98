"""``python -m lstmkit.kernels build``: compile the fused C++ kernels now (the set-up step), so
the first call that uses them compiles nothing; ``python -m lstmkit.kernels status``: say whether
they are built for these sources and where.

``build`` exits 0 when the kernels cannot be built (no compiler): lstmkit then runs everything
on its reference engine; ``--strict`` makes that an error (exit 1).
"""

from __future__ import annotations

import argparse
import sys
import time

from . import _loader


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lstmkit.kernels", description=__doc__.split("\n")[0])
    ap.add_argument("command", choices=["build", "status"])
    ap.add_argument("--strict", action="store_true", help="build: exit 1 when the kernels cannot be built")
    ap.add_argument("--verbose", action="store_true", help="build: show the compiler's commands")
    args = ap.parse_args(argv)
    path = _loader.library_path()
    if args.command == "status":
        built = _loader.is_built()
        print(f"fused kernels: {'built' if built else 'not built'} ({path})")
        return 0 if built else 1
    t0 = time.perf_counter()
    try:
        if args.verbose:
            _loader._state.update(tried=True, module=_loader._build(verbose=True))
        else:
            _loader.build()
    except Exception as e:  # noqa: BLE001 - any failure: report it, the reference engine serves
        print(f"lstmkit: the fused kernels could not be built ({type(e).__name__}: {e}); "
              "engine='auto' runs the reference engine", file=sys.stderr)
        return 1 if args.strict else 0
    print(f"fused kernels ready in {time.perf_counter() - t0:.1f} s: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
