"""CTC decoding: best path, prefix beam search, and prefix beam search with shallow fusion of a
character language model; all of them streamable (feed frames in chunks, same result).

Symbols: T frames, V symbols (index ``blank``, 0 by default, is the CTC blank), K beam width.

- :func:`collapse` / :func:`greedy_decode`: best path: the most likely symbol each frame,
  repeats merged, blanks dropped ("aa-ab" -> "aab" where "-" is blank).
- :class:`PrefixBeamSearch`: CTC prefix beam search (Graves 2012; Hannun et al. 2014). Each
  prefix carries two log-probabilities, of its alignments ending in blank (``pb``) and in its
  last character (``pnb``); their sum is the total probability of the labelling over all its
  alignments, exact when nothing is pruned. With ``lm``, a hypothesis is ranked by
  ``log P_ctc(prefix) + lm_weight * log P_lm(prefix) + insertion_bonus * len(prefix)`` and, once
  the input ends, ``lm_weight * log P_lm(end | prefix)`` is added (shallow fusion). The LM term
  is kept apart from the acoustic one, so ``lm_weight=0, insertion_bonus=0`` ranks exactly as
  the plain search does. ``advance(chunk)`` may be called on any split of the frames.
- :func:`prefix_beam_search`: the one-call form.
- Character LMs for fusion (the protocol: ``start() -> state``, ``log_prob(state, ch)`` where
  ``ch == END`` scores the end of the sentence, ``advance(state, ch) -> state``):
  :class:`NGramCharLM` (interpolated absolute discounting, fitted on text) and
  :class:`LSTMCharLM` (an lstmkit :class:`~lstmkit.models.language_model.LanguageModel` trained
  by ``lstmkit lm train`` on text with one sentence a line).

>>> import numpy as np
>>> lp = np.log(np.array([[.1, .8, .1], [.6, .3, .1], [.1, .8, .1], [.1, .1, .8]]))
>>> greedy_decode(lp)  # best path a - a b, but "ab" has more mass over all alignments
[1, 1, 2]
>>> [(h.text, round(float(np.exp(h.score)), 4)) for h in prefix_beam_search(lp, 10)[:2]]
[('ab', 0.3467), ('aab', 0.3072)]
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

END = ""  # the "character" that ends a sentence for LM scoring
NEG_INF = -math.inf


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


def _as_array(log_probs) -> np.ndarray:
    try:
        import torch

        if isinstance(log_probs, torch.Tensor):
            log_probs = log_probs.detach().cpu().double().numpy()
    except ImportError:  # pragma: no cover
        pass
    a = np.asarray(log_probs, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"log_probs: expected (T, V) log-probabilities, got shape {a.shape}")
    return a


def collapse(path: Sequence[int], blank: int = 0, prev: int | None = None) -> list[int]:
    """Merge repeated symbols, then drop blanks: the CTC many-to-one map. ``prev``: the symbol
    just before ``path`` (when a longer path comes in pieces), None at the start."""
    out = []
    for s in path:
        s = int(s)
        if s != prev and s != blank:
            out.append(s)
        prev = s
    return out


def _best_path(log_probs) -> list[int]:
    a = _as_array(log_probs)
    return a.argmax(axis=1).tolist() if len(a) else []


def greedy_decode(log_probs, blank: int = 0) -> list[int]:
    """Best path: argmax per frame of (T, V) log-probs (array or tensor), then :func:`collapse`."""
    return collapse(_best_path(log_probs), blank)


class StreamingGreedy:
    """:func:`greedy_decode` over chunks of frames: ``advance(chunk)`` returns the symbols the
    chunk adds; ``tokens`` holds them all."""

    def __init__(self, blank: int = 0) -> None:
        self.blank, self.prev, self.tokens = blank, None, []

    def advance(self, log_probs) -> list[int]:
        path = _best_path(log_probs)
        new = collapse(path, self.blank, self.prev)
        if path:
            self.prev = path[-1]
        self.tokens += new
        return new


# --- language models for fusion ----------------------------------------------------------------
class NGramCharLM:
    """Character n-gram LM with interpolated absolute discounting (discount ``D`` at every
    order), down to a uniform distribution over the training characters + the end symbol. Each
    sentence starts with ``order - 1`` start symbols and ends with :data:`END`; probabilities are
    never zero, so fusion scores stay finite.

    >>> lm = NGramCharLM(3).fit(["one two", "two one"])
    >>> s = lm.start()
    >>> round(sum(math.exp(lm.log_prob(s, c)) for c in lm.vocab + [END]), 6)
    1.0
    """

    START = "\x02"

    def __init__(self, order: int = 6, discount: float = 0.5) -> None:
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order: expected an int >= 1, got {order!r}")
        if not 0 < discount < 1:
            raise ValueError(f"discount: expected a number in (0, 1), got {discount!r}")
        self.order, self.discount = order, discount

    def fit(self, sentences: Sequence[str]) -> NGramCharLM:
        if isinstance(sentences, str) or not sentences:
            raise ValueError("sentences: expected a non-empty list of strings")
        n = self.order
        self.vocab = sorted({c for s in sentences for c in s})
        counts: list[Counter] = [Counter() for _ in range(n)]  # counts[k][(history, ch)], |history| = k
        for s in sentences:
            seq = [self.START] * (n - 1) + list(s) + [END]
            for i in range(n - 1, len(seq)):
                for k in range(n):
                    counts[k][("".join(seq[i - k:i]), seq[i])] += 1
        self.counts = [dict(c) for c in counts]
        self.totals, self.types = [], []
        for k in range(n):
            tot, typ = defaultdict(int), defaultdict(int)
            for (h, _), c in counts[k].items():
                tot[h] += c
                typ[h] += 1
            self.totals.append(dict(tot))
            self.types.append(dict(typ))
        self._cache: dict = {}
        return self

    def start(self) -> str:
        return self.START * (self.order - 1)

    def advance(self, state: str, ch: str) -> str:
        return (state + ch)[len(state) + len(ch) - (self.order - 1):] if self.order > 1 else ""

    def log_prob(self, state: str, ch: str) -> float:
        key = (state, ch)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        p = 1.0 / (len(self.vocab) + 1)
        D = self.discount
        for k in range(self.order):
            h = state[len(state) - k:] if k else ""
            tot = self.totals[k].get(h)
            if not tot:
                continue
            c = self.counts[k].get((h, ch), 0)
            p = max(c - D, 0.0) / tot + D * self.types[k][h] / tot * p
        out = math.log(p)
        self._cache[key] = out
        return out

    def to_dict(self) -> dict:
        """Plain data (for a ``weights_only`` checkpoint)."""
        return {"order": self.order, "discount": self.discount, "vocab": self.vocab,
                "counts": [[[h, c, n] for (h, c), n in cnt.items()] for cnt in self.counts]}

    @classmethod
    def from_dict(cls, d: dict) -> NGramCharLM:
        lm = cls(int(d["order"]), float(d["discount"]))
        lm.vocab = list(d["vocab"])
        lm.counts = [{(h, c): int(n) for h, c, n in rows} for rows in d["counts"]]
        lm.totals, lm.types = [], []
        for cnt in lm.counts:
            tot, typ = defaultdict(int), defaultdict(int)
            for (h, _), c in cnt.items():
                tot[h] += c
                typ[h] += 1
            lm.totals.append(dict(tot))
            lm.types.append(dict(typ))
        lm._cache = {}
        return lm


class _LSTMState:
    __slots__ = ("hx", "logp", "children")

    def __init__(self, hx, logp) -> None:
        self.hx, self.logp, self.children = hx, logp, {}


class LSTMCharLM:
    """An lstmkit character :class:`LanguageModel` (with its tokenizer) as a fusion LM: a
    sentence starts after a newline and ends with one (train it on one sentence a line)."""

    def __init__(self, model, tokenizer, newline: str = "\n") -> None:
        import torch

        self.model, self.tok, self.torch = model.eval(), tokenizer, torch
        self.nl = self._id(newline)

    def _id(self, ch: str) -> int:
        ids = self.tok.encode(ch)
        if len(ids) != 1:
            raise ValueError(f"lm: the language model's tokenizer has no single token for {ch!r}")
        return ids[0]

    def _step(self, token: int, hx) -> _LSTMState:
        with self.torch.no_grad():
            logp, hx = self.model.step(self.torch.tensor([token]), hx)
        return _LSTMState(hx, logp[0].double().numpy())

    def start(self) -> _LSTMState:
        return self._step(self.nl, None)

    def log_prob(self, state: _LSTMState, ch: str) -> float:
        return float(state.logp[self.nl if ch == END else self._id(ch)])

    def advance(self, state: _LSTMState, ch: str) -> _LSTMState:
        nxt = state.children.get(ch)
        if nxt is None:
            nxt = state.children[ch] = self._step(self._id(ch), state.hx)
        return nxt


# --- prefix beam search --------------------------------------------------------------------------
@dataclass
class Hypothesis:
    tokens: tuple[int, ...]
    text: str
    score: float  # what the search ranks by (acoustic + fused LM + bonus [+ end])
    acoustic: float  # log P_ctc(labelling) summed over the alignments kept
    lm: float  # lm_weight * log P_lm (+ end) + insertion_bonus * len, 0 without an LM


class PrefixBeamSearch:
    """CTC prefix beam search, fed frames with :meth:`advance` (any chunking), read with
    :meth:`best` (partial) or :meth:`finish` (the K best, end-of-sentence LM score added).

    ``alphabet[i]`` is the character of symbol i (``alphabet[blank]`` is ignored).
    ``prune``: symbols with a log-prob below it at a frame are not tried as extensions (None: all).
    """

    def __init__(self, alphabet: Sequence[str], beam_width: int = 16, *, blank: int = 0, lm=None,
                 lm_weight: float = 0.0, insertion_bonus: float = 0.0, prune: float | None = None) -> None:
        if not isinstance(beam_width, int) or beam_width < 1:
            raise ValueError(f"beam_width: expected an int >= 1, got {beam_width!r}")
        if not 0 <= blank < len(alphabet):
            raise ValueError(f"blank: expected an index into alphabet (size {len(alphabet)}), got {blank}")
        if lm is None and (lm_weight or insertion_bonus):
            raise ValueError("lm_weight/insertion_bonus: given without an lm")
        self.alphabet, self.K, self.blank = list(alphabet), beam_width, blank
        self.lm, self.w, self.bonus, self.prune = lm, float(lm_weight), float(insertion_bonus), prune
        self.beams: dict[tuple, list[float]] = {(): [0.0, NEG_INF]}  # prefix -> [pb, pnb]
        self.lm_info: dict[tuple, tuple] = {(): (lm.start() if lm is not None else None, 0.0)}
        self.frames = 0

    def _lm_score(self, prefix: tuple) -> float:
        info = self.lm_info.get(prefix)
        if info is None:
            parent = prefix[:-1]
            state, score = self.lm_info[parent] if parent in self.lm_info else self._fill(parent)
            ch = self.alphabet[prefix[-1]]
            info = (self.lm.advance(state, ch), score + self.w * self.lm.log_prob(state, ch) + self.bonus)
            self.lm_info[prefix] = info
        return info[1]

    def _fill(self, prefix: tuple) -> tuple:
        self._lm_score(prefix)
        return self.lm_info[prefix]

    def advance(self, log_probs) -> None:
        a = _as_array(log_probs)
        if a.shape[1] != len(self.alphabet) and len(a):
            raise ValueError(f"log_probs: expected {len(self.alphabet)} symbols per frame, got {a.shape[1]}")
        blank, V = self.blank, a.shape[1]
        for row in a:
            row = row.tolist()
            cands = [s for s in range(V) if s != blank and (self.prune is None or row[s] >= self.prune)]
            nxt: dict[tuple, list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
            for prefix, (pb, pnb) in self.beams.items():
                total = _logaddexp(pb, pnb)
                e = nxt[prefix]
                e[0] = _logaddexp(e[0], total + row[blank])  # stay, ending in blank
                last = prefix[-1] if prefix else None
                if last is not None:  # repeat the last symbol without a blank: same labelling
                    e[1] = _logaddexp(e[1], pnb + row[last])
                for s in cands:
                    new = prefix + (s,)
                    f = nxt[new]
                    # a repeated symbol only starts a new label after a blank
                    f[1] = _logaddexp(f[1], (pb if s == last else total) + row[s])
            self.beams = dict(self._top(nxt.items(), self.K))
            self.frames += 1

    def _rank(self, prefix: tuple, p: list[float]) -> float:
        return _logaddexp(p[0], p[1]) + (self._lm_score(prefix) if self.lm is not None else 0.0)

    def _top(self, items, k: int):
        scored = [(self._rank(pre, p), pre, p) for pre, p in items if max(p) > NEG_INF]
        scored.sort(key=lambda x: (-x[0], x[1]))  # ties: the shorter / smaller prefix first
        return [(pre, p) for _, pre, p in scored[:k]]

    def _hyp(self, prefix: tuple, p: list[float], end: bool) -> Hypothesis:
        ac = _logaddexp(p[0], p[1])
        lm = 0.0
        if self.lm is not None:
            lm = self._lm_score(prefix)
            if end:
                lm += self.w * self.lm.log_prob(self.lm_info[prefix][0], END)
        text = "".join(self.alphabet[s] for s in prefix)
        return Hypothesis(prefix, text, ac + lm, ac, lm)

    def best(self) -> Hypothesis:
        """The current best hypothesis (no end-of-sentence score): the partial result."""
        prefix, p = self._top(self.beams.items(), 1)[0]
        return self._hyp(prefix, p, end=False)

    def finish(self) -> list[Hypothesis]:
        """The hypotheses of the beam, best first, with the LM's end-of-sentence score."""
        hyps = [self._hyp(pre, p, end=True) for pre, p in self.beams.items()]
        return sorted(hyps, key=lambda h: (-h.score, h.tokens))


def prefix_beam_search(log_probs, beam_width: int = 16, alphabet: Sequence[str] | None = None, *,
                       blank: int = 0, lm=None, lm_weight: float = 0.0, insertion_bonus: float = 0.0,
                       prune: float | None = None) -> list[Hypothesis]:
    """Prefix beam search over (T, V) log-probs; the beam's hypotheses, best first.
    ``alphabet`` defaults to ``chr(ord('a') + i - 1)`` for symbol i (blank shown as '-')."""
    a = _as_array(log_probs)
    if alphabet is None:
        alphabet = ["-" if i == blank else chr(ord("a") + i - (i > blank)) for i in range(a.shape[1])]
    search = PrefixBeamSearch(alphabet, beam_width, blank=blank, lm=lm, lm_weight=lm_weight,
                              insertion_bonus=insertion_bonus, prune=prune)
    search.advance(a)
    return search.finish()
