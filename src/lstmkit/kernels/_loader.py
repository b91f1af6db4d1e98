"""Build (once, cached) and load the C++ extension with ninja; one warning when it cannot build.

The set-up step ``python -m lstmkit.kernels build`` compiles it ahead of time (``make`` runs it
after installing), so the first call loads the cached library and compiles nothing. Any other
install builds on first use (just in time) and says so on stderr while it compiles; without a
compiler the fused engine is simply unavailable and ``engine="auto"`` runs the reference engine.
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import sys
import threading
import warnings
from pathlib import Path

from .. import cpu

CSRC = Path(__file__).parent / "csrc"
SOURCES = ["lstm.cpp", "gru.cpp", "rnn.cpp", "step.cpp", "bindings.cpp"]
HEADERS = ["fastmath.h", "common.h", "gates.h", "kernels.h", "panels.h"]

_lock = threading.Lock()
_state: dict = {"tried": False, "module": None, "error": None}


def _cpu_flags() -> list[str]:
    """The flag set of this machine's build (cached per flag set), never -march=native:
    -mavx2 -mfma where the probe's level has them; the portable level compiles the x86 kernels
    out (-DLSTMKIT_NO_X86: the build other architectures get)."""
    level = cpu.probe().level
    if level == "portable":
        return ["-DLSTMKIT_NO_X86"] if cpu.probe().x86 else []
    return ["-mavx2", "-mfma"]


def configure(module) -> None:
    """Hand the probe's answer to the kernels (which vector paths run), once per load."""
    c = cpu.probe()
    module.set_isa(avx2=c.level != "portable", avx512=c.level == "avx512", bf16=c.bf16_dot,
                   vnni=c.vnni, onednn_bf16=c.onednn_bf16)


def _root() -> Path:
    """The build cache: ``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/lstmkit/kernels``."""
    return Path(os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "lstmkit", "kernels"))


def build_dir(name: str) -> Path:
    path = _root() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _ensure_ninja_on_path() -> None:
    if shutil.which("ninja"):
        return
    bindir = os.path.dirname(sys.executable)  # the venv's bin/ holds the pinned ninja
    if os.path.exists(os.path.join(bindir, "ninja")):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


@functools.cache  # the sources cannot change under a running process; hashing them is I/O
def _spec() -> tuple[str, list[str]]:
    """(extension name, compiler flags): the name hashes sources, flags and location."""
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
    return "lstmkit_kernels_" + digest.hexdigest()[:12], flags


def library_path() -> Path:
    """Where the compiled library of these sources is (or will be) cached."""
    name, _ = _spec()
    return _root() / name / f"{name}.so"


def is_built() -> bool:
    """Whether these sources are already compiled (loading then compiles nothing)."""
    return library_path().exists()


def _build(verbose: bool = False):
    """Compile (unless cached) and import the extension. Raises on any failure (no compiler, no
    ninja, errors). Says on stderr that it compiles when it does: it takes about a minute."""
    import time

    import torch.utils.cpp_extension as ext

    if not is_built() and cpu.find_compiler() is None:  # looked up now: $CXX may have changed
        raise RuntimeError("no C++ compiler found ($CXX, else c++): install g++ or clang++")
    _ensure_ninja_on_path()
    name, flags = _spec()
    fresh = not is_built()
    if fresh:
        print("lstmkit: compiling the fused C++ kernels (once; about a minute; "
              "`python -m lstmkit.kernels build` does it at set-up) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    module = ext.load(
        name=name,
        sources=[str(CSRC / s) for s in SOURCES],
        extra_cflags=flags,
        build_directory=str(build_dir(name)),
        verbose=verbose,
    )
    configure(module)
    if fresh:
        print(f"lstmkit: fused kernels built in {time.perf_counter() - t0:.0f} s ({library_path()})",
              file=sys.stderr, flush=True)
    return module


def load():
    """The compiled module, or None (with a single warning per process) when it cannot be built."""
    if _state["tried"]:
        return _state["module"]
    return _load_once()


def build() -> object:
    """Compile now (the set-up step) and load the module; raises when it cannot be built."""
    module = _load_once()
    if module is None:
        raise RuntimeError(f"the fused kernels could not be built: {_state['error']}")
    return module


def _load_once():
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
                    stacklevel=4,
                )
            _state["tried"] = True
    return _state["module"]


def reset() -> None:
    """Forget the load attempt (tests use it to simulate a failed build)."""
    with _lock:
        _state.update(tried=False, module=None, error=None)
