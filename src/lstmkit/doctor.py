"""``lstmkit doctor`` (also ``python -m lstmkit.doctor``): this machine as lstmkit sees it.

The block to paste into a bug report: the CPU and the features lstmkit's paths read
(``lstmkit.cpu``), the switches that lower them, which engine and GEMM path each precision takes
here, whether the fused kernels are built and for which flag set, the versions of torch,
onnxruntime and the extras, and the threads.

    >>> text = report()
    >>> "level" in text and "float32" in text and "torch" in text
    True
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

import torch

from . import __version__, cpu

# the packages whose versions change what runs (pyproject's pins and extras)
_PACKAGES = ("torch", "numpy", "onnx", "onnxruntime", "onnxscript", "statsmodels", "scikit-learn",
             "aeon", "pandas", "fastapi", "optuna", "librosa", "captum")
_SWITCHES = (cpu.MAX_ISA_ENV, "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "OMP_NUM_THREADS", "CXX",
             "TORCH_EXTENSIONS_DIR")


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _auto_engine(x: torch.Tensor, autocast: bool, kernels_ok: bool) -> str:
    """What engine='auto' runs for a plain one-layer LSTM on x, as the layer decides it."""
    from .nn import LSTM

    layer = LSTM(x.shape[-1], 4).to(x.dtype)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        picked = layer._pick_engine(x, None, False)
    if picked == "vendor":
        return "vendor (torch's oneDNN LSTM)"
    return "fused (lstmkit's kernels)" if kernels_ok else "reference (no compiled kernels)"


def rows() -> list[tuple[str, str]]:
    """(label, value) pairs of the report, in order."""
    from .kernels import _loader

    c = cpu.probe()
    out = [
        ("lstmkit", __version__),
        ("python", f"{platform.python_version()} ({sys.executable})"),
        ("platform", platform.platform()),
        ("cpu", f"{c.model or 'unknown'} ({c.arch})"),
        ("cpu features", " ".join(sorted(c.hardware)) or "none of those lstmkit reads"),
        ("level", f"{c.level}" + (f" (capped by {cpu.MAX_ISA_ENV}={c.max_isa})" if c.max_isa else "")),
        ("features used", " ".join(sorted(c.features)) or "none"),
    ]
    out += [(f"${k}", os.environ[k]) for k in _SWITCHES if os.environ.get(k)]
    out += [
        ("torch cpu capability", torch.backends.cpu.get_cpu_capability()),
        ("oneDNN", "yes" if c.onednn else "no"),
        ("oneDNN bfloat16", "yes" if c.onednn_bf16 else "no"),
        ("C++ compiler", c.compiler or "none found ($CXX, else c++)"),
    ]
    name, flags = _loader._spec()
    built = _loader.is_built()
    out.append(("fused kernels", (f"built ({' '.join(flags)}): {_loader.library_path()}" if built else
                                  f"not built for this flag set ({' '.join(flags)}); "
                                  "`python -m lstmkit.kernels build` builds them")))
    kernels_ok = built or c.compiler is not None
    x = torch.zeros(2, 1, 4)
    out += [
        ("float32 layer (auto)", _auto_engine(x, False, kernels_ok)),
        ("float32 step GEMM", c.gemm_path("float32")),
        ("bfloat16 layer (auto)", _auto_engine(x.bfloat16(), False, kernels_ok)),
        ("autocast layer (auto)", _auto_engine(x, True, kernels_ok)),
        ("bfloat16 GEMMs", c.bf16_gemm()),
        ("bfloat16 step GEMM", c.gemm_path("bfloat16")),
        ("int8 streaming step", c.gemm_path("int8")),
    ]
    q = c.onnx_int8()
    out.append(("ONNX int8 quantiser", f"per_channel={q['per_channel']}, reduce_range={q['reduce_range']} "
                                       f"({q['why']})"))
    out += [(pkg, _version(pkg)) for pkg in _PACKAGES]
    out.append(("threads", f"torch {torch.get_num_threads()} intra-op, {torch.get_num_interop_threads()} "
                           f"inter-op; {os.cpu_count()} CPUs"))
    return out


def report() -> str:
    """The report as text, one ``label: value`` line each."""
    pairs = rows()
    width = max(len(k) for k, _ in pairs)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in pairs)


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m lstmkit.doctor", description=__doc__.split("\n")[0])
    ap.parse_args(argv)
    print(report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
