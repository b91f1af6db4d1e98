"""Compiled fast paths (the ``fused`` engine): same contract as ``lstmkit.functional``.

Symbols: T time, B batch, I input, H hidden (cell), P output width (proj_size, or H),
G gate rows (4H: i, f, g, o; 3H when coupled).

The C++ sources in ``csrc/`` are built as a torch extension with ninja and cached
(``$TORCH_EXTENSIONS_DIR`` or ``~/.cache/lstmkit/kernels``): at set-up by
``python -m lstmkit.kernels build`` (``make`` runs it), else on first use, saying so on stderr.
When they cannot be built, ``available()`` warns once and returns False, and callers fall back
to the reference engine: a kernel is never the only implementation of anything.

GEMMs: the big ones (input projection, weight and input gradients; from ~4M multiply-adds) go
through torch's oneDNN linear (``linear`` below); on this AMD CPU MKL's sgemm runs its generic
path and oneDNN is ~2x faster. Each step's recurrent GEMM of a sequence goes there from 1M
multiply-adds and 2 rows, on a weight prepacked once per call (``csrc/common.h``'s StepGemm);
smaller ones use ``at::mm``.
Under ``no_grad``/``inference_mode`` each family runs a forward-only path (no autograd node,
nothing saved).

Precision: float32 and float64 run in their own dtype. bfloat16 inputs (a module in bfloat16), and
float32 inputs under ``torch.autocast("cpu", dtype=torch.bfloat16)``, run *mixed*: every GEMM in
bfloat16 (torch's oneDNN path, AMX where the CPU has it; where oneDNN has no bfloat16, as on AVX2
CPUs, float32 GEMMs on the bfloat16 values: the same products and float32 sums), the state, gate
math and every reduction in float32, weight gradients from bfloat16 GEMMs with float32
accumulation, returned in the parameters' own dtype (float32 master weights under autocast).
Outputs come back in the input's dtype.

Split of work (haste-style): Python owns layout, masks and the input projection (one GEMM for all
steps, ``functional.lstm.input_projection``); C++ runs the whole time loop, each step one GEMM
through torch's BLAS plus one fused elementwise pass; Python then takes every weight gradient
with one GEMM or one reduction over all steps. The layer-norm LSTM's backward also runs LN_ih's
backward and sums the layer-norm and bias gradients inside its time loop (no full-size
temporaries for them).

    >>> import torch
    >>> from lstmkit import kernels
    >>> from lstmkit.functional import LSTMParams
    >>> p = LSTMParams(torch.randn(8, 3), torch.randn(8, 2))
    >>> kernels.supports("lstm", p, None, torch.randn(4, 1, 3)) in (True, False)
    True
"""

from __future__ import annotations

import weakref
from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from .. import cpu
from ..functional import _autograd as glue
from ..functional._common import LN_EPS, Masks, masked_output, sum_bt
from ..functional.gru import GRUParams
from ..functional.lstm import STEP_WEIGHTS, LSTMParams, is_coupled, lstm_weight_grads
from ..functional.rnn import RNNParams, check_nonlinearity
from . import _loader

__all__ = ["available", "supports", "lstm", "lstm_step", "gru", "rnn", "mixed"]

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


_DTYPES = (torch.float32, torch.float64, torch.bfloat16)


class Mixed(NamedTuple):
    """The mixed-precision plan of one call: GEMMs in ``gemm``, state and gate math in ``math``;
    outputs and gradients in ``orig`` (the input's and the parameters' dtype)."""

    gemm: torch.dtype
    math: torch.dtype
    orig: torch.dtype


_BF16 = Mixed(torch.bfloat16, torch.float32, torch.bfloat16)
_AUTOCAST = Mixed(torch.bfloat16, torch.float32, torch.float32)


def mixed(x: Tensor) -> Mixed | None:
    """The mixed plan for input ``x``: bfloat16 input, or float32 under CPU autocast to bfloat16;
    None (plain: everything in x's dtype) otherwise.

    >>> mixed(torch.zeros(1)) is None
    True
    >>> with torch.autocast("cpu", dtype=torch.bfloat16):
    ...     mixed(torch.zeros(1)).gemm
    torch.bfloat16
    """
    if x.dtype == torch.bfloat16:
        return _BF16
    if (x.dtype == torch.float32 and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16):
        return _AUTOCAST
    return None


