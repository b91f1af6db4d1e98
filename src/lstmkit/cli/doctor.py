"""``lstmkit doctor``: this machine as lstmkit sees it (the block for a bug report)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("doctor", help="the CPU, its paths, the kernels and the versions (for bug reports)",
                       description="Print what lstmkit reads of this machine: the CPU features and "
                                   "level, which engine and GEMM path each precision takes, whether the "
                                   "kernels are built, the versions and the threads.")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..doctor import report

    print(report())
    return 0
