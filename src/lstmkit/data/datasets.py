"""The dataset catalogue: one loader per offline source (DESIGN.md section 7).

Nothing here downloads. Every loader reads data from where an installed package (pip or Debian)
put it, from the Python standard library, or generates it from a seed. Each entry records one
line of provenance and its licence; ``lstmkit datasets`` lists them.

A job's loaders live in a module of their own (``data/_<job>_sets.py``) and register here with
:func:`register`; :func:`load` and :func:`catalogue` import those modules on first use.

>>> from lstmkit.data import datasets
>>> "co2" in datasets.names()
True
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

# modules that call register() when imported (one per job family)
_SOURCES = [
    "lstmkit.data._forecast_sets",
    "lstmkit.data._seq2seq_sets",
    "lstmkit.data._classify_sets",
    "lstmkit.data._anomaly_sets",
    "lstmkit.data._speech_sets",
]


@dataclass(frozen=True)
class Entry:
    name: str
    task: str  # "forecast" | "classify" | "tag" | "lm" | "seq2seq" | "anomaly" | "speech"
    loader: Callable
    provenance: str  # where it comes from, one line
    licence: str
    needs: str = ""  # the pip extra or Debian package that provides it, if not a core dependency


_REGISTRY: dict[str, Entry] = {}
_loaded = False


def register(name: str, *, task: str, provenance: str, licence: str, needs: str = ""):
    """Decorator: ``@register("gunpoint", task="classify", provenance=..., licence=...)``."""

    def wrap(fn: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"dataset {name!r} is registered twice")
        _REGISTRY[name] = Entry(name, task, fn, provenance, licence, needs)
        return fn

    return wrap


def _ensure_loaded() -> None:
    global _loaded
    if not _loaded:
        for mod in _SOURCES:
            importlib.import_module(mod)
        _loaded = True


def catalogue(task: str | None = None) -> list[Entry]:
    """Every registered entry (optionally of one task), sorted by task then name."""
    _ensure_loaded()
    entries = [e for e in _REGISTRY.values() if task is None or e.task == task]
    return sorted(entries, key=lambda e: (e.task, e.name))


def names(task: str | None = None) -> list[str]:
    return [e.name for e in catalogue(task)]


def load(name: str, **kwargs):
    """Load one dataset by name; what it returns is documented by its loader."""
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ValueError(f"dataset: expected one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name].loader(**kwargs)