def _to(t: Tensor | None, dtype) -> Tensor | None:
    return t if t is None or t.dtype == dtype else t.to(dtype)


def _orig(mix: Mixed | None, *ts: Tensor) -> tuple[Tensor, ...]:
    """A kernel's results in the caller's dtype (mixed precision computes them in another)."""
    return ts if mix is None else tuple(t.to(mix.orig) for t in ts)


def _mixed_params(p, mix: Mixed, gemm_fields: tuple[str, ...]):
    """The params of a mixed call: GEMM weights in ``mix.gemm``, the rest in ``mix.math``."""
    return type(p)(*(_to(t, mix.gemm if f in gemm_fields else mix.math)
                     for f, t in zip(p._fields, p)))


def _mixed_masks(masks: Masks, mix: Mixed) -> Masks:
    return Masks(*(_to(t, mix.math) for t in masks))


_ONEDNN = (getattr(torch.ops.mkldnn, "_linear_pointwise", None)
           if torch.backends.mkldnn.is_available() else None)
_ONEDNN_MIN_MACS = 1 << 22  # below this at::mm (the per-step GEMMs have their own rule, in C++)


def linear(a: Tensor, w: Tensor, bias: Tensor | None = None) -> Tensor:
    """``a @ w^T (+ bias)``: a (..., K), w (N, K) -> (..., N). Big float32/bfloat16 GEMMs go through
    torch's oneDNN linear (``mkldnn::_linear_pointwise``): on CPUs where MKL's sgemm runs its
    generic path (AMD) it is ~2x faster than ``@``. bfloat16 where oneDNN has no bfloat16 here
    (AVX2 CPUs, ``lstmkit.cpu``): a float32 GEMM on the bfloat16 values, rounded back to
    bfloat16. Not differentiable: kernels only.

    >>> a, w = torch.randn(4096, 64), torch.randn(32, 64)
    >>> torch.allclose(linear(a, w), a @ w.t(), atol=1e-4)
    True
    """
    if a.dtype == torch.bfloat16 and not cpu.probe().onednn_bf16:
        # no bfloat16 GEMM on this CPU (lstmkit.cpu): a float32 GEMM on the bfloat16 values gives
        # exact products and float32 sums, what a bfloat16 GEMM with float32 accumulation gives
        f = linear(a.float(), w.float(), None if bias is None else bias.float())
        return f.to(torch.bfloat16)
    if (a.numel() * w.shape[0] >= _ONEDNN_MIN_MACS and _ONEDNN is not None  # small: at::mm
            and a.dtype in (torch.float32, torch.bfloat16) and a.dtype == w.dtype
            and a.device.type == "cpu" and (bias is None or bias.dtype == a.dtype)):
        return _ONEDNN(a.contiguous(), w.contiguous(), bias, "none", [], "")
    y = a @ w.t()
    return y if bias is None else y + bias


def _gemm_grad(dout: Tensor, inp: Tensor, mix: Mixed | None) -> Tensor:
    """d W = dout^T inp over all T*B rows: (T, B, N), (T, B, K) -> (N, K); one GEMM in the call's
    GEMM dtype (float32 accumulation inside torch's bfloat16 GEMM), returned in the math dtype."""
    a, b = dout.reshape(-1, dout.shape[-1]), inp.reshape(-1, inp.shape[-1])
    if mix is None:
        return linear(a.t(), b.t())
    return linear(a.to(mix.gemm).t(), b.to(mix.gemm).t()).to(mix.math)


def _input_grad(da: Tensor, w: Tensor, mix: Mixed | None) -> Tensor:
    """d x = da W: (T, B, G), (G, I) -> (T, B, I), in the call's GEMM dtype."""
    return linear(da if mix is None else da.to(mix.gemm), w.t())


def _grads_out(ctx, dx, dstate, g: dict, mix: Mixed | None) -> tuple:
    """glue.grads, with a mixed call's gradients cast back to the inputs' dtype."""
    if mix is not None:
        dx = _to(dx, mix.orig)
        dstate = tuple(_to(d, mix.orig) for d in dstate)
        g = {k: _to(v, mix.orig) for k, v in g.items()}
    return glue.grads(ctx, dx, dstate, g)


