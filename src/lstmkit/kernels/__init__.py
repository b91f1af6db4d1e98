"""Compiled fast paths (the ``fused`` engine): same contract as ``lstmkit.functional``.

Symbols: T time, B batch, I input, H hidden (cell), P output width (proj_size, or H),
G gate rows (4H: i, f, g, o; 3H when coupled).

The C++ sources in ``csrc/`` are built on first use as a torch extension with ninja and cached
(``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/lstmkit/kernels``). When they cannot be built,
``available()`` warns once and returns False, and callers fall back to the reference engine:
a kernel is never the only implementation of anything.

Split of work (haste-style): Python owns layout, masks and the input projection (one GEMM for all
steps, ``functional.lstm.input_projection``); C++ runs the whole time loop, each step one GEMM
through torch's BLAS plus one fused elementwise pass; Python then takes every weight gradient
with one GEMM or one reduction over all steps.

    >>> import torch
    >>> from lstmkit import kernels
    >>> from lstmkit.functional import LSTMParams
    >>> p = LSTMParams(torch.randn(8, 3), torch.randn(8, 2))
    >>> kernels.supports("lstm", p, None, torch.randn(4, 1, 3)) in (True, False)
    True
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ..functional import _autograd as glue
from ..functional._common import LN_EPS, Masks, masked_output, sum_bt
from ..functional.gru import GRUParams
from ..functional.gru import input_projection as gru_input_projection
from ..functional.lstm import LSTMParams, input_projection, is_coupled, lstm_weight_grads
from ..functional.rnn import RNNParams, check_nonlinearity
from ..functional.rnn import input_projection as rnn_input_projection
from . import _loader

__all__ = ["available", "supports", "lstm", "lstm_step", "gru", "rnn"]

_EMPTY: dict = {}


def available() -> bool:
    """True when the compiled kernels are built and loaded (builds them on the first call)."""
    return _loader.load() is not None


def _ext():
    m = _loader.load()
    if m is None:
        raise RuntimeError("lstmkit fused kernels are not available (the C++ extension did not build)")
    return m


def _cpu_float(t: Tensor | None, dtype) -> bool:
    return t is None or (t.device.type == "cpu" and t.dtype == dtype and not t.is_sparse)


def supports(family: str, p, masks: Masks | None, x: Tensor, *, reset_after: bool = True,
             nonlinearity: str = "tanh") -> bool:
    """Whether the fused engine can serve this call (it does not check ``available()``).

    ``family``: "lstm" (every option), "gru" (``reset_after=True`` only), "rnn" (tanh, relu);
    any other family: False.
    """
    if x.device.type != "cpu" or x.dtype not in (torch.float32, torch.float64) or x.dim() != 3:
        return False
    if not all(_cpu_float(t, x.dtype) for t in p):
        return False
    if masks is not None and not all(_cpu_float(t, x.dtype) for t in masks):
        return False
    if (p.b_ih is None) != (p.b_hh is None):
        return False
    if family == "gru":
        return isinstance(p, GRUParams) and bool(reset_after)
    if family == "rnn":
        return isinstance(p, RNNParams) and nonlinearity in ("tanh", "relu")
    if family != "lstm" or not isinstance(p, LSTMParams):
        return False
    peep = [p.w_ci is not None, p.w_co is not None]
    if any(peep) and not all(peep):
        return False
    if (p.w_cf is not None) and (p.w_ci is None or is_coupled(p)):
        return False
    if p.w_ci is not None and not is_coupled(p) and p.w_cf is None:
        return False
    ln = [p.ln_ih_w, p.ln_ih_b, p.ln_hh_w, p.ln_hh_b, p.ln_c_w, p.ln_c_b]
    if any(t is not None for t in ln) and not all(t is not None for t in ln):
        return False
    return True


def _opt(t: Tensor | None) -> Tensor:
    """Optional tensor for C++: contiguous, or an empty placeholder."""
    return _NONE if t is None else t.contiguous()


_NONE = torch.empty(0)


def _rec(rec: Tensor | None, B: int, W: int) -> Tensor | None:
    """Recurrent-dropout mask as a contiguous (B, W): the kernels index it row by row."""
    return None if rec is None else rec.expand(B, W).contiguous()


def _keep(k: Tensor | None, T: int, B: int, W: int) -> Tensor:
    """keep masks as contiguous (T, B, W), broadcast to the full width so the kernel vectorises."""
    if k is None:
        return _NONE
    return k.expand(T, B, W).contiguous()


class FusedLSTMSaved(NamedTuple):
    """What the fused backward needs. Options that are off leave empty tensors or None."""

    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, P)
    c_all: Tensor  # (T+1, B, H)
    act: Tensor  # (T, B, G)
    tc: Tensor  # (T, B, H)
    c_new: Tensor  # (T, B, H) before the keep blend; empty without keep_c (then c_all[1:])
    ln_ih_stats: Tensor | None  # (2, T, B, 1) LN_ih mean and rstd (torch's native layer norm)
    xp: Tensor | None  # (T, B, G) x W_ih^T, LN_ih's input
    hh_hat: Tensor  # (T, B, G) layer_norm (else empty)
    hh_rstd: Tensor  # (T, B, 1)
    c_hat: Tensor  # (T, B, H)
    c_rstd: Tensor  # (T, B, 1)


class FusedLSTMFunction(torch.autograd.Function):
    """Same interface as ``functional.lstm.LSTMFunction``:
    ``apply((), x, h0, c0, rec, keep_c, keep_h, out, *params)`` (``functional._autograd``'s layout)."""

    @staticmethod
    def forward(ctx, opts, *args):
        inp = glue.inputs(args, 2, LSTMParams)
        x, (h0, c0), p = inp.x, inp.state, inp.params
        T, B = x.shape[0], x.shape[1]
        coupled = is_coupled(p)
        ln_ih_stats = xp = None
        if p.ln_ih_w is None:
            xg, _, _ = input_projection(x, p)  # (T, B, G), one GEMM
        else:  # LN_ih through torch's fused layer norm; saves (x W_ih^T, mean, rstd)
            xp = x @ p.w_ih.t()  # (T, B, G)
            xg, x_mean, x_rstd = torch.native_layer_norm(xp, [xp.shape[-1]], p.ln_ih_w, p.ln_ih_b, LN_EPS)
            if p.b_ih is not None:
                xg = xg + (p.b_ih + p.b_hh)
            ln_ih_stats = torch.stack([x_mean, x_rstd])  # (2, T, B, 1)
        kc, kh = _keep(inp.masks.keep_c, T, B, c0.shape[-1]), _keep(inp.masks.keep_h, T, B, h0.shape[-1])
        rec = _rec(inp.masks.rec, B, h0.shape[-1])
        save = torch.is_grad_enabled() or any(ctx.needs_input_grad)
        h_all, c_all, act, tc, c_new, hh_hat, hh_rstd, c_hat, c_rstd = _ext().lstm_forward(
            xg.contiguous(), h0.contiguous(), c0.contiguous(), p.w_hh.contiguous(), _opt(p.w_hr),
            _opt(p.w_ci), _opt(p.w_cf), _opt(p.w_co), _opt(p.ln_hh_w), _opt(p.ln_hh_b),
            _opt(p.ln_c_w), _opt(p.ln_c_b), _opt(rec), kc, kh, coupled, bool(save),
        )
        y = masked_output(h_all[1:], inp.masks.out)  # (T, B, P)
        if save:
            saved = FusedLSTMSaved(x, h_all, c_all, act, tc, c_new, ln_ih_stats, xp, hh_hat,
                                   hh_rstd, c_hat, c_rstd)
            glue.save(ctx, saved, inp._replace(masks=Masks(rec, kc, kh, inp.masks.out)),
                      coupled=coupled)
        return y, h_all[T].clone(), c_all[T].clone()

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n, dc_n):
        s, (rec, kc, kh, out), p = glue.load(ctx)
        dy = _masked(dy, out)
        da_all, dhh_all, dh_new_all, dcn_all, dh0, dc0 = _ext().lstm_backward(
            _opt(dy), _opt(dh_n), _opt(dc_n), s.h_all, s.c_all, s.act, s.tc, s.c_new, s.hh_hat,
            s.hh_rstd, s.c_hat, s.c_rstd, p.w_hh.contiguous(), _opt(p.w_hr), _opt(p.w_ci),
            _opt(p.w_cf), _opt(p.w_co), _opt(p.ln_hh_w), _opt(p.ln_c_w), _opt(rec), kc, kh,
            ctx.coupled,
        )
        d_ln_ih = None
        if p.ln_ih_w is not None:
            dxp, *d_ln_ih = torch.ops.aten.native_layer_norm_backward(
                da_all, s.xp, [s.act.shape[-1]], s.ln_ih_stats[0], s.ln_ih_stats[1], p.ln_ih_w,
                p.ln_ih_b, [True, True, True])
        else:
            dxp = da_all
        c_new = s.c_new if s.c_new.numel() else s.c_all[1:]
        grads = lstm_weight_grads(p, s.x, s.h_all, s.c_all, s.act, s.tc, c_new, s.hh_hat,
                                  s.c_hat, rec, da_all, dhh_all, dh_new_all, dcn_all, dxp,
                                  d_ln_ih, glue.wanted(ctx))
        dx = dxp @ p.w_ih if glue.needs_dx(ctx) else None  # (T, B, I)
        return glue.grads(ctx, dx, (dh0, dc0), grads)


