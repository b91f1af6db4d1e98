"""SequenceTagger: a BiLSTM over tokens that labels every token (softmax or linear-chain CRF).

Symbols: B batch, T tokens (padded), W characters per token (padded), V word vocabulary,
E word embedding, Q character vocabulary, H hidden size, K tags.

Each token is a word embedding (id 0 = padding, 1 = unknown) and, with ``char_vocab_size > 0``,
the final states of a character-level BiLSTM read over its characters, so a word never seen in
training still gets a useful vector. ``word_dropout`` replaces training tokens by the unknown
id with that probability, so the model learns to lean on the characters. A bidirectional
``lstmkit.LSTM`` (``cell``) reads the sequence with ``lengths``; a linear layer gives emissions
(B, T, K). The loss is token cross-entropy (``crf=False``) or the CRF's negative log-likelihood;
:meth:`SequenceTagger.decode` returns argmax or Viterbi tags, -1 past each length.

>>> import torch
>>> m = SequenceTagger(TaggerConfig(vocab_size=20, num_tags=5, char_vocab_size=10, crf=True))
>>> tok, ch = torch.randint(2, 20, (2, 6)), torch.randint(1, 10, (2, 6, 4))
>>> em = m(tok, torch.tensor([6, 3]), ch, torch.full((2, 6), 4))
>>> tuple(em.shape), m.decode(em, torch.tensor([6, 3]))[1, 3:].tolist()
((2, 6, 5), [-1, -1, -1])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from ..nn import check_lengths
from .classifier import CELLS, lengths_mask
from .crf import LinearChainCRF

UNK = 1


@dataclass
class TaggerConfig:
    vocab_size: int  # V, including padding (0) and unknown (1)
    num_tags: int  # K
    embed_dim: int = 64
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    word_dropout: float = 0.0
    char_vocab_size: int = 0  # Q; 0 = no character BiLSTM
    char_embed_dim: int = 16
    char_hidden_size: int = 32
    crf: bool = False
    cell: str = "lstm"

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {self.cell!r}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size: expected >= 2 (padding and unknown), got {self.vocab_size}")
        if self.num_tags < 1:
            raise ValueError(f"num_tags: expected >= 1, got {self.num_tags}")
        for name in ("dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name}: expected in [0, 1), got {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


class SequenceTagger(nn.Module):
    def __init__(self, config: TaggerConfig) -> None:
        super().__init__()
        c = self.config = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=0)
        feat = c.embed_dim
        if c.char_vocab_size:
            self.char_embedding = nn.Embedding(c.char_vocab_size, c.char_embed_dim, padding_idx=0)
            self.char_rnn = CELLS[c.cell](c.char_embed_dim, c.char_hidden_size, batch_first=True,
                                          bidirectional=True)
            feat += 2 * c.char_hidden_size
        else:
            self.char_embedding = self.char_rnn = None
        self.rnn = CELLS[c.cell](feat, c.hidden_size, num_layers=c.num_layers, batch_first=True,
                                 bidirectional=True, dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(2 * c.hidden_size, c.num_tags)
        self.crf = LinearChainCRF(c.num_tags) if c.crf else None

    def _chars(self, chars: Tensor, char_lengths: Tensor) -> Tensor:
        """(U, W) character ids, (U,) lengths -> (U, 2*Hc) final forward/backward states."""
        emb = self.char_embedding(chars)  # (U, W, Ec)
        _, state = self.char_rnn(emb, lengths=char_lengths.cpu())
        h_n = state[0] if isinstance(state, tuple) else state  # (2, U, Hc)
        return torch.cat([h_n[0], h_n[1]], dim=-1)

    def forward(self, tokens: Tensor, lengths, chars: Tensor | None = None,
                char_lengths: Tensor | None = None, word_index: Tensor | None = None) -> Tensor:
        """Emissions (B, T, K) for token ids (B, T) and, with the character BiLSTM, either
        character ids (B, T, W) with lengths (B, T) (0 for padding tokens), or the batch's
        distinct words as (U, W) ids with (U,) lengths and ``word_index`` (B, T) into them
        (each distinct word is then read once)."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens: expected (B, T) ids, got shape {tuple(tokens.shape)}")
        B, T = tokens.shape
        lengths = check_lengths(lengths, B, T, 1, "an empty sentence has no tags")
        if self.training and self.config.word_dropout > 0:
            drop = torch.rand(tokens.shape, device=tokens.device) < self.config.word_dropout
            tokens = tokens.masked_fill(drop & (tokens > 0), UNK)
        x = self.embedding(tokens)  # (B, T, E)
        if self.char_rnn is not None:
            if chars is None or char_lengths is None:
                raise ValueError("chars: this tagger reads characters; expected chars (B, T, W) "
                                 "and char_lengths (B, T), got None")
            if word_index is not None:
                feats = self._chars(chars, char_lengths)[word_index]  # (B, T, 2*Hc)
            else:
                W = chars.shape[-1]
                feats = self._chars(chars.reshape(B * T, W), char_lengths.reshape(B * T))
                feats = feats.reshape(B, T, -1)
            x = torch.cat([x, feats], dim=-1)
        y, _ = self.rnn(self.drop(x), lengths=lengths)  # (B, T, 2H)
        return self.out(self.drop(y))

    def loss(self, emissions: Tensor, tags: Tensor, lengths) -> Tensor:
        """Per-token cross-entropy or CRF negative log-likelihood (padding ignored)."""
        lengths = torch.as_tensor(lengths, dtype=torch.long)
        if self.crf is not None:
            return self.crf(emissions, tags, lengths.to(emissions.device))
        mask = lengths_mask(lengths.to(tags.device), tags.shape[1])
        return nn.functional.cross_entropy(emissions[mask], tags[mask])

    @torch.no_grad()
    def decode(self, emissions: Tensor, lengths) -> Tensor:
        """Tags (B, T) long, -1 past each length: Viterbi with a CRF, else argmax."""
        lengths = torch.as_tensor(lengths, dtype=torch.long).to(emissions.device)
        if self.crf is not None:
            return self.crf.decode(emissions, lengths)
        pred = emissions.argmax(-1)
        return pred.masked_fill(~lengths_mask(lengths, pred.shape[1]), -1)
