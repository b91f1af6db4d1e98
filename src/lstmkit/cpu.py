"""The CPU probe: what this machine can run, read once, asked by every path choice.

lstmkit never picks a path by trying it and catching the crash. It asks :func:`probe`, which
reads the CPU's features (``/proc/cpuinfo`` on Linux; elsewhere what torch's CPU capability
implies; the kernels' own ``__builtin_cpu_supports`` never lets them run more than that), what
oneDNN can run here (torch's own answer for its bfloat16 primitives)
and whether a C++ compiler is present, and answers the questions the paths ask:

- ``level``: the vector code the fused kernels run: ``"avx512"`` (AVX-512 F/BW/VL),
  ``"avx2"`` (AVX2 + FMA + BMI2) or ``"portable"`` (plain C++ loops, any CPU, x86 paths compiled out);
- ``bf16_dot`` / ``vnni``: AVX512-BF16 dot products and AVX512-VNNI integer dot products for the
  bfloat16 and int8 panel GEMMs;
- ``onednn_bf16``: oneDNN's bfloat16 primitives (inner product, RNN) run here. Without them a
  bfloat16 GEMM runs as a float32 GEMM on the bfloat16 values (exact products, float32 sums:
  the same numbers a bfloat16 GEMM with float32 accumulation gives), and ``engine="auto"`` never
  sends a bfloat16 or autocast call to torch's oneDNN LSTM;
- ``compiler``: the C++ compiler the kernels build with (None: the reference engine serves).

Forcing a lower level, so one machine exercises every path (CI does this)::

    LSTMKIT_MAX_ISA=avx2|portable     lstmkit's own paths (and the probe's answers)
    ONEDNN_MAX_CPU_ISA=AVX2           oneDNN's primitives (torch then reports no bfloat16)
    ATEN_CPU_CAPABILITY=avx2|default  torch's own vectorised kernels

The last two are read by torch when it starts; set all three in the environment of a new process.

    >>> cpu = probe()
    >>> cpu.level in LEVELS
    True
    >>> cpu.bf16_dot <= (cpu.level == "avx512")  # a dot-product path needs its vector level
    True
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CPU", "LEVELS", "probe", "find_compiler", "MAX_ISA_ENV"]

LEVELS = ("portable", "avx2", "avx512")  # lowest first
_X86_ARCHES = ("x86_64", "AMD64", "i686", "x86")  # platform.machine() of an x86 CPU
MAX_ISA_ENV = "LSTMKIT_MAX_ISA"

# The features the paths ask about (x86 names as /proc/cpuinfo spells them; aarch64 below)
_X86 = ("avx2", "fma", "bmi2", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_bf16", "avx512_vnni",
        "avx_vnni", "avx_ne_convert", "amx_tile", "amx_bf16", "amx_int8")
_ARM = ("asimd", "asimddp", "bf16", "i8mm", "sve", "sve2")
_AVX512 = ("avx512f", "avx512bw", "avx512vl")
# what torch's CPU capability implies, where no feature list can be read (conservative: no
# dot-product extensions)
_BY_CAPABILITY = {"AVX2": ("avx2", "fma", "bmi2"), "AVX512": ("avx2", "fma", "bmi2", *_AVX512)}


@dataclass(frozen=True)
class CPU:
    """One reading of this machine (see the module docstring for what each answer means)."""

    arch: str
    model: str
    hardware: frozenset = field(default_factory=frozenset)  # features the CPU reports
    features: frozenset = field(default_factory=frozenset)  # those left under LSTMKIT_MAX_ISA
    max_isa: str | None = None  # LSTMKIT_MAX_ISA, if set
    level: str = "portable"
    bf16_dot: bool = False
    vnni: bool = False
    onednn: bool = False
    onednn_bf16: bool = False
    compiler: str | None = None

    @property
    def x86(self) -> bool:
        return self.arch in _X86_ARCHES

    def gemm_path(self, precision: str) -> str:
        """The per-step panel GEMM of the fused kernels and the streaming step, by weight
        precision ('float32', 'bfloat16', 'int8')."""
        if precision not in ("float32", "bfloat16", "int8"):
            raise ValueError(f"precision: expected 'float32', 'bfloat16' or 'int8', got {precision!r}")
        if self.level == "portable":
            return "portable loop"
        if precision == "bfloat16":
            if self.bf16_dot:
                return "AVX512-BF16 dot products"
            return f"{self.level.upper()} FMAs on widened bfloat16"
        if precision == "int8":
            return "AVX512-VNNI dot products" if self.vnni else f"{self.level.upper()} 16-bit multiply-adds"
        return f"{self.level.upper()} FMAs"

    def bf16_gemm(self) -> str:
        """How a sequence's big bfloat16 GEMMs run (input projection, weight gradients)."""
        return ("oneDNN bfloat16 (float32 accumulation)" if self.onednn_bf16
                else "float32 GEMM on the bfloat16 values (no oneDNN bfloat16 on this CPU)")

    def onnx_int8(self) -> dict:
        """onnxruntime dynamic-quantisation settings for this CPU: its u8s8 kernels can saturate
        where the CPU has no VNNI (onnxruntime's quantization docs); 7-bit weights
        (``reduce_range``) and per-channel scales keep every pair sum in range there."""
        fast = self.vnni or "avx_vnni" in self.features or "amx_int8" in self.features or not self.x86
        return {"per_channel": not fast, "reduce_range": not fast,
                "why": ("the CPU has integer dot products (VNNI): full 8-bit weights" if fast else
                        "no VNNI: 7-bit weights and per-channel scales avoid the u8s8 saturation")}


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, feature words) from /proc/cpuinfo; ('', {}) where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "", set()
    model, words = "", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model", "hardware") and not model:
            model = value.strip()
        elif key in ("flags", "features"):
            words.update(value.split())
    return model, words


