"""Attention over an encoder's memory: Bahdanau (additive) and Luong (dot, general, concat).

Symbols: B batch, S source length, M memory width (encoder output, D * H_enc), Q query width
(decoder hidden), A attention width (additive scorers).

Every scorer maps a query (B, Q) and the memory (B, S, M) to scores (B, S); the shared
:meth:`Attention.forward` masks the source padding with -inf before the softmax, so padded
positions get weight exactly 0 and each row of weights sums to 1, and returns the context
``weights @ memory`` (B, M) with the weights (B, S).

- ``dot`` (Luong et al. 2015): ``score = h_t . m_s`` (needs Q == M).
- ``general`` (Luong): ``score = h_t . (W_a m_s)``.
- ``concat`` (Luong) and ``bahdanau`` (Bahdanau et al. 2015): ``score = v . tanh(W_q q + W_k m_s)``.
  They share this additive scorer; they differ in the decoder around it (which query, where the
  context goes), see ``models.seq2seq``.

Keys that depend only on the memory (``W_a m`` / ``W_k m``) are computed once per source by
:meth:`Attention.keys` and passed to every step.

>>> import torch
>>> att = make_attention("bahdanau", query_size=4, memory_size=6)
>>> memory, mask = torch.randn(2, 5, 6), torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]]).bool()
>>> ctx, w = att(torch.randn(2, 4), memory, mask)
>>> tuple(ctx.shape), w[0, 3:].tolist(), round(float(w[0].sum().detach()), 6)
((2, 6), [0.0, 0.0], 1.0)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

KINDS = ("bahdanau", "luong-dot", "luong-general", "luong-concat", "none")


class Attention(nn.Module):
    """Base class: subclasses define ``keys(memory)`` and ``score(query, keys)``."""

    def keys(self, memory: Tensor) -> Tensor:
        """What the scorer needs from the memory (B, S, M) -> (B, S, *), computed once per source."""
        return memory

    def score(self, query: Tensor, keys: Tensor) -> Tensor:  # (B, Q), (B, S, *) -> (B, S)
        raise NotImplementedError

    def forward(self, query: Tensor, memory: Tensor, mask: Tensor, keys: Tensor | None = None):
        """query (B, Q), memory (B, S, M), mask (B, S) bool (True = a real source position).

        Returns ``(context (B, M), weights (B, S))``; weights are 0 where ``mask`` is False."""
        if mask.dtype != torch.bool or mask.shape != memory.shape[:2]:
            raise ValueError(f"mask: expected a bool tensor of shape {tuple(memory.shape[:2])}, "
                             f"got {mask.dtype} {tuple(mask.shape)}")
        if keys is None:
            keys = self.keys(memory)
        scores = self.score(query, keys)  # (B, S)
        scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1)  # (B, S); a row with no valid position is NaN
        context = torch.bmm(weights.unsqueeze(1), memory).squeeze(1)  # (B, M)
        return context, weights


class DotAttention(Attention):
    """Luong dot: ``score = q . m_s``."""

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        if query_size != memory_size:
            raise ValueError(f"attention 'luong-dot': needs the decoder hidden size == the memory width "
                             f"(encoder hidden x directions), got {query_size} vs {memory_size}; use "
                             f"'luong-general' or change the sizes")

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (B, S)


class GeneralAttention(Attention):
    """Luong general: ``score = q . (W_a m_s)``."""

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.linear_in = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.linear_in(memory)  # (B, S, Q)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return torch.bmm(keys, query.unsqueeze(2)).squeeze(2)  # (B, S)


class AdditiveAttention(Attention):
    """Bahdanau / Luong concat: ``score = v . tanh(W_q q + W_k m_s)``."""

    def __init__(self, query_size: int, memory_size: int, attention_size: int | None = None) -> None:
        super().__init__()
        A = attention_size or query_size
        self.linear_query = nn.Linear(query_size, A, bias=False)
        self.linear_memory = nn.Linear(memory_size, A, bias=True)
        self.v = nn.Linear(A, 1, bias=False)

    def keys(self, memory: Tensor) -> Tensor:
        return self.linear_memory(memory)  # (B, S, A)

    def score(self, query: Tensor, keys: Tensor) -> Tensor:
        return self.v(torch.tanh(keys + self.linear_query(query).unsqueeze(1))).squeeze(2)  # (B, S)


def make_attention(kind: str, query_size: int, memory_size: int,
                   attention_size: int | None = None) -> Attention | None:
    """The scorer for ``kind`` (one of :data:`KINDS`); ``None`` for ``"none"``."""
    if kind == "none":
        return None
    if kind == "luong-dot":
        return DotAttention(query_size, memory_size)
    if kind == "luong-general":
        return GeneralAttention(query_size, memory_size)
    if kind in ("bahdanau", "luong-concat"):
        return AdditiveAttention(query_size, memory_size, attention_size)
    raise ValueError(f"attention: expected one of {list(KINDS)}, got {kind!r}")
