"""ConvLSTM equations: hand BPTT vs gradcheck (float64) and vs eager autograd of the same forward."""

from __future__ import annotations

import pytest
import torch

from lstmkit.functional._common import Masks, padding_masks
from lstmkit.functional.conv_lstm import (
    ConvLSTMParams,
    conv_lstm,
    conv_lstm_eager,
    input_convolution,
    same_padding,
)

B, T, C, K, S = 2, 3, 2, 3, 5  # batch, time, in channels, hidden channels, frame side


def make(peephole: str | None, bias: bool = True, kernel=(3, 3), seed: int = 0, dtype=torch.float64):
    """Seeded random inputs and parameters (never constants: they hide gate-order bugs)."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: (torch.randn(*s, generator=g, dtype=dtype) * 0.5).requires_grad_()
    kh, kw = kernel
    x, h0, c0 = r(T, B, C, S, S), r(B, K, S, S), r(B, K, S, S)
    peep = {"spatial": (K, S, S), "channel": (K, 1, 1)}.get(peephole)
    p = ConvLSTMParams(
        w_x=r(4 * K, C, kh, kw), w_h=r(4 * K, K, kh, kw), b=r(4 * K) if bias else None,
        w_ci=r(*peep) if peep else None, w_cf=r(*peep) if peep else None, w_co=r(*peep) if peep else None,
    )
    return x, h0, c0, p


def length_masks(lengths: list[int], dtype=torch.float64) -> Masks:
    return padding_masks(lengths, T, torch.zeros((), dtype=dtype), trailing=3)  # out: (T, B, 1, 1, 1)


CASES = [
    pytest.param(None, True, None, id="plain"),
    pytest.param(None, False, None, id="no_bias"),
    pytest.param("spatial", True, None, id="peephole_spatial"),
    pytest.param("channel", True, None, id="peephole_channel"),
    pytest.param(None, True, [3, 1], id="lengths"),
    pytest.param("spatial", True, [2, 0], id="peephole_lengths"),
]


@pytest.mark.parametrize("peephole,bias,lengths", CASES)
def test_hand_backward_passes_gradcheck(peephole, bias, lengths):
    x, h0, c0, p = make(peephole, bias)
    masks = length_masks(lengths) if lengths else Masks()
    fn = lambda *a: conv_lstm(a[0], a[1], a[2], ConvLSTMParams(*a[3:]), masks)
    inputs = (x, h0, c0, *p)
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, fast_mode=True)


@pytest.mark.parametrize("peephole,bias,lengths", CASES)
def test_hand_backward_equals_eager_autograd(peephole, bias, lengths):
    x, h0, c0, p = make(peephole, bias, seed=1)
    masks = length_masks(lengths) if lengths else Masks()
    leaves = [v for v in (x, h0, c0, *p) if v is not None]
    g = torch.Generator().manual_seed(2)
    outs_ref = conv_lstm_eager(x, h0, c0, p, masks)
    outs = conv_lstm(x, h0, c0, p, masks)
    weights = [torch.randn(o.shape, generator=g, dtype=o.dtype) for o in outs_ref]
    for a, b in zip(outs, outs_ref):
        torch.testing.assert_close(a, b)
    grads_ref = torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs_ref, weights)), leaves)
    grads = torch.autograd.grad(sum((o * w).sum() for o, w in zip(outs, weights)), leaves)
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b)


def test_non_square_kernel_and_float32_match_eager():
    x, h0, c0, p = make("channel", kernel=(3, 5), seed=3, dtype=torch.float32)
    y, h_n, c_n = conv_lstm(x, h0, c0, p)
    y_ref, h_ref, c_ref = conv_lstm_eager(x, h0, c0, p)
    torch.testing.assert_close(y, y_ref)
    leaves = [x, h0, *p]
    ga = torch.autograd.grad((y * y).sum() + c_n.sum(), leaves)
    gb = torch.autograd.grad((y_ref * y_ref).sum() + c_ref.sum(), leaves)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_frame_size_is_preserved_and_input_conv_is_one_call_per_sequence():
    x, _, _, p = make(None, kernel=(5, 3))
    xg = input_convolution(x, p)
    assert xg.shape == (T, B, 4 * K, S, S)
    # the stacked convolution equals per-step convolutions
    per_step = torch.stack([torch.nn.functional.conv2d(x[t], p.w_x, p.b, padding=(2, 1)) for t in range(T)])
    torch.testing.assert_close(xg, per_step)


def test_padded_steps_keep_the_state_and_output_zero():
    x, h0, c0, p = make(None, seed=4)
    y, h_n, c_n = conv_lstm(x, h0, c0, p, length_masks([3, 1]))
    y1, h1, c1 = conv_lstm(x[:1, 1:], h0[1:], c0[1:], p)
    torch.testing.assert_close(y[:1, 1:], y1)
    torch.testing.assert_close(h_n[1:], h1[0:1].reshape(h_n[1:].shape))
    torch.testing.assert_close(c_n[1:], c1)
    assert torch.count_nonzero(y[1:, 1]) == 0


@pytest.mark.parametrize("kernel", [(2, 3), (3, 4), (4, 4)])
def test_even_kernel_raises_naming_kernel_size(kernel):
    with pytest.raises(ValueError, match="kernel_size.*odd"):
        same_padding(kernel)
