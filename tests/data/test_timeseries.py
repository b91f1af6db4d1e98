import doctest

import numpy as np
import pandas as pd
import pytest

from lstmkit.data import missing, scaling, season, split, timeseries, windows
from lstmkit.data.missing import impute
from lstmkit.data.scaling import StandardScaler
from lstmkit.data.split import chronological_split, resolve_size
from lstmkit.data.timeseries import Prepared, SeriesSpec, read_frame
from lstmkit.data.windows import make_windows, window_origins, windows_to_series


@pytest.mark.parametrize("mod", [missing, scaling, season, split, timeseries, windows])
def test_docstring_examples_hold(mod):
    assert doctest.testmod(mod).failed == 0


@pytest.mark.parametrize("stride", [1, 2, 5])
def test_windows_round_trip_to_the_series(stride):
    rng = np.random.default_rng(0)
    s = rng.normal(size=(40, 3))
    x, y, origins = make_windows(s, s[:, 0], input_len=5, horizon=3, stride=stride)
    back = windows_to_series(x, stride)
    np.testing.assert_array_equal(back, s[:len(back)])
    for w, t in enumerate(origins):  # targets are the h values right after each origin
        np.testing.assert_array_equal(y[w], s[t + 1:t + 4, 0])
        np.testing.assert_array_equal(x[w, -1], s[t])


def test_window_origins_respect_bounds_and_short_series_raise():
    o = window_origins(20, 4, 2, first=10, last=15)
    assert o.min() == 10 and o.max() == 15
    with pytest.raises(ValueError, match="shorter than input_len"):
        make_windows(np.zeros((5, 1)), np.zeros(5), input_len=4, horizon=2)


def test_scaler_fits_on_train_only_and_inverts():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(100, 2))
    x[:, 1] = 7.0  # constant column: scale 1, no division by zero
    tr, _, _ = chronological_split(100, test_size=20, val_size=10)
    s = StandardScaler().fit(x[tr])
    np.testing.assert_allclose(s.mean_, x[tr].mean(axis=0))
    np.testing.assert_allclose(s.inverse_transform(s.transform(x)), x)
    s2 = StandardScaler().load_state_dict(s.state_dict())
    np.testing.assert_array_equal(s2.transform(x), s.transform(x))


def test_split_sizes_as_counts_or_fractions():
    assert chronological_split(100, 0.2, 0.1) == (slice(0, 70), slice(70, 80), slice(80, 100))
    assert resolve_size(15, 100, "test_size") == 15
    with pytest.raises(ValueError, match="test_size"):
        resolve_size(1.5, 100, "test_size")
    with pytest.raises(ValueError, match="leave"):
        chronological_split(10, 6, 4)


@pytest.mark.parametrize("method", ["ffill", "interpolate"])
def test_missing_indicator_marks_exactly_the_imputed_points(method):
    rng = np.random.default_rng(2)
    v = rng.normal(size=(50, 3))
    holes = rng.random(v.shape) < 0.2
    holes[0, 0] = True  # a leading gap
    v[holes] = np.nan
    filled, ind = impute(v, method)
    np.testing.assert_array_equal(ind.astype(bool), holes)
    np.testing.assert_array_equal(filled[~holes], v[~holes])
    assert np.isfinite(filled).all()
    if method == "ffill":
        i, j = np.argwhere(holes[1:, :] & ~holes[:-1, :])[0] + [1, 0]
        assert filled[i, j] == v[i - 1, j]


def test_all_nan_column_is_named():
    v = np.ones((5, 2))
    v[:, 1] = np.nan
    with pytest.raises(ValueError, match="temp: every value is missing"):
        impute(v, names=["y", "temp"])


def _frame(n=10):
    return pd.DataFrame({"t": pd.date_range("2020-01-01", periods=n, freq="D"),
                         "y": np.arange(n, dtype=float), "c": ["a"] * n})