class _NoAutocast:
    """``torch.autocast("cpu", enabled=False)`` for a mixed call (its dtypes are explicit) or any
    call under CPU autocast (float16 autocast must not recast a plain call's GEMMs), a no-op
    context otherwise (no cost on the float32 path)."""

    def __init__(self, mix: Mixed | None):
        off = mix is not None or torch.is_autocast_enabled("cpu")
        self.cm = torch.autocast("cpu", enabled=False) if off else None

    def __enter__(self):
        if self.cm is not None:
            self.cm.__enter__()

    def __exit__(self, *exc):
        if self.cm is not None:
            self.cm.__exit__(*exc)


def supports(family: str, p, masks: Masks | None, x: Tensor, *, reset_after: bool = True,
             nonlinearity: str = "tanh") -> bool:
    """Whether the fused engine can serve this call (it does not check ``available()``).

    ``family``: "lstm" (every option), "gru" (both forms), "rnn" (tanh, relu);
    any other family: False. dtypes: float32, float64, bfloat16 (x, params and masks alike).
    """
    if x.device.type != "cpu" or x.dtype not in _DTYPES or x.dim() != 3:
        return False
    if not all(_cpu_float(t, x.dtype) for t in p):
        return False
    if masks is not None and not all(_cpu_float(t, x.dtype) for t in masks):
        return False
    if (p.b_ih is None) != (p.b_hh is None):
        return False
    if family == "gru":
        return isinstance(p, GRUParams)
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


_LSTM_GEMMS = ("w_ih", "w_hh", "w_hr")


def _lstm_core(x: Tensor, h0: Tensor, c0: Tensor, p: LSTMParams, masks: Masks,
               mix: Mixed | None, save: bool):
    """One fused LSTM forward: (y, h_n, c_n) in the math dtype, then what a backward needs
    (``FusedLSTMSaved`` or None without ``save``), and the params and masks as the kernel saw them."""
    if mix is not None:
        x, h0, c0 = x.to(mix.gemm), h0.to(mix.math), c0.to(mix.math)
        p, masks = _mixed_params(p, mix, _LSTM_GEMMS), _mixed_masks(masks, mix)
    T, B = x.shape[0], x.shape[1]
    bias = p.b_ih + p.b_hh if p.b_ih is not None else None  # (G,)
    ln_ih_stats = None
    if p.ln_ih_w is None:  # functional.lstm.input_projection: one GEMM for all steps
        xg, xp = _projection(x, p, bias, mix), None  # (T, B, G)
    else:  # LN_ih through torch's fused layer norm; saves (x W_ih^T, mean, rstd). The biases
        # join LN_ih's shift: LN(xp; w, b) + b_ih + b_hh = LN(xp; w, b + b_ih + b_hh)
        xp = linear(x, p.w_ih)  # (T, B, G)
        if mix is not None:
            xp = xp.to(mix.math)
        shift = p.ln_ih_b if bias is None else p.ln_ih_b + bias
        xg, x_mean, x_rstd = torch.native_layer_norm(xp, [xp.shape[-1]], p.ln_ih_w, shift, LN_EPS)
        ln_ih_stats = torch.stack([x_mean, x_rstd]) if save else None  # (2, T, B, 1)
    kc, kh = _keep(masks.keep_c, T, B, c0.shape[-1]), _keep(masks.keep_h, T, B, h0.shape[-1])
    rec = _rec(masks.rec, B, h0.shape[-1])
    coupled = is_coupled(p)
    h_all, c_all, act, tc, c_new, hh_hat, hh_rstd, c_hat, c_rstd = _ext().lstm_forward(
        xg.contiguous(), h0.contiguous(), c0.contiguous(), p.w_hh, _opt(p.w_hr),
        _opt(p.w_ci), _opt(p.w_cf), _opt(p.w_co), _opt(p.ln_hh_w), _opt(p.ln_hh_b),
        _opt(p.ln_c_w), _opt(p.ln_c_b), _opt(rec), kc, kh, coupled, bool(save),
    )
    # (T, B, P); forward-only: a view of the kernel's buffer, nothing else holds it
    y = h_all[1:] if masks.out is None and not save else masked_output(h_all[1:], masks.out)
    saved = FusedLSTMSaved(x, h_all, c_all, act, tc, c_new, ln_ih_stats, xp, hh_hat, hh_rstd,
                           c_hat, c_rstd) if save else None
    # the final states are copies: h_all/c_all may be saved for backward or viewed by y
    return y, h_all[T].clone(), c_all[T].clone(), saved, p, Masks(rec, kc, kh, masks.out)


