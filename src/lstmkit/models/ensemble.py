"""Voting ensembles over several trained classifiers (seeds or architectures).

Symbols: M members, N examples, K classes.

- :func:`soft_vote`: the mean of the members' class probabilities (M, N, K) -> (N, K).
- :func:`hard_vote`: each member votes its argmax; the most votes win, ties broken by the
  summed probabilities (so it is deterministic) -> (N,) labels.
- :class:`VotingEnsemble`: an ``nn.Module`` over member classifiers whose forward returns the
  ensemble's probabilities (soft) or each class's share of the votes (hard).

>>> import torch
>>> p = torch.tensor([[[0.6, 0.4]], [[0.2, 0.8]], [[0.55, 0.45]]])
>>> soft_vote(p), hard_vote(p)
(tensor([[0.4500, 0.5500]]), tensor([0]))
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

VOTINGS = ("soft", "hard")


def _stack(probs) -> Tensor:
    p = torch.as_tensor(probs) if not isinstance(probs, (list, tuple)) else torch.stack(
        [torch.as_tensor(q) for q in probs])
    if p.dim() != 3:
        raise ValueError(f"probs: expected (M, N, K) member probabilities, got shape {tuple(p.shape)}")
    return p


def soft_vote(probs) -> Tensor:
    """Mean probability over members: (M, N, K) -> (N, K)."""
    return _stack(probs).mean(0)


def _ranked_votes(p: Tensor) -> Tensor:
    """(M, N, K) -> (N, K): each class's votes plus a tie-break smaller than one vote (the summed
    probability scaled below 1), so the argmax is the majority, ties to the larger probability."""
    votes = nn.functional.one_hot(p.argmax(2), p.shape[2]).sum(0).to(p.dtype)  # (N, K)
    return votes + p.sum(0) / (p.shape[0] + 1)


def hard_vote(probs) -> Tensor:
    """Majority of the members' argmax labels, ties to the larger summed probability: (N,)."""
    return _ranked_votes(_stack(probs)).argmax(1)


class VotingEnsemble(nn.Module):
    """``forward(*args, **kw)`` calls each member (which returns logits (N, K)) and returns the
    ensemble's (N, K) probabilities: their mean (soft) or, hard, the votes per class with
    :func:`hard_vote`'s tie-break, normalised to sum to 1 (its argmax is ``hard_vote``'s label)."""

    def __init__(self, members: list[nn.Module], voting: str = "soft") -> None:
        super().__init__()
        if voting not in VOTINGS:
            raise ValueError(f"voting: expected one of {VOTINGS}, got {voting!r}")
        if not members:
            raise ValueError("members: expected at least one model, got none")
        self.members = nn.ModuleList(members)
        self.voting = voting

    def member_probs(self, *args, **kw) -> Tensor:
        return torch.stack([torch.softmax(m(*args, **kw), -1) for m in self.members])  # (M, N, K)

    def forward(self, *args, **kw) -> Tensor:
        p = self.member_probs(*args, **kw)
        if self.voting == "soft":
            return soft_vote(p)
        ranked = _ranked_votes(p)  # (N, K)
        return ranked / ranked.sum(1, keepdim=True)
