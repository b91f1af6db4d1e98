"""The LSTM family's hand-derived BPTT: gradcheck (float64) and equality with autograd of the
same equations (functional/eager.py), for every option combination and every mask."""

import itertools

import pytest
import torch

from lstmkit.functional import LSTMParams, Masks
from lstmkit.functional._common import lengths_to_mask
from lstmkit.functional.eager import lstm_eager
from lstmkit.functional.lstm import lstm, lstm_step_backward, lstm_step_forward
from lstmkit.testing import assert_matches_autograd

T, B, I, H, P = 4, 3, 5, 6, 4
DT = torch.float64
COMBOS = list(itertools.product([False, True], repeat=4))  # peephole, coupled, layer_norm, proj


def make_params(peephole, coupled, layer_norm, proj, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    G = (3 if coupled else 4) * H
    Pw = P if proj else H

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=DT) * 0.5).requires_grad_()

    ln = [r(G), r(G), r(G), r(G), r(H), r(H)] if layer_norm else [None] * 6
    return LSTMParams(
        r(G, I), r(G, Pw), r(G) if bias else None, r(G) if bias else None,
        r(Pw, H) if proj else None,
        r(H) if peephole else None, r(H) if peephole and not coupled else None,
        r(H) if peephole else None, *ln,
    )


def make_masks(Pw, seed=1):
    """Recurrent dropout, zoneout (train: 0/1, eval: fractional) and lengths [4, 2, 1]."""
    g = torch.Generator().manual_seed(seed)
    rec = (torch.rand(B, Pw, generator=g, dtype=DT) > 0.3).to(DT) / 0.7
    zc = (torch.rand(T, B, H, generator=g, dtype=DT) > 0.5).to(DT)
    zh = torch.full((T, B, Pw), 0.3, dtype=DT)
    out = lengths_to_mask([4, 2, 1], T, torch.zeros((), dtype=DT))
    return Masks(rec, 1 - out * (1 - zc), 1 - out * (1 - zh), out)


def call(fn, params_template, masks, *tensors):
    """Re-thread a flat tensor list (x, h0, c0, present params) into fn's signature."""
    x, h0, c0, *rest = tensors
    it = iter(rest)
    p = LSTMParams(*[next(it) if t is not None else None for t in params_template])
    return fn(x, h0, c0, p, masks)


def inputs_for(p, proj):
    g = torch.Generator().manual_seed(2)
    Pw = P if proj else H
    x = torch.randn(T, B, I, generator=g, dtype=DT, requires_grad=True)
    h0 = torch.randn(B, Pw, generator=g, dtype=DT, requires_grad=True)
    c0 = torch.randn(B, H, generator=g, dtype=DT, requires_grad=True)
    return (x, h0, c0, *[t for t in p if t is not None])


@pytest.mark.parametrize("with_masks", [False, True], ids=["plain", "masks"])
@pytest.mark.parametrize("peephole,coupled,layer_norm,proj", COMBOS)
def test_hand_bptt_passes_gradcheck(peephole, coupled, layer_norm, proj, with_masks):
    p = make_params(peephole, coupled, layer_norm, proj)
    masks = make_masks(P if proj else H) if with_masks else Masks()
    inputs = inputs_for(p, proj)
    assert torch.autograd.gradcheck(lambda *a: call(lstm, p, masks, *a), inputs)


@pytest.mark.parametrize("with_masks", [False, True], ids=["plain", "masks"])
@pytest.mark.parametrize("peephole,coupled,layer_norm,proj", COMBOS)
def test_hand_bptt_equals_autograd_of_same_equations(peephole, coupled, layer_norm, proj,
                                                      with_masks):
    p = make_params(peephole, coupled, layer_norm, proj, bias=not with_masks)
    masks = make_masks(P if proj else H) if with_masks else Masks()
    assert_matches_autograd(lambda *a: call(lstm, p, masks, *a),
                            lambda *a: call(lstm_eager, p, masks, *a), inputs_for(p, proj))


@torch.no_grad()
def test_step_backward_matches_finite_differences_of_step_forward():
    """The single-step pair on its own (what the docs show a learner)."""
    p = make_params(True, False, True, True)
    x, h0, c0, *_ = inputs_for(p, True)
    from lstmkit.functional.lstm import input_projection

    xg, _, _ = input_projection(x[0].detach(), p)
    h, c, cache = lstm_step_forward(xg, h0.detach(), c0.detach(), p)
    dh, dc = torch.randn_like(h), torch.randn_like(c)
    grads = lstm_step_backward(dh, dc, c0.detach(), cache, p)
    eps = 1e-6
    for idx in [(0, 0), (1, 3), (2, 5)]:
        c_plus, c_minus = c0.detach().clone(), c0.detach().clone()
        c_plus[idx] += eps
        c_minus[idx] -= eps
        hp, cp, _ = lstm_step_forward(xg, h0.detach(), c_plus, p)
        hm, cm, _ = lstm_step_forward(xg, h0.detach(), c_minus, p)
        numeric = ((hp - hm) * dh).sum() / (2 * eps) + ((cp - cm) * dc).sum() / (2 * eps)
        torch.testing.assert_close(grads.dc_prev[idx], numeric, rtol=1e-5, atol=1e-7)


def test_padded_steps_output_zero_and_keep_state():
    p = make_params(False, False, False, False)
    out = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0]], dtype=DT)[..., None]  # lengths 3, 1
    masks = Masks(None, 1 - out, 1 - out, out)
    x = torch.randn(3, 2, I, dtype=DT)
    h0, c0 = torch.randn(2, H, dtype=DT), torch.randn(2, H, dtype=DT)
    y, h_n, c_n = lstm(x, h0, c0, p, masks)
    assert y[1:, 1].abs().sum() == 0
    y1, h1, c1 = lstm(x[:1, 1:], h0[1:], c0[1:], p)
    torch.testing.assert_close(h_n[1:], h1)
    torch.testing.assert_close(c_n[1:], c1)
    torch.testing.assert_close(y[:1, 1:], y1)