class FusedLSTMFunction(torch.autograd.Function):
    """Same interface as ``functional.lstm.LSTMFunction``:
    ``apply((), x, h0, c0, rec, keep_c, keep_h, out, *params)`` (``functional._autograd``'s layout)."""

    @staticmethod
    def forward(ctx, opts, *args):
        inp = glue.inputs(args, 2, LSTMParams)
        mix = mixed(inp.x)
        save = any(ctx.needs_input_grad)
        with _NoAutocast(mix):
            y, h_n, c_n, saved, p, masks = _lstm_core(inp.x, *inp.state, inp.params, inp.masks, mix,
                                                      save)
        if save:
            glue.save(ctx, saved, inp._replace(masks=masks, params=p), coupled=is_coupled(p), mix=mix)
        return _orig(mix, y, h_n, c_n)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n, dc_n):
        mix = ctx.mix
        with _NoAutocast(mix):
            return _lstm_backward(ctx, dy, dh_n, dc_n, mix)


def _lstm_backward(ctx, dy, dh_n, dc_n, mix: Mixed | None):
    s, (rec, kc, kh, out), p = glue.load(ctx)
    if mix is not None:
        dy, dh_n, dc_n = _to(dy, mix.math), _to(dh_n, mix.math), _to(dc_n, mix.math)
    dy = _masked(dy, out)
    ln = p.ln_ih_w is not None
    # with layer norm the kernel also runs LN_ih's backward (d xp, from the saved x W_ih^T and its
    # statistics) and returns the layer-norm parameters' and the biases' gradients
    lnx = (s.xp, s.ln_ih_stats[0], s.ln_ih_stats[1], p.ln_ih_w) if ln else (_NONE,) * 4
    da_all, dhh_all, dh_new_all, dxp, dh0, dc0, *ln_grads = _ext().lstm_backward(
        _opt(dy), _opt(dh_n), _opt(dc_n), s.h_all, s.c_all, s.act, s.tc, s.c_new, s.hh_hat,
        s.hh_rstd, s.c_hat, s.c_rstd, p.w_hh, _opt(p.w_hr), _opt(p.w_ci),
        _opt(p.w_cf), _opt(p.w_co), _opt(p.ln_hh_w), _opt(p.ln_c_w), _opt(rec), kc, kh, *lnx,
        ctx.coupled,
    )
    if not ln:
        dxp = da_all
    c_new = s.c_new if s.c_new.numel() else s.c_all[1:]
    want = glue.wanted(ctx)
    g = {}  # the GEMM gradients here (oneDNN; bfloat16 when mixed), the reductions in float32
    H = s.c_all.shape[-1]
    if ln:
        d_lnhh_w, d_shift, d_lnih_w, d_lnc_w, d_lnc_b = ln_grads
        from_kernel = dict(ln_hh_w=d_lnhh_w, ln_hh_b=d_shift, ln_ih_w=d_lnih_w, ln_ih_b=d_shift,
                           ln_c_w=d_lnc_w, ln_c_b=d_lnc_b, b_ih=d_shift, b_hh=d_shift)
        g.update({k: v for k, v in from_kernel.items() if k in want})
    if "w_hh" in want:
        g["w_hh"] = _gemm_grad(dhh_all, _recurrent_input(s.h_all, rec), mix)
    if "w_ih" in want:
        g["w_ih"] = _gemm_grad(dxp, s.x, mix)
    if p.w_hr is not None and "w_hr" in want:
        g["w_hr"] = _gemm_grad(dh_new_all, s.act[..., -H:] * s.tc, mix)
    g.update(lstm_weight_grads(p, s.x, s.h_all, s.c_all, s.act, s.tc, c_new, s.hh_hat,
                               s.c_hat, rec, da_all, dhh_all, dh_new_all, None, dxp,
                               None, want - g.keys()))
    dx = _input_grad(dxp, p.w_ih, mix) if glue.needs_dx(ctx) else None  # (T, B, I)
    return _grads_out(ctx, dx, (dh0, dc0), g, mix)


