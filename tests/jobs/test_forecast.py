import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from lstmkit.data.timeseries import Prepared, SeriesSpec
from lstmkit.jobs import forecast as job
from lstmkit.jobs import forecast_baselines as baselines
from lstmkit.jobs.forecast import ForecastConfig
from lstmkit.models.forecaster import Forecaster, ForecasterConfig
from lstmkit.train.trainer import TrainConfig, Trainer

QUIET = dict(echo=lambda *_: None)


def _run(tmp_path, data, log=None, **kw):
    kw.setdefault("no_progress", True)
    cfg = ForecastConfig(out=str(tmp_path / "run"), **kw)
    return job.train(cfg, data=data, log=(log.append if log is not None else lambda *_: None), **QUIET)


def test_tiny_series_automatic_choices_are_sane_and_reported(tmp_path):
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"year": np.arange(1980, 2016), "y": 100 + rng.normal(size=36).cumsum()})
    log = []
    res = _run(tmp_path, df, log, target="y", time="year", horizon=2, epochs=2, hidden_size=8,
               ensemble=1)
    cfg = res.config
    said = "\n".join(log)
    for name in ("season", "test_size", "val_size", "input_len", "search"):
        assert f"forecast: {name} = " in said, name
    assert cfg.season == 1  # a random walk has no cycle
    assert 2 <= cfg.test_size <= 7 and 2 <= cfg.val_size <= 7  # >= horizon, <= 20% of 36
    n_train = 36 - cfg.test_size - cfg.val_size
    assert 2 <= cfg.input_len <= n_train // 3
    assert cfg.search is True and "search" in said and "chose" in said  # cheap: it searched
    assert res.search and all(np.isfinite(r["val_mase"]) for r in res.search)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["input_len"] == cfg.input_len and saved["transform"] in ("diff", "level")
    for model in ("lstm", "naive", "ets", "arima", "theta"):
        assert np.isfinite(res.metrics[model]["mase"]), model
    ev = job.evaluate(str(tmp_path / "run"), data=df)  # the saved (refitted) run, re-scored
    assert ev["y"]["lstm"] == pytest.approx(res.metrics["lstm"], rel=1e-9, nan_ok=True)


def test_evaluate_reproduces_a_run_trained_without_the_search(tmp_path):
    """Without the search the models are trained (and scored) with the scaler fitted on the
    training split only, not on train + validation: evaluate must rebuild their very inputs."""
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"year": np.arange(1980, 2016), "y": 100 + rng.normal(size=36).cumsum()})
    res = _run(tmp_path, df, target="y", time="year", horizon=2, epochs=2, hidden_size=8,
               search=False, season=1)
    assert res.config.search is False and res.config.transform == "diff"
    ev = job.evaluate(str(tmp_path / "run"), data=df)["y"]["lstm"]
    assert {"mase", "coverage_80", "crps"} <= set(ev)
    # the interval metrics too: the checkpoint keeps the interval scale unrounded
    assert ev == pytest.approx(res.metrics["lstm"], rel=1e-9, nan_ok=True)


