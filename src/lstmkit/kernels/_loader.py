"""Build (once, cached) and load the C++ extension with ninja; one warning when it cannot build."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

CSRC = Path(__file__).parent / "csrc"
SOURCES = ["lstm.cpp", "gru.cpp", "rnn.cpp", "bindings.cpp"]
HEADERS = ["fastmath.h", "common.h", "gates.h", "kernels.h"]

_lock = threading.Lock()
_state: dict = {"tried": False, "module": None, "error": None}


def _cpu_flags() -> list[str]:
    """-mavx2 -mfma when this CPU has them (the build is cached per flag set), never -march=native."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    words = set(text.split())
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= words else []


def build_dir(name: str) -> Path:
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lstmkit", "kernels"
    )
    path = Path(root) / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ensure_ninja_on_path() -> None:
    if shutil.which("ninja"):
        return
    bindir = os.path.dirname(sys.executable)  # the venv's bin/ holds the pinned ninja
    if os.path.exists(os.path.join(bindir, "ninja")):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def _build():
    """Compile and import the extension. Raises on any failure (no compiler, no ninja, errors)."""
    import torch.utils.cpp_extension as ext

    _ensure_ninja_on_path()
    # -fno-trapping-math lets gcc if-convert (and so vectorise) the clamped polynomial exp;
    # -fopenmp-simd honours the `omp simd reduction` pragmas of the layer-norm row statistics
    flags = ["-O3", "-ffp-contract=fast", "-fno-trapping-math", "-fopenmp-simd", *_cpu_flags()]
    digest = hashlib.sha1()
    for src in SOURCES + HEADERS:
        digest.update((CSRC / src).read_bytes())
    digest.update(" ".join(flags).encode())
    # ninja's build file records absolute source paths: two installs (checkouts, venvs) with the
    # same sources must not share a build folder, or each rebuilds the other's (minutes each)
    digest.update(str(CSRC.resolve()).encode())
    name = "lstmkit_kernels_" + digest.hexdigest()[:12]
    return ext.load(
        name=name,
        sources=[str(CSRC / s) for s in SOURCES],
        extra_cflags=flags,
        build_directory=str(build_dir(name)),
        verbose=False,
    )


def load():
    """The compiled module, or None (with a single warning per process) when it cannot be built."""
    if _state["tried"]:
        return _state["module"]
    with _lock:
        if not _state["tried"]:
            try:
                _state["module"] = _build()
            except Exception as e:  # noqa: BLE001 - any build failure means "no fused engine"
                _state["error"] = e
                warnings.warn(
                    f"lstmkit: the fused C++ kernels could not be built ({type(e).__name__}: {e}); "
                    "engine='auto' falls back to the reference engine",
                    RuntimeWarning,
                    stacklevel=3,
                )
            _state["tried"] = True
    return _state["module"]


def reset() -> None:
    """Forget the load attempt (tests use it to simulate a failed build)."""
    with _lock:
        _state.update(tried=False, module=None, error=None)
