"""The GRU in pure NumPy: forward and BPTT backward, torch's equations (reset_after).

Symbols: T time, B batch, I input, H hidden, G gate rows (3H, torch's order r, z, n).

One step::

    gi = x W_ih^T + b_ih                            (B, G)  rows r, z, n
    gh = h_prev W_hh^T + b_hh                       (B, G)  rows r, z, n
    r  = sigmoid(gi_r + gh_r)
    z  = sigmoid(gi_z + gh_z)
    n  = tanh(gi_n + r * gh_n)                      the reset applies after the matmul (torch)
    h  = (1 - z) * n + z * h_prev

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> T, B, I, H = 5, 2, 3, 4
>>> W_ih, W_hh = rng.normal(size=(3 * H, I)), rng.normal(size=(3 * H, H))
>>> x, h0 = rng.normal(size=(T, B, I)), np.zeros((B, H))
>>> y, h_n, cache = gru_forward(x, h0, W_ih, W_hh, np.zeros(3 * H), np.zeros(3 * H))
>>> y.shape, bool(np.allclose(y[-1], h_n))
((5, 2, 4), True)
>>> sorted(gru_backward(np.ones_like(y), None, cache))
['dW_hh', 'dW_ih', 'db_hh', 'db_ih', 'dh0', 'dx']
"""

from __future__ import annotations

import numpy as np

from .lstm import sigmoid


def gru_step_forward(x, h_prev, W_ih, W_hh, b_ih=None, b_hh=None):
    """One step. x: (B, I); h_prev: (B, H). Returns (h, step_cache)."""
    H = h_prev.shape[-1]
    gi = x @ W_ih.T  # (B, G)
    gh = h_prev @ W_hh.T  # (B, G)
    if b_ih is not None:
        gi = gi + b_ih
        gh = gh + b_hh
    r = sigmoid(gi[:, 0 * H : 1 * H] + gh[:, 0 * H : 1 * H])  # reset gate
    z = sigmoid(gi[:, 1 * H : 2 * H] + gh[:, 1 * H : 2 * H])  # update gate
    hn = gh[:, 2 * H : 3 * H]  # W_hn h_prev + b_hn
    n = np.tanh(gi[:, 2 * H : 3 * H] + r * hn)  # candidate
    h = (1.0 - z) * n + z * h_prev  # (B, H)
    return h, (x, h_prev, r, z, n, hn)


def gru_step_backward(dh, step_cache, W_ih, W_hh):
    """Backward of ``gru_step_forward``. dh: dL/dh (B, H), output and future together.

    Returns (dx, dh_prev, dgi, dgh): dgi, dgh (B, G) are dL/d(x W_ih^T + b_ih) and
    dL/d(h_prev W_hh^T + b_hh), from which the caller takes the weight and bias gradients.
    """
    x, h_prev, r, z, n, hn = step_cache
    dn = dh * (1.0 - z)  # h = (1 - z) * n + z * h_prev
    dz = dh * (h_prev - n)
    dh_prev = dh * z
    da_n = dn * (1.0 - n * n)  # backprop through tanh
    dr = da_n * hn  # n = tanh(gi_n + r * hn)
    dhn = da_n * r
    da_r = dr * r * (1.0 - r)  # backprop through sigmoid
    da_z = dz * z * (1.0 - z)  # backprop through sigmoid
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)  # (B, G)
    dgh = np.concatenate([da_r, da_z, dhn], axis=1)  # (B, G)
    dx = dgi @ W_ih  # (B, I)
    dh_prev = dh_prev + dgh @ W_hh  # (B, H)
    return dx, dh_prev, dgi, dgh


def gru_forward(x, h0, W_ih, W_hh, b_ih=None, b_hh=None):
    """Run T steps. x: (T, B, I); h0: (B, H). Returns (y (T, B, H), h_n (B, H), cache)."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (T, B, I), got {x.shape}")
    G, I = W_ih.shape
    H = G // 3
    T, B = x.shape[0], x.shape[1]
    if x.shape[2] != I or T == 0:
        raise ValueError(f"x: expected shape (T>=1, B, {I}) (W_ih is {W_ih.shape}), got {x.shape}")
    if h0.shape != (B, H):
        raise ValueError(f"h0: expected shape {(B, H)}, got {h0.shape}")
    y = np.empty((T, B, H), dtype=np.result_type(x, W_ih))
    h = h0
    steps = []
    for t in range(T):
        h, sc = gru_step_forward(x[t], h, W_ih, W_hh, b_ih, b_hh)
        y[t] = h
        steps.append(sc)
    return y, h, {"steps": steps, "W_ih": W_ih, "W_hh": W_hh, "bias": b_ih is not None}


def gru_backward(dy, dh_n, cache):
    """BPTT. dy: dL/dy (T, B, H); dh_n: dL/dh_n or None.

    Returns a dict: dx, dh0, dW_ih, dW_hh, db_ih, db_hh (db_* absent without biases).
    """
    steps, W_ih, W_hh = cache["steps"], cache["W_ih"], cache["W_hh"]
    T = len(steps)
    x0, h0 = steps[0][0], steps[0][1]
    dh_next = np.zeros_like(h0) if dh_n is None else dh_n
    dx = np.empty((T,) + x0.shape, dtype=np.result_type(dy, x0))
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db_ih = np.zeros(W_ih.shape[0], dtype=W_ih.dtype)
    db_hh = np.zeros(W_hh.shape[0], dtype=W_hh.dtype)
    for t in reversed(range(T)):
        sc = steps[t]
        dh = dy[t] + dh_next  # h_t feeds the output and the next step
        dx[t], dh_next, dgi, dgh = gru_step_backward(dh, sc, W_ih, W_hh)
        dW_ih += dgi.T @ sc[0]
        dW_hh += dgh.T @ sc[1]
        db_ih += dgi.sum(axis=0)
        db_hh += dgh.sum(axis=0)
    grads = {"dx": dx, "dh0": dh_next, "dW_ih": dW_ih, "dW_hh": dW_hh}
    if cache["bias"]:
        grads["db_ih"], grads["db_hh"] = db_ih, db_hh
    return grads
