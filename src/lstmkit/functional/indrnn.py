"""IndRNN (Li et al. 2018, "Independently Recurrent Neural Network") from its equations.

The family that shows how a new cell lands: this file and one line in ``registry._MODULES``.
The layers ``lstmkit.IndRNN`` / ``lstmkit.IndRNNCell``, the engines, and the registry-wide tests
(gradcheck, hand == autograd, lengths, repr, state_dict) come from the ``FAMILY`` below.

Symbols: T time, B batch, I input, H hidden.

Step forward (each unit sees only its own past: the recurrent weight is a vector ``u``)::

    hr  = h_prev * rec                                  recurrent dropout (rec = 1 without it)
    a   = x W_ih^T + b_ih + u * hr + b_hh               (B, H)
    h   = relu(a)   or   tanh(a)

The loop blends the new state with the old one, ``h = keep * h_prev + (1 - keep) * h_new``
(zoneout in training, its expectation at eval, a padded step with keep = 1), and outputs are
``y_t = out_t * h_t``.

Step backward (``d`` = d loss / d), t = T .. 1::

    dh      = dh_carried + out * dy;     dh_new = (1 - keep_h) * dh
    da      = dh_new * [h_new > 0]       relu    (tanh: dh_new * (1 - h_new^2))
    dh_prev = da * u * rec + keep_h * dh

and, after the loop, over all T*B rows::

    dW_ih = da^T x;   dx = da W_ih;   du = sum da * hr;   db_ih = db_hh = sum da

    >>> import torch
    >>> p = IndRNNParams(torch.randn(4, 3), torch.rand(4), torch.zeros(4), torch.zeros(4))
    >>> y, h_n = indrnn(torch.randn(6, 2, 3), torch.zeros(2, 4), p)
    >>> tuple(y.shape), bool((y >= 0).all())
    ((6, 2, 4), True)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from . import _autograd as glue
from ._common import Masks, add_output_grad, keep_blend, masked_output, sum_bt
from .eager import elman_eager
from .registry import Family, Option, ParamSpec, dense_specs, register
from .rnn import activation_, activation_backward, check_nonlinearity, input_projection

NONLINEARITIES = ("relu", "tanh")


class IndRNNParams(NamedTuple):
    """One layer-direction's parameters (torch-style names)."""

    w_ih: Tensor  # (H, I)
    w_hh: Tensor  # (H,)   the diagonal recurrent weight u
    b_ih: Tensor | None = None  # (H,)
    b_hh: Tensor | None = None  # (H,)


class IndRNNSaved(NamedTuple):
    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, H) carried h, h_all[0] = h0
    h_new: Tensor  # (T, B, H) new states before the keep blend


def indrnn_sequence_forward(x: Tensor, h0: Tensor, p: IndRNNParams, masks: Masks, nonlinearity: str):
    """Run T steps. x: (T, B, I); h0: (B, H). Returns (y, h_n, saved)."""
    T, B, H = x.shape[0], x.shape[1], h0.shape[-1]
    xg = input_projection(x, p)  # (T, B, H), one GEMM for all steps (the RNN's)
    h_all = x.new_empty(T + 1, B, H)
    h_all[0] = h0
    kh = masks.keep_h
    h_new = x.new_empty(T, B, H) if kh is not None else h_all[1:]
    for t in range(T):
        hr = h_all[t] if masks.rec is None else h_all[t] * masks.rec  # recurrent dropout
        h = activation_(torch.addcmul(xg[t], p.w_hh, hr), nonlinearity)  # (B, H)
        if kh is not None:
            h_new[t] = h
            h = keep_blend(h, h_all[t], kh[t])
        h_all[t + 1] = h
    return masked_output(h_all[1:], masks.out), h_all[T].clone(), IndRNNSaved(x, h_all, h_new)


def indrnn_sequence_backward(dy, dh_n, saved: IndRNNSaved, p: IndRNNParams, masks: Masks,
                             nonlinearity: str):
    """BPTT. Returns (dx, dh0, IndRNNParams of gradients)."""
    x, h_all, h_new = saved
    T, B, H = h_new.shape
    dh = dh_n.clone() if dh_n is not None else x.new_zeros(B, H)
    da_all = torch.empty_like(h_new)  # (T, B, H)
    kh, rec = masks.keep_h, masks.rec
    for t in reversed(range(T)):
        dh = add_output_grad(dh, None if dy is None else dy[t], None if masks.out is None else masks.out[t])
        dh_step = dh if kh is None else dh * (1.0 - kh[t])  # h = keep * h_prev + (1 - keep) * h_new
        da = activation_backward(dh_step, h_new[t], nonlinearity)  # through relu or tanh
        da_all[t] = da
        dh_prev = da * p.w_hh if rec is None else da * p.w_hh * rec  # through u * hr
        dh = dh_prev if kh is None else dh_prev + dh * kh[t]
    hr_all = h_all[:-1] if rec is None else h_all[:-1] * rec  # (T, B, H)
    da2 = da_all.reshape(-1, H)
    db = sum_bt(da_all) if p.b_ih is not None else None
    grads = IndRNNParams(da2.t() @ x.reshape(-1, x.shape[-1]), sum_bt(da_all * hr_all), db, db)
    return (da2 @ p.w_ih).reshape(x.shape), dh, grads


# apply((nonlinearity,), x, h0, rec, keep_c, keep_h, out, *params)
IndRNNFunction = glue.reference_function("IndRNNFunction", IndRNNParams, 1, indrnn_sequence_forward,
                                         indrnn_sequence_backward)


def indrnn(x: Tensor, h0: Tensor, p: IndRNNParams, masks: Masks = Masks(), nonlinearity: str = "relu"):
    """One layer, one direction, reference engine. x: (T, B, I), h0: (B, H) -> y (T, B, H), h_n."""
    opts = (check_nonlinearity(nonlinearity, NONLINEARITIES),)
    return IndRNNFunction.apply(*glue.apply_args(opts, x, (h0,), masks, p))


def indrnn_eager(x: Tensor, h0: Tensor, p: IndRNNParams, masks: Masks = Masks(),
                 nonlinearity: str = "relu"):
    """The same equations written plainly and differentiated by autograd (the oracle): the
    RNN's loop with the diagonal recurrent term ``u * hr``."""
    return elman_eager(x, h0, p, masks, nonlinearity, lambda hr: p.w_hh * hr)


def _param_specs(opts: dict, I: int, H: int, P: int, bias: bool) -> list[ParamSpec]:
    return dense_specs(H, I, H, bias, recurrent=(H,), recurrent_role="diagonal")


FAMILY = register(Family(
    name="indrnn",
    title="IndRNN",
    params=IndRNNParams,
    state=("h",),
    options=(Option("nonlinearity", "relu", NONLINEARITIES, "'relu' (the paper's) or 'tanh'",
                    call=True),),
    param_specs=_param_specs,
    reference=indrnn,
    eager=indrnn_eager,
    doc="Independently recurrent network (Li et al. 2018): h = relu(W_ih x + b_ih + u * h_prev "
        "+ b_hh), one recurrent weight per unit (weight_hh is (H,)).",
))