def _long_frame(n_series=5, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for k in range(n_series):
        n = 20 + 3 * k
        level = 10 ** (1 + k) * (1 + 0.05 * np.arange(n) + 0.02 * rng.normal(size=n))
        parts.append(pd.DataFrame({"id": f"s{k}", "year": np.arange(1990, 1990 + n), "v": level}))
    return pd.concat(parts, ignore_index=True)


def test_global_model_trains_on_a_long_csv_and_predicts_each_series(tmp_path):
    csv = tmp_path / "long.csv"
    _long_frame().to_csv(csv, index=False)
    res = job.train(ForecastConfig(csv=str(csv), target="v", time="year", id="id", horizon=3,
                                   epochs=3, hidden_size=8, search=False, no_progress=True,
                                   out=str(tmp_path / "run")), log=lambda *_: None, **QUIET)
    assert sorted(res.per_series) == [f"s{k}" for k in range(5)]
    assert res.config.transform == "level"  # per-window scaling for many series
    assert res.choices["n_series"] == 5 and res.config.test_size == 3
    ev = job.evaluate(str(tmp_path / "run"), csv=str(csv))  # no search: each series' train-only scaler
    assert sorted(ev) == sorted(res.per_series)
    for k, v in ev.items():
        assert v["lstm"] == pytest.approx(res.per_series[k]["lstm"], rel=1e-9, nan_ok=True), k
    pred = job.predict(str(tmp_path / "run"), csv=str(csv), out=str(tmp_path / "p"), **QUIET)
    assert sorted(pred) == sorted(res.per_series)
    for k in range(5):  # each on its own scale (per-series scaling): within 2x of its last value
        p, last = pred[f"s{k}"], _long_frame().query(f"id == 's{k}'")["v"].iloc[-1]
        assert p.shape == (3, 3) and np.all(np.abs(p[:, 1] / last - 1) < 1.0)
    text = (tmp_path / "p" / "predictions.csv").read_text().splitlines()
    assert text[0] == "series,year,v_forecast,q0.1,q0.5,q0.9" and len(text) == 1 + 5 * 3


def test_search_bounds_a_longer_input_by_the_shortest_series_own_training_split(tmp_path):
    """Fractional sizes split each series by its own length: the short series (40 points) keeps
    40 - 4 - 4 = 32 training points, room for twice the input length 8 (the first series' sizes,
    20 + 20 of its 200 points, would leave it none and try half instead)."""
    rng = np.random.default_rng(0)
    df = pd.concat([pd.DataFrame({"id": k, "v": 10 + rng.normal(size=n).cumsum()})
                    for k, n in (("long", 200), ("short", 40))])
    cfg = ForecastConfig(target="v", id="id", horizon=3, season=1, test_size=0.1, val_size=0.1,
                         epochs=1, hidden_size=4, transform="level", log=False, search=True,
                         ensemble=1, eval_stride=6, quantiles=None, no_progress=True,
                         out=str(tmp_path / "run"))
    res = job.train(cfg, data=df, log=lambda *_: None, **QUIET)
    assert [r["candidate"] for r in res.search] == ["T=8 level H=4", "T=16 level H=4"]
    assert res.choices["n_test"] == 20  # the first series' test split, as reported before


def test_wide_csv_is_one_series_per_column():
    df = _long_frame(3).pivot(index="year", columns="id", values="v").reset_index()
    series, _ = job.load_series(ForecastConfig(wide=True, time="year", csv="x"), data=df)
    assert [s.name for s in series] == ["s0", "s1", "s2"]
    assert [len(s.values) for s in series] == [20, 23, 26]  # each column's own span


def test_quantiles_never_cross_and_intervals_widen_with_the_horizon(tmp_path):
    rng = np.random.default_rng(1)
    df = pd.DataFrame({"y": 50 + rng.normal(size=400).cumsum()})
    res = _run(tmp_path, df, target="y", horizon=6, epochs=6, hidden_size=16, search=False,
               transform="diff", input_len=12, season=1, test_size=60, val_size=40,
               quantiles=[0.05, 0.25, 0.75, 0.95])
    q = res.forecasts["y"]["lstm_q"]  # (W, h, Q)
    assert q.shape[1:] == (6, 5)  # the median is added
    assert np.all(np.diff(q, axis=-1) >= 0)
    width = (q[..., -1] - q[..., 0]).mean(axis=0)  # (h,)
    assert width[-1] > 1.15 * width[0]  # a random walk's uncertainty grows with the horizon
    assert np.corrcoef(np.arange(6), width)[0, 1] > 0.8
    m = res.metrics["lstm"]
    assert {"coverage_90", "coverage_50", "pinball", "crps"} <= set(m)
    assert 0.0 <= m["coverage_50"] <= m["coverage_90"] <= 1.0


def test_resume_after_an_interruption_equals_an_uninterrupted_run(tmp_path):
    rng = np.random.default_rng(2)
    y = 10 + np.sin(np.arange(200) / 3) + 0.1 * rng.normal(size=200)
    spec = SeriesSpec(target="y", input_len=8, horizon=3)
    prep = Prepared(spec, y[:, None], None, scaler=None, train=slice(0, 150))
    w = prep.windows(np.arange(8, 140), 8, 3)
    ds = torch.utils.data.TensorDataset(*(torch.from_numpy(a) for a in (
        w.x, w.future, w.z, w.step_offset.astype(np.float32))))
    loss = job.make_loss("direct", "diff", [0.1, 0.5, 0.9])

    def run(out, stop_at=None):
        torch.manual_seed(0)
        model = Forecaster(ForecasterConfig(input_size=prep.input_size, horizon=3, hidden_size=8,
                                            quantiles=[0.1, 0.5, 0.9]))
        calls = [0]

        def loss_fn(m, batch):
            calls[0] += 1
            if stop_at is not None and m.training and calls[0] == stop_at:
                raise KeyboardInterrupt  # killed in the middle of epoch 3
            return loss(m, batch)

        loader = torch.utils.data.DataLoader(ds, batch_size=32, shuffle=True)  # the Trainer seeds it
        Trainer(model, loss_fn, TrainConfig(epochs=4, lr=3e-3, progress=False), out).fit(loader)
        return model

    full = run(tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "b", stop_at=11)
    resumed = run(tmp_path / "b")
    for k, v in full.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[k], v)


