"""Thread limits for small work on a shared box: torch's intra-op pool and the BLAS pools.

A small recurrent model, and statsmodels' state-space filters on tiny matrices, run fastest on one
thread: extra threads only spin (measured 40x slower with 2 OpenBLAS threads on a busy 2-core
machine). ``limited_threads(n)`` sets both pools to ``n`` inside a block and restores them after.

>>> import torch
>>> before = torch.get_num_threads()
>>> with limited_threads(1):
...     torch.get_num_threads()
1
>>> torch.get_num_threads() == before
True
"""

from __future__ import annotations

import contextlib

import torch


def blas_threads(n: int):
    """A context that limits the BLAS pools (OpenBLAS, MKL, BLIS via threadpoolctl) to ``n``;
    a no-op where threadpoolctl is not installed (it comes with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with the forecast/classify extras
        return contextlib.nullcontext()
    return threadpool_limits(n)


@contextlib.contextmanager
def limited_threads(n: int):
    """torch's intra-op threads and the BLAS pools set to ``n`` (>= 1) inside the block."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"threads: expected an int >= 1, got {n!r}")
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with blas_threads(n):
            yield
    finally:
        torch.set_num_threads(before)
