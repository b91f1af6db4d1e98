"""A small training loop in NumPy: LSTM/GRU + linear readout, MSE, Adam, on a toy memory task.

Symbols: T time, B batch, I input (1), H hidden.

The task (``echo_batch``): the input is white noise x_t ~ N(0, 1); the target is the input
``delay`` steps ago, ``y_t = x_{t-delay}`` (0 before the sequence starts). Predicting 0 scores
an MSE of about 1; the network has to hold ``delay`` values in its state to do better.

>>> losses, params = train_toy("lstm", steps=5, seed=0)
>>> len(losses), sorted(params)
(5, ['W_hh', 'W_ih', 'W_y', 'b_hh', 'b_ih', 'b_y'])
"""

from __future__ import annotations

import numpy as np

from .gru import gru_backward, gru_forward
from .lstm import lstm_backward, lstm_forward


class Adam:
    """Adam (Kingma & Ba) on a dict of arrays, updated in place."""

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-2, betas=(0.9, 0.999), eps=1e-8):
        if not lr > 0:
            raise ValueError(f"lr: expected > 0, got {lr}")
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        b1, b2 = self.betas
        self.t += 1
        for k, p in self.params.items():
            g = grads[k]
            self.m[k] = b1 * self.m[k] + (1 - b1) * g
            self.v[k] = b2 * self.v[k] + (1 - b2) * g * g
            m_hat = self.m[k] / (1 - b1**self.t)
            v_hat = self.v[k] / (1 - b2**self.t)
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def echo_batch(rng: np.random.Generator, seq_len: int, batch_size: int, delay: int):
    """x (T, B, 1) white noise; target (T, B, 1) = x shifted ``delay`` steps later."""
    x = rng.standard_normal((seq_len, batch_size, 1))
    y = np.zeros_like(x)
    y[delay:] = x[: seq_len - delay]
    return x, y


def init_params(cell: str, input_size: int, hidden_size: int, output_size: int, rng: np.random.Generator):
    """torch's default init: U(-1/sqrt(H), 1/sqrt(H)) for every weight and bias."""
    G = {"lstm": 4, "gru": 3}[cell] * hidden_size
    k = 1.0 / np.sqrt(hidden_size)
    u = lambda *shape: rng.uniform(-k, k, size=shape)
    return {
        "W_ih": u(G, input_size),
        "W_hh": u(G, hidden_size),
        "b_ih": u(G),
        "b_hh": u(G),
        "W_y": u(output_size, hidden_size),
        "b_y": np.zeros(output_size),
    }


def loss_and_grads(cell: str, params: dict[str, np.ndarray], x: np.ndarray, target: np.ndarray):
    """MSE of the readout ``y_hat = h W_y^T + b_y`` over all steps; returns (loss, grads)."""
    T, B = x.shape[:2]
    H = params["W_hh"].shape[1]
    h0 = np.zeros((B, H))
    w = {k: params[k] for k in ("W_ih", "W_hh", "b_ih", "b_hh")}
    if cell == "lstm":
        hs, _, _, cache = lstm_forward(x, h0, np.zeros((B, H)), **w)  # (T, B, H)
    else:
        hs, _, cache = gru_forward(x, h0, **w)
    y_hat = hs @ params["W_y"].T + params["b_y"]  # (T, B, O)
    err = y_hat - target
    loss = float(np.mean(err**2))
    dy_hat = 2.0 * err / err.size  # backprop through the mean of squares
    grads = {"W_y": np.einsum("tbo,tbh->oh", dy_hat, hs), "b_y": dy_hat.sum(axis=(0, 1))}
    dhs = dy_hat @ params["W_y"]  # (T, B, H) backprop through the readout
    g = lstm_backward(dhs, None, None, cache) if cell == "lstm" else gru_backward(dhs, None, cache)
    grads.update({k: g["d" + k] for k in w})
    return loss, grads


def train_toy(
    cell: str = "lstm",
    *,
    hidden_size: int = 16,
    steps: int = 300,
    delay: int = 3,
    seq_len: int = 20,
    batch_size: int = 32,
    lr: float = 1e-2,
    clip: float = 1.0,
    seed: int = 0,
    log_every: int = 0,
):
    """Train on the echo task with Adam, a fresh batch every step. Returns (losses, params).

    ``clip`` bounds the global gradient norm; ``log_every`` > 0 prints the loss every that many steps.
    """
    if cell not in ("lstm", "gru"):
        raise ValueError(f"cell: expected 'lstm' or 'gru', got {cell!r}")
    if not 0 <= delay < seq_len:
        raise ValueError(f"delay: expected 0 <= delay < seq_len={seq_len}, got {delay}")
    rng = np.random.default_rng(seed)
    params = init_params(cell, 1, hidden_size, 1, rng)
    opt = Adam(params, lr=lr)
    losses = []
    for step in range(steps):
        x, target = echo_batch(rng, seq_len, batch_size, delay)
        loss, grads = loss_and_grads(cell, params, x, target)
        norm = np.sqrt(sum(float((g * g).sum()) for g in grads.values()))
        if clip and norm > clip:  # clip the global gradient norm
            grads = {k: g * (clip / norm) for k, g in grads.items()}
        opt.step(grads)
        losses.append(loss)
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss:.4f}")
    return losses, params
