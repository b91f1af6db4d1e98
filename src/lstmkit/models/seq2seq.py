"""Sequence to sequence: a (bi)LSTM encoder, an LSTM decoder, attention over the source.

Symbols: B batch, S source length, T target length, E embedding, H encoder hidden (per
direction), D directions (1 or 2), M = D * H memory width, N decoder hidden, L decoder layers,
V target vocabulary.

Encoder: embedding -> ``lstmkit.LSTM(bidirectional=..., lengths=...)`` over the right-padded
source; the memory is its output (B, S, M), padded positions excluded by a mask. Bridge: the
decoder's initial ``(h, c)`` come from the encoder's final states of the top layer (both
directions) through a linear layer (``tanh`` for h); ``bridge=False`` starts from zeros.

Decoder, one step (a stack of ``lstmkit.LSTMCell``), by ``attention``:

- ``luong-dot|general|concat`` (Luong et al. 2015): ``h_t = LSTM([y_{t-1}; h~_{t-1}])`` (input
  feeding; without it ``LSTM(y_{t-1})``), ``a_t = align(h_t, memory)``, ``c_t = a_t @ memory``,
  ``h~_t = tanh(W_c [c_t; h_t])``.
- ``bahdanau`` (Bahdanau et al. 2015): ``a_t = align(s_{t-1}, memory)`` from the previous top
  state, ``s_t = LSTM([y_{t-1}; c_t])``, ``h~_t = tanh(W_c [c_t; s_t])`` (a tanh layer in place of
  the paper's maxout).
- ``none`` (the fixed-context baseline, Cho et al. 2014): ``c`` is the encoder's final state
  (both directions), fed at every step: ``s_t = LSTM([y_{t-1}; c])``, ``h~_t = tanh(W_c [c; s_t])``.

Then ``logits = W_o dropout(h~_t)``. Options: ``tie_embeddings`` (source and target share one
embedding: one vocabulary), ``tie_output`` (``W_o`` is the target embedding; needs N == E),
``dropout`` on embeddings, between decoder layers and on ``h~``.

Training: :meth:`Seq2Seq.forward` with teacher forcing, or scheduled sampling (Bengio et al.
2015) with ``teacher_forcing_ratio``: at every step each sequence independently feeds the gold
token with that probability, else a token sampled from the model's own previous output
(per token, not one coin per sequence). :func:`teacher_forcing_ratio` gives the paper's three
decays. Decoding: :meth:`Seq2Seq.start` and :meth:`Seq2Seq.step` satisfy ``lstmkit.decoding``'s
step contract (state rows on dim 0), :meth:`Seq2Seq.translate` runs greedy or batched beam search.

>>> import torch
>>> m = Seq2Seq(Seq2SeqConfig(src_vocab_size=10, tgt_vocab_size=12, embedding_dim=8, hidden_size=8))
>>> src, lengths = torch.randint(4, 10, (3, 6)), torch.tensor([6, 4, 1])
>>> logits, attn = m(src, lengths, torch.randint(4, 12, (3, 5)))
>>> tuple(logits.shape), tuple(attn.shape)
((3, 5, 12), (3, 5, 6))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import LSTM, LSTMCell
from ..decoding import Hypothesis, beam_search_batch, greedy
from ..nn import check_lengths
from .attention import KINDS, make_attention

SCHEDULES = ("none", "linear", "exponential", "inverse-sigmoid")


@dataclass
class Seq2SeqConfig:
    src_vocab_size: int
    tgt_vocab_size: int
    embedding_dim: int = 64
    hidden_size: int = 128  # encoder, per direction
    num_layers: int = 1  # encoder layers
    bidirectional: bool = True
    decoder_hidden_size: int = 0  # 0: D * hidden_size (what luong-dot needs)
    decoder_layers: int = 1
    attention: str = "bahdanau"  # one of attention.KINDS
    attention_size: int = 0  # additive scorers; 0: decoder_hidden_size
    input_feeding: bool = True  # Luong attention only
    bridge: bool = True
    dropout: float = 0.1
    tie_embeddings: bool = False
    tie_output: bool = False
    pad_id: int = 0
    bos_id: int = 1
    eos_id: int = 2

    def __post_init__(self) -> None:
        for name in ("src_vocab_size", "tgt_vocab_size", "embedding_dim", "hidden_size", "num_layers",
                     "decoder_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if self.attention not in KINDS:
            raise ValueError(f"attention: expected one of {list(KINDS)}, got {self.attention!r}")
        if not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout!r}")
        if not self.decoder_hidden_size:
            self.decoder_hidden_size = (2 if self.bidirectional else 1) * self.hidden_size
        if self.tie_embeddings and self.src_vocab_size != self.tgt_vocab_size:
            raise ValueError(f"tie_embeddings: needs one vocabulary for source and target, got sizes "
                             f"{self.src_vocab_size} and {self.tgt_vocab_size}")
        if self.tie_output and self.decoder_hidden_size != self.embedding_dim:
            raise ValueError(f"tie_output: needs decoder_hidden_size == embedding_dim, got "
                             f"{self.decoder_hidden_size} vs {self.embedding_dim}")

    @property
    def memory_size(self) -> int:
        return (2 if self.bidirectional else 1) * self.hidden_size


def teacher_forcing_ratio(schedule: str, step: int, *, k: float, c: float = 0.0,
                          minimum: float = 0.0) -> float:
    """Probability of feeding the gold token at training step ``step`` (Bengio et al. 2015).

    - ``linear``: ``max(minimum, k - c * step)`` (e.g. k=1, c=1e-4);
    - ``exponential``: ``k ** step`` with k < 1 (e.g. 0.9999);
    - ``inverse-sigmoid``: ``k / (k + exp(step / k))`` with k >= 1 (e.g. 2000);
    - ``none``: 1 (plain teacher forcing).

    >>> round(teacher_forcing_ratio("inverse-sigmoid", 0, k=1000.0), 4)
    0.999
    """
    if schedule == "none":
        return 1.0
    if schedule == "linear":
        return float(min(1.0, max(minimum, k - c * step)))
    if schedule == "exponential":
        if not 0 < k < 1:
            raise ValueError(f"k: the exponential decay needs 0 < k < 1, got {k}")
        return float(max(minimum, k ** step))
    if schedule == "inverse-sigmoid":
        if k < 1:
            raise ValueError(f"k: the inverse-sigmoid decay needs k >= 1, got {k}")
        return float(max(minimum, k / (k + math.exp(min(step / k, 700.0)))))
    raise ValueError(f"schedule: expected one of {list(SCHEDULES)}, got {schedule!r}")


def check_source(src: Tensor, lengths: Tensor) -> Tensor:
    """Validate a right-padded source batch; returns the lengths as a CPU long tensor."""
    if not isinstance(src, Tensor) or src.dtype != torch.long or src.dim() != 2:
        got = f"{src.dtype} {tuple(src.shape)}" if isinstance(src, Tensor) else type(src).__name__
        raise ValueError(f"src: expected a long tensor (B, S), got {got}")
    B, S = src.shape
    return check_lengths(lengths, B, S, 1, "an empty source cannot be translated")


class Seq2Seq(nn.Module):
    def __init__(self, config: Seq2SeqConfig) -> None:
        super().__init__()
        if not isinstance(config, Seq2SeqConfig):
            raise TypeError(f"config: expected Seq2SeqConfig, got {type(config).__name__}")
        self.config = c = config
        E, M, N = c.embedding_dim, c.memory_size, c.decoder_hidden_size
        self.src_embedding = nn.Embedding(c.src_vocab_size, E, padding_idx=c.pad_id)
        self.tgt_embedding = (self.src_embedding if c.tie_embeddings
                              else nn.Embedding(c.tgt_vocab_size, E, padding_idx=c.pad_id))
        self.dropout = nn.Dropout(c.dropout)
        self.encoder = LSTM(E, c.hidden_size, num_layers=c.num_layers, batch_first=True,
                            bidirectional=c.bidirectional, dropout=c.dropout if c.num_layers > 1 else 0.0)
        if c.bridge:
            self.bridge_h = nn.Linear(M, c.decoder_layers * N)
            self.bridge_c = nn.Linear(M, c.decoder_layers * N)
        self.attention = make_attention(c.attention, N, M, c.attention_size or None)
        luong = c.attention.startswith("luong")
        self.feed_size = (N if c.input_feeding else 0) if luong else M
        self.cells = nn.ModuleList(LSTMCell(E + self.feed_size if i == 0 else N, N)
                                   for i in range(c.decoder_layers))
        self.combine = nn.Linear(M + N, N)  # h~ = tanh(W_c [c; h])
        self.generator = nn.Linear(N, c.tgt_vocab_size)
        if c.tie_output:
            self.generator.weight = self.tgt_embedding.weight  # (V, E) shared

    # -- encoder ------------------------------------------------------------------------------
    def start(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, dict]:
        """Encode a right-padded batch: src (B, S) long, lengths (B,) in [1, S].

        Returns the first decoder input (B,) (bos) and the decoder state, a dict of tensors with
        the batch on dim 0 (``decoding.index_state(state, idx, dim=0)`` reorders it)."""
        c = self.config
        lengths = check_source(src, lengths)
        B, S = src.shape
        x = self.dropout(self.src_embedding(src))  # (B, S, E)
        memory, (h_n, c_n) = self.encoder(x, lengths=lengths)  # (B, S, M), (layers * D, B, H)
        D = 2 if c.bidirectional else 1
        top_h = h_n.view(c.num_layers, D, B, c.hidden_size)[-1].transpose(0, 1).reshape(B, -1)  # (B, M)
        top_c = c_n.view(c.num_layers, D, B, c.hidden_size)[-1].transpose(0, 1).reshape(B, -1)  # (B, M)
        L, N = c.decoder_layers, c.decoder_hidden_size
        if c.bridge:
            h0 = torch.tanh(self.bridge_h(top_h)).view(B, L, N)  # (B, L, N)
            c0 = self.bridge_c(top_c).view(B, L, N)
        else:
            h0 = memory.new_zeros(B, L, N)
            c0 = memory.new_zeros(B, L, N)
        mask = torch.arange(S, device=src.device).unsqueeze(0) < lengths.to(src.device).unsqueeze(1)  # (B, S)
        state = {"h": h0, "c": c0, "mask": mask, "cov": memory.new_zeros(B, S)}
        if self.attention is None:
            state["context"] = top_h  # (B, M): the fixed context
        else:
            state["memory"] = memory
            state["keys"] = self.attention.keys(memory)
        if self.feed_size and c.attention.startswith("luong"):
            state["feed"] = memory.new_zeros(B, self.feed_size)  # h~_0
        bos = torch.full((B,), c.bos_id, dtype=torch.long, device=src.device)
        return bos, state

    # -- decoder ------------------------------------------------------------------------------
    def _cells(self, x: Tensor, state: dict) -> tuple[Tensor, Tensor, Tensor]:
        hs, cs = [], []
        inp = x
        for i, cell in enumerate(self.cells):
            h, cc = cell(inp, (state["h"][:, i], state["c"][:, i]))  # (B, N)
            hs.append(h)
            cs.append(cc)
            inp = self.dropout(h) if i + 1 < len(self.cells) else h
        return inp, torch.stack(hs, 1), torch.stack(cs, 1)  # (B, N), (B, L, N), (B, L, N)

    def decode_step(self, tokens: Tensor, state: dict) -> tuple[Tensor, Tensor | None, dict]:
        """One decoder step: tokens (B,) -> logits (B, V), attention weights (B, S) or None, state."""
        kind = self.config.attention
        y = self.dropout(self.tgt_embedding(tokens))  # (B, E)
        new = dict(state)
        weights = None
        if kind == "none":
            context = state["context"]  # (B, M)
            top, new["h"], new["c"] = self._cells(torch.cat([y, context], -1), state)
        elif kind == "bahdanau":
            query = state["h"][:, -1]  # (B, N): s_{t-1}, the top layer's previous state
            context, weights = self.attention(query, state["memory"], state["mask"], state["keys"])
            top, new["h"], new["c"] = self._cells(torch.cat([y, context], -1), state)
        else:  # luong
            x = torch.cat([y, state["feed"]], -1) if "feed" in state else y
            top, new["h"], new["c"] = self._cells(x, state)
            context, weights = self.attention(top, state["memory"], state["mask"], state["keys"])
        out = torch.tanh(self.combine(torch.cat([context, top], -1)))  # (B, N): h~
        if "feed" in state:
            new["feed"] = out
        if weights is not None:
            new["cov"] = state["cov"] + weights
        logits = self.generator(self.dropout(out))  # (B, V)
        return logits, weights, new

    def step(self, tokens: Tensor, state: dict) -> tuple[Tensor, dict]:
        """The decoding contract: last tokens (B,) -> log-probs of the next (B, V), new state."""
        logits, _, state = self.decode_step(tokens, state)
        return torch.log_softmax(logits.float(), dim=-1), state

    def forward(self, src: Tensor, lengths: Tensor, tgt_in: Tensor, *,
                teacher_forcing_ratio: float | None = None, generator: torch.Generator | None = None):
        """src (B, S), lengths (B,), tgt_in (B, T) = bos + target (shifted right, padded).

        Returns logits (B, T, V) and the attention (B, T, S) (None for ``attention='none'``).
        ``teacher_forcing_ratio`` (scheduled sampling): at each step t > 0 each sequence feeds
        ``tgt_in[:, t]`` with this probability, else a token sampled from its step t-1 output."""
        if not isinstance(tgt_in, Tensor) or tgt_in.dtype != torch.long or tgt_in.dim() != 2 \
                or tgt_in.shape[0] != src.shape[0]:
            got = (f"{tgt_in.dtype} {tuple(tgt_in.shape)}" if isinstance(tgt_in, Tensor)
                   else type(tgt_in).__name__)
            raise ValueError(f"tgt_in: expected a long tensor ({src.shape[0]}, T), got {got}")
        if teacher_forcing_ratio is not None and not 0 <= teacher_forcing_ratio <= 1:
            raise ValueError(f"teacher_forcing_ratio: expected a probability in [0, 1], got "
                             f"{teacher_forcing_ratio}")
        _, state = self.start(src, lengths)
        B, T = tgt_in.shape
        logits_all, attn_all = [], []
        logits = None
        for t in range(T):
            tokens = tgt_in[:, t]  # (B,)
            if teacher_forcing_ratio is not None and t > 0:  # scheduled sampling, per token
                gold = torch.rand(B, generator=generator, device=tokens.device) < teacher_forcing_ratio
                probs = torch.softmax(logits.detach().float(), dim=-1)  # (B, V)
                own = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
                tokens = torch.where(gold, tokens, own)
            logits, weights, state = self.decode_step(tokens, state)
            logits_all.append(logits)
            if weights is not None:
                attn_all.append(weights)
        logits = torch.stack(logits_all, 1)  # (B, T, V)
        attn = torch.stack(attn_all, 1) if attn_all else None  # (B, T, S)
        return logits, attn

    def loss(self, src: Tensor, lengths: Tensor, tgt_in: Tensor, tgt_out: Tensor, *,
             label_smoothing: float = 0.0, teacher_forcing_ratio: float | None = None) -> Tensor:
        """Mean cross-entropy over the non-pad target tokens (tgt_out (B, T) = target + eos)."""
        logits, _ = self(src, lengths, tgt_in, teacher_forcing_ratio=teacher_forcing_ratio)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                               ignore_index=self.config.pad_id, label_smoothing=label_smoothing)

    # -- inference ----------------------------------------------------------------------------
    def coverage(self, state: dict) -> Tensor:
        """Attention received per source position (rows, S), padded positions 1 (beam's coverage)."""
        return state["cov"].masked_fill(~state["mask"], 1.0)

    STATIC = ("memory", "keys", "mask", "context")  # per source; the same for all its beams

    @staticmethod
    def beam_reorder(state: dict, index: Tensor) -> dict:
        """Reorder the state rows for beam search. The beams of one source share its memory, so
        the per-source parts are only gathered when the number of rows changes (expanding a
        sentence into its beams); reordering beams within a sentence leaves them as they are.
        Only valid for indices that keep each row within its own source's beams."""
        out = {}
        for k, v in state.items():
            if k in Seq2Seq.STATIC and v.shape[0] == index.numel():
                out[k] = v
            else:
                out[k] = v.index_select(0, index.to(v.device))
        return out

    @torch.no_grad()
    def translate(self, src: Tensor, lengths: Tensor, *, beam_width: int = 1,
                  max_new_tokens: int | None = None, min_new_tokens: int = 0,
                  length_penalty: float = 1.0, coverage_penalty: float = 0.0,
                  n_best: int = 1) -> list[list[Hypothesis]]:
        """Decode a batch: greedy for ``beam_width == 1`` (then ``n_best`` must be 1), else batched
        beam search. Returns per sentence its ``n_best`` hypotheses (tokens without eos)."""
        c = self.config
        if max_new_tokens is None:
            max_new_tokens = 2 * src.shape[1] + 10
        was = self.training
        self.eval()
        try:
            bos, state = self.start(src, lengths)
            if beam_width == 1 and n_best == 1 and coverage_penalty == 0:
                toks = greedy(self.step, bos, state, max_new_tokens=max_new_tokens, eos_id=c.eos_id,
                              min_new_tokens=min_new_tokens, pad_id=c.pad_id)
                out = []
                for row in toks.tolist():  # [..., eos, pad, pad]: cut at the first eos
                    row = row[:row.index(c.eos_id) + 1] if c.eos_id in row else row
                    out.append([Hypothesis(row, float("nan"), float("nan"))])
            else:
                if self.attention is None and coverage_penalty:
                    raise ValueError("coverage_penalty: needs attention (the model has attention='none')")
                out = beam_search_batch(
                    self.step, bos, state, beam_width=beam_width, max_new_tokens=max_new_tokens,
                    eos_id=c.eos_id, min_new_tokens=min_new_tokens, length_penalty=length_penalty,
                    coverage_penalty=coverage_penalty, coverage=self.coverage, n_best=n_best,
                    reorder_state=self.beam_reorder)
        finally:
            self.train(was)
        return [[h._replace(tokens=[t for t in h.tokens if t != c.eos_id]) for h in hyps] for hyps in out]
