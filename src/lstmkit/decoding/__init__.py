"""Decoding strategies driven by a step function ``step(tokens, state) -> (log_probs, state)``.

Symbols: B batch, V vocabulary, K beam width.

- ``greedy``: the most likely token each step.
- ``sample``: temperature, top-k, top-p (nucleus) sampling with a ``torch.Generator``.
- ``beam_search``: width K, length normalisation, min/max length, eos; the k best with scores.
- ``beam_search_batch``: the same search for B sentences at once (all beams in one batch),
  with an optional coverage penalty.
"""

from .beam import Hypothesis, beam_search, beam_search_batch, index_state
from .greedy import StepFn, greedy
from .sampling import filter_log_probs, sample

__all__ = ["StepFn", "greedy", "sample", "filter_log_probs", "beam_search", "beam_search_batch", "Hypothesis",
           "index_state"]
