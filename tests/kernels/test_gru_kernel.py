"""The fused GRU kernel (reset_after=True) equals the reference engine in outputs and gradients
for every mask, in float32 and float64, and its backward passes gradcheck."""

import pytest
import torch

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


def run(fn, x, h0, p, masks, seed=2):
    y, h_n = fn(x, h0, p, masks)
    g = torch.Generator().manual_seed(seed)
    w = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (y, h_n)]
    loss = (y * w[0]).sum() + (h_n * w[1]).sum()
    leaves = [x, h0, *[t for t in p if t is not None]]
    return [y, h_n, *torch.autograd.grad(loss, leaves)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["none", "lengths", "train"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
def test_fused_gru_equals_reference(kind, dtype, bias):
    p, x, h0 = make(dtype, bias)
    masks = make_masks(kind, dtype)
    assert kernels.supports("gru", p, masks, x)
    want = run(gru_reference, x, h0, p, masks)
    got = run(kernels.gru, x, h0, p, masks)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_fused_gru_backward_passes_gradcheck():
    p, x, h0 = make(torch.float64)
    masks = make_masks("train", torch.float64)

    def f(x, h0, *params):
        return kernels.gru(x, h0, GRUParams(*params), masks)

    assert torch.autograd.gradcheck(f, (x, h0, *p), eps=1e-6, atol=1e-6)


def test_fused_gru_declines_the_cho_form():
    p, x, h0 = make(torch.float32)
    assert not kernels.supports("gru", p, Masks(), x, reset_after=False)
    with pytest.raises(ValueError, match="reset_after"):
        kernels.gru(x, h0, p, Masks(), reset_after=False)
