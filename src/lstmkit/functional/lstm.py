"""The LSTM family from its equations: step forward, hand-derived step backward, BPTT.

Symbols: T time, B batch, I input, H hidden (cell), P output width (proj_size, or H),
G gate rows (4H: i, f, g, o; 3H when coupled: i, g, o).

Step forward (all options; a flag that is off drops its term)::

    a   = LN_ih(x W_ih^T) + LN_hh((h_prev * r) W_hh^T) + b_ih + b_hh     (B, G)
    i   = sigmoid(a_i + w_ci * c_prev)
    f   = sigmoid(a_f + w_cf * c_prev)          or  1 - i  when coupled (CIFG)
    g   = tanh(a_g)
    c   = f * c_prev + i * g
    o   = sigmoid(a_o + w_co * c)
    m   = o * tanh(LN_c(c))
    h   = m W_hr^T                              (projection; h = m without it)

``r`` is the recurrent-dropout mask (one per sequence). The sequence loop then blends the new
state with the old one, ``state = keep * state_prev + (1 - keep) * state_new``, which is
zoneout in training (keep ~ Bernoulli(p)), its expectation at eval (keep = p), and a padded
step of a shorter sequence (keep = 1). Outputs at padded steps are zero (``y = out * h``).

Step backward (``d`` = d loss / d; ``s'`` = s (1 - s) for a sigmoid output s; LN' is the layer
norm's input gradient, ``_common.layer_norm_backward``), walking t = T .. 1::

    dh      = dh_carried + out * dy                          the step's output gradient
    dh_new  = (1 - keep_h) * dh;    dc_new = (1 - keep_c) * dc_carried
    dm      = dh_new W_hr                                    (dm = dh_new without projection)
    do      = dm * tanh(LN_c(c))
    dc      = dc_new + LN_c'(dm * o * (1 - tanh(LN_c(c))^2))
    da_o    = do * o'
    dc     += da_o * w_co                                    o saw c through its peephole
    da_i    = dc * g * i'                coupled: dc * (g - c_prev) * i'
    da_f    = dc * c_prev * f'
    da_g    = dc * i * (1 - g^2)
    dc_prev = dc * f + da_i * w_ci + da_f * w_cf + keep_c * dc_carried
    dhh     = LN_hh'(da)
    dh_prev = (dhh W_hh) * r + keep_h * dh

and, after the loop, every weight gradient in one GEMM or one reduction over all T*B rows::

    dW_ih = LN_ih'(da)^T x       dx = LN_ih'(da) W_ih       db_ih = db_hh = sum da
    dW_hh = dhh^T (h_prev * r)   dW_hr = dh_new^T m
    dw_ci = sum da_i * c_prev    dw_cf = sum da_f * c_prev  dw_co = sum da_o * c
    dLN_ih (w, b) = (sum da * x_hat, sum da)   likewise LN_hh with dhh's input, LN_c with dcn

The forward precomputes ``x W_ih^T`` for all steps in one GEMM and stores only what the
backward needs (gate activations, cell states, tanh of the cell, layer-norm statistics).
The backward walks time in reverse and takes every weight gradient with one GEMM (or one
reduction) over all steps after the loop.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from . import _autograd as glue
from ._common import (
    Masks,
    add_output_grad,
    keep_blend,
    layer_norm,
    layer_norm_backward,
    masked_output,
    sum_bt,
)
from .registry import Family, Option, ParamSpec, dense_specs, register

# the weight precisions of the packed streaming step (``kernels.lstm_step``, ``step_weights=``)
STEP_WEIGHTS = ("full", "bfloat16", "int8")


class LSTMParams(NamedTuple):
    """One layer-direction's parameters. Optional entries are None when their flag is off."""

    w_ih: Tensor  # (G, I)
    w_hh: Tensor  # (G, P)
    b_ih: Tensor | None = None  # (G,)
    b_hh: Tensor | None = None  # (G,)
    w_hr: Tensor | None = None  # (P, H)       proj_size
    w_ci: Tensor | None = None  # (H,)         peephole
    w_cf: Tensor | None = None  # (H,)         peephole (absent when coupled)
    w_co: Tensor | None = None  # (H,)         peephole
    ln_ih_w: Tensor | None = None  # (G,)      layer_norm
    ln_ih_b: Tensor | None = None
    ln_hh_w: Tensor | None = None
    ln_hh_b: Tensor | None = None
    ln_c_w: Tensor | None = None  # (H,)
    ln_c_b: Tensor | None = None
    w_gr: Tensor | None = None  # (3H, 3H)   full_gate_recurrence (Greff et al.'s FGR)