def _max_isa() -> str | None:
    value = os.environ.get(MAX_ISA_ENV, "").strip().lower()
    if not value:
        return None
    if value not in LEVELS:
        raise ValueError(f"{MAX_ISA_ENV}: expected one of {', '.join(LEVELS)}, got {value!r}")
    return value


def find_compiler() -> str | None:
    """The C++ compiler torch's extension builder will call ($CXX, else c++), as a path."""
    cxx = os.environ.get("CXX") or "c++"
    return shutil.which(cxx.split()[0]) if cxx.strip() else None


def _onednn_bf16(torch) -> tuple[bool, bool]:
    """(oneDNN present, its bfloat16 primitives run here): torch's own check, which honours
    ONEDNN_MAX_CPU_ISA (a capped oneDNN reports no bfloat16)."""
    onednn = bool(torch.backends.mkldnn.is_available())
    check = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return onednn, bool(onednn and check is not None and check())


@functools.cache
def probe() -> CPU:
    """This machine, read once per process (the environment switches are read then too)."""
    import torch

    arch = platform.machine()
    model, words = _cpuinfo()
    if not words:  # no /proc/cpuinfo (macOS, some containers): torch's own reading of the CPU
        words = set(_BY_CAPABILITY.get(torch.backends.cpu.get_cpu_capability(), ()))
    known = _X86 + _ARM
    hardware = frozenset(w for w in words if w in known)
    cap = _max_isa()
    is_x86 = arch in _X86_ARCHES
    hw_level = "portable"
    if is_x86 and {"avx2", "fma", "bmi2"} <= hardware:
        hw_level = "avx512" if set(_AVX512) <= hardware else "avx2"
    level = hw_level if cap is None else LEVELS[min(LEVELS.index(hw_level), LEVELS.index(cap))]
    features = set(hardware)
    if is_x86 and level != "avx512":  # under a cap the paths see only what that level has
        features -= {w for w in hardware if w.startswith(("avx512", "amx"))}
    if is_x86 and level == "portable":
        features -= {w for w in hardware if w.startswith("avx")} | {"fma", "bmi2"}
    onednn, onednn_bf16 = _onednn_bf16(torch)
    if cap is not None and is_x86 and level != "avx512":  # the cap covers what lstmkit sends to oneDNN
        onednn_bf16 = False
    return CPU(arch=arch, model=model, hardware=hardware, features=frozenset(features), max_isa=cap,
               level=level, bf16_dot=level == "avx512" and "avx512_bf16" in features,
               vnni=level == "avx512" and "avx512_vnni" in features, onednn=onednn,
               onednn_bf16=onednn_bf16, compiler=find_compiler())
