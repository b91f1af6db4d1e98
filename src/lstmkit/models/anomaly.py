"""Per-point error vectors from the two LSTM detectors, offline and streaming.

Symbols: N points, F features, T window length, l prediction length, H hidden, B batch.

- Prediction errors (Malhotra et al. 2015, LSTM-AD) from a :class:`Forecaster` in ``direct``
  mode run **statefully** over the whole series: at every step t its head predicts the next l
  values, so point t is predicted l times (at t-1, .., t-l) and its error vector is
  ``e_t = [x_t - pred_{t-1}(1), .., x_t - pred_{t-l}(l)]`` (l dims; the first l points have none).
  :class:`StreamingPredictionScorer` does the same one point at a time, carrying the LSTM state,
  and gives the offline scores.
- Reconstruction errors (Malhotra et al. 2016, EncDec-AD) from an :class:`LSTMAutoencoder` over
  windows of length T taken every ``stride`` points: a point's error vector is
  ``|x_t - x'_t|`` (F dims), averaged over the windows that cover it.

>>> import torch
>>> from lstmkit.models.forecaster import ForecasterConfig
>>> m = Forecaster(ForecasterConfig(input_size=1, horizon=3))
>>> x = np.random.default_rng(0).normal(size=(50, 1))
>>> e = prediction_errors(m, x)
>>> e.shape, bool(np.isnan(e[:3]).any(axis=1).all()), bool(np.isfinite(e[3:]).all())
((50, 3), True, True)
>>> s = StreamingPredictionScorer(m)
>>> np.allclose(np.stack([s.update(v) for v in x]), e, equal_nan=True, atol=1e-6)
True
"""

from __future__ import annotations

from collections import deque

import numpy as np
import torch

from .autoencoder import LSTMAutoencoder
from .forecaster import Forecaster


def check_predictor(model: Forecaster) -> None:
    c = model.config
    if c.mode != "direct" or c.quantiles or c.n_future or c.input_size != 1:
        raise ValueError(f"model: expected a univariate point Forecaster in 'direct' mode (no "
                         f"quantiles, no known-future features), got mode={c.mode!r}, "
                         f"quantiles={c.quantiles}, n_future={c.n_future}, input_size={c.input_size}")


def step_predictions(model: Forecaster, x: torch.Tensor, state=None):
    """x (B, T, 1) -> (predictions (B, T, l) of the next l values at every step, new state)."""
    y, state = model.lstm(x, state)  # (B, T, H)
    return model.head(y), state  # (B, T, l)


def _as_tensor(series: np.ndarray, model) -> torch.Tensor:
    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    dtype = next(model.parameters()).dtype
    return torch.as_tensor(x, dtype=dtype)


