"""Input validation shared by the cells and layers: every error names the argument and says
expected vs got."""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor


def check_prob(name: str, p: float) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        raise TypeError(f"{name}: expected a float in [0, 1), got {type(p).__name__}")
    if not 0.0 <= p < 1.0:
        raise ValueError(f"{name}: expected a probability in [0, 1), got {p}")
    return float(p)


def check_like(x: Tensor, name: str, ref: Tensor, whose: str = "") -> None:
    """x has ``ref``'s dtype and device (``whose``: said after the expected value)."""
    if x.dtype != ref.dtype:
        raise TypeError(f"{name}: expected dtype {ref.dtype}{whose}, got {x.dtype}")
    if x.device != ref.device:
        raise ValueError(f"{name}: expected device {ref.device}{whose}, got {x.device}")


def check_input(x: Tensor, name: str, input_size: int, ref: Tensor, ndims: tuple[int, ...]) -> None:
    """x must be a floating tensor of the module's dtype/device with ndim in ndims, last dim
    input_size."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ValueError(f"{name}: expected a {want} tensor, got {x.dim()}-D of shape {tuple(x.shape)}")
    if x.shape[-1] != input_size:
        raise ValueError(
            f"{name}: expected last dimension input_size={input_size}, got shape {tuple(x.shape)}"
        )
    check_like(x, name, ref, " (the module's)")


def check_state(h: Tensor, name: str, shape: tuple[int, ...], ref: Tensor) -> Tensor:
    """``h`` checked against ``shape`` and the input ``ref``'s dtype and device. Under
    ``torch.autocast`` a state in the autocast dtype (a previous call's output carried by the
    caller) is accepted and brought back to the input's dtype, as the returned tensor."""
    if not isinstance(h, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(h).__name__}")
    if tuple(h.shape) != tuple(shape):
        raise ValueError(f"{name}: expected shape {tuple(shape)}, got {tuple(h.shape)}")
    dev = h.device.type
    if (h.dtype != ref.dtype and ref.dtype.is_floating_point and torch.is_autocast_enabled(dev)
            and h.dtype == torch.get_autocast_dtype(dev)):
        h = h.to(ref.dtype)
    check_like(h, name, ref)
    return h


def check_lengths(lengths: Tensor | Sequence[int], batch: int, steps: int, minimum: int = 0,
                  why: str = "the time dimension") -> Tensor:
    """Lengths as an int64 CPU tensor of shape (B,) with minimum <= length <= T (the layers
    allow 0; a model that needs a step from every sequence passes ``minimum=1`` and says why).

    >>> check_lengths([3, 1], 2, 3)
    tensor([3, 1])
    >>> check_lengths([3, 0], 2, 3, minimum=1, why="an empty sequence has no label")
    Traceback (most recent call last):
    ...
    ValueError: lengths: expected values in [1, 3] (an empty sequence has no label), got min 0, max 3
    """
    lens = None
    if isinstance(lengths, Tensor):
        if lengths.dtype.is_floating_point or lengths.dtype.is_complex or lengths.dtype == torch.bool:
            raise TypeError(f"lengths: expected an integer tensor, got dtype {lengths.dtype}")
        lens = lengths.detach().to("cpu", torch.int64)
        shape = tuple(lens.shape)
    else:
        try:
            items = list(lengths)
        except TypeError:
            raise TypeError(
                f"lengths: expected a list or integer tensor of shape ({batch},), "
                f"got {type(lengths).__name__}"
            ) from None
        for v in items:
            if isinstance(v, bool) or not isinstance(v, numbers.Integral):  # numpy ints too
                raise TypeError(f"lengths: expected integers, got {v!r} ({type(v).__name__})")
        shape = (len(items),)
    if shape != (batch,):
        raise ValueError(f"lengths: expected shape ({batch},) (one per sequence), got {shape}")
    # the range is checked on Python ints: a few tensor reductions cost more than the layer call
    values = lens.tolist() if lens is not None else [int(v) for v in items]
    if values and (min(values) < minimum or max(values) > steps):
        raise ValueError(f"lengths: expected values in [{minimum}, {steps}] ({why}), "
                         f"got min {min(values)}, max {max(values)}")
    return lens if lens is not None else torch.tensor(values, dtype=torch.int64)