def lstm(x: Tensor, h0: Tensor, c0: Tensor, p: LSTMParams, masks: Masks = Masks()):
    """One layer, one direction, fused engine. x: (T, B, I) -> y (T, B, P), h_n (B, P), c_n (B, H).

    Same semantics as ``lstmkit.functional.lstm.lstm`` (every option and mask); check
    ``available()`` and ``supports("lstm", p, masks, x)`` first. With gradients disabled it runs
    the forward-only path: no autograd node, nothing saved (the kernel keeps one step of gates).
    """
    if not torch.is_grad_enabled():
        return lstm_inference(x, h0, c0, p, masks)
    return FusedLSTMFunction.apply(*glue.apply_args((), x, (h0, c0), masks, p))


def lstm_inference(x: Tensor, h0: Tensor, c0: Tensor, p: LSTMParams, masks: Masks = Masks()):
    """The forward-only fused LSTM (what ``lstm`` runs under ``no_grad``/``inference_mode``):
    no autograd node and no saved activations. Same arguments and results as ``lstm``."""
    mix = mixed(x)
    with _NoAutocast(mix):
        y, h_n, c_n, *_ = _lstm_core(x, h0, c0, p, masks, mix, False)
    return _orig(mix, y, h_n, c_n)




def lstm_step(x: Tensor, h: Tensor, c: Tensor, p: LSTMParams, weights: str = "full"
              ) -> tuple[Tensor, Tensor]:
    """Streaming single step without autograd. x: (B, I), h: (B, P), c: (B, H) -> (h, c).

    The low-overhead path for cells, stateful inference and the server. Plain, peephole and
    coupled LSTMs run a packed stepper: the weights are packed once (cached per weight tensor,
    storage, version, dtype and precision, so an optimizer step or an in-place edit repacks)
    and a step reads them once. ``weights`` picks their precision for the step (float32 parameters):

    - ``"full"``: the parameters' own dtype (exact up to summation order);
    - ``"bfloat16"``: half the bytes; weights and activations rounded to bfloat16, float32 sums;
    - ``"int8"``: a quarter of the bytes; weights int8 with a scale per gate row (x and h
      columns apart), each step's x and h rows quantised to 8 bits (dynamic quantisation).

    Projection and layer norm take one C++ call per step (input GEMM, recurrent GEMM, fused gate
    pass) in full precision only.
    """
    if weights not in STEP_WEIGHTS:
        raise ValueError(f"weights: expected one of {STEP_WEIGHTS}, got {weights!r}")
    packed = p.w_hr is None and p.ln_hh_w is None and x.dtype in (torch.float32, torch.float64)
    if packed:
        return tuple(_stepper(p, weights).step(x, h, c))
    if weights != "full":
        raise ValueError(f"weights: {weights!r} steps serve float32 LSTMs without projection or "
                         "layer norm; use weights='full' for this one")
    kernel_params = p[:_N_KERNEL_LSTM_PARAMS]  # w_gr (an ablation) is never served here
    return tuple(_ext().lstm_step(x.contiguous(), h, c,
                                  *[_NONE if t is None else t for t in kernel_params],
                                  is_coupled(p)))


_N_KERNEL_LSTM_PARAMS = LSTMParams._fields.index("w_gr")  # the parameters the C++ step takes
_STEPPERS: dict = {}  # (precision, ids of the weights) -> (weak refs, signatures, stepper)
_MAX_STEPPERS = 256  # live weight sets x precisions; beyond, the oldest entry goes
_STEP_FIELDS = 8  # w_ih, w_hh, b_ih, b_hh, w_hr, w_ci, w_cf, w_co


def _signature(t: Tensor | None):
    """What must not change under a packed copy: storage, version, dtype and shape (``.data =``
    and ``module.double()`` keep the version but change the rest). Tensors made under
    ``inference_mode`` have no version counter: an in-place edit of one goes unseen."""
    if t is None:
        return None
    return t.data_ptr(), -1 if t.is_inference() else t._version, t.dtype, t.shape


