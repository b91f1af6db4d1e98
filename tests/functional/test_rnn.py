"""The vanilla RNN's hand-derived BPTT: gradcheck (float64), equality with autograd of the same
equations (functional/eager.py) for tanh and relu, with and without bias and masks, and parity
with torch.nn.RNN."""

import itertools

import pytest
import torch

from lstmkit.functional import Masks, RNNParams
from lstmkit.functional._common import lengths_to_mask
from lstmkit.functional.eager import rnn_eager
from lstmkit.functional.rnn import input_projection, rnn, rnn_step_backward, rnn_step_forward
from lstmkit.testing import assert_matches_autograd

T, B, I, H = 4, 3, 5, 6
DT = torch.float64
COMBOS = list(itertools.product(["tanh", "relu"], [True, False], [False, True]))  # nonlin, bias, masks
IDS = [f"{a}-{'bias' if b else 'nobias'}-{'masks' if m else 'plain'}" for a, b, m in COMBOS]


def make_params(bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return (torch.randn(*shape, generator=g, dtype=DT) * 0.5).requires_grad_()

    return RNNParams(r(H, I), r(H, H), r(H) if bias else None, r(H) if bias else None)


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


def call(fn, template, masks, nonlinearity, *tensors):
    """Re-thread a flat tensor list (x, h0, present params) into fn's signature."""
    x, h0, *rest = tensors
    it = iter(rest)
    p = RNNParams(*[next(it) if t is not None else None for t in template])
    return fn(x, h0, p, masks, nonlinearity=nonlinearity)


@pytest.mark.parametrize("nonlinearity,bias,with_masks", COMBOS, ids=IDS)
def test_hand_bptt_passes_gradcheck(nonlinearity, bias, with_masks):
    p = make_params(bias)
    masks = make_masks() if with_masks else Masks()
    inputs = inputs_for(p)
    assert torch.autograd.gradcheck(lambda *a: call(rnn, p, masks, nonlinearity, *a), inputs)


@pytest.mark.parametrize("nonlinearity,bias,with_masks", COMBOS, ids=IDS)
def test_hand_bptt_equals_autograd_of_same_equations(nonlinearity, bias, with_masks):
    p = make_params(bias)
    masks = make_masks() if with_masks else Masks()
    assert_matches_autograd(lambda *a: call(rnn, p, masks, nonlinearity, *a),
                            lambda *a: call(rnn_eager, p, masks, nonlinearity, *a), inputs_for(p))


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_rnn_outputs_and_gradients(nonlinearity, bias):
    torch.manual_seed(4)
    ref = torch.nn.RNN(I, H, nonlinearity=nonlinearity, bias=bias).to(DT)
    p = RNNParams(ref.weight_ih_l0, ref.weight_hh_l0, getattr(ref, "bias_ih_l0", None),
                  getattr(ref, "bias_hh_l0", None))
    x = torch.randn(T, B, I, dtype=DT, requires_grad=True)
    h0 = torch.randn(B, H, dtype=DT, requires_grad=True)
    y_ref, h_ref = ref(x, h0.unsqueeze(0))
    y, h_n = rnn(x, h0, p, nonlinearity=nonlinearity)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(h_n, h_ref.squeeze(0))
    dy, dh = torch.randn_like(y), torch.randn_like(h_n)
    wrt = (x, h0, *ref.parameters())
    g_ref = torch.autograd.grad((y_ref * dy).sum() + (h_ref.squeeze(0) * dh).sum(), wrt)
    g_ours = torch.autograd.grad((y * dy).sum() + (h_n * dh).sum(), wrt)
    for a, b in zip(g_ours, g_ref):
        torch.testing.assert_close(a, b)


def test_relu_backward_passes_no_gradient_at_zero_preactivation_like_autograd():
    """Units 0 and 1 have a pre-activation of exactly 0 at every step (zero weights, cancelling
    biases): autograd's relu passes no gradient there, and neither must the hand backward."""
    p = make_params()
    with torch.no_grad():
        for t in (p.w_ih, p.w_hh):
            t[:2] = 0.0
        p.b_hh[:2] = -p.b_ih[:2]
    inputs = inputs_for(p)
    assert call(rnn, p, Masks(), "relu", *inputs)[0][:, :, :2].abs().sum() == 0
    ga, _ = assert_matches_autograd(lambda *a: call(rnn, p, Masks(), "relu", *a),
                                    lambda *a: call(rnn_eager, p, Masks(), "relu", *a), inputs,
                                    seed=None)
    dw_ih = ga[2]
    assert dw_ih[:2].abs().sum() == 0 and dw_ih[2:].abs().sum() > 0


def test_recurrent_dropout_masks_matmul_input():
    """With every unit dropped the step sees no h at all: h_1 = tanh(x W_ih^T + b)."""
    p = make_params()
    x, h0, *_ = inputs_for(p)
    _, h_n = rnn(x[:1], h0, p, Masks(rec=torch.zeros(B, H, dtype=DT)))
    expected = torch.tanh(x[0] @ p.w_ih.t() + p.b_ih + p.b_hh)
    torch.testing.assert_close(h_n, expected)


def test_padded_batch_equals_each_sequence_alone():
    p = make_params()
    lengths = [4, 2, 1]
    out = lengths_to_mask(lengths, T, torch.zeros((), dtype=DT))
    x, h0, *_ = inputs_for(p)
    y, h_n = rnn(x, h0, p, Masks(None, None, 1 - out, out))
    for b, n in enumerate(lengths):
        y1, h1 = rnn(x[:n, b : b + 1], h0[b : b + 1], p)
        torch.testing.assert_close(y[:n, b : b + 1], y1)
        torch.testing.assert_close(h_n[b : b + 1], h1)
        assert y[n:, b].abs().sum() == 0


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_step_backward_equals_autograd_of_one_eager_step(nonlinearity):
    p = make_params()
    x, h0, *_ = inputs_for(p)
    rec = make_masks().rec
    with torch.no_grad():
        h_new = rnn_step_forward(input_projection(x[0], p), h0, p, rec, nonlinearity)
        dh = torch.randn(h_new.shape, generator=torch.Generator().manual_seed(5), dtype=DT)
        da, dh_prev = rnn_step_backward(dh, h_new, p, rec, nonlinearity)
    h0e = h0.detach().requires_grad_()
    ye, _ = rnn_eager(x[:1].detach(), h0e, p, Masks(rec=rec), nonlinearity)
    dh0, db = torch.autograd.grad((ye[0] * dh).sum(), (h0e, p.b_ih))
    torch.testing.assert_close(h_new, ye[0].detach())
    torch.testing.assert_close(dh_prev, dh0)
    torch.testing.assert_close(da.sum(0), db)


def test_unknown_nonlinearity_is_rejected_by_name():
    p = make_params()
    x, h0, *_ = inputs_for(p)
    with pytest.raises(ValueError, match="nonlinearity"):
        rnn(x, h0, p, nonlinearity="sigmoid")
