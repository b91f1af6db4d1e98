"""Atomic file writes and job output folders (torch-free, so ``lstmkit.numpy`` can use them too).

A file is written to a temporary name in its own folder and moved over the target with
``os.replace``: readers see the old file or the new one, never a partial one.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable


def atomic_write(path: str | os.PathLike, write: Callable[[str], object]) -> None:
    """Call ``write(tmp_path)`` then move the result onto ``path`` (parents are created);
    nothing partial is left on failure. The file gets the usual 0644 mode, not mkstemp's 0600."""
    path = os.path.abspath(os.fspath(path))
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix="-" + os.path.basename(path), dir=folder)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """``atomic_write`` of a UTF-8 text."""

    def write(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)

    atomic_write(path, write)


def prepare_out(out: str) -> bool:
    """Make sure ``out`` can be written before any work; returns whether it was created."""
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"out {out!r}: expected a directory, got an existing file")
    created = not os.path.exists(out)
    try:
        os.makedirs(out, exist_ok=True)
        probe = os.path.join(out, ".probe")
        open(probe, "w").close()
        os.remove(probe)
    except OSError as e:
        if created and os.path.isdir(out) and not os.listdir(out):
            os.rmdir(out)
        raise ValueError(f"out {out!r}: expected a writable directory, got {e.strerror or e}") from None
    return created
