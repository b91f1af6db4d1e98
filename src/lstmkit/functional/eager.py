"""Eager autograd implementations of the same equations, written as plainly as possible.

They are the oracle for the hand-derived backward passes (hand BPTT == autograd of this
forward) and the "eager-autograd implementation of the same variant" that benchmarks compare
against. Same arguments and returns as the reference sequence functions.

Symbols: T time, B batch, I input, H hidden, P output width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ._common import LN_EPS, Masks, blend_at
from .lstm import LSTMParams, _check_ablation, gate_blocks, is_coupled


def _ln(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return F.layer_norm(x, x.shape[-1:], w, b, LN_EPS)


def lstm_eager(x: Tensor, h0: Tensor, c0: Tensor, p: LSTMParams, masks: Masks = Masks(),
               **ablation):
    """x: (T, B, I) -> (y (T, B, P), h_n, c_n), differentiated by autograd. ``ablation``: one of
    Greff et al.'s variants (``lstmkit.functional.lstm.ABLATIONS``) set True, if any."""
    which = _check_ablation(ablation)
    if which is not None:
        return _lstm_ablation_eager(x, h0, c0, p, masks, which)
    H = c0.shape[-1]
    coupled = is_coupled(p)
    h, c, ys = h0, c0, []
    for t in range(x.shape[0]):
        xp = x[t] @ p.w_ih.t()
        hp = (h if masks.rec is None else h * masks.rec) @ p.w_hh.t()
        if p.ln_ih_w is not None:
            xp, hp = _ln(xp, p.ln_ih_w, p.ln_ih_b), _ln(hp, p.ln_hh_w, p.ln_hh_b)
        a = xp + hp
        if p.b_ih is not None:
            a = a + p.b_ih + p.b_hh
        if coupled:
            a_i, a_g, a_o = a.split(H, dim=1)
        else:
            a_i, a_f, a_g, a_o = a.split(H, dim=1)
        if p.w_ci is not None:
            a_i = a_i + p.w_ci * c
            if not coupled:
                a_f = a_f + p.w_cf * c
        i = torch.sigmoid(a_i)
        f = 1 - i if coupled else torch.sigmoid(a_f)
        g = torch.tanh(a_g)
        c_new = f * c + i * g
        if p.w_co is not None:
            a_o = a_o + p.w_co * c_new
        o = torch.sigmoid(a_o)
        cn = c_new if p.ln_c_w is None else _ln(c_new, p.ln_c_w, p.ln_c_b)
        h_new = o * torch.tanh(cn)
        if p.w_hr is not None:
            h_new = h_new @ p.w_hr.t()
        c = blend_at(c_new, c, masks.keep_c, t)
        h = blend_at(h_new, h, masks.keep_h, t)
        ys.append(h if masks.out is None else h * masks.out[t])
    return torch.stack(ys), h, c


def _lstm_ablation_eager(x, h0, c0, p: LSTMParams, masks: Masks, which: str):
    H = c0.shape[-1]
    blocks = gate_blocks(which)
    h, c, ys = h0, c0, []
    gates_prev = x.new_zeros(x.shape[1], 3 * H)  # [i, f, o] of the previous step (FGR)
    for t in range(x.shape[0]):
        hr = h if masks.rec is None else h * masks.rec
        a = x[t] @ p.w_ih.t() + hr @ p.w_hh.t()
        if p.b_ih is not None:
            a = a + p.b_ih + p.b_hh
        pre = dict(zip(blocks, a.split(H, dim=1)))
        if which == "full_gate_recurrence":
            r_i, r_f, r_o = (gates_prev @ p.w_gr.t()).split(H, dim=1)
            pre["i"], pre["f"], pre["o"] = pre["i"] + r_i, pre["f"] + r_f, pre["o"] + r_o
        if p.w_ci is not None and "i" in pre:
            pre["i"] = pre["i"] + p.w_ci * c
        if p.w_cf is not None and "f" in pre:
            pre["f"] = pre["f"] + p.w_cf * c
        i = torch.sigmoid(pre["i"]) if "i" in pre else 1.0
        f = torch.sigmoid(pre["f"]) if "f" in pre else 1.0
        g = pre["g"] if which == "no_input_activation" else torch.tanh(pre["g"])
        c_new = f * c + i * g
        if "o" in pre:
            a_o = pre["o"] if p.w_co is None else pre["o"] + p.w_co * c_new
            o = torch.sigmoid(a_o)
        else:
            o = 1.0
        h_new = o * (c_new if which == "no_output_activation" else torch.tanh(c_new))
        if p.w_hr is not None:
            h_new = h_new @ p.w_hr.t()
        if which == "full_gate_recurrence":
            gates_prev = torch.cat([i, f, o], dim=1)
        c = blend_at(c_new, c, masks.keep_c, t)
        h = blend_at(h_new, h, masks.keep_h, t)
        ys.append(h if masks.out is None else h * masks.out[t])
    return torch.stack(ys), h, c


def gru_eager(x: Tensor, h0: Tensor, p, masks: Masks = Masks(), reset_after: bool = True):
    """x: (T, B, I) -> (y (T, B, H), h_n), differentiated by autograd. p: GRUParams."""
    h, ys = h0, []
    for t in range(x.shape[0]):
        hr = h if masks.rec is None else h * masks.rec
        xr, xz, xn = (x[t] @ p.w_ih.t()).chunk(3, dim=1)
        w_hr, w_hz, w_hn = p.w_hh.chunk(3, dim=0)
        b_ir, b_iz, b_in = p.b_ih.chunk(3) if p.b_ih is not None else (0, 0, 0)
        b_hr, b_hz, b_hn = p.b_hh.chunk(3) if p.b_hh is not None else (0, 0, 0)
        r = torch.sigmoid(xr + b_ir + hr @ w_hr.t() + b_hr)
        z = torch.sigmoid(xz + b_iz + hr @ w_hz.t() + b_hz)
        if reset_after:
            n = torch.tanh(xn + b_in + r * (hr @ w_hn.t() + b_hn))
        else:
            n = torch.tanh(xn + b_in + (r * hr) @ w_hn.t() + b_hn)
        h_new = (1 - z) * n + z * h
        h = blend_at(h_new, h, masks.keep_h, t)
        ys.append(h if masks.out is None else h * masks.out[t])
    return torch.stack(ys), h


def rnn_eager(x: Tensor, h0: Tensor, p, masks: Masks = Masks(), nonlinearity: str = "tanh"):
    """x: (T, B, I) -> (y (T, B, H), h_n), differentiated by autograd. p: RNNParams."""
    return elman_eager(x, h0, p, masks, nonlinearity, lambda hr: hr @ p.w_hh.t())


def elman_eager(x: Tensor, h0: Tensor, p, masks: Masks, nonlinearity: str, recurrent):
    """The loop of the Elman-shaped oracles (RNN, IndRNN): ``h = act(x W_ih^T + recurrent(hr)
    + b_ih + b_hh)``, ``recurrent`` the family's recurrent term of ``hr = h_prev * rec``."""
    act = torch.tanh if nonlinearity == "tanh" else torch.relu
    h, ys = h0, []
    for t in range(x.shape[0]):
        hr = h if masks.rec is None else h * masks.rec
        a = x[t] @ p.w_ih.t() + recurrent(hr)
        if p.b_ih is not None:
            a = a + p.b_ih + p.b_hh
        h = blend_at(act(a), h, masks.keep_h, t)
        ys.append(h if masks.out is None else h * masks.out[t])
    return torch.stack(ys), h