@pytest.mark.parametrize("change, kw, msg", [
    (None, dict(target="nope"), "'nope': not in the data"),
    (None, dict(target="c"), "'c': expected numbers"),
    ("unsorted", dict(target="y", time="t"), "sorted"),
    ("dup", dict(target="y", time="t"), "unique"),
])
def test_bad_frames_raise_clear_errors(change, kw, msg):
    df = _frame()
    if change == "unsorted":
        df = df.iloc[::-1]
    if change == "dup":
        df.loc[3, "t"] = df.loc[2, "t"]
    with pytest.raises(ValueError, match=msg):
        read_frame(df, **kw)


def test_differencing_forecasts_a_trend_beyond_the_training_range():
    # a rising series: test levels lie far above anything seen in training
    n = 300
    t = np.arange(n, dtype=float)
    y = 0.5 * t + np.sin(2 * np.pi * t / 12)
    spec = SeriesSpec(target="y", input_len=12, horizon=4)
    tr = slice(0, 200)
    prep = Prepared(spec, y[:, None], None, scaler=None, train=tr)
    assert y[250:].min() > y[tr].max()
    # ...but the model's inputs there stay within the range it was trained on
    f_train, f_test = prep.features[1:200, 0], prep.features[250:, 0]
    assert f_train.min() - 1e-6 <= f_test.min() and f_test.max() <= f_train.max() + 1e-6
    # and the true target path maps back exactly to the true future levels
    origins = np.arange(250, n - 4)
    w = prep.windows(origins, 12, 4)
    want = y[origins[:, None] + np.arange(1, 5)]
    np.testing.assert_allclose(w.to_levels(w.z.astype(np.float64)), want, atol=1e-4)
    np.testing.assert_allclose(w.x[:, :, 0], prep.d_scaled[origins[:, None] + np.arange(-11, 1)])


@pytest.mark.parametrize("transform", ["diff", "level", "sdiff"])
def test_windows_see_only_the_past_and_invert_exactly(transform):
    rng = np.random.default_rng(3)
    y = 50 + rng.normal(size=120).cumsum()
    spec = SeriesSpec(target="y", input_len=10, horizon=3, transform=transform, season=4)
    prep = Prepared(spec, y[:, None], None, scaler=None, train=slice(0, 80))
    origins = np.array([20, 60, 100])
    w = prep.windows(origins, 10, 3)
    want = y[origins[:, None] + [1, 2, 3]]
    np.testing.assert_allclose(w.to_levels(w.z.astype(np.float64)), want, atol=1e-4)
    changed = y.copy()
    changed[101:] += 1e3  # the future after the last origin must not change its inputs
    w2 = Prepared(spec, changed[:, None], None, scaler=None, train=slice(0, 80)).windows(origins, 10, 3)
    np.testing.assert_array_equal(w2.x, w.x)


def test_integer_year_column_is_parsed_as_years_not_nanoseconds():
    df = pd.DataFrame({"year": np.arange(1749, 1749 + 40), "y": np.arange(40.0)})
    _, times = read_frame(df, "y", "year")
    assert times[0] == pd.Timestamp("1749-01-01") and times[-1] == pd.Timestamp("1788-01-01")
    assert timeseries.infer_freq(times).startswith("YS")
    assert timeseries.calendar_features(times).size == 0  # the same day of year on every row
    for text, first in [(["1990Q1", "1990Q2", "1990Q3"], "1990-04-01"), (["Q1 1965", "Q2 1965", "Q3 1965"],
                        "1965-04-01"), (["1939 Jan", "1939 Feb", "1939 Mar"], "1939-02-01")]:
        _, t = read_frame(pd.DataFrame({"t": text, "y": [1.0, 2.0, 3.0]}), "y", "t")
        assert t[1] == pd.Timestamp(first)
    with pytest.raises(ValueError, match="expected timestamps, years"):
        read_frame(pd.DataFrame({"t": [5, 6, 7], "y": [1.0, 2.0, 3.0]}), "y", "t")
