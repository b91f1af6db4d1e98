"""ConvLSTM (Shi et al. 2015) from its equations: step forward, hand-derived step backward, BPTT.

Symbols: T time, B batch, C input channels, K hidden channels (the cell's width),
G gate channels (4K: i, f, g, o, the LSTM family's order), S = (Hs, Ws) the frame size,
(kh, kw) the kernel (both odd: "same" padding keeps the frame size).

Step forward (``*`` is convolution with padding (kh//2, kw//2), ``.`` is Hadamard)::

    a   = W_x * x + W_h * (h_prev . r) + b                       (B, G, Hs, Ws)
    i   = sigmoid(a_i + w_ci . c_prev)
    f   = sigmoid(a_f + w_cf . c_prev)
    g   = tanh(a_g)
    c   = f . c_prev + i . g
    o   = sigmoid(a_o + w_co . c)
    h   = o . tanh(c)

Peepholes: Shi et al. use full spatial Hadamard weights, ``(K, Hs, Ws)``; these functions also
take per-channel weights ``(K, 1, 1)`` (the same equation, broadcast over the frame), which work
at any frame size. The gradient is summed over whatever the weight broadcasts over.

``r`` is an optional recurrent-dropout mask (broadcastable to ``(B, K, Hs, Ws)``). As in the
LSTM family the loop blends the new state with the old one, ``state = keep . prev + (1 - keep)
. new``: a padded step of a shorter sequence has keep = 1 (``Masks.keep_c/keep_h`` of shape
``(T, B, 1, 1, 1)``), and outputs at padded steps are multiplied by ``Masks.out``.

Step backward (``d`` = d loss / d; ``s'`` = s (1 - s); ``conv^T`` the convolution's input
gradient), t = T .. 1::

    dh_new  = (1 - keep_h) . (dh_carried + out . dy);   dc_new = (1 - keep_c) . dc_carried
    da_o    = dh_new . tanh(c) . o'
    dc      = dc_new + dh_new . o . (1 - tanh(c)^2) + da_o . w_co
    da_i    = dc . g . i';   da_f = dc . c_prev . f';   da_g = dc . i . (1 - g^2)
    dc_prev = dc . f + da_i . w_ci + da_f . w_cf + keep_c . dc_carried
    dh_prev = conv^T(da, W_h) . r + keep_h . dh

and, after the loop, over all T*B frames at once::

    dW_h = da (x) (h_prev . r)   (one weight-gradient convolution)
    dW_x = da (x) x,   dx = conv^T(da, W_x),   db = sum da
    dw_ci = sum da_i . c_prev,   dw_cf = sum da_f . c_prev,   dw_co = sum da_o . c
    (each peephole gradient summed over whatever its weight broadcasts over)

The forward computes ``W_x * x + b`` for all T steps in ONE convolution (frames stacked as
``(T*B, C, Hs, Ws)``) and stores only what the backward needs (gate activations, cell states,
tanh of the cell). The backward walks time in reverse doing only the recurrent convolution's
input gradient per step, then takes dW_h with ONE weight-gradient convolution over all T*B
frames, and dx, dW_x, db with one more.

Why a hand backward rather than autograd: it keeps the family's contract (equations and their
derivatives side by side, one autograd.Function, gradcheck-tested, the same shape a fused kernel
would take) and turns 2T small convolution-backward calls into T + 2. Saved memory is about
the same as eager autograd (gates, cells and tanh(c) are what both keep). On CPU the big
all-steps convolutions are memory-bound, so speed is on par with eager autograd (forward +
backward within ~10% of it at T=7, B=16, K=8, 12x12 and T=20, B=8, K=32, 32x32, one thread).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from . import _autograd as glue
from ._common import Masks, add_output_grad, blend_at, keep_blend, masked_output
from .registry import Family, Option, ParamSpec, register


class ConvLSTMParams(NamedTuple):
    """One layer's parameters. Optional entries are None when their flag is off."""

    w_x: Tensor  # (G, C, kh, kw)  input-to-gates kernel
    w_h: Tensor  # (G, K, kh, kw)  hidden-to-gates kernel
    b: Tensor | None = None  # (G,)
    w_ci: Tensor | None = None  # (K, Hs, Ws) or (K, 1, 1)   peephole
    w_cf: Tensor | None = None  # (K, Hs, Ws) or (K, 1, 1)   peephole
    w_co: Tensor | None = None  # (K, Hs, Ws) or (K, 1, 1)   peephole


