"""SequenceClassifier: a recurrent layer over real time steps, masked pooling, one head per task.

Symbols: B batch, T time steps (padded), C input channels, V vocabulary, E embedding size,
H hidden size, D directions (1 or 2), F convolution channels, K classes of a task.

- The recurrent layer is ``lstmkit.LSTM``, ``GRU`` or ``RNN`` (``cell``), stacked and/or
  bidirectional, fed the true time steps with ``lengths`` (unequal lengths are native: nothing
  is resampled, and a padded batch gives what each sequence gives alone).
- ``pooling`` turns the outputs (B, T, D*H) into one vector per sequence:
  ``last`` (each sequence's state after its own last valid step; the reverse direction's state
  after reading back to step 0), ``mean`` and ``max`` (over valid steps only), ``attention``
  (masked additive attention; its weights are 0 on padding and sum to 1 over valid steps, and
  ``forward(..., return_attention=True)`` returns them).
- ``fcn=True`` adds the fully convolutional branch of LSTM-FCN (Karim et al. 2017): three
  Conv1d + batch norm + ReLU blocks and global average pooling, all masked by lengths, run beside
  the recurrent branch on the same (B, T, C) input (the reference code fed the LSTM a single
  time step; here it reads every step). The two pooled vectors are concatenated.
- ``vocab_size > 0``: the input is token ids (B, T), embedded to (B, T, E) (id 0 = padding).
- ``num_classes`` an int: ``forward`` returns logits (B, K); a list: one head per task and a list
  of logits. :class:`MultiTaskLoss` weights the per-task losses (fixed or learned uncertainty).

>>> import torch
>>> m = SequenceClassifier(ClassifierConfig(input_size=3, num_classes=4, pooling="attention"))
>>> logits, w = m(torch.randn(2, 7, 3), lengths=torch.tensor([7, 4]), return_attention=True)
>>> tuple(logits.shape), w[1, 4:].tolist()
((2, 4), [0.0, 0.0, 0.0])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import Tensor, nn

from .. import GRU, LSTM, RNN
from ..nn import check_lengths

CELLS = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
POOLINGS = ("last", "mean", "max", "attention")


@dataclass
class ClassifierConfig:
    input_size: int  # C (ignored when vocab_size > 0: the embedding size is then the input)
    num_classes: int | list[int]  # K, or one K per task
    cell: str = "lstm"
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = False
    dropout: float = 0.0  # between stacked layers and before the heads
    pooling: str = "last"
    fcn: bool = False
    fcn_channels: list[int] = field(default_factory=lambda: [128, 256, 128])
    fcn_kernels: list[int] = field(default_factory=lambda: [8, 5, 3])
    vocab_size: int = 0
    embed_dim: int = 64
    attention_size: int = 64

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ValueError(f"cell: expected one of {sorted(CELLS)}, got {self.cell!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling: expected one of {POOLINGS}, got {self.pooling!r}")
        for name in ("hidden_size", "num_layers", "embed_dim", "attention_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if self.vocab_size < 0 or (self.vocab_size == 0 and self.input_size < 1):
            raise ValueError(f"input_size: expected >= 1 (or vocab_size > 0), got {self.input_size}")
        ks = self.task_classes
        if not ks or any(int(k) < 2 for k in ks):
            raise ValueError(f"num_classes: expected >= 2 classes per task, got {self.num_classes}")
        if len(self.fcn_channels) != len(self.fcn_kernels):
            raise ValueError(f"fcn_kernels: expected {len(self.fcn_channels)} sizes like "
                             f"fcn_channels, got {len(self.fcn_kernels)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected 0 <= dropout < 1, got {self.dropout}")

    @property
    def task_classes(self) -> list[int]:
        k = self.num_classes
        return [int(k)] if isinstance(k, int) else [int(v) for v in k]

    def to_dict(self) -> dict:
        return asdict(self)


def lengths_mask(lengths: Tensor, T: int) -> Tensor:
    """(B,) lengths -> (B, T) bool, True on valid steps."""
    return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]


def masked_mean(y: Tensor, mask: Tensor) -> Tensor:
    """Mean of (B, T, H) over the valid steps of (B, T) ``mask`` -> (B, H)."""
    m = mask.unsqueeze(-1).to(y.dtype)
    return (y * m).sum(1) / m.sum(1).clamp_min(1.0)


def masked_max(y: Tensor, mask: Tensor) -> Tensor:
    """Max of (B, T, H) over the valid steps -> (B, H)."""
    return y.masked_fill(~mask.unsqueeze(-1), float("-inf")).max(1).values


class AttentionPool(nn.Module):
    """Additive attention pooling: ``a_t = softmax_t(v . tanh(W y_t + b))`` over valid steps."""

    def __init__(self, dim: int, attention_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, attention_size)
        self.score = nn.Linear(attention_size, 1, bias=False)

    def forward(self, y: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        s = self.score(torch.tanh(self.proj(y))).squeeze(-1)  # (B, T)
        w = torch.softmax(s.masked_fill(~mask, float("-inf")), dim=1)
        w = w.masked_fill(~mask, 0.0)  # exact zeros on padding
        return torch.einsum("bt,bth->bh", w, y), w


class MaskedBatchNorm1d(nn.BatchNorm1d):
    """BatchNorm over (B, F, T) whose training statistics use valid steps only."""

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # x (B, F, T), mask (B, T)
        if not self.training:
            return super().forward(x)
        # statistics in float32 at least, as torch's own batch norm under autocast (a bfloat16
        # conv output would round the mean and variance, and the running buffers stay float32)
        x = x.to(torch.promote_types(x.dtype, self.running_mean.dtype))
        m = mask.unsqueeze(1).to(x.dtype)  # (B, 1, T)
        n = m.sum().clamp_min(1.0)
        mean = (x * m).sum((0, 2)) / n  # (F,)
        var = (((x - mean[None, :, None]) * m) ** 2).sum((0, 2)) / n
        with torch.no_grad():
            unbiased = var * n / (n - 1).clamp_min(1.0)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(unbiased, self.momentum)
            self.num_batches_tracked += 1
        xh = (x - mean[None, :, None]) / torch.sqrt(var[None, :, None] + self.eps)
        return xh * self.weight[None, :, None] + self.bias[None, :, None]


class FCNBranch(nn.Module):
    """Conv1d('same') + masked batch norm + ReLU blocks, then masked global average pooling."""

    def __init__(self, input_size: int, channels: list[int], kernels: list[int]) -> None:
        super().__init__()
        sizes = [input_size, *channels]
        self.kernels = list(kernels)
        self.convs = nn.ModuleList(nn.Conv1d(a, b, k) for a, b, k in zip(sizes[:-1], sizes[1:], kernels))
        self.norms = nn.ModuleList(MaskedBatchNorm1d(b) for b in channels)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:  # x (B, T, C) -> (B, F)
        m = mask.unsqueeze(1).to(x.dtype)  # (B, 1, T)
        z = x.transpose(1, 2) * m  # (B, C, T)
        for k, conv, norm in zip(self.kernels, self.convs, self.norms):
            # 'same' length: (k-1)//2 zeros before, k//2 after; padded steps are reset to 0 after
            # every block, so they read exactly like this zero padding
            z = conv(nn.functional.pad(z, ((k - 1) // 2, k // 2)))
            z = torch.relu(norm(z, mask)) * m
        return z.sum(2) / m.sum(2).clamp_min(1.0)


class SequenceClassifier(nn.Module):
    def __init__(self, config: ClassifierConfig) -> None:
        super().__init__()
        c = self.config = config
        self.embedding = nn.Embedding(c.vocab_size, c.embed_dim, padding_idx=0) if c.vocab_size else None
        feat = c.embed_dim if c.vocab_size else c.input_size
        self.rnn = CELLS[c.cell](feat, c.hidden_size, num_layers=c.num_layers, batch_first=True,
                                 bidirectional=c.bidirectional,
                                 dropout=c.dropout if c.num_layers > 1 else 0.0)
        d = c.hidden_size * (2 if c.bidirectional else 1)
        self.attention = AttentionPool(d, c.attention_size) if c.pooling == "attention" else None
        self.fcn = FCNBranch(feat, c.fcn_channels, c.fcn_kernels) if c.fcn else None
        width = d + (c.fcn_channels[-1] if c.fcn else 0)
        self.drop = nn.Dropout(c.dropout)
        self.heads = nn.ModuleList(nn.Linear(width, k) for k in c.task_classes)

    def encode(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """(B, T, C) series or (B, T) token ids -> pooled features (B, D*H [+F]), attention (B, T)."""
        c = self.config
        B, T = x.shape[0], x.shape[1]
        if lengths is None:
            lengths = torch.full((B,), T, dtype=torch.long)
        lengths = check_lengths(lengths, B, T, 1, "empty sequences cannot be classified")
        inp = self.embedding(x) if self.embedding is not None else x  # (B, T, C)
        mask = lengths_mask(lengths, T).to(inp.device)  # (B, T)
        y, state = self.rnn(inp, lengths=lengths)  # (B, T, D*H)
        attn = None
        if c.pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # (L*D, B, H)
            D = 2 if c.bidirectional else 1
            pooled = torch.cat(list(h_n[-D:]), dim=-1)  # (B, D*H)
        elif c.pooling == "mean":
            pooled = masked_mean(y, mask)
        elif c.pooling == "max":
            pooled = masked_max(y, mask)
        else:
            pooled, attn = self.attention(y, mask)
        if self.fcn is not None:
            pooled = torch.cat([pooled, self.fcn(inp, mask)], dim=-1)
        return pooled, attn

    def forward(self, x: Tensor, lengths: Tensor | None = None, *, return_attention: bool = False):
        """Logits (B, K), or a list of them for several tasks; with ``return_attention`` also the
        (B, T) attention weights (None unless pooling is ``attention``)."""
        pooled, attn = self.encode(x, lengths)
        z = self.drop(pooled)
        out = [head(z) for head in self.heads]
        logits = out[0] if isinstance(self.config.num_classes, int) else out
        return (logits, attn) if return_attention else logits


class MultiTaskLoss(nn.Module):
    """Sum of per-task losses with fixed ``weights`` or learned uncertainty weighting
    (Kendall, Gal & Cipolla 2018): ``sum_i exp(-s_i) L_i + s_i / 2`` with ``s_i = log sigma_i^2``
    learned (add this module's parameters to the optimiser, e.g. by making it a model attribute)."""

    def __init__(self, num_tasks: int, weights: list[float] | None = None,
                 learned: bool = False) -> None:
        super().__init__()
        if weights is not None and len(weights) != num_tasks:
            raise ValueError(f"weights: expected {num_tasks} values, got {len(weights)}")
        if learned and weights is not None:
            raise ValueError("weights: give fixed weights or learned=True, not both")
        self.register_buffer("weights", torch.tensor(weights if weights is not None
                                                     else [1.0] * num_tasks, dtype=torch.float32))
        self.log_vars = nn.Parameter(torch.zeros(num_tasks)) if learned else None

    def forward(self, losses: list[Tensor]) -> Tensor:
        stacked = torch.stack(list(losses))  # (tasks,)
        if self.log_vars is None:
            return (self.weights * stacked).sum()
        return (torch.exp(-self.log_vars) * stacked + 0.5 * self.log_vars).sum()