def lstm(x: Tensor, h0: Tensor, c0: Tensor, p: LSTMParams, masks: Masks = Masks()):
    """One layer, one direction, fused engine. x: (T, B, I) -> y (T, B, P), h_n (B, P), c_n (B, H).

    Same semantics as ``lstmkit.functional.lstm.lstm`` (every option and mask); check
    ``available()`` and ``supports("lstm", p, masks, x)`` first.
    """
    return FusedLSTMFunction.apply(*glue.apply_args((), x, (h0, c0), masks, p))


def lstm_step(x: Tensor, h: Tensor, c: Tensor, p: LSTMParams) -> tuple[Tensor, Tensor]:
    """Streaming single step without autograd. x: (B, I), h: (B, P), c: (B, H) -> (h, c).

    One C++ call (input GEMM, recurrent GEMM, fused gate pass): the low-overhead path for cells
    and stateful inference. Weights must be contiguous.
    """
    kernel_params = p[:_N_KERNEL_LSTM_PARAMS]  # w_gr (an ablation) is never served here
    return tuple(_ext().lstm_step(x.contiguous(), h, c,
                                  *[_NONE if t is None else t for t in kernel_params],
                                  is_coupled(p)))


_N_KERNEL_LSTM_PARAMS = LSTMParams._fields.index("w_gr")  # the parameters the C++ step takes


