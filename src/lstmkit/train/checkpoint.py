"""Checkpoints: atomic writes, ``weights_only=True`` loads, clear errors for bad files.

A checkpoint is a dict of parts (state_dicts, config dicts, plain numbers/lists/strings) plus a
format marker, so a file that is not ours is told apart from one that is damaged.

>>> import os, tempfile, torch
>>> p = os.path.join(tempfile.mkdtemp(), "ck.pt")
>>> save_checkpoint(p, model={"w": torch.ones(2)}, epoch=3)
>>> ck = load_checkpoint(p)
>>> ck["epoch"], ck["model"]["w"].tolist()
(3, [1.0, 1.0])
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import asdict, is_dataclass

import torch

from .._io import atomic_write  # noqa: F401  (re-exported: part of this module's API)

FORMAT = "lstmkit-checkpoint"
VERSION = 1


def _plain(obj):
    """Dataclasses -> dicts, tuples -> lists, recursively (weights_only can load the result)."""
    if is_dataclass(obj) and not isinstance(obj, type):
        return _plain(asdict(obj))
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def save_checkpoint(path: str | os.PathLike, **parts) -> None:
    """Write ``parts`` (plus the format marker) atomically to ``path``."""
    if "format" in parts:
        raise ValueError("parts: 'format' is reserved for the checkpoint marker")
    payload = {"format": FORMAT, "version": VERSION, **_plain(parts)}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def _first_line(e: Exception) -> str:
    return (str(e).splitlines() or [""])[0][:120] or type(e).__name__


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises ``FileNotFoundError`` if missing, ``ValueError`` if corrupt or not an lstmkit file."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint: no such file {path!r}")
    try:
        ck = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message advises retrying with weights_only=False: never do that with a file
        # you did not write. Name the offending object, or the damage, instead.
        found = re.search(r"GLOBAL (\S+)", str(e))
        if not found:  # damaged bytes, not a refused object
            detail = str(e).split("WeightsUnpickler error:")[-1].strip()
            raise ValueError(f"checkpoint {path!r}: corrupt or not a torch checkpoint (expected "
                             f"a file written by lstmkit save_checkpoint): "
                             f"{(detail.splitlines() or ['unreadable'])[0][:120]}") from None
        what = f" (it holds the Python object {found.group(1)})"
        raise ValueError(f"checkpoint {path!r}: refused: not a trusted lstmkit checkpoint{what}. "
                         "lstmkit loads only tensors and plain data (weights_only=True) and never "
                         "executes code from a checkpoint; re-save the weights with "
                         "lstmkit.train.checkpoint.save_checkpoint from code you trust") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError,
            AttributeError, ImportError, OSError) as e:
        raise ValueError(f"checkpoint {path!r}: corrupt or not a torch checkpoint "
                         f"(expected a file written by lstmkit save_checkpoint): {_first_line(e)}") from None
    if not isinstance(ck, dict) or ck.get("format") != FORMAT:
        got = sorted(ck)[:8] if isinstance(ck, dict) else type(ck).__name__
        raise ValueError(f"checkpoint {path!r}: not an lstmkit checkpoint; expected a dict with "
                         f"format={FORMAT!r}, got {got}")
    if ck.get("version") != VERSION:
        raise ValueError(f"checkpoint {path!r}: expected version {VERSION}, got {ck.get('version')}")
    return ck
