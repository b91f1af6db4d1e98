"""One autograd glue shared by every sequence ``torch.autograd.Function`` (reference and fused).

Every family's Function is applied with the same layout::

    Fn.apply(opts, x, *state, rec, keep_c, keep_h, out, *params)

``opts`` is the family's non-tensor options (a tuple, possibly empty), ``state`` its initial
state tensors (``h0`` or ``h0, c0``, as the registry declares), then the four ``Masks`` fields,
then the parameters in the family's ``*Params`` NamedTuple order. The glue turns that flat list
back into NamedTuples in ``forward``, saves what the backward needs as a NamedTuple (None entries
allowed), and turns the backward's named gradients into the flat tuple autograd expects, with
None wherever ``ctx.needs_input_grad`` says no gradient is wanted. No Function counts slots.

    >>> import torch
    >>> from lstmkit.functional.rnn import RNNParams, rnn
    >>> p = RNNParams(torch.randn(4, 3, requires_grad=True), torch.randn(4, 4))
    >>> y, h = rnn(torch.randn(5, 2, 3), torch.zeros(2, 4), p)
    >>> (g,) = torch.autograd.grad(y.sum(), [p.w_ih])
    >>> tuple(g.shape)
    (4, 3)
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from ._common import Masks

N_MASKS = len(Masks._fields)


class Inputs(NamedTuple):
    """The forward's arguments after ``opts``, by meaning."""

    x: Tensor
    state: tuple[Tensor, ...]
    masks: Masks
    params: tuple  # the family's *Params NamedTuple


def apply_args(opts: tuple, x: Tensor, state, masks: Masks, params) -> tuple:
    """The flat argument list of ``Fn.apply`` (see the module docstring)."""
    return (opts, x, *state, *masks, *params)


# NamedTuples are rebuilt with ``_make`` (tuple.__new__ in C): the keyword-parsing ``__new__``
# cost ~1 us each, several per call, which a T=3 step of a small model notices.
_make_masks = Masks._make


def inputs(args: tuple, n_state: int, params_type) -> Inputs:
    """Inverse of ``apply_args`` without ``opts``: ``args`` = (x, *state, *masks, *params)."""
    k = n_state + 1
    return _make_inputs((args[0], args[1:k], _make_masks(args[k : k + N_MASKS]),
                         params_type._make(args[k + N_MASKS :])))


_make_inputs = Inputs._make


def save(ctx, saved: tuple, inp: Inputs, **attrs) -> None:
    """Save a NamedTuple of tensors (None allowed), the masks and the params; attrs go on ctx."""
    ctx.save_for_backward(*saved, *inp.masks, *inp.params)
    ctx.glue = (type(saved), type(inp.params), len(saved), len(inp.state))
    for k, v in attrs.items():
        setattr(ctx, k, v)


def load(ctx) -> tuple[tuple, Masks, tuple]:
    """(saved NamedTuple, Masks, params NamedTuple) as ``save`` stored them."""
    saved_type, params_type, n, _ = ctx.glue
    t = ctx.saved_tensors
    return (saved_type._make(t[:n]), _make_masks(t[n : n + N_MASKS]),
            params_type._make(t[n + N_MASKS :]))


def _param_needs(ctx) -> tuple[bool, ...]:
    n_state = ctx.glue[3]
    return ctx.needs_input_grad[2 + n_state + N_MASKS :]


def wanted(ctx) -> set[str]:
    """Names of the parameters autograd wants a gradient for."""
    params_type = ctx.glue[1]
    return {f for f, need in zip(params_type._fields, _param_needs(ctx)) if need}


def needs_dx(ctx) -> bool:
    return bool(ctx.needs_input_grad[1])


def grads(ctx, dx: Tensor | None, dstate, dparams) -> tuple:
    """Backward's return: (None for opts, dx, *dstate, None for each mask, *dparams), each
    gradient kept only where autograd asked for it. ``dparams``: a *Params NamedTuple or a dict
    of gradients by field name (missing names are None)."""
    params_type = ctx.glue[1]
    if isinstance(dparams, dict):
        dparams = [dparams.get(f) for f in params_type._fields]
    flat = (None, dx, *dstate, *([None] * N_MASKS), *dparams)
    return tuple(g if need else None for g, need in zip(flat, ctx.needs_input_grad))


def reference_function(name: str, params_type, n_state: int, sequence_forward, sequence_backward,
                       *, pass_needs_dx: bool = False) -> type:
    """The autograd.Function of a reference family from its two sequence functions:
    ``sequence_forward(x, *state, p, masks, *opts) -> (y, *state_n, saved NamedTuple)`` and
    ``sequence_backward(dy, *dstate_n, saved, p, masks, *opts[, needs_dx]) -> (dx, *dstate0,
    *Params of gradients)``."""

    def forward(ctx, opts, *args):
        inp = inputs(args, n_state, params_type)
        *outs, saved = sequence_forward(inp.x, *inp.state, inp.params, inp.masks, *opts)
        save(ctx, saved, inp, opts=opts)
        return tuple(outs)

    @once_differentiable
    def backward(ctx, *douts):
        saved, masks, p = load(ctx)
        extra = (needs_dx(ctx),) if pass_needs_dx else ()
        dx, *dstate, gp = sequence_backward(*douts, saved, p, masks, *ctx.opts, *extra)
        return grads(ctx, dx, dstate, gp)

    doc = (f"autograd.Function joining ``{sequence_forward.__name__}`` and the hand BPTT "
           f"``{sequence_backward.__name__}``: ``apply(opts, x, *state, *masks, *params)``.")
    return type(name, (torch.autograd.Function,), {
        "forward": staticmethod(forward), "backward": staticmethod(backward), "__doc__": doc,
        "__module__": sequence_forward.__module__})
