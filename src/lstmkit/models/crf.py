"""A linear-chain conditional random field: forward algorithm (log-likelihood) and Viterbi.

Symbols: B batch, T time steps (padded, right), K tags.

The score of a tag path y_1..y_n for emissions e (B, T, K) is
``start[y_1] + sum_t e_t[y_t] + sum_{t>1} trans[y_{t-1}, y_t] + end[y_n]``;
``log p(y | e) = score(y) - log Z`` with ``log Z`` the log-sum-exp over every path, computed by the
forward algorithm in O(T K^2). Steps past a sequence's length are skipped (its alpha is carried
unchanged), so a padded batch gives what each sequence gives alone.

>>> import torch
>>> crf = LinearChainCRF(3)
>>> e = torch.randn(2, 4, 3)
>>> paths = crf.decode(e, torch.tensor([4, 2]))
>>> paths[1, 2:].tolist()
[-1, -1]
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..nn import check_lengths


def _check(emissions: Tensor, lengths) -> Tensor:
    if emissions.dim() != 3:
        raise ValueError(f"emissions: expected (B, T, K), got shape {tuple(emissions.shape)}")
    B, T, _ = emissions.shape
    return check_lengths(lengths, B, T, 1, "a CRF needs one step").to(emissions.device)


class LinearChainCRF(nn.Module):
    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags: expected >= 1, got {num_tags}")
        self.num_tags = num_tags
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))  # from, to

    def score(self, emissions: Tensor, tags: Tensor, lengths) -> Tensor:
        """Unnormalised score of the given tag paths: (B,)."""
        lengths = _check(emissions, lengths)
        B, T, _ = emissions.shape
        tags = tags.clamp_min(0)  # padding may be -1/-100; those steps are masked below
        mask = (torch.arange(T, device=emissions.device)[None] < lengths[:, None]).to(emissions.dtype)
        emit = emissions.gather(2, tags.unsqueeze(-1)).squeeze(-1)  # (B, T)
        s = self.start[tags[:, 0]] + (emit * mask).sum(1)
        if T > 1:
            trans = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
            s = s + (trans * mask[:, 1:]).sum(1)
        last = tags.gather(1, (lengths - 1).unsqueeze(1)).squeeze(1)
        return s + self.end[last]

    def log_partition(self, emissions: Tensor, lengths) -> Tensor:
        """log Z by the forward algorithm: (B,)."""
        lengths = _check(emissions, lengths)
        alpha = self.start + emissions[:, 0]  # (B, K)
        for t in range(1, emissions.shape[1]):
            # alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + trans[i, j]) + e_t[j]
            nxt = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, dim=1) + emissions[:, t]
            alpha = torch.where((t < lengths).unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    def log_likelihood(self, emissions: Tensor, tags: Tensor, lengths) -> Tensor:
        """log p(tags | emissions) per sequence: (B,)."""
        return self.score(emissions, tags, lengths) - self.log_partition(emissions, lengths)

    def forward(self, emissions: Tensor, tags: Tensor, lengths) -> Tensor:
        """Mean negative log-likelihood per token (a loss to minimise)."""
        lengths = _check(emissions, lengths)
        return -self.log_likelihood(emissions, tags, lengths).sum() / lengths.sum().clamp_min(1)

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths) -> Tensor:
        """Viterbi: the highest-scoring path per sequence, (B, T) long, -1 past each length."""
        lengths = _check(emissions, lengths)
        B, T, K = emissions.shape
        score = self.start + emissions[:, 0]  # (B, K)
        back = []
        for t in range(1, T):
            cand = score.unsqueeze(2) + self.transitions  # (B, K from, K to)
            best, idx = cand.max(1)
            valid = (t < lengths).unsqueeze(1)
            score = torch.where(valid, best + emissions[:, t], score)
            # past the end, point each tag at itself so backtracking passes through unchanged
            back.append(torch.where(valid, idx, torch.arange(K, device=idx.device).expand(B, K)))
        tag = (score + self.end).argmax(1)  # (B,)
        out = torch.empty(B, T, dtype=torch.long, device=emissions.device)
        out[:, T - 1] = tag
        for t in range(T - 1, 0, -1):
            tag = back[t - 1].gather(1, tag.unsqueeze(1)).squeeze(1)
            out[:, t - 1] = tag
        pad = torch.arange(T, device=out.device)[None] >= lengths[:, None]
        return out.masked_fill(pad, -1)