class LSTMStepCache(NamedTuple):
    """What one step's backward needs."""

    act: Tensor  # (B, G) gate activations i, f, g, o (coupled: i, g, o)
    c_new: Tensor  # (B, H) cell before the keep blend
    tc: Tensor  # (B, H) tanh(LN_c(c_new))
    hh_hat: Tensor | None  # (B, G) normalised recurrent projection (layer_norm)
    hh_rstd: Tensor | None  # (B, 1)
    c_hat: Tensor | None  # (B, H) normalised cell (layer_norm)
    c_rstd: Tensor | None  # (B, 1)


def is_coupled(p: LSTMParams) -> bool:
    """CIFG has three gate blocks (i, g, o) instead of four: read it off the shapes."""
    H = p.w_hh.shape[1] if p.w_hr is None else p.w_hr.shape[1]
    return p.w_hh.shape[0] == 3 * H


def input_projection(x: Tensor, p: LSTMParams) -> tuple[Tensor, Tensor | None, Tensor | None]:
    """``LN_ih(x W_ih^T) + b_ih + b_hh`` for every step at once: one GEMM. x: (..., I) -> (..., G)."""
    xp = x @ p.w_ih.t()
    x_hat = x_rstd = None
    if p.ln_ih_w is not None:
        xp, x_hat, x_rstd = layer_norm(xp, p.ln_ih_w, p.ln_ih_b)
    if p.b_ih is not None:
        xp = xp + (p.b_ih + p.b_hh)
    return xp, x_hat, x_rstd


def lstm_step_forward(
    xg: Tensor, h_prev: Tensor, c_prev: Tensor, p: LSTMParams, rec_mask: Tensor | None = None
) -> tuple[Tensor, Tensor, LSTMStepCache]:
    """One step. xg: (B, G) from ``input_projection``; h_prev: (B, P); c_prev: (B, H)."""
    H = c_prev.shape[-1]
    coupled = is_coupled(p)
    hr = h_prev if rec_mask is None else h_prev * rec_mask  # recurrent dropout
    hh = hr @ p.w_hh.t()  # (B, G)
    hh_hat = hh_rstd = None
    if p.ln_hh_w is not None:
        hh, hh_hat, hh_rstd = layer_norm(hh, p.ln_hh_w, p.ln_hh_b)
    a = xg + hh  # (B, G) gate pre-activations
    if p.w_ci is not None:  # peepholes into i and f look at c_prev
        a[:, :H] += p.w_ci * c_prev
        if not coupled:
            a[:, H : 2 * H] += p.w_cf * c_prev
    act = torch.sigmoid(a)  # i, f, o (g is overwritten below)
    gs = slice(H, 2 * H) if coupled else slice(2 * H, 3 * H)
    act[:, gs] = torch.tanh(a[:, gs])
    i, g = act[:, :H], act[:, gs]
    f = 1.0 - i if coupled else act[:, H : 2 * H]
    c_new = torch.addcmul(f * c_prev, i, g)  # c = f * c_prev + i * g
    if p.w_co is not None:  # the output peephole looks at the new cell
        act[:, -H:] = torch.sigmoid(a[:, -H:] + p.w_co * c_new)
    o = act[:, -H:]
    c_hat = c_rstd = None
    cn = c_new
    if p.ln_c_w is not None:
        cn, c_hat, c_rstd = layer_norm(c_new, p.ln_c_w, p.ln_c_b)
    tc = torch.tanh(cn)
    h_new = o * tc  # (B, H)
    if p.w_hr is not None:
        h_new = h_new @ p.w_hr.t()  # (B, P)
    return h_new, c_new, LSTMStepCache(act, c_new, tc, hh_hat, hh_rstd, c_hat, c_rstd)


class LSTMStepGrads(NamedTuple):
    da: Tensor  # (B, G) d loss / d gate pre-activations (= d xg)
    dhh: Tensor  # (B, G) d loss / d (hr W_hh^T), before layer norm
    dh_prev: Tensor  # (B, P)
    dc_prev: Tensor  # (B, H)
    dcn: Tensor | None  # (B, H) d loss / d LN_c output (for the LN_c parameters)