def _stepper(p: LSTMParams, weights: str = "full"):
    """The packed stepper of these weights in this precision. The cache checks the very tensors
    (weak references: a new tensor at a freed one's address or id is not mistaken for it) and
    their signatures (an optimizer step, an in-place edit, ``.data =`` or a dtype change
    repacks). An entry leaves when its ``w_ih`` dies, or when 256 newer ones have come. Its
    workspace is reused between steps; its ``step`` holds the GIL (pybind11's default), so
    threads sharing one stepper (a server's pool) take turns."""
    ts = p[:_STEP_FIELDS]
    key = (weights, *map(id, ts))
    sig = tuple(map(_signature, ts))
    hit = _STEPPERS.get(key)
    if hit is not None and hit[1] == sig and all(r is None or r() is t for r, t in zip(hit[0], ts)):
        return hit[2]
    with torch.no_grad():
        st = _ext().LstmStepper(
            p.w_ih, p.w_hh, *[_NONE if t is None else t for t in (p.b_ih, p.b_hh, p.w_ci, p.w_cf, p.w_co)],
            is_coupled(p), STEP_WEIGHTS.index(weights))
    _STEPPERS.pop(key, None)  # an update of these weights replaces their entry
    while len(_STEPPERS) >= _MAX_STEPPERS:
        _STEPPERS.pop(next(iter(_STEPPERS)))
    refs = tuple(None if t is None else weakref.ref(t) for t in ts)
    # the entry goes with its weights (the callback holds the key, not the tensor)
    refs = (weakref.ref(p.w_ih, lambda _, k=key: _STEPPERS.pop(k, None)),) + refs[1:]
    _STEPPERS[key] = (refs, sig, st)
    return st


def _masked(dy: Tensor | None, out: Tensor | None) -> Tensor | None:
    """The output gradient at valid steps only (the kernels add it to the carried d h)."""
    return dy * out if dy is not None and out is not None else dy


def _recurrent_input(h_all: Tensor, rec: Tensor | None) -> Tensor:
    """(T, B, W) what each step's recurrent GEMM saw: h_{t-1}, times the recurrent dropout mask."""
    return h_all[:-1] if rec is None else h_all[:-1] * rec


def _load_h_only(ctx, dy, mix: Mixed | None):
    """An h-only fused family's backward head: (saved, params, rec, keep_h, dy at valid steps
    in the math dtype)."""
    s, (rec, _, kh, out), p = glue.load(ctx)
    return s, p, rec, kh, _masked(_to(dy, s.h_all.dtype), out)


def _dense_grads(ctx, x: Tensor, hr_all: Tensor, da_all: Tensor, dhh_all: Tensor, w_ih: Tensor,
                 mix: Mixed | None = None, dw_hh=None):
    """The wanted ones of dW_ih, dW_hh, db_ih, db_hh, and dx, one GEMM or reduction each over
    all T*B rows. da_all: (T, B, G) d xg; dhh_all: (T, B, G) d of the recurrent GEMM output;
    hr_all: (T, B, H) what that GEMM saw (``dw_hh``: a callable computing dW_hh instead, for a
    family whose recurrent GEMMs see different inputs). A mixed call's GEMMs run in its GEMM dtype."""
    want = glue.wanted(ctx)
    g = {}
    if "w_hh" in want:
        g["w_hh"] = dw_hh() if dw_hh is not None else _gemm_grad(dhh_all, hr_all, mix)
    if "b_hh" in want:
        g["b_hh"] = sum_bt(dhh_all)
    if "w_ih" in want:
        g["w_ih"] = _gemm_grad(da_all, x, mix)
    if "b_ih" in want:  # the RNN passes one tensor for both: sum it once
        g["b_ih"] = g["b_hh"] if dhh_all is da_all and "b_hh" in g else sum_bt(da_all)
    dx = _input_grad(da_all, w_ih, mix) if glue.needs_dx(ctx) else None
    return g, dx


def _h_only_inputs(x: Tensor, h0: Tensor, p, masks: Masks, mix: Mixed | None):
    """A mixed h-only call's inputs in its dtypes (x and the GEMM weights in bfloat16, the state,
    the other params and the masks in float32); a plain call's unchanged."""
    if mix is None:
        return x, h0, p, masks
    return (x.to(mix.gemm), h0.to(mix.math), _mixed_params(p, mix, ("w_ih", "w_hh")),
            _mixed_masks(masks, mix))


