"""The GRU family from its equations: step forward, hand-derived step backward, BPTT.

Symbols: T time, B batch, I input, H hidden, G gate rows (3H: r, z, n, torch's order).

Step forward, ``reset_after=True`` (torch / cuDNN)::

    hr  = h_prev * rec                                  recurrent dropout (rec = 1 without it)
    r   = sigmoid(x W_ir^T + b_ir + hr W_hr^T + b_hr)
    z   = sigmoid(x W_iz^T + b_iz + hr W_hz^T + b_hz)
    hn  = hr W_hn^T + b_hn
    n   = tanh(x W_in^T + b_in + r * hn)
    h   = (1 - z) * n + z * h_prev                      the carried h_prev is not masked

``reset_after=False`` (Cho et al. 2014) applies the reset before the recurrent matmul, so the
step needs two recurrent GEMMs (r, z first, then n)::

    n   = tanh(x W_in^T + b_in + (r * hr) W_hn^T + b_hn)

The sequence loop then blends the new state with the old one, ``h = keep * h_prev + (1 - keep)
* h_new`` (zoneout in training, its expectation at eval, a padded step with keep = 1), and
outputs are ``y_t = out_t * h_t`` (zero at padded steps).

Step backward (``d`` = d loss / d; ``s'`` = s (1 - s) for a sigmoid output s), t = T .. 1::

    dh      = dh_carried + out * dy;     dh_new = (1 - keep_h) * dh
    dz      = dh_new * (h_prev - n);     da_z = dz * z'
    da_n    = dh_new * (1 - z) * (1 - n^2)                     through tanh
    reset_after:   dhn = da_n * r;       da_r = da_n * hn * r'
                   dhr = [da_r, da_z, dhn] W_hh
    not:           dq = da_n W_hn;       da_r = dq * hr * r'
                   dhr = [da_r, da_z] W_h{r,z} + dq * r
    dh_prev = dh_new * z + dhr * rec + keep_h * dh

and, after the loop, the weight gradients over all T*B rows (``da`` = [da_r, da_z, da_n])::

    dW_ih = da^T x;   dx = da W_ih;   db_ih = sum da
    reset_after:  dW_hh = [da_r, da_z, dhn]^T hr;   db_hh = sum [da_r, da_z, dhn]
    not:          dW_h{r,z} = [da_r, da_z]^T hr;  dW_hn = da_n^T (r * hr);  db_hh = db_ih

The forward precomputes ``x W_ih^T`` plus every bias that sits outside the reset (all of them
for ``reset_after=False``; b_ih and the r, z rows of b_hh otherwise) for all steps in one GEMM,
and stores only what the backward needs (r, z, n and, when ``reset_after``, ``hn``). The
backward walks time in reverse and takes the weight gradients with one GEMM over all steps
after the loop (two for ``W_hh`` when not ``reset_after``: its n rows see ``r * hr``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from . import _autograd as glue
from ._common import Masks, add_output_grad, keep_blend, masked_output, sum_bt
from .registry import Family, Option, ParamSpec, dense_specs, register


class GRUParams(NamedTuple):
    """One layer-direction's parameters (torch's names and gate order r, z, n)."""

    w_ih: Tensor  # (G, I)
    w_hh: Tensor  # (G, H)
    b_ih: Tensor | None = None  # (G,)
    b_hh: Tensor | None = None  # (G,)


class GRUStepCache(NamedTuple):
    """What one step's backward needs."""

    act: Tensor  # (B, G) gate activations r, z, n
    hn: Tensor | None  # (B, H) hr W_hn^T + b_hn (reset_after only)


class GRUStepGrads(NamedTuple):
    """d loss / d xg is ``[dhh[:, :2H], da_n]``: r and z pre-activations are shared by both sides."""

    dhh: Tensor  # (B, G) d loss / d recurrent GEMM output (r, z, n rows; n incl. b_hn)
    da_n: Tensor  # (B, H) d loss / d n pre-activation (= d xg_n)
    dh_prev: Tensor  # (B, H)


def input_projection(x: Tensor, p: GRUParams, reset_after: bool = True) -> Tensor:
    """``x W_ih^T`` plus every bias outside the reset, for all steps at once. (..., I) -> (..., G)."""
    if p.b_ih is None:
        return x @ p.w_ih.t()
    H = p.w_hh.shape[1]
    if reset_after:  # b_hn is multiplied by r: it stays in the step
        bias = torch.cat([p.b_ih[: 2 * H] + p.b_hh[: 2 * H], p.b_ih[2 * H :]])
    else:
        bias = p.b_ih + p.b_hh
    xs = x.reshape(-1, x.shape[-1])
    return torch.addmm(bias, xs, p.w_ih.t()).reshape(*x.shape[:-1], -1)