def lstm_step_backward(
    dh: Tensor,
    dc: Tensor,
    c_prev: Tensor,
    cache: LSTMStepCache,
    p: LSTMParams,
    rec_mask: Tensor | None = None,
) -> LSTMStepGrads:
    """Backward of ``lstm_step_forward``. dh: d loss/d h_new (B, P); dc: d loss/d c_new (B, H)."""
    H = c_prev.shape[-1]
    coupled = is_coupled(p)
    act, tc = cache.act, cache.tc
    gs = slice(H, 2 * H) if coupled else slice(2 * H, 3 * H)
    i, g, o = act[:, :H], act[:, gs], act[:, -H:]
    dm = dh if p.w_hr is None else dh @ p.w_hr  # backprop through the projection
    do = dm * tc  # h = o * tanh(cn)
    dcn = dm * o * (1.0 - tc * tc)  # backprop through tanh
    if p.ln_c_w is not None:
        dc = dc + layer_norm_backward(dcn, cache.c_hat, cache.c_rstd, p.ln_c_w)
    else:
        dc = dc + dcn
    da = torch.empty_like(act)
    da_o = da[:, -H:]
    torch.mul(do, o * (1.0 - o), out=da_o)  # backprop through sigmoid
    if p.w_co is not None:
        dc = dc + da_o * p.w_co  # o saw c_new through its peephole
    # c = f * c_prev + i * g
    di = dc * g
    torch.mul(dc * i, 1.0 - g * g, out=da[:, gs])  # dg, through tanh
    if coupled:
        f = 1.0 - i
        di = di - dc * c_prev  # f = 1 - i
    else:
        f = act[:, H : 2 * H]
        torch.mul(dc * c_prev, f * (1.0 - f), out=da[:, H : 2 * H])  # df, through sigmoid
    dc_prev = dc * f
    da_i = da[:, :H]
    torch.mul(di, i * (1.0 - i), out=da_i)  # through sigmoid
    if p.w_ci is not None:  # i and f saw c_prev through their peepholes
        dc_prev = dc_prev + da_i * p.w_ci
        if not coupled:
            dc_prev = dc_prev + da[:, H : 2 * H] * p.w_cf
    dhh = da
    if p.ln_hh_w is not None:
        dhh = layer_norm_backward(da, cache.hh_hat, cache.hh_rstd, p.ln_hh_w)
    dh_prev = dhh @ p.w_hh  # (B, P)
    if rec_mask is not None:
        dh_prev = dh_prev * rec_mask
    return LSTMStepGrads(da, dhh, dh_prev, dc_prev, dcn if p.ln_c_w is not None else None)


class LSTMSaved(NamedTuple):
    """What the sequence backward needs (None where an option is off)."""

    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, P) carried h, h_all[0] = h0
    c_all: Tensor  # (T+1, B, H) carried c
    act: Tensor  # (T, B, G) gate activations
    tc: Tensor  # (T, B, H) tanh(LN_c(c_new))
    c_new: Tensor  # (T, B, H) cell before the keep blend (c_all[1:] without keep_c)
    x_hat: Tensor | None  # (T, B, G) layer_norm: normalised x W_ih^T
    x_rstd: Tensor | None  # (T, B, 1)
    hh_hat: Tensor | None  # (T, B, G)
    hh_rstd: Tensor | None  # (T, B, 1)
    c_hat: Tensor | None  # (T, B, H)
    c_rstd: Tensor | None  # (T, B, 1)


def lstm_sequence_forward(x: Tensor, h0: Tensor, c0: Tensor, p: LSTMParams, masks: Masks):
    """Run T steps. x: (T, B, I); h0: (B, P); c0: (B, H). Returns (y, h_n, c_n, saved)."""
    T, B = x.shape[0], x.shape[1]
    H, P = c0.shape[-1], h0.shape[-1]
    xg, x_hat, x_rstd = input_projection(x, p)  # (T, B, G), one GEMM
    G = xg.shape[-1]
    h_all = x.new_empty(T + 1, B, P)  # carried h, h_all[0] = h0
    c_all = x.new_empty(T + 1, B, H)  # carried c
    h_all[0], c_all[0] = h0, c0
    act = x.new_empty(T, B, G)
    tc = x.new_empty(T, B, H)
    blended = masks.keep_c is not None
    c_new = x.new_empty(T, B, H) if blended else c_all[1:]
    ln = p.ln_hh_w is not None
    hh_hat = x.new_empty(T, B, G) if ln else None
    hh_rstd = x.new_empty(T, B, 1) if ln else None
    c_hat = x.new_empty(T, B, H) if ln else None
    c_rstd = x.new_empty(T, B, 1) if ln else None
    for t in range(T):
        h, c, cache = lstm_step_forward(xg[t], h_all[t], c_all[t], p, masks.rec)
        act[t], tc[t] = cache.act, cache.tc
        if blended:
            c_new[t] = c
            c = keep_blend(c, c_all[t], masks.keep_c[t])
        if masks.keep_h is not None:
            h = keep_blend(h, h_all[t], masks.keep_h[t])
        h_all[t + 1], c_all[t + 1] = h, c
        if ln:
            hh_hat[t], hh_rstd[t], c_hat[t], c_rstd[t] = (
                cache.hh_hat, cache.hh_rstd, cache.c_hat, cache.c_rstd
            )
    y = masked_output(h_all[1:], masks.out)  # (T, B, P)
    saved = LSTMSaved(x, h_all, c_all, act, tc, c_new, x_hat, x_rstd, hh_hat, hh_rstd, c_hat, c_rstd)
    return y, h_all[T].clone(), c_all[T].clone(), saved