def _projection(x: Tensor, p, bias: Tensor | None, mix: Mixed | None) -> Tensor:
    """x W_ih^T + bias for all steps: one GEMM (in a mixed call's GEMM dtype, the sum in float32)."""
    if mix is None:
        return linear(x, p.w_ih, bias)
    xg = linear(x, p.w_ih).to(mix.math)
    return xg + bias if bias is not None else xg


class FusedGRUSaved(NamedTuple):
    x: Tensor  # (T, B, I)
    h_all: Tensor  # (T+1, B, H)
    act: Tensor  # (T, B, G) r, z, n
    hn: Tensor | None  # (T, B, H) hr W_hn^T + b_hn (reset_after only)


class FusedGRUFunction(torch.autograd.Function):
    """Fused GRU, both forms: ``apply((reset_after,), x, h0, rec, keep_c, keep_h, out, *params)``."""

    @staticmethod
    def forward(ctx, opts, *args):
        (reset_after,) = opts
        inp = glue.inputs(args, 1, GRUParams)
        mix = mixed(inp.x)
        save = any(ctx.needs_input_grad)
        with _NoAutocast(mix):
            y, h_n, saved, p, masks = _gru_core(inp.x, inp.state[0], inp.params, inp.masks, mix, save,
                                                reset_after)
        if save:
            glue.save(ctx, saved, inp._replace(masks=masks, params=p), mix=mix, reset_after=reset_after)
        return _orig(mix, y, h_n)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n):
        mix = ctx.mix
        with _NoAutocast(mix):
            s, p, rec, kh, dy = _load_h_only(ctx, dy, mix)
            H = s.act.shape[-1] // 3
            hr_all = _recurrent_input(s.h_all, rec)  # (T, B, H)
            dh_n = _opt(_to(dh_n, s.h_all.dtype))
            if ctx.reset_after:
                dhh_all, dan_all, dh0 = _ext().gru_backward(_opt(dy), dh_n, s.h_all, s.act, s.hn,
                                                            p.w_hh, _opt(rec), kh)
                da_all = torch.cat([dhh_all[..., : 2 * H], dan_all], -1)  # d xg: r, z rows are shared
                g, dx = _dense_grads(ctx, s.x, hr_all, da_all, dhh_all, p.w_ih, mix)
            else:  # every bias is in xg: d xg is also d of both recurrent GEMMs' outputs
                da_all, dh0 = _ext().gru_cho_backward(_opt(dy), dh_n, s.h_all, s.act, p.w_hh,
                                                      _opt(rec), kh)

                def dw_hh():  # the r, z rows saw hr, the n rows q = r * hr
                    q_all = s.act[..., :H] * hr_all
                    return torch.cat([_gemm_grad(da_all[..., : 2 * H], hr_all, mix),
                                      _gemm_grad(da_all[..., 2 * H :], q_all, mix)])

                g, dx = _dense_grads(ctx, s.x, hr_all, da_all, da_all, p.w_ih, mix, dw_hh=dw_hh)
            return _grads_out(ctx, dx, (dh0,), g, mix)


def _gru_core(x: Tensor, h0: Tensor, p: GRUParams, masks: Masks, mix: Mixed | None, save: bool,
              reset_after: bool = True):
    """One fused GRU forward: (y, h_n, FusedGRUSaved or None, params and masks as the kernel saw them)."""
    x, h0, p, masks = _h_only_inputs(x, h0, p, masks, mix)
    T, B, H = x.shape[0], x.shape[1], h0.shape[-1]
    bias = None
    if p.b_ih is not None and reset_after:  # b_hn is multiplied by r: it stays in the step
        bias = torch.cat([p.b_ih[: 2 * H] + p.b_hh[: 2 * H], p.b_ih[2 * H :]])
    elif p.b_ih is not None:  # Cho: every bias sits outside the reset
        bias = p.b_ih + p.b_hh
    xg = _projection(x, p, bias, mix)  # (T, B, G), one GEMM
    kh, rec = _keep(masks.keep_h, T, B, H), _rec(masks.rec, B, H)
    if reset_after:
        b_hn = p.b_hh[2 * H :].contiguous() if p.b_hh is not None else _NONE
        h_all, act, hn = _ext().gru_forward(xg.contiguous(), h0.contiguous(), p.w_hh, b_hn, _opt(rec),
                                            kh, bool(save))
    else:
        h_all, act = _ext().gru_cho_forward(xg.contiguous(), h0.contiguous(), p.w_hh, _opt(rec), kh,
                                            bool(save))
        hn = None
    y = h_all[1:] if masks.out is None and not save else masked_output(h_all[1:], masks.out)
    saved = FusedGRUSaved(x, h_all, act, hn) if save else None
    return y, h_all[-1].clone(), saved, p, Masks(rec, None, kh, masks.out)


