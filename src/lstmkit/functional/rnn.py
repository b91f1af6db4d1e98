"""The vanilla (Elman) RNN from its equations: step forward, hand-derived step backward, BPTT.

Symbols: T time, B batch, I input, H hidden.

Step forward::

    hr  = h_prev * rec                                  recurrent dropout (rec = 1 without it)
    a   = x W_ih^T + b_ih + hr W_hh^T + b_hh            (B, H)
    h   = tanh(a)   or   relu(a)

The sequence loop then blends the new state with the old one, ``h = keep * h_prev + (1 - keep)
* h_new`` (zoneout in training, its expectation at eval, a padded step with keep = 1), and
outputs are ``y_t = out_t * h_t`` (zero at padded steps).

Step backward (``d`` = d loss / d), t = T .. 1::

    dh      = dh_carried + out * dy;     dh_new = (1 - keep_h) * dh
    da      = dh_new * (1 - h_new^2)     tanh    (relu: dh_new * [h_new > 0])
    dh_prev = (da W_hh) * rec + keep_h * dh

and, after the loop, over all T*B rows::

    dW_ih = da^T x;   dx = da W_ih;   dW_hh = da^T (h_prev * rec);   db_ih = db_hh = sum da

The forward precomputes ``x W_ih^T + b_ih + b_hh`` for all steps in one GEMM and stores only
the new states before the blend (what the nonlinearity's derivative needs). The backward walks
time in reverse and takes the weight gradients with one GEMM over all steps after the loop.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from . import _autograd as glue
from ._common import Masks, add_output_grad, keep_blend, masked_output, sum_bt
from .registry import Family, Option, ParamSpec, dense_specs, register

NONLINEARITIES = ("tanh", "relu")


class RNNParams(NamedTuple):
    """One layer-direction's parameters (torch's names)."""

    w_ih: Tensor  # (H, I)
    w_hh: Tensor  # (H, H)
    b_ih: Tensor | None = None  # (H,)
    b_hh: Tensor | None = None  # (H,)


def input_projection(x: Tensor, p: RNNParams) -> Tensor:
    """``x W_ih^T + b_ih + b_hh`` for every step at once: one GEMM. (..., I) -> (..., H)."""
    if p.b_ih is None:
        return x @ p.w_ih.t()
    xs = x.reshape(-1, x.shape[-1])
    return torch.addmm(p.b_ih + p.b_hh, xs, p.w_ih.t()).reshape(*x.shape[:-1], -1)


def rnn_step_forward(
    xg: Tensor, h_prev: Tensor, p: RNNParams, rec_mask: Tensor | None = None, nonlinearity: str = "tanh"
) -> Tensor:
    """One step. xg: (B, H) from ``input_projection``; h_prev: (B, H). Returns h_new (B, H).

    h_new is also all the backward needs."""
    hr = h_prev if rec_mask is None else h_prev * rec_mask  # recurrent dropout
    a = torch.addmm(xg, hr, p.w_hh.t())  # (B, H)
    return activation_(a, nonlinearity)


def activation_(a: Tensor, nonlinearity: str) -> Tensor:
    """tanh or relu of the pre-activation ``a``, in place (the RNN-like families share it)."""
    return a.tanh_() if nonlinearity == "tanh" else a.relu_()


def activation_backward(dh: Tensor, h_new: Tensor, nonlinearity: str) -> Tensor:
    """d loss / d a from d loss / d h_new, through ``activation_`` (read off its output)."""
    if nonlinearity == "tanh":
        return dh * (1.0 - h_new * h_new)  # backprop through tanh
    return dh * (h_new > 0)  # backprop through relu (0 at a = 0, as autograd)


def rnn_step_backward(
    dh: Tensor, h_new: Tensor, p: RNNParams, rec_mask: Tensor | None = None, nonlinearity: str = "tanh"
) -> tuple[Tensor, Tensor]:
    """Backward of ``rnn_step_forward``. dh: d loss / d h_new (B, H). Returns (da, dh_prev)."""
    da = activation_backward(dh, h_new, nonlinearity)
    dh_prev = da @ p.w_hh  # backprop through the recurrent GEMM
    if rec_mask is not None:
        dh_prev *= rec_mask  # backprop through recurrent dropout
    return da, dh_prev


class RNNSaved(NamedTuple):
    """What the sequence backward needs."""

    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, H) carried h, h_all[0] = h0
    h_new: Tensor  # (T, B, H) the new states before the keep blend


def rnn_sequence_forward(x: Tensor, h0: Tensor, p: RNNParams, masks: Masks, nonlinearity: str):
    """Run T steps. x: (T, B, I); h0: (B, H). Returns (y, h_n, saved)."""
    T, B = x.shape[0], x.shape[1]
    H = h0.shape[-1]
    xg = input_projection(x, p)  # (T, B, H), one GEMM
    h_all = x.new_empty(T + 1, B, H)  # carried h, h_all[0] = h0
    h_all[0] = h0
    kh = masks.keep_h
    h_new = x.new_empty(T, B, H) if kh is not None else h_all[1:]  # before the blend
    for t in range(T):
        h = rnn_step_forward(xg[t], h_all[t], p, masks.rec, nonlinearity)
        if kh is not None:
            h_new[t] = h
            h = keep_blend(h, h_all[t], kh[t])
        h_all[t + 1] = h
    y = masked_output(h_all[1:], masks.out)  # (T, B, H)
    return y, h_all[T].clone(), RNNSaved(x, h_all, h_new)


def rnn_sequence_backward(dy, dh_n, saved, p: RNNParams, masks: Masks, nonlinearity: str):
    """BPTT. Returns (dx, dh0, RNNParams of gradients)."""
    x, h_all, h_new = saved
    T, B = x.shape[0], x.shape[1]
    H, I = h_all.shape[-1], x.shape[-1]
    dh = dh_n.clone() if dh_n is not None else x.new_zeros(B, H)
    da_all = torch.empty_like(h_new)  # (T, B, H)
    kh = masks.keep_h
    for t in reversed(range(T)):
        dh = add_output_grad(dh, None if dy is None else dy[t], None if masks.out is None else masks.out[t])
        # h = keep * h_prev + (1 - keep) * h_new
        dh_step = dh if kh is None else dh * (1.0 - kh[t])
        da, dh_prev = rnn_step_backward(dh_step, h_new[t], p, masks.rec, nonlinearity)
        da_all[t] = da
        dh = dh_prev if kh is None else dh_prev + dh * kh[t]

    # weight gradients: one GEMM / reduction over all T*B rows
    hr_all = h_all[:-1] if masks.rec is None else h_all[:-1] * masks.rec  # (T, B, H)
    da2 = da_all.reshape(-1, H)
    dw_hh = da2.t() @ hr_all.reshape(-1, H)
    dw_ih = da2.t() @ x.reshape(-1, I)
    dx = (da2 @ p.w_ih).reshape(T, B, I)
    db = sum_bt(da_all) if p.b_ih is not None else None
    return dx, dh, RNNParams(dw_ih, dw_hh, db, db)


# apply((nonlinearity,), x, h0, rec, keep_c, keep_h, out, *params)
RNNFunction = glue.reference_function("RNNFunction", RNNParams, 1, rnn_sequence_forward,
                                      rnn_sequence_backward)


def check_nonlinearity(nonlinearity: str, choices: tuple[str, ...] = NONLINEARITIES) -> str:
    """The one check of a ``nonlinearity`` argument (the RNN-like families and their kernels)."""
    if nonlinearity not in choices:
        raise ValueError(f"nonlinearity: expected one of {choices}, got {nonlinearity!r}")
    return nonlinearity


def rnn(x: Tensor, h0: Tensor, p: RNNParams, masks: Masks = Masks(), nonlinearity: str = "tanh"):
    """One layer, one direction, reference engine. x: (T, B, I), h0: (B, H) -> y (T, B, H), h_n.

    ``masks.keep_c`` is ignored (an RNN has no cell).
    """
    opts = (check_nonlinearity(nonlinearity),)
    return RNNFunction.apply(*glue.apply_args(opts, x, (h0,), masks, p))


def _param_specs(opts: dict, I: int, H: int, P: int, bias: bool) -> list[ParamSpec]:
    return dense_specs(H, I, H, bias)


FAMILY = register(Family(
    name="rnn",
    title="RNN",
    params=RNNParams,
    state=("h",),
    options=(
        Option("nonlinearity", "tanh", NONLINEARITIES, "'tanh' or 'relu'", call=True),
    ),
    param_specs=_param_specs,
    reference=rnn,
    eager="lstmkit.functional.eager:rnn_eager",
    doc="Elman recurrent network, h = tanh(x W_ih^T + b_ih + h_prev W_hh^T + b_hh) (or relu).",
    fused="lstmkit.kernels",
    vendor=lambda o: f"RNN_{o['nonlinearity'].upper()}",
    mode=lambda o: f"RNN_{o['nonlinearity'].upper()}",
))
