"""Beam search driven by a step function, for one sequence or a batch of them.

Symbols: K beam width, V vocabulary, L layers, H hidden.

Each live hypothesis is a row of the state batch: the state is reordered with
``reorder_state(state, index)`` (default: ``index_select`` on ``state_batch_dim`` of every
tensor, dim 1 fits torch's ``(h, c)`` of shape (L*D, K, H)).

Scores: the sum of log-probabilities, divided by ``length ** length_penalty`` (0: raw sum;
1: mean per token); the length counts the generated tokens including eos. eos is masked
before ``min_new_tokens``; a hypothesis ends at eos or at ``max_new_tokens``.
The search stops when no hypothesis is live, at ``max_new_tokens``, or, once ``beam_width``
hypotheses have ended, when no live one can still beat them (exact for length_penalty 0;
with length_penalty > 0 it stops as soon as beam_width have ended, like early_stopping).

>>> import torch
>>> table = torch.log(torch.tensor([[.0, .6, .4, .0], [.0, .3, .3, .4], [.0, .05, .05, .9], [.0, 0, 0, 1]]))
>>> step = lambda tokens, state: (table[tokens], state)  # greedy: 1 then eos (p=.24); best: 2, eos (.36)
>>> beam_search(step, torch.tensor([0]), None, beam_width=2, max_new_tokens=3, eos_id=3)[0].tokens
[2, 3]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from .greedy import StepFn, check_lengths, check_log_probs, check_start


class Hypothesis(NamedTuple):
    tokens: list[int]  # generated tokens (eos included if it ended with eos)
    score: float  # log_prob / len ** length_penalty, what the hypotheses are ranked by
    log_prob: float  # sum of log-probabilities


def index_state(state: Any, index: Tensor, dim: int = 1) -> Any:
    """``index_select`` every tensor of a nested state along ``dim``."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.index_select(dim, index.to(state.device))
    if isinstance(state, (tuple, list)):
        return type(state)(index_state(s, index, dim) for s in state)
    if isinstance(state, dict):
        return {k: index_state(v, index, dim) for k, v in state.items()}
    raise TypeError(f"state: expected None, tensors or nested tuples/lists/dicts, got {type(state).__name__}")


def check_beam_options(beam_width, n_best, length_penalty, max_new_tokens, min_new_tokens) -> int:
    """Validate the beam search options; returns n_best (beam_width if None)."""
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width: expected an int >= 1, got {beam_width!r}")
    check_lengths(max_new_tokens, min_new_tokens)
    n_best = beam_width if n_best is None else n_best
    if not isinstance(n_best, int) or not 1 <= n_best <= beam_width:
        raise ValueError(f"n_best: expected an int in [1, beam_width={beam_width}], got {n_best!r}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty: expected >= 0, got {length_penalty}")
    return n_best


def beam_search(step: StepFn, tokens: Tensor, state: Any = None, *, beam_width: int, max_new_tokens: int,
                eos_id: int | None = None, min_new_tokens: int = 0, length_penalty: float = 1.0,
                n_best: int | None = None, state_batch_dim: int = 1,
                reorder_state: Callable[[Any, Tensor], Any] | None = None) -> list[Hypothesis]:
    """The ``n_best`` (default ``beam_width``) best hypotheses, best first.

    tokens: (1,) the last token (e.g. bos or the prompt's last token); state: batch of 1.
    :func:`beam_search_batch` with one sentence (``step`` sees ``beam_width`` rows)."""
    tokens = check_start(tokens)
    if tokens.shape[0] != 1:
        raise ValueError(f"tokens: expected shape (1,) (one sequence), got {tuple(tokens.shape)}")
    return beam_search_batch(step, tokens, state, beam_width=beam_width, max_new_tokens=max_new_tokens,
                             eos_id=eos_id, min_new_tokens=min_new_tokens, length_penalty=length_penalty,
                             n_best=n_best, state_batch_dim=state_batch_dim, reorder_state=reorder_state)[0]


