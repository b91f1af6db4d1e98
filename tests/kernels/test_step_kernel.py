"""The packed streaming step in each weight precision (full, bfloat16, int8): each equals an
emulation in float64 of exactly what it documents, stays within a stated tolerance of the
float step on torch-initialised weights, and the portable loops equal the vector kernels."""

import gc
import json
import os
import subprocess
import sys

import pytest
import torch

from lstmkit import kernels
from lstmkit.functional.lstm import LSTMParams

# what each precision may move h and c by, against the float32 step, on torch-initialised
# weights (uniform +-1/sqrt(H)) with N(0, 1) inputs at H=64: measured 2.4e-3 and 6.7e-3, 4x below
STEP_TOL = {"full": 1e-5, "bfloat16": 1e-2, "int8": 3e-2}

SHAPES = [(1, 10, 7), (3, 33, 20), (6, 64, 64), (9, 5, 16)]  # (B, I, H): odd sizes pad panels


def make(kind: str, I: int, H: int, seed: int = 0, scale: float | None = None) -> LSTMParams:
    g = torch.Generator().manual_seed(seed)
    G = (3 if kind == "coupled" else 4) * H
    s = scale if scale is not None else H ** -0.5

    def u(*shape):
        return (torch.rand(*shape, generator=g) * 2 - 1) * s

    p = LSTMParams(u(G, I), u(G, H), u(G), u(G))
    if kind in ("peephole", "coupled"):
        p = p._replace(w_ci=u(H), w_co=u(H), w_cf=None if kind == "coupled" else u(H))
    return p


def state(B: int, I: int, H: int, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, I, generator=g), torch.randn(B, H, generator=g).tanh(),
            torch.randn(B, H, generator=g))


def gates(a: torch.Tensor, c: torch.Tensor, p: LSTMParams):
    """float64 gate math from pre-activations a (B, G)."""
    H = c.shape[1]
    z = torch.zeros(H, dtype=a.dtype)
    wci, wco = (z, z) if p.w_ci is None else (p.w_ci.double(), p.w_co.double())
    if a.shape[1] == 3 * H:  # coupled: rows (i, g, o), f = 1 - i
        i = torch.sigmoid(a[:, :H] + wci * c)
        g = torch.tanh(a[:, H:2 * H])
        c2 = (1 - i) * c + i * g
        o = torch.sigmoid(a[:, 2 * H:] + wco * c2)
    else:
        wcf = z if p.w_cf is None else p.w_cf.double()
        i = torch.sigmoid(a[:, :H] + wci * c)
        f = torch.sigmoid(a[:, H:2 * H] + wcf * c)
        g = torch.tanh(a[:, 2 * H:3 * H])
        c2 = f * c + i * g
        o = torch.sigmoid(a[:, 3 * H:] + wco * c2)
    return o * torch.tanh(c2), c2


def bf16(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).double()


def quant_rows(t: torch.Tensor):
    """Symmetric 8-bit rows: (integer values, one scale per row), round half to even."""
    amax = t.abs().amax(1, keepdim=True)
    s = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    return torch.round(t / s), s


def emulate(x, h, c, p: LSTMParams, weights: str):
    """The documented step in float64: pre-activations from the precision's rounding, then gates."""
    x, h, c = x.double(), h.double(), c.double()
    b = (p.b_ih + p.b_hh).double() if p.b_ih is not None else torch.zeros(p.w_ih.shape[0], dtype=x.dtype)
    parts = [(x, p.w_ih.double()), (h, p.w_hh.double())]
    a = b.expand(x.shape[0], -1).clone()
    for v, w in parts:
        if weights == "full":
            a += v @ w.T
        elif weights == "bfloat16":
            a += bf16(v) @ bf16(w).T
        else:
            qw, sw = quant_rows(w)
            qv, sv = quant_rows(v)
            a += (qv @ qw.T) * sv * sw.T
    return gates(a, c, p)


