"""Greedy decoding driven by a step function.

Symbols: B batch, V vocabulary, N new tokens.

A step function maps the last tokens (B,) and a state to the log-probabilities of the next
token (B, V) and the new state: ``step(tokens, state) -> (log_probs, state)``. The state is
opaque here (an LSTM's ``(h, c)``, a seq2seq decoder's state, ...).

>>> import torch
>>> table = torch.log_softmax(torch.tensor([[0., 2., 1.], [0., 1., 2.], [3., 0., 0.]]), -1)
>>> step = lambda tokens, state: (table[tokens], state)  # a Markov chain over 3 tokens
>>> greedy(step, torch.tensor([0]), None, max_new_tokens=4).tolist()
[[1, 2, 0, 1]]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

StepFn = Callable[[Tensor, Any], tuple[Tensor, Any]]


def check_start(tokens: Tensor) -> Tensor:
    if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.dim() != 1:
        got = f"{tokens.dtype} {tuple(tokens.shape)}" if isinstance(tokens, Tensor) else type(tokens).__name__
        raise ValueError(f"tokens: expected a 1-D long tensor (B,) of last tokens, got {got}")
    return tokens


def check_lengths(max_new_tokens: int, min_new_tokens: int) -> None:
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens: expected an int >= 0, got {max_new_tokens!r}")
    if not isinstance(min_new_tokens, int) or not 0 <= min_new_tokens <= max_new_tokens:
        raise ValueError(f"min_new_tokens: expected an int in [0, max_new_tokens={max_new_tokens}], "
                         f"got {min_new_tokens!r}")


def check_log_probs(log_probs: Tensor, B: int) -> Tensor:
    if not isinstance(log_probs, Tensor) or log_probs.dim() != 2 or log_probs.shape[0] != B:
        got = tuple(log_probs.shape) if isinstance(log_probs, Tensor) else type(log_probs).__name__
        raise ValueError(f"step: expected log_probs of shape ({B}, V), got {got}")
    return log_probs


def decode_loop(step: StepFn, tokens: Tensor, state: Any, max_new_tokens: int,
                pick: Callable[[Tensor], Tensor], *, eos_id: int | None, min_new_tokens: int,
                pad_id: int | None) -> Tensor:
    """The loop shared by greedy and sampling: (B, N) tokens; after eos a row gets ``pad_id``."""
    tokens = check_start(tokens)
    check_lengths(max_new_tokens, min_new_tokens)
    B = tokens.shape[0]
    pad = eos_id if pad_id is None else pad_id
    done = torch.zeros(B, dtype=torch.bool, device=tokens.device)
    out = []
    for t in range(max_new_tokens):
        log_probs, state = step(tokens, state)
        log_probs = check_log_probs(log_probs, B).float()  # (B, V)
        if eos_id is not None and t < min_new_tokens:
            log_probs = log_probs.clone()
            log_probs[:, eos_id] = float("-inf")
        nxt = pick(log_probs)  # (B,)
        if eos_id is not None:
            nxt = torch.where(done, torch.full_like(nxt, pad), nxt)
            done = done | (nxt == eos_id)
        out.append(nxt)
        tokens = nxt
        if eos_id is not None and bool(done.all()):
            break
    if not out:
        return tokens.new_zeros((B, 0))
    return torch.stack(out, dim=1)  # (B, N)


def greedy(step: StepFn, tokens: Tensor, state: Any = None, *, max_new_tokens: int,
           eos_id: int | None = None, min_new_tokens: int = 0, pad_id: int | None = None) -> Tensor:
    """Pick the most likely token at each step. tokens: (B,) last tokens. Returns (B, N <= max).

    Rows that emitted ``eos_id`` are filled with ``pad_id`` (default: eos) until all rows end."""
    return decode_loop(step, tokens, state, max_new_tokens, lambda lp: lp.argmax(dim=-1),
                       eos_id=eos_id, min_new_tokens=min_new_tokens, pad_id=pad_id)