def beam_search_batch(step: StepFn, tokens: Tensor, state: Any = None, *, beam_width: int,
                      max_new_tokens: int, eos_id: int | None = None, min_new_tokens: int = 0,
                      length_penalty: float = 1.0, coverage_penalty: float = 0.0,
                      coverage: Callable[[Any], Tensor] | None = None, n_best: int | None = None,
                      state_batch_dim: int = 1,
                      reorder_state: Callable[[Any, Tensor], Any] | None = None) -> list[list[Hypothesis]]:
    """Beam search for B sentences at once: the beams of all sentences are the rows of one batch.

    Symbols: B sentences, K beam width, V vocabulary, S source length.

    tokens: (B,) the last token of each sentence; ``state`` holds B rows along
    ``state_batch_dim``. Row ``b * K + k`` of the state given to ``step`` is beam k of sentence b.
    Returns, for each sentence, its ``n_best`` hypotheses, best first: the same as
    :func:`beam_search` run on each sentence alone (same pruning, same stopping rules), in one
    ``step`` call per time step instead of one per sentence per time step.

    ``coverage_penalty`` (beta, Wu et al. 2016): a finished hypothesis scores
    ``log_prob / len ** length_penalty + beta * sum_s log(min(cov_s, 1))``, where
    ``coverage(state)`` gives the attention each source position has received, (B*K, S),
    with padded positions set to 1. It ranks finished hypotheses; the early stop ignores it.

    >>> import torch
    >>> p = [[.0, .6, .4, .0], [.0, .3, .3, .4], [.0, .05, .05, .9], [.0, 0, 0, 1]]
    >>> table = torch.log(torch.tensor(p))
    >>> step = lambda tokens, state: (table[tokens], state)
    >>> out = beam_search_batch(step, torch.tensor([0, 1]), beam_width=2, max_new_tokens=3, eos_id=3,
    ...                         length_penalty=0.0)
    >>> [hyps[0].tokens for hyps in out]
    [[2, 3], [3]]
    """
    tokens = check_start(tokens)
    n_best = check_beam_options(beam_width, n_best, length_penalty, max_new_tokens, min_new_tokens)
    if coverage_penalty < 0:
        raise ValueError(f"coverage_penalty: expected >= 0, got {coverage_penalty}")
    if coverage_penalty > 0 and coverage is None:
        raise ValueError("coverage: a coverage_penalty > 0 needs coverage(state) -> (B*K, S)")
    reorder = reorder_state or (lambda s, idx: index_state(s, idx, state_batch_dim))
    B, K, device = tokens.shape[0], beam_width, tokens.device
    neg_inf = float("-inf")

    def norm(log_prob: float, length: int) -> float:
        return log_prob / (max(length, 1) ** length_penalty)

    def penalties() -> list[float] | None:  # per state row, from the state after a step
        if coverage_penalty == 0:
            return None
        cov = coverage(state).double().clamp(max=1.0)  # (B*K, S)
        return (coverage_penalty * torch.log(cov).sum(-1)).tolist()

    rows = torch.arange(B).repeat_interleave(K)  # (B*K,)
    state = reorder(state, rows)
    last = tokens.repeat_interleave(K)  # (B*K,)
    scores = torch.full((B, K), neg_inf, dtype=torch.float64)
    scores[:, 0] = 0.0  # one live beam per sentence at the start
    hist = torch.zeros(B, K, 0, dtype=torch.long)  # generated tokens of each live beam
    finished: list[list[Hypothesis]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)  # search over for this sentence
    add_live = [True] * B  # whether the live beams compete at the end
    base = (torch.arange(B) * K).unsqueeze(1)  # (B, 1)
    for t in range(max_new_tokens):
        log_probs, state = step(last, state)
        log_probs = check_log_probs(log_probs, B * K).double().cpu()  # (B*K, V)
        V = log_probs.shape[1]
        if eos_id is not None and t < min_new_tokens:
            log_probs = log_probs.clone()
            log_probs[:, eos_id] = neg_inf
        cand = (scores.unsqueeze(2) + log_probs.view(B, K, V)).view(B, K * V)
        top_lp, top_idx = cand.topk(min(2 * K, K * V), dim=1)  # (B, 2K), best first
        src, tok = top_idx // V, top_idx % V
        valid = torch.isfinite(top_lp) & ~done.unsqueeze(1)
        is_eos = valid & (tok == eos_id) if eos_id is not None else torch.zeros_like(valid)
        live = valid & ~is_eos
        live_before = live.cumsum(1) - live.long()  # live candidates ranked above each one
        keep = live & (live_before < K)  # the first K live candidates
        add_eos = is_eos & (live_before < K)  # eos candidates ranked above the K-th live one
        if bool(add_eos.any()):
            pen = penalties()
            for b, j in add_eos.nonzero().tolist():
                k = int(src[b, j])
                lp = float(top_lp[b, j])
                seq = hist[b, k].tolist() + [eos_id]
                extra = pen[b * K + k] if pen is not None else 0.0
                finished[b].append(Hypothesis(seq, norm(lp, len(seq)) + extra, lp))
        # the kept candidates, in rank order, into slots 0..n_live-1; the other slots are dead
        n_cand = top_lp.shape[1]
        order = torch.where(keep, torch.arange(n_cand), n_cand).argsort(dim=1, stable=True)[:, :K]
        n_live = keep.sum(1)  # (B,)
        if order.shape[1] < K:  # fewer candidates than beams (tiny vocabularies)
            order = torch.cat([order, order.new_zeros(B, K - order.shape[1])], dim=1)
        slot_alive = torch.arange(K).unsqueeze(0) < n_live.unsqueeze(1)  # (B, K)
        new_src = torch.where(slot_alive, src.gather(1, order.clamp(max=n_cand - 1)), 0)
        new_tok = torch.where(slot_alive, tok.gather(1, order.clamp(max=n_cand - 1)), 0)
        scores = torch.where(slot_alive, top_lp.gather(1, order.clamp(max=n_cand - 1)), neg_inf)
        hist = torch.cat([hist.gather(1, new_src.unsqueeze(2).expand(-1, -1, hist.shape[2])),
                          new_tok.unsqueeze(2)], dim=2)
        state = reorder(state, (base + new_src).view(-1))
        last = new_tok.view(-1).to(device)
        for b in torch.nonzero(~done & (n_live == 0)).view(-1).tolist():
            done[b] = True  # no live beam left
            add_live[b] = False
        for b in torch.nonzero(~done).view(-1).tolist():
            if len(finished[b]) >= K:
                worst_kept = sorted(h.score for h in finished[b])[-K]
                if length_penalty > 0 or float(scores[b].max()) <= worst_kept:
                    done[b] = True
                    add_live[b] = False
        if bool(done.all()):
            break
    pen = penalties() if any(add_live) else None
    out = []
    for b in range(B):
        hyps = finished[b]
        if add_live[b]:  # still live at max_new_tokens: they compete too
            for k in range(K):
                lp = float(scores[b, k])
                if lp == neg_inf:
                    continue
                seq = hist[b, k].tolist()
                extra = pen[b * K + k] if pen is not None else 0.0
                hyps.append(Hypothesis(seq, norm(lp, len(seq)) + extra, lp))
        hyps.sort(key=lambda h: -h.score)
        out.append(hyps[:n_best])
    return out