def lstm_sequence_backward(dy, dh_n, dc_n, saved, p: LSTMParams, masks: Masks):
    """BPTT. Returns (dx, dh0, dc0, LSTMParams of gradients)."""
    x, h_all, c_all, act, tc, c_new, x_hat, x_rstd, hh_hat, hh_rstd, c_hat, c_rstd = saved
    T, B = x.shape[0], x.shape[1]
    H, P = c_all.shape[-1], h_all.shape[-1]
    ln = p.ln_hh_w is not None
    dh = dh_n.clone() if dh_n is not None else x.new_zeros(B, P)
    dc = dc_n.clone() if dc_n is not None else x.new_zeros(B, H)
    da_all = torch.empty_like(act)  # (T, B, G)
    dhh_all = torch.empty_like(act) if ln else da_all
    dh_new_all = x.new_empty(T, B, P) if p.w_hr is not None else None
    dcn_all = x.new_empty(T, B, H) if ln else None
    kc, kh = masks.keep_c, masks.keep_h
    for t in reversed(range(T)):
        dh = add_output_grad(dh, None if dy is None else dy[t], None if masks.out is None else masks.out[t])
        # state = keep * prev + (1 - keep) * new
        dh_new = dh if kh is None else dh * (1.0 - kh[t])
        dc_new = dc if kc is None else dc * (1.0 - kc[t])
        cache = LSTMStepCache(
            act[t], c_new[t], tc[t],
            hh_hat[t] if ln else None, hh_rstd[t] if ln else None,
            c_hat[t] if ln else None, c_rstd[t] if ln else None,
        )
        g = lstm_step_backward(dh_new, dc_new, c_all[t], cache, p, masks.rec)
        da_all[t] = g.da
        if ln:
            dhh_all[t], dcn_all[t] = g.dhh, g.dcn
        if dh_new_all is not None:
            dh_new_all[t] = dh_new
        dh = g.dh_prev if kh is None else g.dh_prev + dh * kh[t]
        dc = g.dc_prev if kc is None else g.dc_prev + dc * kc[t]

    dxp = da_all if p.ln_ih_w is None else layer_norm_backward(da_all, x_hat, x_rstd, p.ln_ih_w)
    d_ln_ih = (sum_bt(da_all * x_hat), sum_bt(da_all)) if ln else None
    grads = lstm_weight_grads(p, x, h_all, c_all, act, tc, c_new, hh_hat, c_hat, masks.rec,
                              da_all, dhh_all, dh_new_all, dcn_all, dxp, d_ln_ih)
    return dxp @ p.w_ih, dh, dc, LSTMParams(**grads)  # dx: (T, B, I)


def lstm_weight_grads(p: LSTMParams, x, h_all, c_all, act, tc, c_new, hh_hat, c_hat, rec,
                      da_all, dhh_all, dh_new_all, dcn_all, dxp, d_ln_ih=None,
                      wanted=LSTMParams._fields) -> dict:
    """Every parameter gradient from the per-step gradients the BPTT loop stored: one GEMM or
    one reduction over all T*B rows each. Shared by the reference and the fused engine.

    da_all/dhh_all: (T, B, G) d gates / d recurrent projection (before LN_hh); dh_new_all:
    (T, B, P) d h before the keep blend (projection only); dcn_all: (T, B, H) d LN_c output;
    dxp: (T, B, G) d (x W_ih^T); d_ln_ih: the LN_ih (weight, bias) gradients, which depend on
    what each engine saved. ``wanted``: names to compute (autograd may need only some)."""
    H, P = c_all.shape[-1], h_all.shape[-1]
    G, I = act.shape[-1], x.shape[-1]
    want = set(wanted)
    grads: dict = {}
    if "w_hh" in want:
        hr_all = h_all[:-1] if rec is None else h_all[:-1] * rec
        grads["w_hh"] = dhh_all.reshape(-1, G).t() @ hr_all.reshape(-1, P)
    if "w_ih" in want:
        grads["w_ih"] = dxp.reshape(-1, G).t() @ x.reshape(-1, I)
    if p.b_ih is not None and want & {"b_ih", "b_hh"}:
        grads["b_ih"] = grads["b_hh"] = sum_bt(da_all)
    if p.w_hr is not None and "w_hr" in want:
        m_all = act[..., -H:] * tc  # (T, B, H) pre-projection output
        grads["w_hr"] = dh_new_all.reshape(-1, P).t() @ m_all.reshape(-1, H)
    if p.w_ci is not None and want & {"w_ci", "w_cf", "w_co"}:
        grads["w_ci"] = sum_bt(da_all[..., :H] * c_all[:-1])
        if p.w_cf is not None:
            grads["w_cf"] = sum_bt(da_all[..., H : 2 * H] * c_all[:-1])
        grads["w_co"] = sum_bt(da_all[..., -H:] * c_new)
    if p.ln_ih_w is not None and want & {"ln_ih_w", "ln_ih_b", "ln_hh_w", "ln_hh_b", "ln_c_w", "ln_c_b"}:
        grads.update(
            ln_ih_w=d_ln_ih[0], ln_ih_b=d_ln_ih[1],
            ln_hh_w=sum_bt(da_all * hh_hat), ln_hh_b=sum_bt(da_all),
            ln_c_w=sum_bt(dcn_all * c_hat), ln_c_b=sum_bt(dcn_all),
        )
    return grads


