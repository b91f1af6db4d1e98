"""LSTM encoder-decoder for anomaly detection (Malhotra et al. 2016, EncDec-AD).

Symbols: B batch, T window length (the paper's L), F features (the paper's m), H hidden.

The encoder reads the window ``x_1 .. x_T``; its final state ``h^E_T`` seeds the decoder. The
decoder reconstructs the window **in reverse order** ``x_T, x_{T-1}, .., x_1``: it emits
``x'_T = head(h^D_T)`` with ``h^D_T = h^E_T``, then each further step takes the previous point
as input and emits the next one back in time:

- training (teacher forcing, as in the paper): the input that yields ``x'_{i-1}`` is the true
  ``x_i``, so the whole decoder runs as one sequence over ``x_T, .., x_2``;
- inference: the input is the model's own ``x'_i`` (fed back one step at a time);
- ``latent_only=True`` (the unconditioned decoder of Srivastava et al. 2015): every decoder input
  is 0, so the reconstruction comes from the latent state alone (training = inference).

:func:`reverse_target` is the training target (the window reversed along time);
:meth:`LSTMAutoencoder.reconstruct` returns the reconstruction back in time order.

>>> import torch
>>> m = LSTMAutoencoder(AutoencoderConfig(input_size=2, hidden_size=8))
>>> x = torch.randn(3, 5, 2)
>>> m(x).shape, m.reconstruct(x).shape
(torch.Size([3, 5, 2]), torch.Size([3, 5, 2]))
>>> reverse_target(torch.arange(4.0).view(1, 4, 1)).flatten().tolist()
[3.0, 2.0, 1.0, 0.0]
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from .. import LSTM

CHECKPOINT_KIND = "lstm_autoencoder"


@dataclass
class AutoencoderConfig:
    input_size: int
    hidden_size: int = 32
    num_layers: int = 1
    dropout: float = 0.0
    latent_only: bool = False  # decoder inputs are 0: reconstruct from the latent state alone

    def __post_init__(self) -> None:
        for name in ("input_size", "hidden_size", "num_layers"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout: expected a number in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def reverse_target(x: Tensor) -> Tensor:
    """The EncDec-AD target: the window ``x`` (B, T, F) reversed along time, ``x_T .. x_1``."""
    if x.dim() != 3:
        raise ValueError(f"x: expected (B, T, F), got {tuple(x.shape)}")
    return x.flip(1)


class LSTMAutoencoder(nn.Module):
    def __init__(self, config: AutoencoderConfig) -> None:
        super().__init__()
        c = self.config = config
        drop = c.dropout if c.num_layers > 1 else 0.0
        kw = dict(batch_first=True, dropout=drop, forget_bias=1.0, init="orthogonal")
        self.encoder = LSTM(c.input_size, c.hidden_size, c.num_layers, **kw)
        self.decoder = LSTM(c.input_size, c.hidden_size, c.num_layers, **kw)
        self.head = nn.Linear(c.hidden_size, c.input_size)

    def _check(self, x: Tensor) -> None:
        F = self.config.input_size
        if x.dim() != 3 or x.shape[-1] != F or x.shape[1] < 1:
            raise ValueError(f"x: expected windows (B, T >= 1, {F}), got {tuple(x.shape)}")

    def encode(self, x: Tensor):
        """x (B, T, F) -> the encoder's final state ``(h, c)``, each (L, B, H)."""
        self._check(x)
        return self.encoder(x)[1]

    def decode(self, state, steps: int, x: Tensor | None = None) -> Tensor:
        """The reversed reconstruction (B, steps, F) from the encoder state. With ``x`` (B, steps,
        F), teacher forcing (the true previous point is the input); without, the model's own
        previous output is fed back (or 0 with ``latent_only``)."""
        h0 = state[0][-1]  # (B, H): h^D_T = h^E_T
        first = self.head(h0).unsqueeze(1)  # (B, 1, F): x'_T
        if steps == 1:
            return first
        B, F = h0.shape[0], self.config.input_size
        if self.config.latent_only:
            y, _ = self.decoder(h0.new_zeros(B, steps - 1, F), state)  # (B, T-1, H)
            return torch.cat([first, self.head(y)], dim=1)
        if x is not None:  # teacher forcing: inputs x_T .. x_2 yield x'_{T-1} .. x'_1
            y, _ = self.decoder(x.flip(1)[:, :-1], state)  # (B, T-1, H)
            return torch.cat([first, self.head(y)], dim=1)
        outs, prev = [first], first
        for _ in range(steps - 1):
            y, state = self.decoder(prev, state)  # (B, 1, H)
            prev = self.head(y)  # (B, 1, F)
            outs.append(prev)
        return torch.cat(outs, dim=1)  # (B, T, F)

    def forward(self, x: Tensor, teacher_forcing: bool | None = None) -> Tensor:
        """x (B, T, F) -> the reconstruction in decoder order, ``x'_T .. x'_1`` (B, T, F): compare
        with :func:`reverse_target`. ``teacher_forcing`` defaults to ``self.training``."""
        tf = self.training if teacher_forcing is None else teacher_forcing
        return self.decode(self.encode(x), x.shape[1], x if tf else None)

    def reconstruct(self, x: Tensor) -> Tensor:
        """The inference-time reconstruction (no teacher forcing), in time order (B, T, F)."""
        return self.forward(x, teacher_forcing=False).flip(1)
