"""argparse value types and flag groups shared by the subcommands."""

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


def add_online_flags(group, cfg, unit: str, replayed: str) -> None:
    """The update schedule every online job shares (``--warmup``, ``--update-every``,
    ``--replay``), with ``cfg``'s defaults; ``unit``: what the stream is made of ("points",
    "examples"), ``replayed``: what one update replays."""
    group.add_argument("--warmup", type=count_or_fraction, default=cfg.warmup, metavar="N",
                       help=f"{unit} (or fraction) fitted before streaming ({cfg.warmup})")
    group.add_argument("--update-every", type=int, default=cfg.update_every, metavar="N",
                       help=f"{unit} between updates ({cfg.update_every})")
    group.add_argument("--replay", type=int, default=cfg.replay, metavar="R",
                       help=f"{replayed} per update ({cfg.replay})")