# -- Greff et al. (2017) ablations -----------------------------------------------------------
# "LSTM: A Search Space Odyssey" removes one piece of the LSTM at a time. Coupled (CIFG) and
# peephole (NP = peephole off) are options above; the other six live here, one at a time, as
# their own small reference path (the fast path above stays untouched):
#
#   no_input_gate        NIG   i = 1            gate rows (f, g, o)
#   no_forget_gate       NFG   f = 1            gate rows (i, g, o)
#   no_output_gate       NOG   o = 1            gate rows (i, f, g)
#   no_input_activation  NIAF  g = a_g          (no tanh on the cell input)
#   no_output_activation NOAF  h = o * c        (no tanh on the cell output)
#   full_gate_recurrence FGR   a_{i,f,o} += [i, f, o]_{t-1} W_gr^T     W_gr: (3H, 3H), zero gates
#                              before the first step of each call (so a chunked run differs)
#
# Internally the step keeps the full (i, f, g, o) layout (B, 4H), a removed gate held at 1.
# Step backward (same notation as the module docstring; dg_next = d loss / d [i, f, o]_t that
# step t+1 sent back through W_gr, FGR only)::
#
#     dm   = dh_new W_hr;   do = dm * tc + dg_next_o;   dc += dm * o * tanh'   (NOAF: dm * o)
#     da_o = do * o';       dc += da_o * w_co
#     da_i = (dc * g + dg_next_i) * i';   da_f = (dc * c_prev + dg_next_f) * f'
#     da_g = dc * i * (1 - g^2)           (NIAF: dc * i)
#     dc_prev = dc * f + da_i * w_ci + da_f * w_cf
#     dh_prev = (da W_hh) * r;   dg_prev = [da_i, da_f, da_o] W_gr
# with dW_gr = sum_t [da_i, da_f, da_o]_t^T [i, f, o]_{t-1} after the loop.

ABLATIONS = ("no_input_gate", "no_forget_gate", "no_output_gate", "no_input_activation",
             "no_output_activation", "full_gate_recurrence")
_REMOVES = {"no_input_gate": "i", "no_forget_gate": "f", "no_output_gate": "o"}


def ablation_of(opts: dict) -> str | None:
    """The one Greff ablation switched on in ``opts`` (None for the standard LSTM)."""
    on = [a for a in ABLATIONS if opts.get(a)]
    return on[0] if on else None


def gate_blocks(ablation: str | None) -> str:
    """The gate blocks held in weight_ih/weight_hh, in order: "ifgo" minus a removed gate."""
    return "ifgo".replace(_REMOVES.get(ablation, ""), "")


class AblationSaved(NamedTuple):
    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, P)
    c_all: Tensor  # (T+1, B, H)
    act: Tensor  # (T, B, 4H) i, f, g, o (a removed gate is 1)
    tc: Tensor  # (T, B, H) tanh(c_new), or c_new without the output activation
    c_new: Tensor  # (T, B, H) cell before the keep blend


def ablation_step_forward(xg: Tensor, h_prev: Tensor, c_prev: Tensor, g_prev: Tensor | None,
                          p: LSTMParams, rec: Tensor | None, ablation: str):
    """One step of an ablated LSTM. xg: (B, G) present gate rows from ``input_projection``;
    g_prev: (B, 3H) the previous step's [i, f, o] (full_gate_recurrence) or None.
    Returns (h_new (B, P), c_new (B, H), act (B, 4H), tc (B, H))."""
    H = c_prev.shape[-1]
    hr = h_prev if rec is None else h_prev * rec
    pre = dict(zip(gate_blocks(ablation), (xg + hr @ p.w_hh.t()).split(H, dim=1)))
    if g_prev is not None:  # full gate recurrence: i, f, o see the previous gates
        r_i, r_f, r_o = (g_prev @ p.w_gr.t()).split(H, dim=1)
        pre["i"], pre["f"], pre["o"] = pre["i"] + r_i, pre["f"] + r_f, pre["o"] + r_o
    one = torch.ones_like(c_prev)
    i = torch.sigmoid(pre["i"] + (0 if p.w_ci is None else p.w_ci * c_prev)) if "i" in pre else one
    f = torch.sigmoid(pre["f"] + (0 if p.w_cf is None else p.w_cf * c_prev)) if "f" in pre else one
    g = pre["g"] if ablation == "no_input_activation" else torch.tanh(pre["g"])
    c_new = f * c_prev + i * g
    o = torch.sigmoid(pre["o"] + (0 if p.w_co is None else p.w_co * c_new)) if "o" in pre else one
    tc = c_new if ablation == "no_output_activation" else torch.tanh(c_new)
    h_new = o * tc
    if p.w_hr is not None:
        h_new = h_new @ p.w_hr.t()
    return h_new, c_new, torch.cat([i, f, g, o], dim=1), tc


