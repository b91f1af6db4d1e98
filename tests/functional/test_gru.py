"""The GRU's hand-derived BPTT: gradcheck (float64), equality with autograd of the same equations
(functional/eager.py) for both forms, with and without bias and masks, and parity with torch.nn.GRU."""

import itertools

import pytest
import torch

from lstmkit.functional import GRUParams, Masks
from lstmkit.functional._common import lengths_to_mask
from lstmkit.functional.eager import gru_eager
from lstmkit.functional.gru import gru, gru_step_backward, gru_step_forward, input_projection
from lstmkit.testing import assert_matches_autograd

T, B, I, H = 4, 3, 5, 6
DT = torch.float64
COMBOS = list(itertools.product([True, False], [True, False], [False, True]))  # reset_after, bias, masks
IDS = [f"{'after' if a else 'before'}-{'bias' if b else 'nobias'}-{'masks' if m else 'plain'}"
       for a, b, m in COMBOS]


def make_params(bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=DT) * 0.5).requires_grad_()

    return GRUParams(r(3 * H, I), r(3 * H, H), r(3 * H) if bias else None, r(3 * H) if bias else None)


def make_masks(seed=1):
    """Recurrent dropout, zoneout keep weights (0, 1 and fractional) and lengths [4, 2, 1]."""
    g = torch.Generator().manual_seed(seed)
    rec = (torch.rand(B, H, generator=g, dtype=DT) > 0.3).to(DT) / 0.7
    u = torch.rand(T, B, H, generator=g, dtype=DT)
    zh = torch.where(u < 0.3, 1.0, torch.where(u < 0.6, 0.3, 0.0)).to(DT)
    out = lengths_to_mask([4, 2, 1], T, torch.zeros((), dtype=DT))  # (T, B, 1)
    return Masks(rec, None, 1 - out * (1 - zh), out)


def inputs_for(p, seed=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, I, generator=g, dtype=DT, requires_grad=True)
    h0 = torch.randn(B, H, generator=g, dtype=DT, requires_grad=True)
    return (x, h0, *[t for t in p if t is not None])


def call(fn, template, masks, reset_after, *tensors):
    """Re-thread a flat tensor list (x, h0, present params) into fn's signature."""
    x, h0, *rest = tensors
    it = iter(rest)
    p = GRUParams(*[next(it) if t is not None else None for t in template])
    return fn(x, h0, p, masks, reset_after=reset_after)


@pytest.mark.parametrize("reset_after,bias,with_masks", COMBOS, ids=IDS)
def test_hand_bptt_passes_gradcheck(reset_after, bias, with_masks):
    p = make_params(bias)
    masks = make_masks() if with_masks else Masks()
    inputs = inputs_for(p)
    assert torch.autograd.gradcheck(lambda *a: call(gru, p, masks, reset_after, *a), inputs)


@pytest.mark.parametrize("reset_after,bias,with_masks", COMBOS, ids=IDS)
def test_hand_bptt_equals_autograd_of_same_equations(reset_after, bias, with_masks):
    p = make_params(bias)
    masks = make_masks() if with_masks else Masks()
    assert_matches_autograd(lambda *a: call(gru, p, masks, reset_after, *a),
                            lambda *a: call(gru_eager, p, masks, reset_after, *a), inputs_for(p))


@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_gru_outputs_and_gradients(bias):
    torch.manual_seed(4)
    ref = torch.nn.GRU(I, H, bias=bias).to(DT)
    p = GRUParams(ref.weight_ih_l0, ref.weight_hh_l0, getattr(ref, "bias_ih_l0", None),
                  getattr(ref, "bias_hh_l0", None))
    x = torch.randn(T, B, I, dtype=DT, requires_grad=True)
    h0 = torch.randn(B, H, dtype=DT, requires_grad=True)
    y_ref, h_ref = ref(x, h0.unsqueeze(0))
    y, h_n = gru(x, h0, p)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h_n, h_ref.squeeze(0))
    dy, dh = torch.randn_like(y), torch.randn_like(h_n)
    wrt = (x, h0, *ref.parameters())
    g_ref = torch.autograd.grad((y_ref * dy).sum() + (h_ref.squeeze(0) * dh).sum(), wrt)
    g_ours = torch.autograd.grad((y * dy).sum() + (h_n * dh).sum(), wrt)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