def same_padding(kernel_size: tuple[int, int]) -> tuple[int, int]:
    """Padding that keeps the frame size for an odd kernel; ValueError for an even one."""
    kh, kw = kernel_size
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(
            f"kernel_size: expected odd sizes (same padding keeps the frame size), got {(kh, kw)}"
        )
    return kh // 2, kw // 2


def _padding(p: ConvLSTMParams) -> tuple[int, int]:
    return same_padding((p.w_h.shape[-2], p.w_h.shape[-1]))


def _reduce_to(grad: Tensor, shape: torch.Size) -> Tensor:
    """Sum a (..., K, Hs, Ws) gradient down to a peephole weight's shape (K, Hs|1, Ws|1)."""
    g = grad.reshape(-1, *grad.shape[-3:]).sum(0)  # (K, Hs, Ws)
    dims = [d for d in (1, 2) if shape[d] == 1 and g.shape[d] != 1]
    return g.sum(dims, keepdim=True) if dims else g


def _conv_backward(dout: Tensor, inp: Tensor, w: Tensor, padding, need: tuple[bool, bool, bool]):
    """(d input, d weight, d bias) of ``conv2d(inp, w, b, padding=padding)`` in one ATen call."""
    return torch.ops.aten.convolution_backward(
        dout, inp, w, [w.shape[0]], [1, 1], list(padding), [1, 1], False, [0, 0], 1, list(need)
    )


def input_convolution(x: Tensor, p: ConvLSTMParams) -> Tensor:
    """``W_x * x + b`` for every step in one conv2d. x: (T, B, C, Hs, Ws) -> (T, B, G, Hs, Ws)."""
    T, B = x.shape[0], x.shape[1]
    xg = F.conv2d(x.reshape(T * B, *x.shape[2:]), p.w_x, p.b, padding=_padding(p))  # (T*B, G, Hs, Ws)
    return xg.reshape(T, B, *xg.shape[1:])


class ConvLSTMStepCache(NamedTuple):
    act: Tensor  # (B, G, Hs, Ws) gate activations i, f, g, o
    c_new: Tensor  # (B, K, Hs, Ws) cell before the keep blend
    tc: Tensor  # (B, K, Hs, Ws) tanh(c_new)


def conv_lstm_step_forward(
    xg: Tensor, h_prev: Tensor, c_prev: Tensor, p: ConvLSTMParams, rec_mask: Tensor | None = None,
    out: ConvLSTMStepCache | None = None,
) -> tuple[Tensor, Tensor, ConvLSTMStepCache]:
    """One step. xg: (B, G, Hs, Ws) from ``input_convolution``; h_prev, c_prev: (B, K, Hs, Ws).

    ``out``: optional buffers the cache is written into (the sequence loop's storage: no copies).
    """
    K = c_prev.shape[1]
    hr = h_prev if rec_mask is None else h_prev * rec_mask  # recurrent dropout
    a = F.conv2d(hr, p.w_h, padding=_padding(p)).add_(xg)  # (B, G, Hs, Ws) gate pre-activations
    if p.w_ci is not None:  # peepholes into i and f look at c_prev
        a[:, :K].addcmul_(p.w_ci, c_prev)
        a[:, K : 2 * K].addcmul_(p.w_cf, c_prev)
    act = torch.empty_like(a) if out is None else out.act
    torch.sigmoid(a[:, : 2 * K], out=act[:, : 2 * K])
    torch.tanh(a[:, 2 * K : 3 * K], out=act[:, 2 * K : 3 * K])
    i, f, g = act[:, :K], act[:, K : 2 * K], act[:, 2 * K : 3 * K]
    c_new = torch.mul(f, c_prev, out=None if out is None else out.c_new)
    c_new.addcmul_(i, g)  # c = f . c_prev + i . g
    if p.w_co is not None:  # the output peephole looks at the new cell
        a[:, 3 * K :].addcmul_(p.w_co, c_new)
    o = torch.sigmoid(a[:, 3 * K :], out=act[:, 3 * K :])
    tc = torch.tanh(c_new, out=None if out is None else out.tc)
    h_new = o * tc  # (B, K, Hs, Ws)
    return h_new, c_new, ConvLSTMStepCache(act, c_new, tc)


