"""The CPU probe: its answers follow the CPU's features and the forcing switches, the kernels run
what it says (never more than the CPU has), and `lstmkit doctor` prints it."""

import json
import os
import subprocess
import sys

import pytest

from lstmkit import cpu
from lstmkit.cli import main as cli_main

_READ = ("import json; from lstmkit import cpu, kernels; c = cpu.probe(); "
         "print(json.dumps(dict(level=c.level, bf16_dot=c.bf16_dot, vnni=c.vnni, onednn_bf16=c.onednn_bf16, "
         "features=sorted(c.features), kernels=kernels._ext().panel_isa() if {load} else None)))")


def _read(env: dict, load: bool = False) -> dict:
    full = dict(os.environ, OMP_NUM_THREADS="1", **env)
    for k, v in env.items():
        if v is None:
            full.pop(k)
    out = subprocess.run([sys.executable, "-c", _READ.format(load=load)], env=full, check=True,
                         capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _hardware_level(c: cpu.CPU) -> str:
    if not c.x86 or not {"avx2", "fma", "bmi2"} <= c.hardware:
        return "portable"
    return "avx512" if {"avx512f", "avx512bw", "avx512vl"} <= c.hardware else "avx2"


def test_the_level_and_dot_product_paths_follow_the_cpus_features():
    c = cpu.probe()
    want = _hardware_level(c)
    if c.max_isa is not None:  # a forced run (CI): the lower of the two
        want = cpu.LEVELS[min(cpu.LEVELS.index(want), cpu.LEVELS.index(c.max_isa))]
    assert c.level == want
    assert c.bf16_dot == (c.level == "avx512" and "avx512_bf16" in c.hardware)
    assert c.vnni == (c.level == "avx512" and "avx512_vnni" in c.hardware)
    assert c.features <= c.hardware


@pytest.mark.parametrize("cap", ["avx2", "portable"])
def test_a_cap_lowers_every_answer_and_never_raises_one(cap):
    hw = cpu.probe()
    got = _read({cpu.MAX_ISA_ENV: cap})
    want = cap if cpu.LEVELS.index(cap) < cpu.LEVELS.index(_hardware_level(hw)) else _hardware_level(hw)
    assert got["level"] == want
    assert not got["bf16_dot"] and not got["vnni"]
    assert not any(f.startswith(("avx512", "amx")) for f in got["features"])
    assert not got["onednn_bf16"]  # lstmkit sends no bfloat16 to oneDNN under an AVX2 cap
    assert (cap == "portable") <= (not any(f.startswith("avx") for f in got["features"]))


def test_onednn_capped_to_avx2_reports_no_bfloat16():
    """torch's own check honours ONEDNN_MAX_CPU_ISA (set before torch starts)."""
    got = _read({"ONEDNN_MAX_CPU_ISA": "AVX2", cpu.MAX_ISA_ENV: None})
    assert got["onednn_bf16"] is False


def test_the_kernels_run_what_the_probe_says_and_at_most_what_the_cpu_has():
    from lstmkit import kernels

    if not kernels.available():
        pytest.skip("the fused C++ extension could not be built here")
    c = cpu.probe()
    isa = kernels._ext().panel_isa()
    assert isa == {"avx2": c.level != "portable", "avx512": c.level == "avx512", "avx512_bf16": c.bf16_dot,
                   "avx512_vnni": c.vnni, "onednn_bf16": c.onednn_bf16}
    if c.level == "avx512":  # a lower cap in a fresh process reaches the same build's dispatch
        got = _read({cpu.MAX_ISA_ENV: "avx2"}, load=True)
        assert got["kernels"] == {"avx2": True, "avx512": False, "avx512_bf16": False,
                                  "avx512_vnni": False, "onednn_bf16": False}


def test_an_unknown_cap_is_refused_by_name(monkeypatch):
    monkeypatch.setenv(cpu.MAX_ISA_ENV, "avx1024")
    want = r"LSTMKIT_MAX_ISA: expected one of portable, avx2, avx512, got 'avx1024'"
    with pytest.raises(ValueError, match=want):
        cpu._max_isa()


def test_gemm_paths_name_the_instructions_of_the_level():
    c = cpu.CPU(arch="x86_64", model="test", level="avx2")
    assert c.gemm_path("float32") == "AVX2 FMAs"
    assert "widened bfloat16" in c.gemm_path("bfloat16")
    assert "16-bit" in c.gemm_path("int8")
    assert "float32 GEMM on the bfloat16 values" in c.bf16_gemm()
    assert c.onnx_int8()["reduce_range"] is True
    assert cpu.CPU(arch="x86_64", model="t", level="portable").gemm_path("int8") == "portable loop"
    with pytest.raises(ValueError, match="precision: expected"):
        c.gemm_path("float16")


def test_doctor_prints_the_probe_the_paths_and_the_versions(capsys):
    assert cli_main(["doctor"]) == 0
    out = capsys.readouterr().out
    c = cpu.probe()
    lines = dict(line.split(None, 1) if "  " not in line else [p.strip() for p in line.split("  ", 1)]
                 for line in out.splitlines())
    assert lines["level"].startswith(c.level)
    assert lines["bfloat16 GEMMs"] == c.bf16_gemm()
    assert lines["int8 streaming step"] == c.gemm_path("int8")
    assert lines["torch"].startswith("2.13.0")
    assert "per_channel=" in lines["ONNX int8 quantiser"]
