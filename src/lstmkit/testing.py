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


def family_case(family, opts: dict, *, T: int = 4, B: int = 3, I: int = 3, H: int = 2,
                lengths=(4, 2, 1), masks: bool = True, seed: int = 0, dtype=torch.float64):
    """Seeded random inputs for one registered family (``lstmkit.functional.registry``):
    ``(x, state, params, Masks)`` with every parameter the options give (bias on, proj_size
    from the family's ``test_sizes``), and, when ``masks``, recurrent dropout, zoneout keep
    weights (0, 1 and fractional) and the padding of ``lengths``. Gradients are enabled on x,
    the state and the parameters.

    >>> from lstmkit.functional import registry
    >>> fam = registry.get("gru")
    >>> x, state, p, m = family_case(fam, fam.configure())
    >>> tuple(x.shape), [tuple(s.shape) for s in state], tuple(m.out.shape)
    ((4, 3, 3), [(3, 2)], (4, 3, 1))
    """
    from .functional._common import Masks, lengths_to_mask

    g = torch.Generator().manual_seed(seed)
    frame = tuple(family.frame)
    P = family.test_sizes.get("proj", H) if family.proj else H

    def r(*shape, scale=0.5):
        return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_()

    specs = family.param_specs(opts, I, H, P, True)
    p = family.params(**{s.field: r(*s.shape) for s in specs})
    x = r(T, B, I, *frame, scale=1.0)
    state = tuple(r(B, P if n == "h" else H, *frame, scale=1.0) for n in family.state)
    if not masks:
        return x, state, p, Masks()
    rec = (torch.rand(B, P, *frame, generator=g, dtype=dtype) > 0.3).to(dtype) / 0.7
    out = lengths_to_mask(torch.tensor(lengths), T, x.detach(), 1 + len(frame))

    def keep(width):
        u = torch.rand(T, B, width, *frame, generator=g, dtype=dtype)
        z = torch.where(u < 0.3, 1.0, torch.where(u < 0.6, 0.3, 0.0)).to(dtype)
        return 1 - out * (1 - z)

    keep_c = keep(H) if "c" in family.state else None
    return x, state, p, Masks(rec, keep_c, keep(P), out)


def call_family(fn, family, opts: dict, masks, template, *tensors):
    """Call ``fn(x, *state, params, masks, **call options)`` from a flat tensor list (x, the
    state, then the present parameters in ``template``'s order, None ones skipped): the shape
    gradcheck wants."""
    n = len(family.state)
    x, state, rest = tensors[0], tensors[1 : 1 + n], iter(tensors[1 + n :])
    p = type(template)(*[next(rest) if t is not None else None for t in template])
    return fn(x, *state, p, masks, **family.call_options(opts))
