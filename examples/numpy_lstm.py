"""Train an LSTM written in pure NumPy (no torch) to echo its input 3 steps later.

The input is white noise; the target at step t is the input at step t - 3. Guessing 0 scores
an MSE of about 0.85, so a falling loss means the LSTM learned to hold three values in its
state. Forward, BPTT backward and Adam are all in ``lstmkit.numpy`` (about 300 lines).

    python examples/numpy_lstm.py
"""

import numpy as np

import lstmkit.numpy as ln

# 1. the hand-derived backward agrees with finite differences (float64, tiny sizes)
rng = np.random.default_rng(0)
T, B, I, H = 4, 2, 3, 5
p = {
    "x": rng.normal(size=(T, B, I)),
    "h0": np.zeros((B, H)),
    "c0": np.zeros((B, H)),
    "W_ih": rng.normal(size=(4 * H, I)),
    "W_hh": rng.normal(size=(4 * H, H)),
    "b_ih": rng.normal(size=4 * H),
    "b_hh": rng.normal(size=4 * H),
}
loss = lambda: float((ln.lstm_forward(**p)[0] ** 2).sum() / 2)  # L = sum(y^2) / 2, so dL/dy = y
y, _, _, cache = ln.lstm_forward(**p)
grads = ln.lstm_backward(y, None, None, cache)
errors = ln.gradient_check(loss, p, {k: grads["d" + k] for k in p})
print(f"gradient check: max relative error {max(errors.values()):.1e}")

# 2. train it: a fresh batch every step, Adam, the loss should fall well below 0.85
losses, params = ln.train_toy("lstm", hidden_size=16, steps=300, delay=3, log_every=50, seed=0)
print(f"loss: first 20 steps {np.mean(losses[:20]):.3f} -> last 20 steps {np.mean(losses[-20:]):.4f}")

# 3. try it on a new sequence
x, target = ln.echo_batch(np.random.default_rng(1), seq_len=12, batch_size=1, delay=3)
hs, _, _, _ = ln.lstm_forward(x, np.zeros((1, 16)), np.zeros((1, 16)),
                              params["W_ih"], params["W_hh"], params["b_ih"], params["b_hh"])
pred = hs @ params["W_y"].T + params["b_y"]
print("input     ", np.round(x[:, 0, 0], 2))
print("target    ", np.round(target[:, 0, 0], 2))
print("prediction", np.round(pred[:, 0, 0], 2))
