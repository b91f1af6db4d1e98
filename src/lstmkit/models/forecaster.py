"""Forecaster: an LSTM (``lstmkit.LSTM``) that maps a window of the past to the next h values.

Symbols: B batch, T input length, F features per step, K known-future features (the last K
of F, e.g. calendar), H hidden, h horizon, Q quantiles.

Quantiles (``ForecasterConfig.quantiles``, e.g. ``[0.1, 0.5, 0.9]``): the output becomes
(B, h, Q). They cannot cross: the head emits the middle quantile and, for each further one, a
``softplus`` step away from its neighbour, so ``q_1 <= q_2 <= ... <= q_Q`` by construction.

Modes (``ForecasterConfig.mode``):

- ``single``: one step ahead, h = 1: ``head(y_T)``.
- ``direct``: one linear head emits all h steps from the last hidden state.
- ``recursive``: predicts one step, feeds it back as the next input (target channel = the
  prediction, known-future features = their true values, every other channel 0) and carries
  the LSTM state on; trained through the same unrolled loop it uses at inference.
- ``seq2seq``: an encoder LSTM reads the window, a decoder LSTM started from its state reads the
  known-future features of each step (a constant 1 if there are none) and a head emits each step.

>>> import torch
>>> m = Forecaster(ForecasterConfig(input_size=4, horizon=3, mode="recursive", n_future=2))
>>> m(torch.randn(5, 10, 4), torch.randn(5, 3, 2)).shape
torch.Size([5, 3])
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from .. import LSTM

MODES = ("single", "direct", "recursive", "seq2seq")


def median_index(quantiles) -> int:
    """Index of the level nearest 0.5 in ``quantiles`` (the point forecast); 0 for none.

    >>> median_index([0.1, 0.5, 0.9]), median_index(None)
    (1, 0)
    """
    if not quantiles:
        return 0
    return min(range(len(quantiles)), key=lambda j: abs(quantiles[j] - 0.5))


@dataclass
class ForecasterConfig:
    input_size: int
    horizon: int
    mode: str = "direct"
    hidden_size: int = 64
    num_layers: int = 1
    dropout: float = 0.0
    n_future: int = 0  # K: known-future features, the last K input channels
    target_index: int = 0  # channel of the input that holds the (transformed) target
    quantiles: list[float] | None = None  # ascending levels in (0, 1); None: one point forecast

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {self.mode!r}")
        if self.mode == "single" and self.horizon != 1:
            raise ValueError(f"horizon: mode 'single' forecasts 1 step, got horizon={self.horizon}")
        for name in ("input_size", "horizon", "hidden_size", "num_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if not 0 <= self.n_future < self.input_size:
            raise ValueError(f"n_future: expected 0 <= n_future < input_size={self.input_size}, "
                             f"got {self.n_future}")

        if self.quantiles is not None:
            q = [float(v) for v in self.quantiles]
            if not q or any(not 0.0 < v < 1.0 for v in q) or sorted(set(q)) != q:
                raise ValueError(f"quantiles: expected distinct ascending levels in (0, 1), got "
                                 f"{self.quantiles}")
            self.quantiles = q

    @property
    def n_outputs(self) -> int:
        return len(self.quantiles) if self.quantiles else 1

    @property
    def median_index(self) -> int:
        """Index of the quantile nearest 0.5 (the point forecast); 0 without quantiles."""
        return median_index(self.quantiles)

    def to_dict(self) -> dict:
        return asdict(self)


def monotone_quantiles(raw: Tensor, mid: int) -> Tensor:
    """raw (..., Q) -> (..., Q) ascending: raw[mid] is kept, every other level is its neighbour
    plus (or minus) a softplus step, so no two quantiles cross."""
    centre = raw[..., mid:mid + 1]
    up = torch.cumsum(nn.functional.softplus(raw[..., mid + 1:]), dim=-1)
    down = torch.cumsum(nn.functional.softplus(raw[..., :mid].flip(-1)), dim=-1).flip(-1)
    return torch.cat([centre - down, centre, centre + up], dim=-1)


class Forecaster(nn.Module):
    def __init__(self, config: ForecasterConfig) -> None:
        super().__init__()
        c = self.config = config
        drop = c.dropout if c.num_layers > 1 else 0.0
        self.lstm = LSTM(c.input_size, c.hidden_size, c.num_layers, batch_first=True, dropout=drop,
                         forget_bias=1.0, init="orthogonal")
        out = (c.horizon if c.mode == "direct" else 1) * c.n_outputs
        self.head = nn.Linear(c.hidden_size, out)
        if c.mode == "seq2seq":
            self.decoder = LSTM(max(c.n_future, 1), c.hidden_size, c.num_layers, batch_first=True,
                                dropout=drop, forget_bias=1.0, init="orthogonal")

    def _check(self, x: Tensor, future: Tensor | None) -> Tensor | None:
        c = self.config
        if x.dim() != 3 or x.shape[-1] != c.input_size:
            raise ValueError(f"x: expected (B, T, {c.input_size}), got {tuple(x.shape)}")
        if c.n_future and c.mode in ("recursive", "seq2seq"):
            want = (x.shape[0], c.horizon, c.n_future)
            if future is None or tuple(future.shape) != want:
                got = None if future is None else tuple(future.shape)
                raise ValueError(f"future: expected known-future features of shape {want}, got {got}")
        return future

    def _out(self, raw: Tensor) -> Tensor:
        """raw (B, h * Q) -> (B, h) or, with quantiles, (B, h, Q) ascending along Q."""
        c = self.config
        if not c.quantiles:
            return raw
        return monotone_quantiles(raw.reshape(raw.shape[0], -1, c.n_outputs), c.median_index)

    def forward(self, x: Tensor, future: Tensor | None = None) -> Tensor:
        """x (B, T, F), future (B, h, K) -> forecasts (B, h) in the target's transformed units,
        or (B, h, Q) with ``config.quantiles``."""
        c = self.config
        future = self._check(x, future)
        y, state = self.lstm(x)  # (B, T, H)
        if c.mode in ("single", "direct"):
            return self._out(self.head(y[:, -1]))  # (B, h[, Q])
        if c.mode == "seq2seq":
            B = x.shape[0]
            dec_in = future if c.n_future else x.new_ones(B, c.horizon, 1)  # (B, h, K)
            yd, _ = self.decoder(dec_in, state)  # (B, h, H)
            return self._out(self.head(yd).reshape(B, -1))  # (B, h[, Q])
        # recursive: feed each prediction (the median with quantiles) back, carrying the state
        pred = self._out(self.head(y[:, -1]))  # (B, 1[, Q])
        outs = [pred]
        for k in range(c.horizon - 1):
            step = x.new_zeros(x.shape[0], 1, c.input_size)  # (B, 1, F)
            point = pred[:, 0, c.median_index] if c.quantiles else pred[:, 0]  # (B,)
            step[:, 0, c.target_index] = point
            if c.n_future:
                step[:, 0, -c.n_future:] = future[:, k]
            y, state = self.lstm(step, state)  # (B, 1, H)
            pred = self._out(self.head(y[:, -1]))
            outs.append(pred)
        return torch.cat(outs, dim=1)  # (B, h[, Q])