def ablation_step_backward(dh: Tensor, dc: Tensor, dg_next: Tensor | None, c_prev: Tensor,
                           act: Tensor, tc: Tensor, p: LSTMParams, rec: Tensor | None,
                           ablation: str):
    """Backward of ``ablation_step_forward``. Returns (da (B, G) in the present rows, dh_prev,
    dc_prev, dg_prev (B, 3H) or None, da_full (B, 4H) with zeros for a removed gate)."""
    H = c_prev.shape[-1]
    blocks = gate_blocks(ablation)
    i, f, g, o = act.split(H, dim=1)
    dm = dh if p.w_hr is None else dh @ p.w_hr  # backprop through the projection
    do = dm * tc  # h = o * tc
    dtc = dm * o
    dc = dc + (dtc if ablation == "no_output_activation" else dtc * (1.0 - tc * tc))  # tanh
    dgi = dgf = 0.0
    if dg_next is not None:  # the next step's gates saw i, f, o through W_gr
        dgi, dgf, dgo = dg_next.split(H, dim=1)
        do = do + dgo
    zero = torch.zeros_like(c_prev)
    da_o = do * o * (1.0 - o) if "o" in blocks else zero  # backprop through sigmoid
    if p.w_co is not None and "o" in blocks:
        dc = dc + da_o * p.w_co  # o saw c_new through its peephole
    di, df = dc * g + dgi, dc * c_prev + dgf  # c = f * c_prev + i * g
    da_i = di * i * (1.0 - i) if "i" in blocks else zero
    da_f = df * f * (1.0 - f) if "f" in blocks else zero
    dg = dc * i
    da_g = dg if ablation == "no_input_activation" else dg * (1.0 - g * g)  # through tanh
    dc_prev = dc * f
    if p.w_ci is not None and "i" in blocks:
        dc_prev = dc_prev + da_i * p.w_ci
    if p.w_cf is not None and "f" in blocks:
        dc_prev = dc_prev + da_f * p.w_cf
    named = {"i": da_i, "f": da_f, "g": da_g, "o": da_o}
    da = torch.cat([named[b] for b in blocks], dim=1)  # (B, G)
    dh_prev = da @ p.w_hh
    if rec is not None:
        dh_prev = dh_prev * rec
    dg_prev = None
    if p.w_gr is not None:
        dg_prev = torch.cat([da_i, da_f, da_o], dim=1) @ p.w_gr
    return da, dh_prev, dc_prev, dg_prev, torch.cat([da_i, da_f, da_g, da_o], dim=1)


def _ifo(act: Tensor) -> Tensor:
    """[i, f, o] of a (..., 4H) activation tensor: (..., 3H)."""
    H = act.shape[-1] // 4
    return torch.cat([act[..., : 2 * H], act[..., 3 * H :]], dim=-1)


def ablation_sequence_forward(x: Tensor, h0: Tensor, c0: Tensor, p: LSTMParams, masks: Masks,
                              ablation: str):
    """T steps of an ablated LSTM. Returns (y, h_n, c_n, AblationSaved)."""
    T, B = x.shape[0], x.shape[1]
    H, P = c0.shape[-1], h0.shape[-1]
    xg = input_projection(x, p)[0]  # (T, B, G), one GEMM
    h_all, c_all = x.new_empty(T + 1, B, P), x.new_empty(T + 1, B, H)
    h_all[0], c_all[0] = h0, c0
    act, tc, c_new = x.new_empty(T, B, 4 * H), x.new_empty(T, B, H), x.new_empty(T, B, H)
    g_prev = x.new_zeros(B, 3 * H) if p.w_gr is not None else None
    for t in range(T):
        h, c, act[t], tc[t] = ablation_step_forward(xg[t], h_all[t], c_all[t], g_prev, p,
                                                    masks.rec, ablation)
        c_new[t] = c
        if masks.keep_c is not None:
            c = keep_blend(c, c_all[t], masks.keep_c[t])
        if masks.keep_h is not None:
            h = keep_blend(h, h_all[t], masks.keep_h[t])
        h_all[t + 1], c_all[t + 1] = h, c
        if g_prev is not None:
            g_prev = _ifo(act[t])
    y = masked_output(h_all[1:], masks.out)
    return y, h_all[T].clone(), c_all[T].clone(), AblationSaved(x, h_all, c_all, act, tc, c_new)


