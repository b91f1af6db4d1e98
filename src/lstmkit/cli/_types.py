"""argparse value types shared by the subcommands."""

from __future__ import annotations

import argparse


def boolean(s: str) -> bool:
    """``true/false``, ``yes/no``, ``on/off``, ``1/0`` (any case)."""
    if s.lower() in ("1", "true", "yes", "on"):
        return True
    if s.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {s!r}")


def count_or_fraction(s: str) -> int | float:
    """An int count (``12``) or a float fraction (``0.2``)."""
    try:
        return int(s)
    except ValueError:
        try:
            return float(s)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a count or a fraction, got {s!r}") from None
