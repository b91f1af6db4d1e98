"""The fused Elman RNN kernel equals the reference engine in outputs and gradients (tanh and relu,
every mask, float32 and float64), and its backward passes gradcheck."""

import pytest
import torch

from lstmkit import kernels
from lstmkit.functional import Masks
from lstmkit.functional._common import lengths_to_mask
from lstmkit.functional.rnn import RNNParams
from lstmkit.functional.rnn import rnn as rnn_reference

T, B, I, H = 5, 3, 4, 6
TOL = {torch.float32: dict(rtol=1e-4, atol=2e-5), torch.float64: dict(rtol=1e-10, atol=1e-12)}


def make(dtype, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=dtype) * 0.5).requires_grad_()

    p = RNNParams(r(H, I), r(H, H), r(H), r(H))
    x = torch.randn(T, B, I, generator=g, dtype=dtype).requires_grad_()
    h0 = torch.randn(B, H, generator=g, dtype=dtype).requires_grad_()
    return p, x, h0


def make_masks(kind, dtype, seed=1):
    g = torch.Generator().manual_seed(seed)
    if kind == "none":
        return Masks()
    out = lengths_to_mask([5, 2, 0], T, torch.zeros((), dtype=dtype))
    rec = (torch.rand(B, H, generator=g, dtype=dtype) > 0.3).to(dtype) / 0.7
    zh = (torch.rand(T, B, H, generator=g, dtype=dtype) > 0.5).to(dtype)
    return Masks(rec=rec, keep_h=torch.maximum(zh, 1 - out), out=out)


def run(fn, x, h0, p, masks, nonlinearity, seed=2):
    y, h_n = fn(x, h0, p, masks, nonlinearity)
    g = torch.Generator().manual_seed(seed)
    w = [torch.randn(t.shape, generator=g, dtype=t.dtype) for t in (y, h_n)]
    loss = (y * w[0]).sum() + (h_n * w[1]).sum()
    return [y, h_n, *torch.autograd.grad(loss, [x, h0, *p])]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["none", "train"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_fused_rnn_equals_reference(nonlinearity, kind, dtype):
    p, x, h0 = make(dtype)
    masks = make_masks(kind, dtype)
    assert kernels.supports("rnn", p, masks, x)
    want = run(rnn_reference, x, h0, p, masks, nonlinearity)
    got = run(kernels.rnn, x, h0, p, masks, nonlinearity)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, **TOL[dtype])


def test_fused_rnn_backward_passes_gradcheck():
    p, x, h0 = make(torch.float64)
    masks = make_masks("train", torch.float64)

    def f(x, h0, *params):
        return kernels.rnn(x, h0, RNNParams(*params), masks, "tanh")

    assert torch.autograd.gradcheck(f, (x, h0, *p), eps=1e-6, atol=1e-6)


def test_fused_rnn_rejects_an_unknown_nonlinearity():
    p, x, h0 = make(torch.float32)
    with pytest.raises(ValueError, match="nonlinearity"):
        kernels.rnn(x, h0, p, Masks(), "sigmoid")


def test_kernel_entry_points_check_their_arguments_at_the_boundary():
    ext = kernels._ext()
    xg, h0, w = torch.randn(4, 2, 3), torch.zeros(2, 3), torch.randn(3, 3)
    none = torch.empty(0)
    with pytest.raises(RuntimeError, match=r"h0: expected shape \[2, 3\]"):
        ext.rnn_forward(xg, torch.zeros(2, 4), w, none, none, False)
    with pytest.raises(RuntimeError, match="w_hh: expected dtype"):
        ext.rnn_forward(xg, h0, w.double(), none, none, False)
    with pytest.raises(RuntimeError, match="keep_h: expected a contiguous"):
        ext.rnn_forward(xg, h0, w, none, torch.rand(2, 4, 3).transpose(0, 1), False)
    with pytest.raises(RuntimeError, match="xg: expected 4H = 8 gate rows"):
        ext.lstm_forward(torch.randn(4, 2, 6), h0[:, :2], h0[:, :2], torch.randn(6, 2), *[none] * 11,
                         False, False)
    with pytest.raises(RuntimeError, match=r"act: expected shape"):
        ext.gru_backward(none, none, torch.zeros(5, 2, 3), torch.zeros(4, 2, 8), torch.zeros(4, 2, 3),
                         torch.randn(9, 3), none, none)
