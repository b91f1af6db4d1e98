"""Docstring examples of lstmkit.numpy, bad input, and the .npz round trip."""

import doctest
import importlib

import numpy as np
import pytest

import lstmkit.numpy as ln

MODULES = ["lstmkit.numpy", "lstmkit.numpy.lstm", "lstmkit.numpy.gru", "lstmkit.numpy.gradcheck",
           "lstmkit.numpy.modules", "lstmkit.numpy.train"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def lstm_sd(rng, H=4, I=3, **extra):
    sd = {"weight_ih_l0": rng.normal(size=(4 * H, I)), "weight_hh_l0": rng.normal(size=(4 * H, H)),
          "bias_ih_l0": rng.normal(size=4 * H), "bias_hh_l0": rng.normal(size=4 * H)}
    sd.update(extra)
    return sd


def test_save_load_round_trip_is_exact_and_leaves_no_temp_file(tmp_path):
    sd = lstm_sd(np.random.default_rng(0))
    path = tmp_path / "w.npz"
    ln.save_npz(sd, path)
    back = ln.load_npz(path)
    assert sorted(back) == sorted(sd)
    for k in sd:
        np.testing.assert_array_equal(back[k], sd[k])
    assert [p.name for p in tmp_path.iterdir()] == ["w.npz"]


def test_unknown_parameter_is_rejected_by_name():
    sd = lstm_sd(np.random.default_rng(0), weight_ci_l0=np.zeros(4))
    with pytest.raises(ValueError, match="weight_ci_l0"):
        ln.NumpyLSTM(sd)


def test_missing_and_misshapen_parameters_are_rejected():
    rng = np.random.default_rng(0)
    sd = lstm_sd(rng)
    del sd["bias_hh_l0"]
    with pytest.raises(ValueError, match="bias_hh_l0"):
        ln.NumpyLSTM(sd)
    sd = lstm_sd(rng, weight_hh_l0=np.zeros((16, 5)))
    with pytest.raises(ValueError, match="weight_hh_l0"):
        ln.NumpyLSTM(sd)
    with pytest.raises(ValueError, match="weight_ih_l0"):
        ln.NumpyGRU(lstm_sd(rng, weight_ih_l0=np.zeros((16, 3))))  # 16 rows is not 3*H


def test_bad_input_shapes_name_the_argument():
    model = ln.NumpyLSTM(lstm_sd(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="x: expected shape"):
        model(np.zeros((5, 2, 7)))
    with pytest.raises(ValueError, match=r"hx\[0\]"):
        model(np.zeros((5, 2, 3)), (np.zeros((1, 3, 4)), np.zeros((1, 2, 4))))
    with pytest.raises(TypeError, match="hx"):
        model(np.zeros((5, 2, 3)), np.zeros((1, 2, 4)))
    with pytest.raises(TypeError, match="x"):
        model(np.zeros((5, 2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="h0"):
        ln.lstm_forward(np.zeros((5, 2, 3)), np.zeros((3, 4)), np.zeros((2, 4)),
                        np.zeros((16, 3)), np.zeros((16, 4)))


def test_batch_first_is_the_transpose_of_time_major():
    sd = lstm_sd(np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(5, 2, 3))
    y, (h, c) = ln.NumpyLSTM(sd)(x)
    y_bf, (h_bf, c_bf) = ln.NumpyLSTM(sd, batch_first=True)(x.transpose(1, 0, 2))
    np.testing.assert_allclose(y_bf, y.transpose(1, 0, 2))
    np.testing.assert_allclose(h_bf, h)
    np.testing.assert_allclose(c_bf, c)
