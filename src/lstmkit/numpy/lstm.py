"""The LSTM in pure NumPy, the way the classic interview question asks: forward, BPTT backward.

Symbols: T time, B batch, I input, H hidden (cell), P output width (proj_size, or H),
G gate rows (4H, torch's order i, f, g, o).

One step (torch's equations and names)::

    a = x W_ih^T + b_ih + h_prev W_hh^T + b_hh      (B, G)
    i = sigmoid(a_i)    f = sigmoid(a_f)    g = tanh(a_g)    o = sigmoid(a_o)
    c = f * c_prev + i * g
    m = o * tanh(c)
    h = m W_hr^T                                    (proj_size; h = m without it)

Every array is time-major: x (T, B, I), y (T, B, P). ``lstm_forward`` returns a cache that
``lstm_backward`` walks in reverse (backpropagation through time).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> T, B, I, H = 5, 2, 3, 4
>>> W_ih, W_hh = rng.normal(size=(4 * H, I)), rng.normal(size=(4 * H, H))
>>> b_ih, b_hh = np.zeros(4 * H), np.zeros(4 * H)
>>> x, h0, c0 = rng.normal(size=(T, B, I)), np.zeros((B, H)), np.zeros((B, H))
>>> y, h_n, c_n, cache = lstm_forward(x, h0, c0, W_ih, W_hh, b_ih, b_hh)
>>> y.shape, h_n.shape, bool(np.allclose(y[-1], h_n))
((5, 2, 4), (2, 4), True)
>>> grads = lstm_backward(np.ones_like(y), None, None, cache)
>>> sorted(grads)
['dW_hh', 'dW_ih', 'db_hh', 'db_ih', 'dc0', 'dh0', 'dx']
>>> grads["dW_ih"].shape == W_ih.shape
True
"""

from __future__ import annotations

import numpy as np