def test_rerunning_the_same_command_resumes_and_gives_the_same_numbers(tmp_path):
    df = pd.DataFrame({"y": 5 + np.sin(np.arange(120) / 2.0)})
    kw = dict(target="y", horizon=2, epochs=2, hidden_size=8, search=False, season=1)
    a = _run(tmp_path, df, **kw)
    saved = {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("last.pt")}
    assert saved  # the trainings left their checkpoints
    b = _run(tmp_path, df, **kw)  # finished trainings are found and not repeated
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "run").rglob("last.pt")} == saved
    assert a.metrics["lstm"] == b.metrics["lstm"]


@pytest.mark.parametrize("make, msg", [
    (lambda: ForecastConfig(quantiles=[0.1, 1.2]), "quantiles: expected levels strictly between 0 and 1"),
    (lambda: ForecastConfig(quantiles=[0.0, 0.5]), "quantiles"),
    (lambda: ForecastConfig(horizon=0), "horizon: expected an int >= 1"),
    (lambda: ForecastConfig(transform="log"), "transform"),
])
def test_bad_config_is_named(make, msg):
    with pytest.raises(ValueError, match=msg):
        make()


def test_an_id_column_with_one_point_per_series_is_a_clear_error(tmp_path):
    df = pd.DataFrame({"id": [f"s{k}" for k in range(30)], "v": np.arange(30.0)})
    with pytest.raises(ValueError, match="series 's0' has 1 point; expected at least 2"):
        _run(tmp_path, df, target="v", id="id", horizon=2)
    assert not (tmp_path / "run").exists()


def test_a_season_longer_than_the_series_is_a_clear_error(tmp_path):
    df = pd.DataFrame({"y": np.arange(40.0)})
    with pytest.raises(ValueError, match="season: expected a period shorter than the series"):
        _run(tmp_path, df, target="y", horizon=2, season=52)


def test_ets_filter_equals_statsmodels_forecast_from_the_fitted_parameters():
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    rng = np.random.default_rng(0)
    t = np.arange(120)
    y = 10 + 0.1 * t + np.sin(2 * np.pi * t / 12) + 0.2 * rng.normal(size=120)
    origins = np.array([80, 95, 110])
    ours = baselines.ets_forecast(y, 70, origins, 5, 12)
    res, _, _ = baselines._ets_model(y[:70], 12)
    p = res.params
    for i, t0 in enumerate(origins):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = ExponentialSmoothing(
                y[:t0 + 1], trend="add", seasonal="add", seasonal_periods=12, initialization_method="known",
                initial_level=p["initial_level"], initial_trend=p["initial_trend"],
                initial_seasonal=p["initial_seasons"]).fit(
                smoothing_level=p["smoothing_level"], smoothing_trend=p["smoothing_trend"],
                smoothing_seasonal=p["smoothing_seasonal"], optimized=False).forecast(5)
        np.testing.assert_allclose(ours[i], ref, rtol=0, atol=1e-8)