def errors_from_predictions(x: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """x (N,), pred (N, l) (pred[t, j] forecasts x[t + 1 + j]) -> errors (N, l), NaN where the
    forecast made at t - 1 - j does not exist."""
    N, L = pred.shape
    e = np.full((N, L), np.nan)
    for j in range(L):
        # e[t, j] = x[t] - pred[t - 1 - j, j] for t >= j + 1
        e[j + 1:, j] = x[j + 1:] - pred[:N - j - 1, j]
    return e


@torch.no_grad()
def prediction_errors(model: Forecaster, series: np.ndarray, state=None) -> np.ndarray:
    """series (N, 1) (scaled as in training) -> error vectors (N, l), one stateful pass."""
    check_predictor(model)
    model.eval()
    x = _as_tensor(series, model)  # (N, 1)
    pred, _ = step_predictions(model, x[None], state)  # (1, N, l)
    return errors_from_predictions(x[:, 0].double().numpy(), pred[0].double().numpy())


class StreamingPredictionScorer:
    """One point in, its error vector (l,) out (NaN until l points were seen): the LSTM state is
    carried from point to point and the last l predictions kept, so nothing is recomputed.
    The step runs through ``lstmkit.LSTMCell``s holding the layer's weights (one per layer; a
    cell call costs a quarter of a one-step layer call), so it equals the offline pass up to
    float rounding. ``gaussian`` (a fitted :class:`lstmkit.train.anomaly_metrics.GaussianErrors`)
    makes :meth:`score` return the Mahalanobis score too."""

    def __init__(self, model: Forecaster, gaussian=None) -> None:
        check_predictor(model)
        self.model = model.eval()
        self.gaussian = gaussian
        self.l = model.config.horizon
        self.dtype = next(model.parameters()).dtype
        self.cells = _cells(model.lstm)
        self.reset()

    def reset(self) -> None:
        self.state = None
        self.preds: deque = deque(maxlen=self.l)  # most recent first: preds[j] was made at t-1-j

    @torch.no_grad()
    def update(self, value) -> np.ndarray:
        arr = np.asarray(value, dtype=np.float64).ravel()
        if arr.size != 1:
            raise ValueError(f"value: expected one number (a univariate point), got shape {np.shape(value)}")
        v = float(arr[0])
        e = np.full(self.l, np.nan)
        for j, p in enumerate(self.preds):
            e[j] = v - p[j]
        inp = torch.tensor([[v]], dtype=self.dtype)  # (1, 1)
        if self.state is None:
            H = self.model.config.hidden_size
            self.state = [(inp.new_zeros(1, H), inp.new_zeros(1, H)) for _ in self.cells]
        for k, cell in enumerate(self.cells):
            self.state[k] = cell(inp, self.state[k])  # (1, H) each
            inp = self.state[k][0]
        self.preds.appendleft(self.model.head(inp)[0].double().numpy())  # (l,)
        return e

    def score(self, value) -> tuple[float, float]:
        """(mean absolute prediction error, Mahalanobis score) of the new point (NaN, NaN at first)."""
        e = self.update(value)
        if np.isnan(e).any():
            return float("nan"), float("nan")
        maha = float(self.gaussian.score(e[None])[0]) if self.gaussian is not None else float("nan")
        return float(np.abs(e).mean()), maha


def _cells(layer) -> list:
    """One ``lstmkit.LSTMCell`` per layer of a unidirectional ``lstmkit.LSTM`` without residual
    connections (the scorer feeds each cell the one below), same weights; ``from_layer`` refuses
    what has no cell (projection, zoneout)."""
    from .. import LSTMCell

    if layer.bidirectional or layer.residual:
        raise ValueError("model: the streaming scorer steps a unidirectional LSTM without residual "
                         "connections, got a bidirectional or residual one")
    return [LSTMCell.from_layer(layer, k).eval() for k in range(layer.num_layers)]


@torch.no_grad()
def reconstruction_errors(model: LSTMAutoencoder, series: np.ndarray, window: int, stride: int = 1,
                          batch_size: int = 1024) -> np.ndarray:
    """series (N, F) (scaled) -> error vectors (N, F): ``|x - x'|`` of the inference-time
    reconstruction (no teacher forcing), averaged over the windows covering each point; windows
    start every ``stride`` points and one more ends at the last point so every point is covered."""
    model.eval()
    x = _as_tensor(series, model)  # (N, F)
    N = x.shape[0]
    if window > N:
        raise ValueError(f"window: expected at most the series length {N}, got {window}")
    starts = np.arange(0, N - window + 1, stride)
    if starts[-1] != N - window:
        starts = np.append(starts, N - window)
    total = np.zeros((N, x.shape[1]))
    count = np.zeros(N)
    idx = torch.as_tensor(starts)[:, None] + torch.arange(window)  # (W, T)
    for k in range(0, len(starts), batch_size):
        rows = idx[k:k + batch_size]
        w = x[rows]  # (b, T, F)
        err = (w - model.reconstruct(w)).abs().double().numpy()  # (b, T, F)
        flat = rows.reshape(-1).numpy()
        np.add.at(total, flat, err.reshape(-1, err.shape[-1]))
        np.add.at(count, flat, 1)
    return total / count[:, None]
