"""Beam search driven by a step function (one source sequence at a time).

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


def beam_search(step: StepFn, tokens: Tensor, state: Any = None, *, beam_width: int, max_new_tokens: int,
                eos_id: int | None = None, min_new_tokens: int = 0, length_penalty: float = 1.0,
                n_best: int | None = None, state_batch_dim: int = 1,
                reorder_state: Callable[[Any, Tensor], Any] | None = None) -> list[Hypothesis]:
    """The ``n_best`` (default ``beam_width``) best hypotheses, best first.

    tokens: (1,) the last token (e.g. bos or the prompt's last token); state: batch of 1."""
    tokens = check_start(tokens)
    if tokens.shape[0] != 1:
        raise ValueError(f"tokens: expected shape (1,) (one sequence), got {tuple(tokens.shape)}")
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width: expected an int >= 1, got {beam_width!r}")
    check_lengths(max_new_tokens, min_new_tokens)
    n_best = beam_width if n_best is None else n_best
    if not isinstance(n_best, int) or not 1 <= n_best <= beam_width:
        raise ValueError(f"n_best: expected an int in [1, beam_width={beam_width}], got {n_best!r}")
    if length_penalty < 0:
        raise ValueError(f"length_penalty: expected >= 0, got {length_penalty}")
    reorder = reorder_state or (lambda s, idx: index_state(s, idx, state_batch_dim))

    def norm(log_prob: float, length: int) -> float:
        return log_prob / (max(length, 1) ** length_penalty)

    live_tokens: list[list[int]] = [[]]
    live_lp = torch.zeros(1, dtype=torch.float64)  # (K,)
    finished: list[Hypothesis] = []
    last = tokens
    stopped_early = False
    for t in range(max_new_tokens):
        log_probs, state = step(last, state)
        log_probs = check_log_probs(log_probs, len(live_tokens)).double()  # (K, V)
        V = log_probs.shape[1]
        if eos_id is not None and t < min_new_tokens:
            log_probs = log_probs.clone()
            log_probs[:, eos_id] = float("-inf")
        cand = (live_lp.unsqueeze(1) + log_probs).view(-1)  # (K * V,)
        n_cand = min(2 * beam_width, cand.numel())
        top_lp, top_idx = cand.topk(n_cand)
        new_tokens, new_lp, src, nxt = [], [], [], []
        for lp, idx in zip(top_lp.tolist(), top_idx.tolist()):
            if lp == float("-inf"):
                break
            b, tok = divmod(idx, V)
            seq = live_tokens[b] + [tok]
            if eos_id is not None and tok == eos_id:
                finished.append(Hypothesis(seq, norm(lp, len(seq)), lp))
                continue
            new_tokens.append(seq)
            new_lp.append(lp)
            src.append(b)
            nxt.append(tok)
            if len(new_tokens) == beam_width:
                break
        if not new_tokens:
            live_tokens = []
            break
        live_tokens = new_tokens
        live_lp = torch.tensor(new_lp, dtype=torch.float64)
        index = torch.tensor(src, dtype=torch.long)
        state = reorder(state, index)
        last = torch.tensor(nxt, dtype=torch.long, device=tokens.device)
        if len(finished) >= beam_width:
            worst_kept = sorted(h.score for h in finished)[-beam_width]
            # length_penalty 0: log-probs only fall, so no live beam can win any more
            if length_penalty > 0 or live_lp.max().item() <= worst_kept:
                stopped_early = True
                break
    if not stopped_early:  # hypotheses still live at max_new_tokens compete too
        for seq, lp in zip(live_tokens, live_lp.tolist()):
            finished.append(Hypothesis(seq, norm(lp, len(seq)), lp))
    finished.sort(key=lambda h: -h.score)
    return finished[:n_best]