def ablation_sequence_backward(dy, dh_n, dc_n, saved: AblationSaved, p: LSTMParams, masks: Masks,
                               ablation: str):
    """BPTT of an ablated LSTM. Returns (dx, dh0, dc0, gradients by field name)."""
    x, h_all, c_all, act, tc, c_new = saved
    T, B = x.shape[0], x.shape[1]
    H, P = c_all.shape[-1], h_all.shape[-1]
    dh = dh_n.clone() if dh_n is not None else x.new_zeros(B, P)
    dc = dc_n.clone() if dc_n is not None else x.new_zeros(B, H)
    dg = x.new_zeros(B, 3 * H) if p.w_gr is not None else None
    G = p.w_hh.shape[0]
    da_all, da_full = x.new_empty(T, B, G), x.new_empty(T, B, 4 * H)
    dh_new_all = x.new_empty(T, B, P) if p.w_hr is not None else None
    kc, kh = masks.keep_c, masks.keep_h
    for t in reversed(range(T)):
        dh = add_output_grad(dh, None if dy is None else dy[t], None if masks.out is None else masks.out[t])
        dh_new = dh if kh is None else dh * (1.0 - kh[t])  # state = keep * prev + (1 - keep) * new
        dc_new = dc if kc is None else dc * (1.0 - kc[t])
        da_all[t], dh_prev, dc_prev, dg, da_full[t] = ablation_step_backward(
            dh_new, dc_new, dg, c_all[t], act[t], tc[t], p, masks.rec, ablation)
        if dh_new_all is not None:
            dh_new_all[t] = dh_new
        dh = dh_prev if kh is None else dh_prev + dh * kh[t]
        dc = dc_prev if kc is None else dc_prev + dc * kc[t]
    I = x.shape[-1]
    da2 = da_all.reshape(-1, G)
    hr_all = h_all[:-1] if masks.rec is None else h_all[:-1] * masks.rec
    grads = {"w_ih": da2.t() @ x.reshape(-1, I), "w_hh": da2.t() @ hr_all.reshape(-1, P)}
    if p.b_ih is not None:
        grads["b_ih"] = grads["b_hh"] = sum_bt(da_all)
    if p.w_hr is not None:
        m_all = act[..., 3 * H :] * tc  # (T, B, H) pre-projection output
        grads["w_hr"] = dh_new_all.reshape(-1, P).t() @ m_all.reshape(-1, H)
    da_i, da_f, _, da_o = da_full.split(H, dim=-1)
    if p.w_ci is not None:
        grads["w_ci"] = sum_bt(da_i * c_all[:-1])
    if p.w_cf is not None:
        grads["w_cf"] = sum_bt(da_f * c_all[:-1])
    if p.w_co is not None:
        grads["w_co"] = sum_bt(da_o * c_new)
    if p.w_gr is not None:
        g_prev = torch.cat([x.new_zeros(1, B, 3 * H), _ifo(act[:-1])])  # (T, B, 3H)
        grads["w_gr"] = _ifo(da_full).reshape(-1, 3 * H).t() @ g_prev.reshape(-1, 3 * H)
    return da_all @ p.w_ih, dh, dc, grads  # dx: (T, B, I)


# apply((ablation,), x, h0, c0, rec, keep_c, keep_h, out, *params)
LSTMAblationFunction = glue.reference_function(
    "LSTMAblationFunction", LSTMParams, 2, ablation_sequence_forward, ablation_sequence_backward)


# apply((), x, h0, c0, rec, keep_c, keep_h, out, *params): options are read off the params
LSTMFunction = glue.reference_function("LSTMFunction", LSTMParams, 2, lstm_sequence_forward,
                                       lstm_sequence_backward)


def lstm(x: Tensor, h0: Tensor, c0: Tensor, p: LSTMParams, masks: Masks = Masks(), **ablation):
    """One layer, one direction, reference engine. x: (T, B, I) -> y (T, B, P), h_n, c_n.

    ``ablation``: at most one of ``ABLATIONS`` set True (Greff et al.'s variants)."""
    which = _check_ablation(ablation)
    if which is None:
        return LSTMFunction.apply(*glue.apply_args((), x, (h0, c0), masks, p))
    return LSTMAblationFunction.apply(*glue.apply_args((which,), x, (h0, c0), masks, p))


