"""Speech recogniser: features -> normalisation -> SpecAugment (training) -> frame stacking ->
stacked (Bi)LSTM (lstmkit layers, ``lengths``, no PackedSequence) -> linear to characters + blank,
trained with CTC (Graves et al. 2006).

Symbols: B batch, T feature frames, T' = ceil(T / S) frames after stacking S of them, F features,
H hidden, D directions, V characters + blank (blank is index 0).

- ``RecognizerConfig``: a dataclass, saved with the checkpoint (``kind="speech_recognizer"``).
- ``SpeechRecognizer.forward(feats (B, T, F), lengths (B,), hx=None) -> (log_probs (B, T', V),
  out_lengths (B,), hx)``. Normalisation lives in the model so a checkpoint is complete:
  ``cmvn="utterance"`` standardises each utterance over its own valid frames (per feature);
  ``cmvn="global"`` uses the training set's statistics (buffers ``feat_mean``/``feat_std``, set
  with :meth:`set_stats`), which keeps a unidirectional model causal for streaming.
- ``ctc_loss``: ``torch.nn.CTCLoss`` (blank 0, mean over the batch of per-utterance losses
  divided by target length). The ``zero_infinity`` policy: an utterance whose target cannot be
  aligned to its frames (T' < target length + repeated neighbours) has infinite loss.
  :func:`ctc_feasible` lets the data pipeline find such utterances *before* training (the
  speech job drops and reports them); ``zero_infinity=True`` (the default here) remains the
  safety net so that one such example (e.g. your own data with a fast talker) zeroes its own
  loss and gradient instead of making the whole batch's gradient NaN. Zero-length targets are
  legal: their loss is ``-sum_t log p(blank)``.

>>> m = SpeechRecognizer(RecognizerConfig(n_features=8, vocab_size=5, hidden_size=6, num_layers=1))
>>> lp, lens, _ = m(torch.randn(2, 7, 8), torch.tensor([7, 4]))
>>> tuple(lp.shape), lens.tolist()
((2, 3, 5), [3, 2])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import LSTM
from .classifier import lengths_mask

CHECKPOINT_KIND = "speech_recognizer"
BLANK = 0


@dataclass
class RecognizerConfig:
    n_features: int
    vocab_size: int  # characters + blank
    hidden_size: int = 128
    num_layers: int = 3
    bidirectional: bool = True
    subsample: int = 3  # stack S consecutive frames into one (T' = ceil(T/S)); 1: none
    dropout: float = 0.1  # between LSTM layers and before the output layer
    cmvn: str = "utterance"  # "utterance" | "global" | "none"
    freq_masks: int = 2  # SpecAugment, training only
    freq_mask_width: int = 6
    time_masks: int = 2
    time_mask_frac: float = 0.05  # each time mask is at most this fraction of the utterance

    def __post_init__(self) -> None:
        for name in ("n_features", "vocab_size", "hidden_size", "num_layers", "subsample"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if self.vocab_size < 2:
            raise ValueError(f"vocab_size: expected >= 2 (blank + a character), got {self.vocab_size}")
        if self.cmvn not in ("utterance", "global", "none"):
            raise ValueError(f"cmvn: expected 'utterance', 'global' or 'none', got {self.cmvn!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected a probability in [0, 1), got {self.dropout}")
        for name in ("freq_masks", "freq_mask_width", "time_masks"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}: expected >= 0, got {getattr(self, name)}")
        if not 0 <= self.time_mask_frac <= 0.5:
            raise ValueError(f"time_mask_frac: expected a fraction in [0, 0.5], got {self.time_mask_frac}")


class SpeechRecognizer(nn.Module):
    def __init__(self, config: RecognizerConfig) -> None:
        super().__init__()
        if not isinstance(config, RecognizerConfig):
            raise TypeError(f"config: expected RecognizerConfig, got {type(config).__name__}")
        self.config = c = config
        self.register_buffer("feat_mean", torch.zeros(c.n_features))
        self.register_buffer("feat_std", torch.ones(c.n_features))
        self.lstm = LSTM(c.n_features * c.subsample, c.hidden_size, num_layers=c.num_layers,
                         bidirectional=c.bidirectional, batch_first=True,
                         dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.drop = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden_size * (2 if c.bidirectional else 1), c.vocab_size)

    @torch.no_grad()
    def set_stats(self, mean: Tensor, std: Tensor) -> None:
        """Global CMVN statistics (per feature), from the training data."""
        self.feat_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feat_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-5))

    def normalise(self, x: Tensor, lengths: Tensor) -> Tensor:
        c = self.config
        mask = lengths_mask(lengths, x.shape[1]).unsqueeze(-1)  # (B, T, 1)
        if c.cmvn == "utterance":
            n = lengths.clamp_min(1).to(x.dtype)[:, None]  # (B, 1)
            mean = (x * mask).sum(1) / n  # (B, F)
            var = ((x - mean[:, None]) ** 2 * mask).sum(1) / n
            x = (x - mean[:, None]) / (var[:, None] + 1e-5).sqrt()
        elif c.cmvn == "global":
            x = (x - self.feat_mean) / self.feat_std
        return x * mask  # padded frames are exact zeros

    def spec_augment(self, x: Tensor, lengths: Tensor) -> Tensor:
        """Frequency and time masks (Park et al. 2019), set to 0 (the mean after CMVN); drawn
        from torch's RNG, so seeded by the Trainer."""
        c = self.config
        B, T, Fdim = x.shape
        keep = torch.ones_like(x)
        for b in range(B):
            for _ in range(c.freq_masks):
                w = int(torch.randint(0, c.freq_mask_width + 1, ()))
                f0 = int(torch.randint(0, max(1, Fdim - w), ()))
                keep[b, :, f0:f0 + w] = 0
            max_w = int(c.time_mask_frac * int(lengths[b]))
            for _ in range(c.time_masks if max_w > 0 else 0):
                w = int(torch.randint(0, max_w + 1, ()))
                t0 = int(torch.randint(0, max(1, int(lengths[b]) - w), ()))
                keep[b, t0:t0 + w] = 0
        return x * keep

    def out_lengths(self, lengths: Tensor) -> Tensor:
        S = self.config.subsample
        return torch.div(lengths + S - 1, S, rounding_mode="floor")

    def stack(self, x: Tensor) -> Tensor:
        """(B, T, F) -> (B, ceil(T/S), S*F): S consecutive frames side by side (zeros pad the end)."""
        S = self.config.subsample
        if S == 1:
            return x
        B, T, Fdim = x.shape
        pad = (-T) % S
        if pad:
            x = F.pad(x, (0, 0, 0, pad))
        return x.reshape(B, (T + pad) // S, S * Fdim)

    def forward(self, feats: Tensor, lengths: Tensor | None = None, hx=None, *, normalised: bool = False):
        """feats (B, T, F) -> log-probs (B, T', V), out_lengths (B,), the LSTM's final state."""
        c = self.config
        if not isinstance(feats, Tensor) or feats.dim() != 3 or feats.shape[-1] != c.n_features:
            got = tuple(feats.shape) if isinstance(feats, Tensor) else type(feats).__name__
            raise ValueError(f"feats: expected a tensor (B, T, {c.n_features}), got {got}")
        B, T, _ = feats.shape
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        lengths = torch.as_tensor(lengths, dtype=torch.long).cpu()
        if lengths.shape != (B,) or (lengths < 0).any() or (lengths > T).any():
            raise ValueError(f"lengths: expected (B,)={B} ints in [0, {T}], got {lengths.tolist()}")
        x = feats if normalised else self.normalise(feats.float(), lengths)
        if self.training and (c.freq_masks or c.time_masks):
            x = self.spec_augment(x, lengths)
        x = self.stack(x)  # (B, T', S*F)
        out_len = self.out_lengths(lengths)
        y, hx = self.lstm(x, hx, lengths=out_len)  # (B, T', D*H)
        logits = self.out(self.drop(y))  # (B, T', V)
        return torch.log_softmax(logits, dim=-1), out_len, hx


def ctc_feasible(target: list[int], n_frames: int) -> bool:
    """Whether CTC can align ``target`` to ``n_frames`` output frames: it needs one frame per
    label plus a blank between each pair of equal neighbours."""
    repeats = sum(1 for a, b in zip(target, target[1:]) if a == b)
    return n_frames >= len(target) + repeats


def ctc_loss(log_probs: Tensor, out_lengths: Tensor, targets: Tensor, target_lengths: Tensor, *,
             zero_infinity: bool = True) -> Tensor:
    """``torch.nn.CTCLoss`` (blank 0, reduction "mean") on batch-first log-probs (B, T', V);
    ``targets`` concatenated (sum(target_lengths),). See the module docstring for the policy."""
    return F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths, blank=BLANK,
                      reduction="mean", zero_infinity=zero_infinity)


def recognizer_from_dict(d: dict) -> SpeechRecognizer:
    if not isinstance(d, dict):
        raise ValueError(f"config: expected a RecognizerConfig dict, got {type(d).__name__}")
    names = {f.name for f in fields(RecognizerConfig)}
    return SpeechRecognizer(RecognizerConfig(**{k: v for k, v in d.items() if k in names}))


def recognizer_parts(model: SpeechRecognizer) -> dict:
    return {"kind": CHECKPOINT_KIND, "config": asdict(model.config)}