def _masked(dy: Tensor | None, out: Tensor | None) -> Tensor | None:
    """The output gradient at valid steps only (the kernels add it to the carried d h)."""
    return dy * out if dy is not None and out is not None else dy


def _recurrent_input(h_all: Tensor, rec: Tensor | None) -> Tensor:
    """(T, B, W) what each step's recurrent GEMM saw: h_{t-1}, times the recurrent dropout mask."""
    return h_all[:-1] if rec is None else h_all[:-1] * rec


def _save_h_only(ctx, saved, inp, rec, kh, h_all: Tensor, **attrs):
    """An h-only fused family's forward tail: save ``saved`` (unless None) with the masks as the
    kernel saw them, and return (y (T, B, H), h_n (B, H))."""
    if saved is not None:
        glue.save(ctx, saved, inp._replace(masks=Masks(rec, None, kh, inp.masks.out)), **attrs)
    return masked_output(h_all[1:], inp.masks.out), h_all[-1].clone()


def _load_h_only(ctx, dy):
    """An h-only fused family's backward head: (saved, params, rec, keep_h, dy at valid steps)."""
    s, (rec, _, kh, out), p = glue.load(ctx)
    return s, p, rec, kh, _masked(dy, out)


def _dense_grads(ctx, x: Tensor, hr_all: Tensor, da_all: Tensor, dhh_all: Tensor, w_ih: Tensor):
    """The wanted ones of dW_ih, dW_hh, db_ih, db_hh, and dx, one GEMM or reduction each over
    all T*B rows. da_all: (T, B, G) d xg; dhh_all: (T, B, G) d of the recurrent GEMM output;
    hr_all: (T, B, H) what that GEMM saw."""
    want, G = glue.wanted(ctx), da_all.shape[-1]
    g = {}
    if "w_hh" in want:
        g["w_hh"] = dhh_all.reshape(-1, G).t() @ hr_all.reshape(-1, hr_all.shape[-1])
    if "b_hh" in want:
        g["b_hh"] = sum_bt(dhh_all)
    da2 = da_all.reshape(-1, G)
    if "w_ih" in want:
        g["w_ih"] = da2.t() @ x.reshape(-1, x.shape[-1])
    if "b_ih" in want:  # the RNN passes one tensor for both: sum it once
        g["b_ih"] = g["b_hh"] if dhh_all is da_all and "b_hh" in g else sum_bt(da_all)
    dx = (da2 @ w_ih).reshape(*x.shape[:-1], -1) if glue.needs_dx(ctx) else None
    return g, dx


class FusedGRUSaved(NamedTuple):
    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, H)
    act: Tensor  # (T, B, G) r, z, n
    hn: Tensor  # (T, B, H) hr W_hn^T + b_hn