def conv_lstm_step_backward(
    dh: Tensor, dc: Tensor, h_prev: Tensor, c_prev: Tensor, cache: ConvLSTMStepCache,
    p: ConvLSTMParams, rec_mask: Tensor | None = None, da_out: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Backward of ``conv_lstm_step_forward``. dh: d loss/d h_new, dc: d loss/d c_new (B, K, Hs, Ws).

    Returns (da, dh_prev, dc_prev); da (B, G, Hs, Ws) is d loss / d gate pre-activations (= d xg),
    written into ``da_out`` when given.
    """
    K = c_prev.shape[1]
    act, tc = cache.act, cache.tc
    i, f, g, o = act[:, :K], act[:, K : 2 * K], act[:, 2 * K : 3 * K], act[:, 3 * K :]
    do = dh * tc  # h = o . tanh(c)
    dc = dc + dh * o * (1.0 - tc * tc)  # backprop through tanh
    da = torch.empty_like(act) if da_out is None else da_out
    da_o = da[:, 3 * K :]
    torch.mul(do, o * (1.0 - o), out=da_o)  # backprop through sigmoid
    if p.w_co is not None:
        dc = dc + da_o * p.w_co  # o saw c_new through its peephole
    # c = f . c_prev + i . g
    torch.mul(dc * g, i * (1.0 - i), out=da[:, :K])  # di, through sigmoid
    torch.mul(dc * c_prev, f * (1.0 - f), out=da[:, K : 2 * K])  # df, through sigmoid
    torch.mul(dc * i, 1.0 - g * g, out=da[:, 2 * K : 3 * K])  # dg, through tanh
    dc_prev = dc * f
    if p.w_ci is not None:  # i and f saw c_prev through their peepholes
        dc_prev = dc_prev + da[:, :K] * p.w_ci + da[:, K : 2 * K] * p.w_cf
    # a = ... + W_h * hr: backprop through the recurrent convolution (its input gradient only;
    # dW_h is taken once for all steps after the loop)
    dh_prev = _conv_backward(da, h_prev, p.w_h, _padding(p), (True, False, False))[0]  # (B, K, Hs, Ws)
    if rec_mask is not None:
        dh_prev = dh_prev * rec_mask
    return da, dh_prev, dc_prev


class ConvLSTMSaved(NamedTuple):
    """What the sequence backward needs."""

    x: Tensor  # (T, B, C, Hs, Ws)
    h_all: Tensor  # (T+1, B, K, Hs, Ws) carried h
    c_all: Tensor  # (T+1, B, K, Hs, Ws) carried c
    act: Tensor  # (T, B, G, Hs, Ws) gate activations
    tc: Tensor  # (T, B, K, Hs, Ws) tanh(c_new)
    c_new: Tensor  # (T, B, K, Hs, Ws) cell before the keep blend


def conv_lstm_sequence_forward(x: Tensor, h0: Tensor, c0: Tensor, p: ConvLSTMParams, masks: Masks):
    """Run T steps. x: (T, B, C, Hs, Ws); h0, c0: (B, K, Hs, Ws). Returns (y, h_n, c_n, saved)."""
    T = x.shape[0]
    xg = input_convolution(x, p)  # (T, B, G, Hs, Ws), one conv for all steps
    h_all = x.new_empty(T + 1, *h0.shape)  # carried h, h_all[0] = h0
    c_all = x.new_empty(T + 1, *c0.shape)  # carried c
    h_all[0], c_all[0] = h0, c0
    act = torch.empty_like(xg)
    tc = x.new_empty(T, *c0.shape)
    blended = masks.keep_c is not None
    c_new = x.new_empty(T, *c0.shape) if blended else c_all[1:]
    for t in range(T):
        buf = ConvLSTMStepCache(act[t], c_new[t], tc[t])  # the step writes its cache in place
        h, c, _ = conv_lstm_step_forward(xg[t], h_all[t], c_all[t], p, masks.rec, out=buf)
        if blended:  # c_new[t] holds the new cell; otherwise it is c_all[t + 1] already
            c_all[t + 1] = keep_blend(c, c_all[t], masks.keep_c[t])
        if masks.keep_h is not None:
            h = keep_blend(h, h_all[t], masks.keep_h[t])
        h_all[t + 1] = h
    y = masked_output(h_all[1:], masks.out)  # (T, B, K, Hs, Ws)
    saved = ConvLSTMSaved(x, h_all, c_all, act, tc, c_new)
    return y, h_all[T].clone(), c_all[T].clone(), saved


def conv_lstm_sequence_backward(dy, dh_n, dc_n, saved, p: ConvLSTMParams, masks: Masks,
                                need_dx: bool = True):
    """BPTT. Returns (dx, dh0, dc0, ConvLSTMParams of gradients)."""
    x, h_all, c_all, act, tc, c_new = saved
    T = x.shape[0]
    K = c_all.shape[2]
    dh = dh_n.clone() if dh_n is not None else torch.zeros_like(h_all[0])
    dc = dc_n.clone() if dc_n is not None else torch.zeros_like(c_all[0])
    da_all = torch.empty_like(act)  # (T, B, G, Hs, Ws)
    kc, kh = masks.keep_c, masks.keep_h
    for t in reversed(range(T)):
        dh = add_output_grad(dh, None if dy is None else dy[t], None if masks.out is None else masks.out[t])
        # state = keep . prev + (1 - keep) . new
        dh_new = dh if kh is None else dh * (1.0 - kh[t])
        dc_new = dc if kc is None else dc * (1.0 - kc[t])
        cache = ConvLSTMStepCache(act[t], c_new[t], tc[t])
        _, dh_prev, dc_prev = conv_lstm_step_backward(dh_new, dc_new, h_all[t], c_all[t], cache, p,
                                                      masks.rec, da_out=da_all[t])
        dh = dh_prev if kh is None else dh_prev + dh * kh[t]
        dc = dc_prev if kc is None else dc_prev + dc * kc[t]

    # weight gradients: one weight-gradient convolution over all T*B frames each
    pad = _padding(p)
    da_flat = da_all.reshape(-1, *da_all.shape[2:])  # (T*B, G, Hs, Ws)
    hr_all = h_all[:-1] if masks.rec is None else h_all[:-1] * masks.rec
    hr_flat = hr_all.reshape(-1, *hr_all.shape[2:])  # (T*B, K, Hs, Ws)
    _, dw_h, _ = _conv_backward(da_flat, hr_flat, p.w_h, pad, (False, True, False))
    x_flat = x.reshape(-1, *x.shape[2:])  # (T*B, C, Hs, Ws)
    dx, dw_x, db = _conv_backward(da_flat, x_flat, p.w_x, pad, (need_dx, True, p.b is not None))
    if dx is not None:
        dx = dx.reshape(x.shape)
    grads = dict(w_x=dw_x, w_h=dw_h, b=db)
    if p.w_ci is not None:
        grads["w_ci"] = _reduce_to(da_all[:, :, :K] * c_all[:-1], p.w_ci.shape)
        grads["w_cf"] = _reduce_to(da_all[:, :, K : 2 * K] * c_all[:-1], p.w_cf.shape)
        grads["w_co"] = _reduce_to(da_all[:, :, 3 * K :] * c_new, p.w_co.shape)
    return dx, dh, dc, ConvLSTMParams(**grads)


# apply((), x, h0, c0, rec, keep_c, keep_h, out, *params); dx only when autograd wants it
ConvLSTMFunction = glue.reference_function("ConvLSTMFunction", ConvLSTMParams, 2,
                                           conv_lstm_sequence_forward, conv_lstm_sequence_backward,
                                           pass_needs_dx=True)


def conv_lstm(x: Tensor, h0: Tensor, c0: Tensor, p: ConvLSTMParams, masks: Masks = Masks()):
    """One layer, reference engine. x: (T, B, C, Hs, Ws) -> y (T, B, K, Hs, Ws), h_n, c_n."""
    return ConvLSTMFunction.apply(*glue.apply_args((), x, (h0, c0), masks, p))


def conv_lstm_eager(x: Tensor, h0: Tensor, c0: Tensor, p: ConvLSTMParams, masks: Masks = Masks()):
    """The same equations written plainly and differentiated by autograd: the oracle for the hand
    backward and the eager baseline for benchmarks. Same arguments and returns as ``conv_lstm``."""
    pad = _padding(p)
    K = c0.shape[1]
    h, c, ys = h0, c0, []
    for t in range(x.shape[0]):
        hr = h if masks.rec is None else h * masks.rec
        a = F.conv2d(x[t], p.w_x, p.b, padding=pad) + F.conv2d(hr, p.w_h, padding=pad)
        a_i, a_f, a_g, a_o = a.split(K, dim=1)
        if p.w_ci is not None:
            a_i = a_i + p.w_ci * c
            a_f = a_f + p.w_cf * c
        i, f, g = torch.sigmoid(a_i), torch.sigmoid(a_f), torch.tanh(a_g)
        c_new = f * c + i * g
        if p.w_co is not None:
            a_o = a_o + p.w_co * c_new
        h_new = torch.sigmoid(a_o) * torch.tanh(c_new)
        c = blend_at(c_new, c, masks.keep_c, t)
        h = blend_at(h_new, h, masks.keep_h, t)
        ys.append(h if masks.out is None else h * masks.out[t])
    return torch.stack(ys), h, c


def _param_specs(opts: dict, I: int, H: int, P: int, bias: bool, kernel=(3, 3),
                 frame=None) -> list[ParamSpec]:
    """I input channels, H hidden channels; ``kernel`` (kh, kw); ``frame`` (Hs, Ws) gives Shi et
    al.'s spatial peepholes (K, Hs, Ws), None per-channel ones (K, 1, 1)."""
    G = 4 * H
    specs = [ParamSpec("w_x", "weight_ih", (G, I, *kernel), "conv"),
             ParamSpec("w_h", "weight_hh", (G, H, *kernel), "conv")]
    if bias:
        specs.append(ParamSpec("b", "bias_ih", (G,), "bias"))
    if opts["peephole"]:
        shape = (H, *frame) if frame is not None else (H, 1, 1)
        specs += [ParamSpec(f"w_{k}", f"weight_{k}", shape, "peephole") for k in ("ci", "cf", "co")]
    return specs


FAMILY = register(Family(
    name="conv_lstm",
    title="ConvLSTM",
    params=ConvLSTMParams,
    state=("h", "c"),
    options=(
        Option("peephole", False, (False, True),
               "peepholes, per channel (K, 1, 1) or, with frame_size, spatial (K, Hs, Ws)"),
    ),
    param_specs=_param_specs,
    reference=conv_lstm,
    eager=conv_lstm_eager,
    doc="Convolutional LSTM (Shi et al. 2015): the LSTM's gates as 'same' convolutions over frames.",
    gates=lambda o: 4,
    forget_gate=lambda o: 1,
    layer=False,  # ConvLSTM / ConvLSTMCell in lstmkit.nn.conv_lstm (channels, kernels, frames)
    frame=(5, 4),
))