@pytest.mark.parametrize("fn", [baselines.arima_forecast, baselines.theta_forecast, baselines.ets_forecast])
def test_baselines_use_only_data_up_to_each_origin(fn):
    rng = np.random.default_rng(4)
    y = 20 + np.sin(np.arange(90) * 2 * np.pi / 4) + rng.normal(size=90).cumsum() * 0.3
    origins = np.array([60, 70])
    a = fn(y, 55, origins, 3, 4)
    assert np.isfinite(a).all()
    for row, origin in enumerate(origins):  # everything after an origin changed: its row is not
        changed = y.copy()
        changed[origin + 1:] = -1e6
        np.testing.assert_allclose(fn(changed, 55, origins, 3, 4)[row], a[row])


def test_calibration_widens_around_the_median_and_keeps_the_order():
    q = np.array([[[1.0, 2.0, 4.0], [0.0, 1.0, 1.5]]])  # (W=1, h=2, Q=3)
    w = job.widen(q, 2.0, [0.1, 0.5, 0.9])
    np.testing.assert_allclose(w, [[[0.0, 2.0, 6.0], [-1.0, 1.0, 2.0]]])
    assert np.all(np.diff(job.widen(q, 0.5, [0.1, 0.5, 0.9]), axis=-1) >= 0)


def test_mase_scale_falls_back_to_the_naive_error_where_the_seasonal_naive_is_exact():
    # a series that repeats its season exactly: the seasonal naive error is 0, so MASE would be
    # NaN; every scorer (search, test table, evaluate) must fall back to the naive error alike
    y = np.tile([1.0, 3.0, 2.0, 5.0], 5)
    spec = SeriesSpec(target="y", input_len=4, horizon=2, season=4)
    prep = Prepared(spec, y, None, scaler=None, train=slice(0, 16))
    part = job.Part(series=None, prep=prep, train=slice(0, 12), val=slice(12, 16), test=slice(16, 20),
                    origins={})
    assert part.mase_scale(16) == pytest.approx(np.abs(np.diff(y[:16])).mean())
    assert part.actual(np.array([3, 10])).tolist() == [[1.0, 3.0], [5.0, 1.0]]  # y[4:6], y[11:13]


@pytest.mark.parametrize("transform", ["diff", "level", "sdiff"])
def test_log_levels_map_back_to_the_series_exactly(transform):
    # the target path of a log model, taken back through to_levels, is the series itself
    t = np.arange(60)
    y = (100 + 2 * t) * (1 + 0.3 * np.sin(2 * np.pi * t / 6))  # multiplicative season
    spec = SeriesSpec(target="y", input_len=6, horizon=3, season=6, transform=transform, log=True)
    prep = Prepared(spec, y, None, scaler=None, train=slice(0, 40))
    assert np.allclose(prep.level, np.log(y)) and np.array_equal(prep.raw_level, y)
    w = prep.windows(np.array([10, 30, 50]), 6, 3)
    got = w.to_levels(w.z.astype(np.float64))
    np.testing.assert_allclose(got, y[np.array([10, 30, 50])[:, None] + np.arange(1, 4)], rtol=1e-5)


def test_log_refuses_a_target_that_is_not_positive():
    spec = SeriesSpec(target="y", input_len=3, horizon=2, log=True)
    with pytest.raises(ValueError, match=r"log: expected a strictly positive target 'y', got 0.0 at row 2"):
        Prepared(spec, np.array([3.0, 2.0, 0.0, 1.0, 2.0]), None, scaler=None)
    with pytest.raises(ValueError, match="log: expected true, false or None"):
        ForecastConfig(log="yes")