class FusedGRUFunction(torch.autograd.Function):
    """Fused GRU, ``reset_after=True``: ``apply((), x, h0, rec, keep_c, keep_h, out, *params)``."""

    @staticmethod
    def forward(ctx, opts, *args):
        inp = glue.inputs(args, 1, GRUParams)
        x, (h0,), p = inp.x, inp.state, inp.params
        T, B, H = x.shape[0], x.shape[1], h0.shape[-1]
        xg = gru_input_projection(x, p, True)  # (T, B, G), one GEMM
        kh, rec = _keep(inp.masks.keep_h, T, B, H), _rec(inp.masks.rec, B, H)
        b_hn = p.b_hh[2 * H :].contiguous() if p.b_hh is not None else _NONE
        save = any(ctx.needs_input_grad)
        h_all, act, hn = _ext().gru_forward(xg.contiguous(), h0.contiguous(), p.w_hh.contiguous(), b_hn,
                                            _opt(rec), kh, bool(save))
        return _save_h_only(ctx, FusedGRUSaved(x, h_all, act, hn) if save else None, inp, rec, kh,
                            h_all)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n):
        s, p, rec, kh, dy = _load_h_only(ctx, dy)
        dhh_all, dan_all, dh0 = _ext().gru_backward(_opt(dy), _opt(dh_n), s.h_all, s.act, s.hn,
                                                    p.w_hh.contiguous(), _opt(rec), kh)
        H = s.act.shape[-1] // 3
        hr_all = _recurrent_input(s.h_all, rec)  # (T, B, H)
        da_all = torch.cat([dhh_all[..., : 2 * H], dan_all], -1)  # d xg: r, z rows are shared
        g, dx = _dense_grads(ctx, s.x, hr_all, da_all, dhh_all, p.w_ih)
        return glue.grads(ctx, dx, (dh0,), g)


def gru(x: Tensor, h0: Tensor, p: GRUParams, masks: Masks = Masks(), reset_after: bool = True):
    """One GRU layer-direction, fused engine (``reset_after=True`` only; ``masks.keep_c`` ignored).

    Same semantics as ``lstmkit.functional.gru.gru``. x: (T, B, I), h0: (B, H) -> y (T, B, H), h_n.
    """
    if not reset_after:
        raise ValueError("reset_after: the fused GRU serves reset_after=True only, got False")
    return FusedGRUFunction.apply(*glue.apply_args((), x, (h0,), masks, p))


class FusedRNNSaved(NamedTuple):
    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, H)
    h_new: Tensor  # (T, B, H) before the keep blend


class FusedRNNFunction(torch.autograd.Function):
    """Fused Elman RNN: ``apply((relu,), x, h0, rec, keep_c, keep_h, out, *params)``."""

    @staticmethod
    def forward(ctx, opts, *args):
        (relu,) = opts
        inp = glue.inputs(args, 1, RNNParams)
        x, (h0,), p = inp.x, inp.state, inp.params
        T, B, H = x.shape[0], x.shape[1], h0.shape[-1]
        xg = rnn_input_projection(x, p)  # (T, B, H), one GEMM
        kh, rec = _keep(inp.masks.keep_h, T, B, H), _rec(inp.masks.rec, B, H)
        h_all, h_new = _ext().rnn_forward(xg.contiguous(), h0.contiguous(), p.w_hh.contiguous(),
                                          _opt(rec), kh, relu)
        return _save_h_only(ctx, FusedRNNSaved(x, h_all, h_new), inp, rec, kh, h_all, relu=relu)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n):
        s, p, rec, kh, dy = _load_h_only(ctx, dy)
        da_all, dh0 = _ext().rnn_backward(_opt(dy), _opt(dh_n), s.h_new, p.w_hh.contiguous(),
                                          _opt(rec), kh, ctx.relu)
        hr_all = _recurrent_input(s.h_all, rec)  # (T, B, H)
        g, dx = _dense_grads(ctx, s.x, hr_all, da_all, da_all, p.w_ih)
        return glue.grads(ctx, dx, (dh0,), g)


def rnn(x: Tensor, h0: Tensor, p: RNNParams, masks: Masks = Masks(), nonlinearity: str = "tanh"):
    """One Elman RNN layer-direction, fused engine (``masks.keep_c`` ignored).

    Same semantics as ``lstmkit.functional.rnn.rnn``. x: (T, B, I), h0: (B, H) -> y (T, B, H), h_n.
    """
    relu = check_nonlinearity(nonlinearity) == "relu"
    return FusedRNNFunction.apply(*glue.apply_args((relu,), x, (h0,), masks, p))
