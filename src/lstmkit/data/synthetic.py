"""Generated memory tasks (no downloads): the adding problem of Hochreiter & Schmidhuber.

Symbols: N samples, T time.
"""

from __future__ import annotations

import torch
from torch import Tensor


def adding_problem(n: int, steps: int, generator: torch.Generator | None = None
                   ) -> tuple[Tensor, Tensor]:
    """x (N, T, 2): a value in U(0, 1) and a marker that is 1 at two random steps (one in each
    half); y (N, 1): the sum of the two marked values. Predicting the mean (1.0) scores an MSE
    of about 1/6; solving it needs memory across up to T steps."""
    if steps < 2:
        raise ValueError(f"steps: expected >= 2, got {steps}")
    values = torch.rand(n, steps, generator=generator)
    half = steps // 2
    first = torch.randint(0, half, (n,), generator=generator)
    second = torch.randint(half, steps, (n,), generator=generator)
    marks = torch.zeros(n, steps)
    rows = torch.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    x = torch.stack([values, marks], dim=-1)  # (N, T, 2)
    y = (values * marks).sum(1, keepdim=True)  # (N, 1)
    return x, y
