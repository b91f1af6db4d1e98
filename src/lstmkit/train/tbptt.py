"""Truncated backpropagation through time: walk a long stream in chunks, carry the state.

Symbols: B batch, T stream length, K chunk length (bptt), C number of chunks, L layers,
D directions, H hidden.

Works with any module ``(x, hx) -> (y, hx)``: ``hx`` may be None, a tensor (GRU/RNN:
(L*D, B, H)), or a tuple of tensors (LSTM: ``(h, c)``). Between chunks the state is
detached (gradients stop at the chunk boundary, values carry on). Rows can be reset to
zero before a chunk — at a document or episode boundary — with a (B,) bool mask.

- ``detach_state(hx)``, ``reset_rows(hx, mask, batch_dim=1)``: the two state operations.
- ``StateCarrier``: holds the detached state across calls (e.g. across training batches).
- ``tbptt(module, x, bptt, ...)``: yields ``(t0, y_chunk, hx)`` per chunk; call
  ``loss.backward()`` on each chunk's output before asking for the next.
- ``run_tbptt(...)``: all chunks' outputs concatenated + the final state.

>>> import torch
>>> gru = torch.nn.GRU(2, 3, batch_first=True)
>>> y, h = run_tbptt(gru, torch.randn(4, 10, 2), bptt=3)
>>> tuple(y.shape), tuple(h.shape)
((4, 10, 3), (1, 4, 3))
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor, nn

State = Any  # None | Tensor | tuple/list of State


def detach_state(hx: State) -> State:
    """Detach every tensor of a (possibly nested) state."""
    if hx is None:
        return None
    if isinstance(hx, Tensor):
        return hx.detach()
    if isinstance(hx, (tuple, list)):
        return type(hx)(detach_state(h) for h in hx)
    raise TypeError(f"hx: expected None, a tensor or a tuple of tensors, got {type(hx).__name__}")


def reset_rows(hx: State, mask: Tensor | None, batch_dim: int = 1) -> State:
    """Zero the batch rows where ``mask`` (B,) is True in every tensor of the state."""
    if hx is None or mask is None:
        return hx
    if isinstance(hx, (tuple, list)):
        return type(hx)(reset_rows(h, mask, batch_dim) for h in hx)
    if not isinstance(hx, Tensor):
        raise TypeError(f"hx: expected None, a tensor or a tuple of tensors, got {type(hx).__name__}")
    B = hx.shape[batch_dim]
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != (B,):
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"mask: expected a bool tensor of shape ({B},), got {got}")
    shape = [1] * hx.dim()
    shape[batch_dim] = B
    keep = (~mask).to(device=hx.device, dtype=hx.dtype).view(shape)
    return hx * keep


class StateCarrier:
    """Holds a module's state between calls, detached; ``reset(mask)`` zeroes chosen rows."""

    def __init__(self, batch_dim: int = 1) -> None:
        self.batch_dim = batch_dim
        self.state: State = None

    def get(self) -> State:
        return self.state

    def update(self, hx: State) -> State:
        self.state = detach_state(hx)
        return self.state

    def reset(self, mask: Tensor | None = None) -> None:
        """Forget everything (mask None) or zero the rows where mask (B,) is True."""
        self.state = None if mask is None else reset_rows(self.state, mask, self.batch_dim)


def tbptt(module: nn.Module, x: Tensor, bptt: int, *, hx: State = None, resets: Tensor | None = None,
          batch_first: bool = True, state_batch_dim: int = 1) -> Iterator[tuple[int, Tensor, State]]:
    """Run ``module`` over ``x`` in chunks of ``bptt`` steps; yield ``(t0, y_chunk, hx)``.

    x: (B, T, ...) if batch_first else (T, B, ...). resets: (B, C) bool, C = ceil(T / bptt);
    ``resets[b, k]`` zeroes row b's state before chunk k. The yielded ``hx`` is the chunk's
    final state, still attached to the graph; the next chunk starts from it detached."""
    if not isinstance(x, Tensor):
        raise TypeError(f"x: expected a tensor, got {type(x).__name__}")
    if x.dim() < 2:
        raise ValueError(f"x: expected at least 2 dims (batch and time), got shape {tuple(x.shape)}")
    if not isinstance(bptt, int) or bptt < 1:
        raise ValueError(f"bptt: expected an int >= 1, got {bptt!r}")
    tdim = 1 if batch_first else 0
    T, B = x.shape[tdim], x.shape[1 - tdim]
    C = -(-T // bptt)
    if resets is not None:
        if not isinstance(resets, Tensor) or resets.dtype != torch.bool or resets.shape != (B, C):
            got = (f"{resets.dtype} {tuple(resets.shape)}" if isinstance(resets, Tensor)
                   else type(resets).__name__)
            raise ValueError(f"resets: expected a bool tensor of shape ({B}, {C}) (batch, chunks), got {got}")
    for k in range(C):
        t0 = k * bptt
        if resets is not None:
            hx = reset_rows(hx, resets[:, k], state_batch_dim)
        chunk = x.narrow(tdim, t0, min(bptt, T - t0))  # (B, K, ...)
        y, hx_out = module(chunk, hx)
        yield t0, y, hx_out
        hx = detach_state(hx_out)


def run_tbptt(module: nn.Module, x: Tensor, bptt: int, *, hx: State = None, resets: Tensor | None = None,
              batch_first: bool = True, state_batch_dim: int = 1) -> tuple[Tensor, State]:
    """All chunks' outputs concatenated along time, and the final state."""
    ys, last = [], hx
    for _, y, hx_out in tbptt(module, x, bptt, hx=hx, resets=resets, batch_first=batch_first,
                               state_batch_dim=state_batch_dim):
        ys.append(y)
        last = hx_out
    return torch.cat(ys, dim=1 if batch_first else 0), last