def _check_ablation(kw: dict) -> str | None:
    unknown = sorted(set(kw) - set(ABLATIONS))
    if unknown:
        raise TypeError(f"lstm: unexpected keyword(s) {unknown}; expected some of {ABLATIONS}")
    on = [a for a in ABLATIONS if kw.get(a)]
    if len(on) > 1:
        raise ValueError(f"ablation: expected at most one of {ABLATIONS} at a time, got {on}")
    return on[0] if on else None


def _param_specs(opts: dict, I: int, H: int, P: int, bias: bool) -> list[ParamSpec]:
    ablation = ablation_of(opts)
    G = (3 if opts["coupled"] else len(gate_blocks(ablation))) * H
    specs = dense_specs(G, I, P, bias)
    if P != H:
        specs.append(ParamSpec("w_hr", "weight_hr", (P, H), "proj"))
    if opts["peephole"]:
        peep = [k for k in ("ci", "cf", "co") if k[1] in gate_blocks(ablation)]
        if opts["coupled"]:
            peep.remove("cf")
        specs += [ParamSpec(f"w_{k}", f"weight_{k}", (H,), "peephole", False) for k in peep]
    if ablation == "full_gate_recurrence":
        specs.append(ParamSpec("w_gr", "weight_gr", (3 * H, 3 * H), "recurrent", False))
    if opts["layer_norm"]:
        for part, width in (("ih", G), ("hh", G), ("c", H)):
            specs += [ParamSpec(f"ln_{part}_w", f"ln_{part}_weight", (width,), "ln_weight", False),
                      ParamSpec(f"ln_{part}_b", f"ln_{part}_bias", (width,), "ln_bias", False)]
    return specs


def _check_options(opts: dict) -> None:
    on = [a for a in ABLATIONS if opts[a]]
    if len(on) > 1:
        raise ValueError(f"{on[1]}: Greff et al.'s ablations go one at a time, got {on}")
    if on and (opts["coupled"] or opts["layer_norm"]):
        raise ValueError(f"{on[0]}: not combined with coupled or layer_norm (an ablation of the "
                         f"standard LSTM, with or without peepholes)")


FAMILY = register(Family(
    name="lstm",
    title="LSTM",
    params=LSTMParams,
    state=("h", "c"),
    options=(
        Option("peephole", False, (False, True),
               "Gers & Schmidhuber peepholes: i, f see c_{t-1} and o sees c_t through diagonal "
               "weights weight_ci/weight_cf/weight_co (H,)"),
        Option("coupled", False, (False, True),
               "CIFG: no forget gate, f = 1 - i; gate rows become (i, g, o), weight_ih is (3H, I)"),
        Option("layer_norm", False, (False, True),
               "Ba et al.: layer norm on W_ih x, on W_hh h (over all gate rows) and on c before "
               "its tanh; params ln_{ih,hh,c}_{weight,bias}"),
        *(Option(name, False, (False, True), doc, call=True, omit_default=True) for name, doc in (
            ("no_input_gate", "Greff et al. NIG: i = 1; gate rows (f, g, o), weight_ih is (3H, I)"),
            ("no_forget_gate", "Greff et al. NFG: f = 1; gate rows (i, g, o), weight_ih is (3H, I)"),
            ("no_output_gate", "Greff et al. NOG: o = 1; gate rows (i, f, g), weight_ih is (3H, I)"),
            ("no_input_activation", "Greff et al. NIAF: no tanh on the cell input, g = a_g"),
            ("no_output_activation", "Greff et al. NOAF: no tanh on the cell output, h = o * c"),
            ("full_gate_recurrence", "Greff et al. FGR: i, f, o also see the previous step's "
                                     "i, f, o through weight_gr (3H, 3H), zero before each call"),
        )),
    ),
    check=_check_options,
    param_specs=_param_specs,
    reference=lstm,
    eager="lstmkit.functional.eager:lstm_eager",
    doc="Long short-term memory (Hochreiter & Schmidhuber 1997, with the forget gate of Gers "
        "et al. 2000), torch's gate order i, f, g, o.",
    fused="lstmkit.kernels",
    fused_step="lstm_step",
    fused_serves=lambda o: ablation_of(o) is None,  # the kernels implement no ablation
    vendor=lambda o: None if (o["peephole"] or o["coupled"] or o["layer_norm"]
                              or ablation_of(o)) else "LSTM",
    prefer_vendor=True,  # torch's oneDNN LSTM is as fast as it gets where its math is ours
    gates=lambda o: 3 if o["coupled"] else len(gate_blocks(ablation_of(o))),
    forget_gate=lambda o: (None if o["coupled"] or "f" not in gate_blocks(ablation_of(o))
                           else gate_blocks(ablation_of(o)).index("f")),
    proj=True,
    test_sizes=dict(proj=2),
))