@torch.no_grad()
def test_reset_after_false_applies_reset_before_matmul():
    """Cho et al.: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn), written out by hand."""
    p = make_params()
    x, h0, *_ = inputs_for(p)
    x, h0 = x[:1].detach(), h0.detach()
    w_ir, w_iz, w_in = p.w_ih.chunk(3)
    w_hr, w_hz, w_hn = p.w_hh.chunk(3)
    b_ir, b_iz, b_in = p.b_ih.chunk(3)
    b_hr, b_hz, b_hn = p.b_hh.chunk(3)
    r = torch.sigmoid(x[0] @ w_ir.t() + b_ir + h0 @ w_hr.t() + b_hr)
    z = torch.sigmoid(x[0] @ w_iz.t() + b_iz + h0 @ w_hz.t() + b_hz)
    n_before = torch.tanh(x[0] @ w_in.t() + b_in + (r * h0) @ w_hn.t() + b_hn)
    n_after = torch.tanh(x[0] @ w_in.t() + b_in + r * (h0 @ w_hn.t() + b_hn))
    _, h_before = gru(x, h0, p, reset_after=False)
    _, h_after = gru(x, h0, p, reset_after=True)
    torch.testing.assert_close(h_before, (1 - z) * n_before + z * h0)
    torch.testing.assert_close(h_after, (1 - z) * n_after + z * h0)
    assert (h_before - h_after).abs().max() > 1e-3  # the two forms really differ


@pytest.mark.parametrize("reset_after", [True, False])
def test_recurrent_dropout_masks_matmul_input_but_not_carried_state(reset_after):
    """With every unit dropped, the gates see no h, yet h still carries through z * h_prev."""
    p = make_params()
    x, h0, *_ = inputs_for(p)
    x, h0 = x[:1].detach(), h0.detach()
    rec = torch.zeros(B, H, dtype=DT)
    _, h_n = gru(x, h0, p, Masks(rec=rec), reset_after=reset_after)
    xr, xz, xn = (x[0] @ p.w_ih.t() + p.b_ih).detach().chunk(3, dim=1)
    b_hr, b_hz, b_hn = p.b_hh.detach().chunk(3)
    r, z = torch.sigmoid(xr + b_hr), torch.sigmoid(xz + b_hz)
    n = torch.tanh(xn + r * b_hn) if reset_after else torch.tanh(xn + b_hn)
    torch.testing.assert_close(h_n.detach(), (1 - z) * n + z * h0)


@pytest.mark.parametrize("reset_after", [True, False])
def test_padded_batch_equals_each_sequence_alone(reset_after):
    p = make_params()
    lengths = [4, 2, 1]
    out = lengths_to_mask(lengths, T, torch.zeros((), dtype=DT))
    x, h0, *_ = inputs_for(p)
    y, h_n = gru(x, h0, p, Masks(None, None, 1 - out, out), reset_after=reset_after)
    for b, n in enumerate(lengths):
        y1, h1 = gru(x[:n, b : b + 1], h0[b : b + 1], p, reset_after=reset_after)
        torch.testing.assert_close(y[:n, b : b + 1], y1)
        torch.testing.assert_close(h_n[b : b + 1], h1)
        assert y[n:, b].abs().sum() == 0


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("with_rec", [False, True])
def test_step_backward_equals_autograd_of_one_eager_step(reset_after, with_rec):
    """The public step pair on its own: dh_prev, d(recurrent GEMM) = d b_hh, d xg = d b_ih."""
    p = make_params()
    x, h0, *_ = inputs_for(p)
    rec = make_masks().rec if with_rec else None
    with torch.no_grad():
        xg = input_projection(x[0], p, reset_after)
        h_new, cache = gru_step_forward(xg, h0, p, rec, reset_after)
        dh = torch.randn(h_new.shape, generator=torch.Generator().manual_seed(5), dtype=DT)
        grads = gru_step_backward(dh, h0, cache, p, rec, reset_after)
    h0e = h0.detach().requires_grad_()
    ye, _ = gru_eager(x[:1].detach(), h0e, p, Masks(rec=rec), reset_after)
    dh0, db_ih, db_hh = torch.autograd.grad((ye[0] * dh).sum(), (h0e, p.b_ih, p.b_hh))
    torch.testing.assert_close(h_new, ye[0].detach())
    torch.testing.assert_close(grads.dh_prev, dh0)
    torch.testing.assert_close(grads.dhh.sum(0), db_hh)
    torch.testing.assert_close(torch.cat([grads.dhh[:, : 2 * H], grads.da_n], 1).sum(0), db_ih)