def gru_step_forward(
    xg: Tensor, h_prev: Tensor, p: GRUParams, rec_mask: Tensor | None = None, reset_after: bool = True
) -> tuple[Tensor, GRUStepCache]:
    """One step. xg: (B, G) from ``input_projection``; h_prev: (B, H). Returns (h_new, cache)."""
    H = h_prev.shape[-1]
    hr = h_prev if rec_mask is None else h_prev * rec_mask  # recurrent dropout
    act = xg.new_empty(xg.shape)  # (B, G)
    rz = act[:, : 2 * H]
    hn = None
    if reset_after:
        hh = hr @ p.w_hh.t()  # (B, G) one recurrent GEMM
        torch.add(xg[:, : 2 * H], hh[:, : 2 * H], out=rz).sigmoid_()
        hn = hh[:, 2 * H :]
        if p.b_hh is not None:
            hn += p.b_hh[2 * H :]
        torch.addcmul(xg[:, 2 * H :], rz[:, :H], hn, out=act[:, 2 * H :]).tanh_()
    else:
        torch.addmm(xg[:, : 2 * H], hr, p.w_hh[: 2 * H].t(), out=rz).sigmoid_()
        q = rz[:, :H] * hr  # reset before the matmul
        torch.addmm(xg[:, 2 * H :], q, p.w_hh[2 * H :].t(), out=act[:, 2 * H :]).tanh_()
    z, n = act[:, H : 2 * H], act[:, 2 * H :]
    h_new = torch.lerp(n, h_prev, z)  # (1 - z) * n + z * h_prev
    return h_new, GRUStepCache(act, hn)


def gru_step_backward(
    dh: Tensor,
    h_prev: Tensor,
    cache: GRUStepCache,
    p: GRUParams,
    rec_mask: Tensor | None = None,
    reset_after: bool = True,
) -> GRUStepGrads:
    """Backward of ``gru_step_forward``. dh: d loss / d h_new (B, H); h_prev: (B, H)."""
    H = h_prev.shape[-1]
    act = cache.act
    r, z, n = act[:, :H], act[:, H : 2 * H], act[:, 2 * H :]
    dhh = torch.empty_like(act)  # (B, G)
    # backprop through h = (1 - z) * n + z * h_prev
    dh_prev = dh * z
    dn = dh - dh_prev
    dz = dh * (h_prev - n)
    da_n = dn * (1.0 - n * n)  # backprop through tanh
    torch.mul(dz, z * (1.0 - z), out=dhh[:, H : 2 * H])  # backprop through sigmoid (z)
    if reset_after:
        # n = tanh(xg_n + r * hn)
        dr = da_n * cache.hn
        torch.mul(da_n, r, out=dhh[:, 2 * H :])  # d hn
        torch.mul(dr, r * (1.0 - r), out=dhh[:, :H])  # backprop through sigmoid (r)
        dhr = dhh @ p.w_hh  # backprop through the recurrent GEMM
    else:
        # n = tanh(xg_n + (r * hr) W_hn^T)
        hr = h_prev if rec_mask is None else h_prev * rec_mask
        dhh[:, 2 * H :] = da_n
        dq = da_n @ p.w_hh[2 * H :]  # backprop through the n GEMM
        dr = dq * hr
        torch.mul(dr, r * (1.0 - r), out=dhh[:, :H])  # backprop through sigmoid (r)
        dhr = torch.addmm(dq * r, dhh[:, : 2 * H], p.w_hh[: 2 * H])  # q = r * hr, and the r, z GEMM
        da_n = dhh[:, 2 * H :]
    if rec_mask is None:
        dh_prev += dhr
    else:
        dh_prev.addcmul_(dhr, rec_mask)  # backprop through recurrent dropout
    return GRUStepGrads(dhh, da_n, dh_prev)


class GRUSaved(NamedTuple):
    """What the sequence backward needs."""

    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, H) carried h, h_all[0] = h0
    act: Tensor  # (T, B, G) r, z, n
    hn: Tensor | None  # (T, B, H) hr W_hn^T + b_hn (reset_after only)


def gru_sequence_forward(x: Tensor, h0: Tensor, p: GRUParams, masks: Masks, reset_after: bool):
    """Run T steps. x: (T, B, I); h0: (B, H). Returns (y, h_n, saved)."""
    T, B = x.shape[0], x.shape[1]
    H = h0.shape[-1]
    xg = input_projection(x, p, reset_after)  # (T, B, G), one GEMM
    h_all = x.new_empty(T + 1, B, H)  # carried h, h_all[0] = h0
    h_all[0] = h0
    act = x.new_empty(T, B, 3 * H)
    hn = x.new_empty(T, B, H) if reset_after else None
    kh = masks.keep_h
    for t in range(T):
        h, cache = gru_step_forward(xg[t], h_all[t], p, masks.rec, reset_after)
        act[t] = cache.act
        if reset_after:
            hn[t] = cache.hn
        if kh is not None:
            h = keep_blend(h, h_all[t], kh[t])
        h_all[t + 1] = h
    y = masked_output(h_all[1:], masks.out)  # (T, B, H)
    return y, h_all[T].clone(), GRUSaved(x, h_all, act, hn)


