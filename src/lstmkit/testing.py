"""Checks for people who write a backward by hand (used by lstmkit's own tests).

>>> import torch
>>> x = torch.randn(3, dtype=torch.float64, requires_grad=True)
>>> _ = assert_matches_autograd(lambda x: (x.sin(),), lambda x: (torch.sin(x),), (x,))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor


def assert_matches_autograd(fn: Callable[..., Sequence[Tensor]],
                            oracle: Callable[..., Sequence[Tensor]],
                            inputs: Sequence[Tensor], *, seed: int | None = 3,
                            **tolerance) -> tuple[tuple[Tensor, ...], tuple[Tensor, ...]]:
    """Assert ``fn(*inputs)`` equals ``oracle(*inputs)`` (both return a sequence of tensors) and
    so do their gradients with respect to every input, under seeded random upstream gradients
    (all ones when ``seed`` is None). Returns (fn's gradients, oracle's gradients)."""
    ours, theirs = fn(*inputs), oracle(*inputs)
    assert len(ours) == len(theirs), f"fn returned {len(ours)} tensors, oracle {len(theirs)}"
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **tolerance)
    if seed is None:
        upstream = [torch.ones_like(o) for o in ours]
    else:
        g = torch.Generator().manual_seed(seed)
        upstream = [torch.randn(o.shape, generator=g, dtype=o.dtype).to(o.device) for o in ours]
    grads = []
    for outs in (ours, theirs):
        loss = sum((o * u).sum() for o, u in zip(outs, upstream))
        grads.append(torch.autograd.grad(loss, list(inputs)))
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, **tolerance)
    return grads[0], grads[1]
