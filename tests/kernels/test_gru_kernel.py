"""The fused GRU kernels (reset_after=True, and the Cho form reset_after=False) equal the
reference engine in outputs and every gradient for every mask, in float32 and float64, and their
backwards pass gradcheck; the Cho form equals the reference in stacked bidirectional layers with
lengths, dropout and zoneout, and engine="auto" picks it."""

import pytest
import torch

import lstmkit as lk
from lstmkit import kernels
from lstmkit.functional import Masks
from lstmkit.functional._common import lengths_to_mask
from lstmkit.functional.gru import GRUParams
from lstmkit.functional.gru import gru as gru_reference

T, B, I, H = 5, 3, 4, 6
TOL = {torch.float32: dict(rtol=1e-4, atol=2e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def make(dtype, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=dtype) * 0.5).requires_grad_()

    p = GRUParams(r(3 * H, I), r(3 * H, H), r(3 * H) if bias else None, r(3 * H) if bias else None)
    x = torch.randn(T, B, I, generator=g, dtype=dtype).requires_grad_()
    h0 = torch.randn(B, H, generator=g, dtype=dtype).requires_grad_()
    return p, x, h0


def make_masks(kind, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind == "none":
        return Masks()
    out = lengths_to_mask([5, 2, 0], T, torch.zeros((), dtype=dtype))
    if kind == "lengths":
        return Masks(keep_h=1 - out, out=out)
    rec = (torch.rand(B, H, generator=g, dtype=dtype) > 0.3).to(dtype) / 0.7
    zh = (torch.rand(T, B, H, generator=g, dtype=dtype) > 0.5).to(dtype)
    return Masks(rec=rec, keep_h=torch.maximum(zh, 1 - out), out=out)


def run(fn, x, h0, p, masks, seed=2, **kw):
    y, h_n = fn(x, h0, p, masks, **kw)
    g = torch.Generator().manual_seed(seed)
    w = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (y, h_n)]
    loss = (y * w[0]).sum() + (h_n * w[1]).sum()
    leaves = [x, h0, *[t for t in p if t is not None]]
    return [y, h_n, *torch.autograd.grad(loss, leaves)]


RESET = pytest.mark.parametrize("reset_after", [True, False], ids=["torch", "cho"])


@RESET
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["none", "lengths", "train"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_fused_gru_equals_reference(kind, dtype, bias, reset_after):
    p, x, h0 = make(dtype, bias)
    masks = make_masks(kind, dtype)
    assert kernels.supports("gru", p, masks, x, reset_after=reset_after)
    want = run(gru_reference, x, h0, p, masks, reset_after=reset_after)
    got = run(kernels.gru, x, h0, p, masks, reset_after=reset_after)
    assert len(got) == 2 + 2 + (4 if bias else 2)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[dtype])


@RESET
def test_fused_gru_backward_passes_gradcheck(reset_after):
    p, x, h0 = make(torch.float64)
    masks = make_masks("train", torch.float64)

    def f(x, h0, *params):
        return kernels.gru(x, h0, GRUParams(*params), masks, reset_after=reset_after)

    assert torch.autograd.gradcheck(f, (x, h0, *p), eps=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
def test_cho_layers_stacked_bidirectional_with_lengths_dropout_zoneout_equal_reference(dtype):
    kw = dict(num_layers=2, bidirectional=True, dropout=0.3, zoneout=0.2, recurrent_dropout=0.25,
              reset_after=False)
    torch.manual_seed(0)
    ref = lk.GRU(I, H, engine="reference", **kw).to(dtype)
    fused = lk.GRU(I, H, engine="fused", **kw).to(dtype)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(T, B, I, dtype=dtype)
    lengths = [5, 2, 4]
    outs = []
    for m in (ref, fused):
        xi = x.clone().requires_grad_()
        torch.manual_seed(1)  # same dropout and zoneout masks
        y, h_n = m(xi, lengths=lengths)
        g = torch.Generator().manual_seed(2)
        loss = (y * torch.randn(y.shape, generator=g, dtype=dtype)).sum() + (h_n * h_n).sum()
        outs.append([y, h_n, *torch.autograd.grad(loss, [xi, *m.parameters()])])
    for a, b in zip(outs[1], outs[0]):
        torch.testing.assert_close(a, b, **TOL[dtype])
    fused.eval()  # eval: zoneout is its expectation (fractional keep)
    ref.eval()
    torch.testing.assert_close(fused(x, lengths=lengths)[0], ref(x, lengths=lengths)[0], **TOL[dtype])


def test_engine_auto_runs_the_fused_cho_kernel(monkeypatch):
    from lstmkit.functional import registry

    fam = registry.get("gru")
    assert "fused" in fam.engines(fam.configure(reset_after=False))
    p, x, h0 = make(torch.float32)
    assert fam.fused_ok(x, p, Masks(), fam.configure(reset_after=False))
    calls = []

    def spy(*args, **kw):
        calls.append(kw)
        return fused_gru(*args, **kw)

    fused_gru = kernels.gru
    monkeypatch.setattr(kernels, "gru", spy)
    lk.GRU(I, H, reset_after=False)(torch.randn(T, B, I))  # engine="auto"
    assert calls == [{"reset_after": False}]