def gru_sequence_backward(dy, dh_n, saved, p: GRUParams, masks: Masks, reset_after: bool):
    """BPTT. Returns (dx, dh0, GRUParams of gradients)."""
    x, h_all, act, hn = saved
    T, B = x.shape[0], x.shape[1]
    H, I = h_all.shape[-1], x.shape[-1]
    G = 3 * H
    dh = dh_n.clone() if dh_n is not None else x.new_zeros(B, H)
    dhh_all = torch.empty_like(act)  # (T, B, G)
    da_n_all = x.new_empty(T, B, H) if reset_after else None
    kh = masks.keep_h
    for t in reversed(range(T)):
        dh = add_output_grad(dh, None if dy is None else dy[t], None if masks.out is None else masks.out[t])
        # h = keep * h_prev + (1 - keep) * h_new
        dh_new = dh if kh is None else dh * (1.0 - kh[t])
        cache = GRUStepCache(act[t], hn[t] if reset_after else None)
        g = gru_step_backward(dh_new, h_all[t], cache, p, masks.rec, reset_after)
        dhh_all[t] = g.dhh
        if reset_after:
            da_n_all[t] = g.da_n
        dh = g.dh_prev if kh is None else g.dh_prev + dh * kh[t]

    # weight gradients: one GEMM / reduction over all T*B rows
    hr_all = h_all[:-1] if masks.rec is None else h_all[:-1] * masks.rec  # (T, B, H)
    dhh2 = dhh_all.reshape(-1, G)
    if reset_after:
        dw_hh = dhh2.t() @ hr_all.reshape(-1, H)
        db_hh = sum_bt(dhh_all) if p.b_hh is not None else None
        dhh_all[..., 2 * H :] = da_n_all  # now d xg: the r, z rows are shared
        da_all = dhh_all
    else:
        dw_hh = x.new_empty(G, H)
        torch.mm(dhh2[:, : 2 * H].t(), hr_all.reshape(-1, H), out=dw_hh[: 2 * H])
        q_all = act[..., :H] * hr_all  # (T, B, H) what the n rows saw
        torch.mm(dhh2[:, 2 * H :].t(), q_all.reshape(-1, H), out=dw_hh[2 * H :])
        da_all = dhh_all
        db_hh = None
    da2 = da_all.reshape(-1, G)
    dw_ih = da2.t() @ x.reshape(-1, I)
    dx = (da2 @ p.w_ih).reshape(T, B, I)
    db_ih = sum_bt(da_all) if p.b_ih is not None else None
    if not reset_after:
        db_hh = db_ih
    return dx, dh, GRUParams(dw_ih, dw_hh, db_ih, db_hh)


# apply((reset_after,), x, h0, rec, keep_c, keep_h, out, *params)
GRUFunction = glue.reference_function("GRUFunction", GRUParams, 1, gru_sequence_forward,
                                      gru_sequence_backward)


def gru(x: Tensor, h0: Tensor, p: GRUParams, masks: Masks = Masks(), reset_after: bool = True):
    """One layer, one direction, reference engine. x: (T, B, I), h0: (B, H) -> y (T, B, H), h_n.

    ``masks.keep_c`` is ignored (a GRU has no cell).
    """
    return GRUFunction.apply(*glue.apply_args((bool(reset_after),), x, (h0,), masks, p))


def _param_specs(opts: dict, I: int, H: int, P: int, bias: bool) -> list[ParamSpec]:
    return dense_specs(3 * H, I, H, bias)


FAMILY = register(Family(
    name="gru",
    title="GRU",
    params=GRUParams,
    state=("h",),
    options=(
        Option("reset_after", True, (True, False),
               "True: torch/cuDNN GRU (reset applied after the recurrent matmul); False: Cho et "
               "al. 2014, n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)", call=True),
    ),
    param_specs=_param_specs,
    reference=gru,
    eager="lstmkit.functional.eager:gru_eager",
    doc="Gated recurrent unit (Cho et al. 2014), torch's gate order r, z, n.",
    fused="lstmkit.kernels",
    vendor=lambda o: "GRU" if o["reset_after"] else None,
    gates=lambda o: 3,
))
