"""The hand BPTT of the NumPy LSTM/GRU equals central differences (float64), for every
parameter and input, with and without biases (and with proj_size for the LSTM)."""

import numpy as np
import pytest

import lstmkit.numpy as ln

T, B, I, H, P = 4, 3, 5, 6, 4


def lstm_case(rng, proj, bias):
    Pw = P if proj else H
    ps = {
        "x": rng.normal(size=(T, B, I)),
        "h0": rng.normal(size=(B, Pw)),
        "c0": rng.normal(size=(B, H)),
        "W_ih": rng.normal(size=(4 * H, I)) * 0.5,
        "W_hh": rng.normal(size=(4 * H, Pw)) * 0.5,
    }
    if bias:
        ps["b_ih"], ps["b_hh"] = rng.normal(size=4 * H), rng.normal(size=4 * H)
    if proj:
        ps["W_hr"] = rng.normal(size=(P, H)) * 0.5
    return ps, Pw


@pytest.mark.parametrize("proj", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_lstm_backward_matches_numerical_gradient(proj, bias):
    rng = np.random.default_rng(0)
    ps, Pw = lstm_case(rng, proj, bias)
    # a random linear loss reaches every output: y, h_n and c_n
    wy, wh, wc = rng.normal(size=(T, B, Pw)), rng.normal(size=(B, Pw)), rng.normal(size=(B, H))

    def loss():
        y, h_n, c_n, _ = ln.lstm_forward(**ps)
        return float((y * wy).sum() + (h_n * wh).sum() + (c_n * wc).sum())

    _, _, _, cache = ln.lstm_forward(**ps)
    grads = ln.lstm_backward(wy, wh, wc, cache)
    assert set(grads) == {"d" + k for k in ps}
    errors = ln.gradient_check(loss, ps, {k: grads["d" + k] for k in ps})
    assert set(errors) == set(ps)
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize("bias", [True, False])
def test_gru_backward_matches_numerical_gradient(bias):
    rng = np.random.default_rng(1)
    ps = {
        "x": rng.normal(size=(T, B, I)),
        "h0": rng.normal(size=(B, H)),
        "W_ih": rng.normal(size=(3 * H, I)) * 0.5,
        "W_hh": rng.normal(size=(3 * H, H)) * 0.5,
    }
    if bias:
        ps["b_ih"], ps["b_hh"] = rng.normal(size=3 * H), rng.normal(size=3 * H)
    wy, wh = rng.normal(size=(T, B, H)), rng.normal(size=(B, H))

    def loss():
        y, h_n, _ = ln.gru_forward(**ps)
        return float((y * wy).sum() + (h_n * wh).sum())

    _, _, cache = ln.gru_forward(**ps)
    grads = ln.gru_backward(wy, wh, cache)
    assert set(grads) == {"d" + k for k in ps}
    errors = ln.gradient_check(loss, ps, {k: grads["d" + k] for k in ps})
    assert max(errors.values()) < 1e-6, errors


def test_gradient_check_catches_a_wrong_gradient():
    rng = np.random.default_rng(2)
    ps, _ = lstm_case(rng, proj=False, bias=True)

    def loss():
        return float(ln.lstm_forward(**ps)[0].sum())

    _, _, _, cache = ln.lstm_forward(**ps)
    grads = ln.lstm_backward(np.ones((T, B, H)), None, None, cache)
    wrong = grads["dW_hh"].copy()
    wrong[0, 0] += 0.1 * np.abs(wrong).max()
    assert ln.gradient_check(loss, {"W_hh": ps["W_hh"]}, {"W_hh": wrong})["W_hh"] > 1e-4


def test_numerical_gradient_restores_the_parameter():
    w = np.random.default_rng(3).normal(size=(3, 4))
    before = w.copy()
    ln.numerical_gradient(lambda: float(np.sin(w).sum()), w)
    np.testing.assert_array_equal(w, before)


def test_numerical_gradient_rejects_non_float_param():
    with pytest.raises(TypeError, match="param"):
        ln.numerical_gradient(lambda: 0.0, np.arange(3))
