"""Language model: embedding -> lstmkit.LSTM (stacked, dropout family) -> linear to the vocabulary.

Symbols: B batch, T time, V vocabulary, E embedding, H hidden, P LSTM output width
(proj_size or H), L layers.

Trained with truncated BPTT over contiguous streams (``data.text.stream_batches``): the
state of row b at the end of one batch is the (detached) start of row b in the next.

- ``LanguageModelConfig``: a dataclass, saved with the checkpoint.
- ``LanguageModel.forward(tokens (B, T), hx) -> (logits (B, T, V), hx)``.
- ``LanguageModel.step(tokens (B,), hx) -> (log_probs (B, V), hx)``: the decoding contract.
- ``LanguageModel.prime(ids)``: run a prompt, return ``(last_token (1,), state)`` for decoding.
- ``evaluate_language_model``: mean loss over a stream, state carried across chunks. Training
  goes through ``train.Trainer`` (``jobs.lm``), the one loop of every job.
- ``save_language_model`` / ``load_language_model``: via ``train.checkpoint`` (atomic,
  ``weights_only=True``). The file is ``{format, version, kind="language_model", config (the
  LanguageModelConfig as a dict), model (state_dict), extra (level, bptt, max_context, and from
  ``lstmkit lm train`` the job config and its metrics)}``; ``tokenizer.json`` lies beside it.

>>> m = LanguageModel(LanguageModelConfig(vocab_size=50, embedding_dim=8, hidden_size=8, tie_weights=True))
>>> logits, (h, c) = m(torch.zeros(2, 5, dtype=torch.long))
>>> tuple(logits.shape), tuple(h.shape)
((2, 5, 50), (2, 2, 8))
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import LSTM
from ..data.text import stream_batches
from ..train.checkpoint import load_checkpoint, save_checkpoint

CHECKPOINT_KIND = "language_model"


@dataclass
class LanguageModelConfig:
    vocab_size: int
    embedding_dim: int = 128
    hidden_size: int = 256
    num_layers: int = 2
    proj_size: int = 0
    dropout: float = 0.1  # between LSTM layers (torch's)
    embedding_dropout: float = 0.1  # on the embeddings
    output_dropout: float = 0.1  # on the LSTM output, before the decoder
    input_dropout: float = 0.0  # lstmkit extras (DESIGN §2)
    recurrent_dropout: float = 0.0
    weight_drop: float = 0.0
    zoneout: float = 0.0
    tie_weights: bool = False

    def __post_init__(self) -> None:
        for name in ("vocab_size", "embedding_dim", "hidden_size", "num_layers"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        for name in ("dropout", "embedding_dropout", "output_dropout", "input_dropout",
                     "recurrent_dropout", "weight_drop", "zoneout"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v < 1:
                raise ValueError(f"{name}: expected a probability in [0, 1), got {v!r}")
        out = self.proj_size or self.hidden_size
        if self.tie_weights and out != self.embedding_dim:
            raise ValueError(f"tie_weights: needs the LSTM output width (proj_size or hidden_size) == "
                             f"embedding_dim, got {out} vs {self.embedding_dim}; set proj_size="
                             f"{self.embedding_dim} or hidden_size={self.embedding_dim}")


class LanguageModel(nn.Module):
    def __init__(self, config: LanguageModelConfig) -> None:
        super().__init__()
        if not isinstance(config, LanguageModelConfig):
            raise TypeError(f"config: expected LanguageModelConfig, got {type(config).__name__}")
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim)
        self.embedding_dropout = nn.Dropout(c.embedding_dropout)
        self.lstm = LSTM(c.embedding_dim, c.hidden_size, num_layers=c.num_layers, batch_first=True,
                         dropout=c.dropout if c.num_layers > 1 else 0.0, proj_size=c.proj_size,
                         input_dropout=c.input_dropout, recurrent_dropout=c.recurrent_dropout,
                         weight_drop=c.weight_drop, zoneout=c.zoneout)
        self.output_dropout = nn.Dropout(c.output_dropout)
        self.decoder = nn.Linear(c.proj_size or c.hidden_size, c.vocab_size)
        if c.tie_weights:
            self.decoder.weight = self.embedding.weight  # (V, E) shared

    def forward(self, tokens: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        """tokens (B, T) long -> logits (B, T, V), (h, c) each (L, B, P) / (L, B, H)."""
        if not isinstance(tokens, Tensor) or tokens.dtype != torch.long or tokens.dim() != 2:
            got = (f"{tokens.dtype} {tuple(tokens.shape)}" if isinstance(tokens, Tensor)
                   else type(tokens).__name__)
            raise ValueError(f"tokens: expected a long tensor (B, T), got {got}")
        x = self.embedding_dropout(self.embedding(tokens))  # (B, T, E)
        y, hx = self.lstm(x, hx)  # (B, T, P)
        return self.decoder(self.output_dropout(y)), hx  # (B, T, V)

    def step(self, tokens: Tensor, hx: tuple[Tensor, Tensor] | None = None):
        """The decoding contract: last tokens (B,) -> log-probs of the next (B, V), new state."""
        logits, hx = self(tokens.unsqueeze(1), hx)  # (B, 1, V)
        return torch.log_softmax(logits[:, -1].float(), dim=-1), hx

    @torch.no_grad()
    def prime(self, ids: list[int] | Tensor, hx=None):
        """Run a prompt (N >= 1 ids) except its last token; return ``(last (1,), state)``."""
        ids = torch.as_tensor(ids, dtype=torch.long).reshape(-1)
        if ids.numel() == 0:
            raise ValueError("ids: expected a prompt of at least one token, got none")
        if ids.numel() > 1:
            _, hx = self(ids[:-1].unsqueeze(0), hx)
        return ids[-1:], hx


# -- training -----------------------------------------------------------------------------------
@torch.no_grad()
def evaluate_language_model(model: LanguageModel, tokens: Tensor, *, batch_size: int = 16,
                            bptt: int = 128) -> float:
    """Mean cross-entropy (nats per token) over a stream, state carried across chunks."""
    was_training = model.training
    model.eval()
    total, count, hx = 0.0, 0, None
    for x, y in stream_batches(tokens, batch_size, bptt):
        logits, hx = model(x, hx)  # (B, T, V)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    return total / max(count, 1)


def lm_metrics(loss_nats_per_token: float, num_tokens: int, num_chars: int) -> dict:
    """Cross-entropy (nats/token), perplexity (per token) and bits per character."""
    bpc = loss_nats_per_token * num_tokens / max(num_chars, 1) / math.log(2)
    return {"val_loss": loss_nats_per_token, "val_ppl": math.exp(min(loss_nats_per_token, 700.0)),
            "val_bpc": bpc}


# -- checkpoints --------------------------------------------------------------------------------
def save_language_model(model: LanguageModel, path: str | os.PathLike, **extra) -> None:
    """Write {kind, config, model state_dict, extra} atomically (``train.checkpoint``)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, kind=CHECKPOINT_KIND, config=asdict(model.config), model=state, extra=dict(extra))


def load_language_model(path: str | os.PathLike, map_location="cpu") -> tuple[LanguageModel, dict]:
    """Load a checkpoint written by ``save_language_model`` (``weights_only=True``);
    returns (model in eval mode, extra)."""
    ck = load_checkpoint(path, map_location=map_location)
    if ck.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"checkpoint: expected a {CHECKPOINT_KIND!r} checkpoint, got kind "
                         f"{ck.get('kind')!r} in {path}")
    names = {f.name for f in fields(LanguageModelConfig)}
    config = LanguageModelConfig(**{k: v for k, v in ck["config"].items() if k in names})
    model = LanguageModel(config)
    model.load_state_dict(ck["model"])
    model.eval()
    return model, ck.get("extra", {})