@pytest.mark.parametrize("weights", kernels.STEP_WEIGHTS)
@pytest.mark.parametrize("kind", ["plain", "peephole", "coupled"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "B{}-I{}-H{}".format(*s))
def test_step_equals_its_documented_arithmetic(weights, kind, shape):
    B, I, H = shape
    p = make(kind, I, H)
    x, h, c = state(B, I, H)
    with torch.no_grad():
        h1, c1 = kernels.lstm_step(x, h, c, p, weights)
    h_ref, c_ref = emulate(x, h, c, p, weights)
    assert h1.dtype == torch.float32 and h1.shape == (B, H) and c1.shape == (B, H)
    # float32 sums and the kernels' polynomial exp against float64: a few 1e-6
    torch.testing.assert_close(h1.double(), h_ref, atol=2e-5, rtol=0)
    torch.testing.assert_close(c1.double(), c_ref, atol=2e-5, rtol=0)


@pytest.mark.parametrize("weights", ["bfloat16", "int8"])
def test_reduced_precision_stays_within_its_tolerance_of_the_float_step(weights):
    B, I, H = 8, 32, 64
    p = make("peephole", I, H)
    x, h, c = state(B, I, H)
    with torch.no_grad():
        h_f, c_f = kernels.lstm_step(x, h, c, p, "full")
        h_q, c_q = kernels.lstm_step(x, h, c, p, weights)
    err = max((h_q - h_f).abs().max().item(), (c_q - c_f).abs().max().item())
    assert 0 < err <= STEP_TOL[weights]  # rounded (not exact), and within the stated bound


@pytest.mark.parametrize("weights", kernels.STEP_WEIGHTS)
def test_step_without_bias_on_strided_and_empty_batches(weights):
    p = make("coupled", 9, 12)._replace(b_ih=None, b_hh=None, w_ci=None, w_co=None)  # CIFG, no peepholes
    x, h, c = state(5, 18, 12)
    x, h = x[:, ::2], torch.cat([h, h], 1)[:, ::2]  # non-contiguous (B, 9) and (B, 12)
    assert not x.is_contiguous() and not h.is_contiguous()
    with torch.no_grad():
        h1, c1 = kernels.lstm_step(x, h, c, p, weights)
        h0, c0 = kernels.lstm_step(x[:0], h[:0], c[:0], p, weights)
    h_ref, c_ref = emulate(x, h, c, p, weights)
    torch.testing.assert_close(h1.double(), h_ref, atol=2e-5, rtol=0)
    torch.testing.assert_close(c1.double(), c_ref, atol=2e-5, rtol=0)
    assert h0.shape == (0, 12) and c0.shape == (0, 12)


def test_a_new_tensor_or_dtype_under_the_same_parameter_repacks():
    p = make("plain", 5, 8)
    x, h, c = state(2, 5, 8)
    with torch.no_grad():
        kernels.lstm_step(x, h, c, p)
        p.w_ih.data = torch.randn(32, 5)  # same Parameter object and version, new storage
        h1, _ = kernels.lstm_step(x, h, c, p)
    torch.testing.assert_close(h1.double(), emulate(x, h, c, p, "full")[0], atol=2e-5, rtol=0)


def test_full_float32_step_equals_the_float64_step():
    p = make("plain", 12, 24)
    x, h, c = state(5, 12, 24)
    pd = LSTMParams(*[None if t is None else t.double() for t in p])
    with torch.no_grad():
        h32, c32 = kernels.lstm_step(x, h, c, p)
        h64, c64 = kernels.lstm_step(x.double(), h.double(), c.double(), pd)
    assert h64.dtype == torch.float64
    torch.testing.assert_close(h32.double(), h64, atol=STEP_TOL["full"], rtol=0)
    torch.testing.assert_close(c32.double(), c64, atol=STEP_TOL["full"], rtol=0)


def test_packed_bytes_shrink_with_the_precision():
    p = make("plain", 64, 64)
    sizes = {w: kernels._stepper(p, w).weight_bytes() for w in kernels.STEP_WEIGHTS}
    n = 4 * 64 * (64 + 64)
    assert sizes["full"] == 4 * n
    assert sizes["bfloat16"] == 2 * n
    assert sizes["int8"] == n + 2 * (4 + 4) * 4 * 64  # + a scale and a row sum per row and part


def test_int8_step_of_zero_and_nan_inputs():
    p = make("plain", 6, 8)
    _, h, c = state(2, 6, 8)
    x = torch.zeros(2, 6)
    x[1, 3] = float("nan")
    with torch.no_grad():
        h1, _ = kernels.lstm_step(x, h, c, p, "int8")
        h_full, _ = kernels.lstm_step(x[:1], h[:1], c[:1], p, "full")
    assert torch.isfinite(h1[0]).all() and torch.isnan(h1[1]).all()  # NaN is not quantised away
    assert (h1[0] - h_full[0]).abs().max() <= STEP_TOL["int8"]


@pytest.mark.parametrize("weights", kernels.STEP_WEIGHTS)
def test_repacks_after_an_in_place_update_and_never_mistakes_a_new_model(weights):
    p = make("peephole", 10, 16, seed=3)
    x, h, c = state(2, 10, 16)
    with torch.no_grad():
        kernels.lstm_step(x, h, c, p, weights)
        p.w_hh.mul_(0.5)  # an optimizer step: same storage, new version
        h1, _ = kernels.lstm_step(x, h, c, p, weights)
    torch.testing.assert_close(h1.double(), emulate(x, h, c, p, weights)[0], atol=2e-5, rtol=0)
    for seed in range(4):  # fresh tensors may reuse a freed one's address and id
        del p
        gc.collect()
        p = make("peephole", 10, 16, seed=10 + seed)
        with torch.no_grad():
            h2, _ = kernels.lstm_step(x, h, c, p, weights)
        torch.testing.assert_close(h2.double(), emulate(x, h, c, p, weights)[0], atol=2e-5, rtol=0)


def test_bad_precisions_are_refused_by_name():
    p = make("plain", 4, 8)
    x, h, c = state(1, 4, 8)
    with pytest.raises(ValueError, match="weights: expected one of"):
        kernels.lstm_step(x, h, c, p, "int4")
    pd = LSTMParams(*[None if t is None else t.double() for t in p])
    with pytest.raises(RuntimeError, match="weights: bfloat16 and int8 steps need float32"):
        kernels.lstm_step(x.double(), h.double(), c.double(), pd, "int8")
    ln = p._replace(ln_hh_w=torch.ones(32), ln_hh_b=torch.zeros(32))
    with pytest.raises(ValueError, match="weights: 'bfloat16' steps serve float32 LSTMs"):
        kernels.lstm_step(x, h, c, ln, "bfloat16")
    bad = p._replace(w_ih=p.w_ih.clone().index_fill_(0, torch.tensor([2]), float("inf")))
    with pytest.raises(RuntimeError, match="weights: expected finite values to quantise"):
        kernels.lstm_step(x, h, c, bad, "int8")


_PORTABLE = """
import json
import torch
from lstmkit import kernels
from lstmkit.functional.lstm import LSTMParams
g = torch.Generator().manual_seed(0)
for kind in ("plain", "coupled"):
    G = 3 * 20 if kind == "coupled" else 4 * 20
    p = LSTMParams(*[torch.rand(*s, generator=g) - 0.5 for s in ((G, 33), (G, 20), (G,), (G,))])
    if kind == "coupled":
        p = p._replace(w_ci=torch.rand(20, generator=g) - 0.5, w_co=torch.rand(20, generator=g) - 0.5)
    x, h, c = (torch.randn(6, n, generator=g) for n in (33, 20, 20))
    for w in kernels.STEP_WEIGHTS:
        with torch.no_grad():
            hn, cn = kernels.lstm_step(x, h, c, p, w)
        torch.save((hn, cn), "{out}/" + kind + "-" + w + ".pt")
open("{out}/isa.json", "w").write(json.dumps(kernels._ext().panel_isa()))
"""


def test_every_vector_level_equals_the_others(tmp_path):
    """Each precision runs in a fresh process per level this CPU has (LSTMKIT_MAX_ISA=avx512,
    avx2, and portable where its build, with the x86 kernels compiled out, is there: CI's
    portable run builds it): the integer sums are exact at every level, the float sums differ
    only in order."""
    from lstmkit import cpu

    env0 = {k: v for k, v in os.environ.items() if k != cpu.MAX_ISA_ENV}
    hardware = subprocess.run([sys.executable, "-c", "from lstmkit import cpu; print(cpu.probe().level)"],
                              env=env0, check=True, capture_output=True, text=True).stdout.split()[-1]
    levels = list(cpu.LEVELS[: cpu.LEVELS.index(hardware) + 1])  # this CPU's, whatever the cap here
    outs, isa = {}, {}
    for level in reversed(levels):
        env = dict(env0, OMP_NUM_THREADS="1", LSTMKIT_MAX_ISA=level)
        if level == "portable" and subprocess.run([sys.executable, "-m", "lstmkit.kernels", "status"],
                                                  env=env, capture_output=True).returncode != 0:
            continue  # compiling it here would take a minute of the suite
        out = tmp_path / level
        out.mkdir()
        subprocess.run([sys.executable, "-c", _PORTABLE.format(out=out)], env=env, check=True, timeout=300)
        isa[level] = json.loads((out / "isa.json").read_text())
        outs[level] = {f.name: torch.load(f, weights_only=True) for f in sorted(out.glob("*.pt"))}
    if len(outs) < 2:
        pytest.skip(f"only one kernel level runs here ({list(outs)})")
    for level, got in isa.items():  # the switch took effect
        assert got["avx512"] == (level == "avx512") and got["avx2"] == (level != "portable")
    first, *rest = outs
    assert len(outs[first]) == 6
    for other in rest:
        assert outs[other].keys() == outs[first].keys()
        for name, (h, c) in outs[first].items():
            hp, cp = outs[other][name]
            torch.testing.assert_close(h, hp, atol=2e-6, rtol=0, msg=f"{first} vs {other}: {name}")
            torch.testing.assert_close(c, cp, atol=2e-6, rtol=0, msg=f"{first} vs {other}: {name}")
