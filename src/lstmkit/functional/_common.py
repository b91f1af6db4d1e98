"""Pieces shared by every cell family: layer norm with its hand backward, the state-keeping
blend used by zoneout and by ``lengths``, the lengths-to-masks construction and masked outputs.

Symbols: T time, B batch, N normalised width.

    >>> import torch
    >>> lengths_to_mask(torch.tensor([3, 1]), 3, torch.zeros(()))[..., 0]
    tensor([[1., 1.],
            [1., 0.],
            [1., 0.]])
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


def lengths_to_mask(lengths, T: int, like: Tensor, trailing: int = 1) -> Tensor:
    """``(T, B, 1, ...)`` mask, 1 at valid steps (t < length) and 0 at padding, with ``like``'s
    dtype and device and ``trailing`` singleton dims after B (1 for (T, B, 1); 3 for frames)."""
    lengths = torch.as_tensor(lengths)
    mask = torch.arange(T).unsqueeze(1) < lengths.cpu().unsqueeze(0)  # (T, B)
    return mask.to(like).reshape(T, -1, *([1] * trailing))


def padding_masks(lengths, T: int, like: Tensor, trailing: int = 1) -> Masks:
    """Masks for right-padded sequences alone: padded steps keep the state and output 0."""
    out = lengths_to_mask(lengths, T, like, trailing)
    return Masks(keep_c=1.0 - out, keep_h=1.0 - out, out=out)


def masked_output(y: Tensor, out: Tensor | None) -> Tensor:
    """Outputs ``y`` (T, B, ...) zeroed at padded steps; a fresh tensor either way."""
    return y * out if out is not None else y.clone()


def add_output_grad(dh: Tensor, dy: Tensor | None, out: Tensor | None) -> Tensor:
    """The carried d h plus the output gradient of one step (zero at padded steps)."""
    if dy is None:
        return dh
    return dh + (dy * out if out is not None else dy)


def blend_at(new: Tensor, prev: Tensor, keep: Tensor | None, t: int) -> Tensor:
    """The keep blend written plainly for the eager oracles: ``keep[t] * prev + (1 - keep[t]) *
    new`` (``new`` when keep is None)."""
    return new if keep is None else keep[t] * prev + (1 - keep[t]) * new


def sum_bt(x: Tensor) -> Tensor:
    """Sum a (T, B, N) gradient over time and batch: (N,)."""
    return x.reshape(-1, x.shape[-1]).sum(0)


class Masks(NamedTuple):
    """Per-call masks, all optional. Built by the runner (nn/), never by convention here."""

    rec: Tensor | None = None  # (B, P)      recurrent dropout, scaled, one per sequence
    keep_c: Tensor | None = None  # (T, B, H|1) keep-previous weights for c (LSTM only)
    keep_h: Tensor | None = None  # (T, B, P|1) keep-previous weights for h
    out: Tensor | None = None  # (T, B, 1)   1 at valid steps, 0 at padding
