"""Matplotlib (Agg) set-up and atomic PNG writes for the analysis pictures."""

from __future__ import annotations

import os


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: str | os.PathLike, dpi: int = 80) -> str:
    """Write ``fig`` as a PNG atomically and close it. Returns the path."""
    from .._io import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    pyplot().close(fig)
    return os.fspath(path)
