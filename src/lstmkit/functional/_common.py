"""Pieces shared by every cell family: layer norm with its hand backward, and the
state-keeping blend used by zoneout and by ``lengths``.

Symbols: T time, B batch, N normalised width.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

LN_EPS = 1e-5


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """LayerNorm over the last dim. Returns (y, x_hat, rstd) so backward needs no recompute."""
    var, mean = torch.var_mean(x, dim=-1, keepdim=True, correction=0)
    rstd = torch.rsqrt(var + LN_EPS)  # (..., 1)
    x_hat = (x - mean) * rstd  # (..., N)
    return torch.addcmul(bias, x_hat, weight), x_hat, rstd


def layer_norm_backward(dy: Tensor, x_hat: Tensor, rstd: Tensor, weight: Tensor) -> Tensor:
    """d loss / d x of ``layer_norm`` given d loss / d y (parameter grads are taken by the caller)."""
    dx_hat = dy * weight  # backprop through the affine scale
    # backprop through (x - mean) * rstd: remove the mean and the x_hat-direction component
    mean_dx_hat = dx_hat.mean(-1, keepdim=True)
    mean_dx_hat_x_hat = (dx_hat * x_hat).mean(-1, keepdim=True)
    return rstd * (dx_hat - mean_dx_hat - x_hat * mean_dx_hat_x_hat)


def keep_blend(new: Tensor, prev: Tensor, keep: Tensor | None) -> Tensor:
    """``keep * prev + (1 - keep) * new``: zoneout and padded steps both keep the old state.

    ``keep`` is 1 where a unit keeps its previous value (a padded step, or a zoned-out unit in
    training), a probability at eval (zoneout's expectation), 0 elsewhere; None means 0.
    """
    if keep is None:
        return new
    return torch.lerp(new, prev, keep)


def only_needed(needs: tuple[bool, ...], *grads):
    """An autograd.Function's backward returns: each gradient where autograd asked for it
    (``ctx.needs_input_grad``, aligned with forward's inputs), else None."""
    return tuple(g if need else None for g, need in zip(grads, needs))


def sum_bt(x: Tensor) -> Tensor:
    """Sum a (T, B, N) gradient over time and batch: (N,)."""
    return x.reshape(-1, x.shape[-1]).sum(0)


class Masks(NamedTuple):
    """Per-call masks, all optional. Built by the runner (nn/), never by convention here."""

    rec: Tensor | None = None  # (B, P)      recurrent dropout, scaled, one per sequence
    keep_c: Tensor | None = None  # (T, B, H|1) keep-previous weights for c (LSTM only)
    keep_h: Tensor | None = None  # (T, B, P|1) keep-previous weights for h
    out: Tensor | None = None  # (T, B, 1)   1 at valid steps, 0 at padding