def sigmoid(a: np.ndarray) -> np.ndarray:
    """Logistic function, written with tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * a))


# ---------------------------------------------------------------------------------------------
# one step: forward and its backward side by side
# ---------------------------------------------------------------------------------------------


def lstm_step_forward(x, h_prev, c_prev, W_ih, W_hh, b=None, W_hr=None):
    """One step. x: (B, I); h_prev: (B, P); c_prev: (B, H); b = b_ih + b_hh (G,) or None.

    Returns (h, c, step_cache).
    """
    H = c_prev.shape[-1]
    a = x @ W_ih.T + h_prev @ W_hh.T  # (B, G) gate pre-activations
    if b is not None:
        a = a + b
    i = sigmoid(a[:, 0 * H : 1 * H])  # input gate
    f = sigmoid(a[:, 1 * H : 2 * H])  # forget gate
    g = np.tanh(a[:, 2 * H : 3 * H])  # candidate cell
    o = sigmoid(a[:, 3 * H : 4 * H])  # output gate
    c = f * c_prev + i * g  # (B, H)
    tc = np.tanh(c)
    m = o * tc  # (B, H)
    h = m if W_hr is None else m @ W_hr.T  # (B, P)
    return h, c, (x, h_prev, c_prev, i, f, g, o, tc, m)


def lstm_step_backward(dh, dc, step_cache, W_ih, W_hh, W_hr=None):
    """Backward of ``lstm_step_forward``. dh: dL/dh (B, P); dc: dL/dc from the future (B, H).

    Returns (dx, dh_prev, dc_prev, da, dW_hr); ``da`` (B, G) is dL/d gate pre-activations, from
    which the caller takes dW_ih = da^T x, dW_hh = da^T h_prev, db = sum(da).
    """
    x, h_prev, c_prev, i, f, g, o, tc, m = step_cache
    dW_hr = None if W_hr is None else dh.T @ m  # h = m W_hr^T
    dm = dh if W_hr is None else dh @ W_hr  # backprop through the projection
    do = dm * tc  # m = o * tanh(c)
    dc = dc + dm * o * (1.0 - tc * tc)  # backprop through tanh, plus the future's dc
    df = dc * c_prev  # c = f * c_prev + i * g
    di = dc * g
    dg = dc * i
    dc_prev = dc * f
    da_i = di * i * (1.0 - i)  # backprop through sigmoid
    da_f = df * f * (1.0 - f)  # backprop through sigmoid
    da_g = dg * (1.0 - g * g)  # backprop through tanh
    da_o = do * o * (1.0 - o)  # backprop through sigmoid
    da = np.concatenate([da_i, da_f, da_g, da_o], axis=1)  # (B, G)
    dx = da @ W_ih  # (B, I)
    dh_prev = da @ W_hh  # (B, P)
    return dx, dh_prev, dc_prev, da, dW_hr


# ---------------------------------------------------------------------------------------------
# the sequence: forward loop and BPTT
# ---------------------------------------------------------------------------------------------


def lstm_forward(x, h0, c0, W_ih, W_hh, b_ih=None, b_hh=None, W_hr=None):
    """Run T steps. x: (T, B, I); h0: (B, P); c0: (B, H).

    Returns (y (T, B, P), h_n (B, P), c_n (B, H), cache).
    """
    x = np.asarray(x)
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (T, B, I), got {x.shape}")
    G, I = W_ih.shape
    H = G // 4
    P = H if W_hr is None else W_hr.shape[0]
    T, B = x.shape[0], x.shape[1]
    if x.shape[2] != I or T == 0:
        raise ValueError(f"x: expected shape (T>=1, B, {I}) (W_ih is {W_ih.shape}), got {x.shape}")
    if h0.shape != (B, P):
        raise ValueError(f"h0: expected shape {(B, P)}, got {h0.shape}")
    if c0.shape != (B, H):
        raise ValueError(f"c0: expected shape {(B, H)}, got {c0.shape}")
    b = None if b_ih is None else b_ih + b_hh
    y = np.empty((T, B, P), dtype=np.result_type(x, W_ih))
    h, c = h0, c0
    steps = []
    for t in range(T):
        h, c, sc = lstm_step_forward(x[t], h, c, W_ih, W_hh, b, W_hr)
        y[t] = h
        steps.append(sc)
    cache = {"steps": steps, "W_ih": W_ih, "W_hh": W_hh, "W_hr": W_hr, "bias": b_ih is not None}
    return y, h, c, cache


def lstm_backward(dy, dh_n, dc_n, cache):
    """BPTT. dy: dL/dy (T, B, P); dh_n, dc_n: dL/d final states, or None for zero.

    Returns a dict of gradients: dx, dh0, dc0, dW_ih, dW_hh, db_ih, db_hh (and dW_hr with a
    projection; db_* are absent without biases).
    """
    steps, W_ih, W_hh, W_hr = cache["steps"], cache["W_ih"], cache["W_hh"], cache["W_hr"]
    T = len(steps)
    x0, h0, c0 = steps[0][0], steps[0][1], steps[0][2]
    dh_next = np.zeros_like(h0) if dh_n is None else dh_n  # dL/dh_t from the future
    dc_next = np.zeros_like(c0) if dc_n is None else dc_n  # dL/dc_t from the future
    dx = np.empty((T,) + x0.shape, dtype=np.result_type(dy, x0))
    dW_ih, dW_hh = np.zeros_like(W_ih), np.zeros_like(W_hh)
    db = np.zeros(W_ih.shape[0], dtype=W_ih.dtype)
    dW_hr = None if W_hr is None else np.zeros_like(W_hr)
    for t in reversed(range(T)):
        sc = steps[t]
        dh = dy[t] + dh_next  # h_t feeds the output and the next step
        dx[t], dh_next, dc_next, da, dW_hr_t = lstm_step_backward(dh, dc_next, sc, W_ih, W_hh, W_hr)
        dW_ih += da.T @ sc[0]  # a = x W_ih^T + ...
        dW_hh += da.T @ sc[1]  # a = ... + h_prev W_hh^T
        db += da.sum(axis=0)
        if dW_hr is not None:
            dW_hr += dW_hr_t
    grads = {"dx": dx, "dh0": dh_next, "dc0": dc_next, "dW_ih": dW_ih, "dW_hh": dW_hh}
    if cache["bias"]:
        grads["db_ih"] = db
        grads["db_hh"] = db.copy()  # b_ih and b_hh enter as their sum
    if dW_hr is not None:
        grads["dW_hr"] = dW_hr
    return grads
