"""Sampling: temperature, top-k and top-p (nucleus), driven by a step function.

Symbols: B batch, V vocabulary, N new tokens. See ``greedy`` for the step contract.

Order of operations (as most libraries do): log-probs / temperature, then top-k, then top-p
on what is left, then renormalise and draw with a ``torch.Generator`` (same seed, same text).

>>> import torch
>>> lp = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
>>> filter_log_probs(lp, top_k=2).isfinite().tolist()
[[True, True, False, False]]
>>> filter_log_probs(lp, top_p=0.79).isfinite().tolist()
[[True, True, False, False]]
>>> filter_log_probs(lp, top_p=0.81).isfinite().tolist()
[[True, True, True, False]]
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .greedy import StepFn, decode_loop


def filter_log_probs(log_probs: Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> Tensor:
    """Scale by 1/temperature, keep the top_k most likely and the smallest set whose probability
    reaches top_p; the rest become -inf. Returns renormalised log-probs (B, V)."""
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"temperature: expected a number > 0, got {temperature!r}")
    V = log_probs.shape[-1]
    if top_k is not None and (not isinstance(top_k, int) or not 1 <= top_k):
        raise ValueError(f"top_k: expected an int >= 1 or None, got {top_k!r}")
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p: expected a number in (0, 1] or None, got {top_p!r}")
    lp = torch.log_softmax(log_probs.float() / temperature, dim=-1)  # (B, V)
    neg_inf = torch.tensor(float("-inf"), device=lp.device)
    if top_k is not None and top_k < V:
        idx = lp.topk(top_k, dim=-1).indices  # (B, k): exactly k kept, even with ties
        keep = torch.zeros_like(lp, dtype=torch.bool).scatter_(-1, idx, True)
        lp = torch.where(keep, lp, neg_inf)
        lp = torch.log_softmax(lp, dim=-1)
    if top_p is not None and top_p < 1:
        sorted_lp, order = lp.sort(dim=-1, descending=True, stable=True)  # (B, V)
        cum = sorted_lp.exp().cumsum(dim=-1)
        before = torch.cat([torch.zeros_like(cum[..., :1]), cum[..., :-1]], dim=-1)  # mass before each
        keep_sorted = before < top_p  # the smallest prefix reaching top_p (the first always kept)
        keep = torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)
        lp = torch.where(keep, lp, neg_inf)
        lp = torch.log_softmax(lp, dim=-1)
    return lp


def sample(step: StepFn, tokens: Tensor, state: Any = None, *, max_new_tokens: int,
           temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
           generator: torch.Generator | None = None, eos_id: int | None = None,
           min_new_tokens: int = 0, pad_id: int | None = None) -> Tensor:
    """Draw each next token from the filtered distribution. tokens: (B,). Returns (B, N <= max)."""
    filter_log_probs(torch.zeros(1, 1), temperature=temperature, top_k=top_k, top_p=top_p)  # check args

    def pick(lp: Tensor) -> Tensor:
        probs = filter_log_probs(lp, temperature=temperature, top_k=top_k, top_p=top_p).exp()
        return torch.multinomial(probs, 1, generator=generator).squeeze(-1)  # (B,)

    return decode_loop(step, tokens, state, max_new_tokens, pick, eos_id=eos_id,
                       min_new_tokens=min_new_tokens, pad_id=pad_id)