def gru(x: Tensor, h0: Tensor, p: GRUParams, masks: Masks = Masks(), reset_after: bool = True):
    """One GRU layer-direction, fused engine, both forms (``reset_after=False``: Cho et al. 2014,
    two recurrent GEMMs a step); ``masks.keep_c`` ignored.

    Same semantics as ``lstmkit.functional.gru.gru``. x: (T, B, I), h0: (B, H) -> y (T, B, H), h_n.
    """
    reset_after = bool(reset_after)
    if not torch.is_grad_enabled():  # forward-only: no autograd node, nothing saved
        mix = mixed(x)
        with _NoAutocast(mix):
            y, h_n, *_ = _gru_core(x, h0, p, masks, mix, False, reset_after)
        return _orig(mix, y, h_n)
    return FusedGRUFunction.apply(*glue.apply_args((reset_after,), x, (h0,), masks, p))


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
        mix = mixed(inp.x)
        with _NoAutocast(mix):
            y, h_n, saved, p, masks = _rnn_core(inp.x, inp.state[0], inp.params, inp.masks, mix, relu)
        if any(ctx.needs_input_grad):
            glue.save(ctx, saved, inp._replace(masks=masks, params=p), relu=relu, mix=mix)
        return _orig(mix, y, h_n)

    @staticmethod
    @once_differentiable
    def backward(ctx, dy, dh_n):
        mix = ctx.mix
        with _NoAutocast(mix):
            s, p, rec, kh, dy = _load_h_only(ctx, dy, mix)
            da_all, dh0 = _ext().rnn_backward(_opt(dy), _opt(_to(dh_n, s.h_all.dtype)), s.h_new,
                                              p.w_hh, _opt(rec), kh, ctx.relu)
            hr_all = _recurrent_input(s.h_all, rec)  # (T, B, H)
            g, dx = _dense_grads(ctx, s.x, hr_all, da_all, da_all, p.w_ih, mix)
            return _grads_out(ctx, dx, (dh0,), g, mix)


def _rnn_core(x: Tensor, h0: Tensor, p: RNNParams, masks: Masks, mix: Mixed | None, relu: bool):
    """One fused RNN forward: (y, h_n, FusedRNNSaved, params and masks as the kernel saw them)."""
    x, h0, p, masks = _h_only_inputs(x, h0, p, masks, mix)
    T, B, H = x.shape[0], x.shape[1], h0.shape[-1]
    xg = _projection(x, p, p.b_ih + p.b_hh if p.b_ih is not None else None, mix)  # (T, B, H)
    kh, rec = _keep(masks.keep_h, T, B, H), _rec(masks.rec, B, H)
    h_all, h_new = _ext().rnn_forward(xg.contiguous(), h0.contiguous(), p.w_hh, _opt(rec), kh, relu)
    y = masked_output(h_all[1:], masks.out)
    return y, h_all[-1].clone(), FusedRNNSaved(x, h_all, h_new), p, Masks(rec, None, kh, masks.out)


def rnn(x: Tensor, h0: Tensor, p: RNNParams, masks: Masks = Masks(), nonlinearity: str = "tanh"):
    """One Elman RNN layer-direction, fused engine (``masks.keep_c`` ignored).

    Same semantics as ``lstmkit.functional.rnn.rnn``. x: (T, B, I), h0: (B, H) -> y (T, B, H), h_n.
    """
    relu = check_nonlinearity(nonlinearity) == "relu"
    return FusedRNNFunction.apply(*glue.apply_args((relu,), x, (h0,), masks, p))
