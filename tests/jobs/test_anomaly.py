"""The anomaly job: thresholds without test labels, repeatable to the bit, a spike found, bad input."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import main
from lstmkit.data.anomaly import AnomalySeries, read_csv
from lstmkit.jobs import anomaly as job

SPIKE = 160  # test index of the inserted spike


def _sine(n_train=480, n_test=320, spike=True, labels=True, noise=0.02, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n_train + n_test)
    x = np.sin(2 * np.pi * t / 24) + noise * rng.normal(size=len(t))
    y = np.zeros(len(t), dtype=int)
    if spike:
        x[n_train + SPIKE] += 2.5
        y[n_train + SPIKE] = 1
    return AnomalySeries("sine", x[:n_train], x[n_train:], y[n_train:] if labels else None,
                         continues=True, train_labels=y[:n_train], offset=n_train)


def _cfg(tmp_path, name="run", **kw):
    base = dict(window=24, hidden_size=12, epochs=4, batch_size=32, max_train_windows=160,
                baselines=False, no_progress=True, out=str(tmp_path / name))
    base.update(kw)
    return job.AnomalyConfig(**base)


@pytest.mark.slow
@pytest.mark.parametrize("detector", ["forecast", "autoencoder"])
def test_detector_trained_on_a_clean_sine_flags_an_inserted_spike_where_it_is(tmp_path, detector):
    res = job.train(_cfg(tmp_path, detector=detector, epochs=6), _sine(), echo=lambda *a: None)
    for name in ("lstm", "lstm_error"):
        score = res.scores[f"score_{name}"].to_numpy()
        assert abs(int(np.argmax(score)) - SPIKE) <= 2, (name, int(np.argmax(score)))
    flagged = np.flatnonzero(res.scores["flagged"].to_numpy())
    assert flagged.size and np.abs(flagged - SPIKE).min() <= 2
    assert res.metrics["lstm"]["ucr_hit"] is True


@pytest.mark.parametrize("detector", ["forecast", "autoencoder"])
def test_two_seeded_runs_give_identical_scores_bit_for_bit(tmp_path, detector):
    runs = [job.train(_cfg(tmp_path, f"r{k}", detector=detector, epochs=2), _sine(),
                      echo=lambda *a: None) for k in range(2)]
    a, b = (r.scores.filter(like="score_").to_numpy() for r in runs)
    assert np.array_equal(a, b)
    c = job.train(_cfg(tmp_path, "r2", detector=detector, epochs=2, seed=1), _sine(),
                  echo=lambda *a: None).scores.filter(like="score_").to_numpy()
    assert not np.array_equal(a, c)  # the seed matters, so the equality above could fail


def test_threshold_and_flags_do_not_depend_on_the_test_labels(tmp_path):
    s = _sine()
    res = job.train(_cfg(tmp_path, "a", detector="forecast", epochs=2), s, echo=lambda *a: None)
    moved = _sine()
    moved.test_labels = np.roll(s.test_labels, 37)  # other test labels, same data
    res2 = job.train(_cfg(tmp_path, "b", detector="forecast", epochs=2), moved, echo=lambda *a: None)
    assert res.threshold == res2.threshold and res.threshold["method"] == "percentile"
    assert np.array_equal(res.scores["flagged"], res2.scores["flagged"])
    assert res.metrics["lstm"]["roc_auc"] != res2.metrics["lstm"]["roc_auc"]  # the labels were used to score


def test_fbeta_threshold_comes_from_the_labelled_validation_series(tmp_path, monkeypatch):
    s = _sine()
    val = _sine(seed=3)
    s.labelled_val = (np.concatenate([val.train, val.test]), np.r_[val.train_labels, val.test_labels])
    seen = {}
    real = job.am.fbeta_threshold

    def spy(scores, labels, beta):
        seen.setdefault("labels", []).append(np.asarray(labels).copy())
        return real(scores, labels, beta)

    monkeypatch.setattr(job.am, "fbeta_threshold", spy)
    res = job.train(_cfg(tmp_path, detector="forecast", epochs=2), s, echo=lambda *a: None)
    assert res.threshold["method"] == "fbeta"
    assert all(np.array_equal(lab, s.labelled_val[1]) for lab in seen["labels"])


def _brute_discord(x, window):
    """A brute-force stand-in for stumpy's matrix profile: stumpy's numba compilation takes a
    minute on the shared test machine; the benchmark (benchmarks/anomaly.py) runs the real one."""
    w = np.lib.stride_tricks.sliding_window_view(x[:, 0], window)
    w = (w - w.mean(1, keepdims=True)) / np.maximum(w.std(1, keepdims=True), 1e-12)
    d = np.sqrt(np.maximum(((w[:, None] - w[None]) ** 2).sum(-1), 0))
    i = np.arange(len(w))
    d[np.abs(i[:, None] - i[None]) < window // 4] = np.inf  # exclusion zone, as stumpy's
    mp = d.min(1)
    return pd.Series(np.r_[mp, np.full(window - 1, np.nan)]).rolling(window, min_periods=1).max().to_numpy()


@pytest.mark.slow
def test_cli_train_with_baselines_then_score_writes_every_artefact(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(job.bl, "discord", _brute_discord)
    s = _sine(n_train=300, n_test=200)
    x = np.concatenate([s.train[:, 0], s.test[:, 0]])
    y = np.r_[s.train_labels, s.test_labels]
    csv = tmp_path / "s.csv"
    pd.DataFrame({"v": x, "is_anomaly": y}).to_csv(csv, index=False)
    out = tmp_path / "run"
    argv = ["anomaly", "train", "--csv", str(csv), "--label", "is_anomaly", "--train-size", "300",
            "--window", "24", "--epochs", "2", "--hidden-size", "8", "--detector", "forecast",
            "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    for name in ("abs_diff", "moving_zscore", "isolation_forest", "discord", "lstm"):
        assert name in printed
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["models"]) >= {"lstm", "lstm_error", "abs_diff", "discord"}
    assert m["threshold"]["method"] == "percentile" and m["window"] == 24
    df = pd.read_csv(out / "scores.csv")
    assert len(df) == 200 and df["index"].iloc[0] == 300 and {"label", "flagged"} <= set(df.columns)
    assert (out / "anomaly.png").stat().st_size > 10_000 and (out / "model.pt").exists()
    # the saved config.json reproduces the run's resolved choices
    from lstmkit.cli import build_parser
    from lstmkit.cli.anomaly import config_from_args

    again = config_from_args(build_parser().parse_args(["anomaly", "--config", str(out / "config.json")]))
    assert again.window == 24 and again.threshold == "percentile" and again.csv == str(csv)
    assert again.label == "is_anomaly" and again.detector == "forecast" and again.out == str(out)
    assert main(["anomaly", "score", "--checkpoint", str(out), "--csv", str(csv), "--label",
                 "is_anomaly", "--out", str(tmp_path / "scored")]) == 0
    scored = pd.read_csv(tmp_path / "scored" / "scores.csv")
    assert len(scored) == 500
    # the same model gives the same scores to the test points once their past is read the same way
    np.testing.assert_allclose(scored["score_lstm"].to_numpy()[300:], df["score_lstm"].to_numpy(),
                               rtol=1e-6)


def test_constant_series_is_refused(tmp_path):
    s = AnomalySeries("flat", np.ones(200), np.ones(100), np.zeros(100))
    with pytest.raises(ValueError, match="train: the series is constant"):
        job.train(_cfg(tmp_path, window=10), s, echo=lambda *a: None)


def test_window_longer_than_the_series_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"window: expected at most half the training data \(240 of 480"):
        job.train(_cfg(tmp_path, window=500), _sine(), echo=lambda *a: None)


def test_labelled_anomalies_in_training_data_are_warned_with_their_count(tmp_path):
    s = _sine()
    s.train_labels = s.train_labels.copy()
    s.train_labels[[10, 11, 50]] = 1
    with pytest.warns(UserWarning, match="train: 3 of 480 training points are labelled anomalous"):
        job.train(_cfg(tmp_path, detector="forecast", epochs=1), s, echo=lambda *a: None)


def test_csv_errors_name_the_argument(tmp_path):
    p = tmp_path / "d.csv"
    pd.DataFrame({"v": np.arange(10.0), "lab": [0, 1, 2] + [0] * 7}).to_csv(p, index=False)
    with pytest.raises(ValueError, match="label: expected 0/1 values in column 'lab'"):
        read_csv(p, label="lab")
    with pytest.raises(ValueError, match="label: expected a column of"):
        read_csv(p, label="nope")
    with pytest.raises(FileNotFoundError, match="csv: no such file"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(ValueError, match="detector: expected one of"):
        job.AnomalyConfig(detector="svm")
    toml = tmp_path / "c.toml"
    toml.write_text('windw = 12\n')
    with pytest.raises(ValueError, match=r"--config: unknown field\(s\) \['windw'\]"):
        job.config_from_flags({}, str(toml))
    toml.write_text('window = 12\nepochs = 3\n')
    assert job.config_from_flags({"epochs": 7}, str(toml)).window == 12  # the file fills defaults
    assert job.config_from_flags({"epochs": 7}, str(toml)).epochs == 7  # a flag wins


def test_catalogue_series_have_their_documented_labels():
    from lstmkit.data import datasets

    warnings.simplefilter("ignore")
    names = set(datasets.names("anomaly"))
    assert {"kdd_tsad_135", "ecg_diff_count_3", "mitdb", "gunpoint_one_class"} <= names
    k = datasets.load("kdd_tsad_135")
    assert k.train.shape == (1200, 1) and k.test_labels.sum() == 12 and k.train_labels.sum() == 0
    m = datasets.load("mitdb")
    assert len(m.train) + len(m.test) == 7500 and m.test_labels.sum() == 352


def test_several_value_columns_go_to_the_autoencoder_and_the_forecaster_refuses_them(tmp_path):
    s = _sine(n_train=240, n_test=200)
    rng = np.random.default_rng(1)
    x = np.concatenate([s.train, s.test])
    p = tmp_path / "two.csv"
    pd.DataFrame({"a": x[:, 0], "b": np.cos(np.arange(len(x)) / 4) + 0.01 * rng.normal(size=len(x)),
                  "y": np.r_[s.train_labels, s.test_labels]}).to_csv(p, index=False)
    two = read_csv(p, label="y", train_size=240)
    assert two.columns == ["a", "b"] and two.train.shape == (240, 2)
    res = job.train(_cfg(tmp_path, epochs=1, window=12), two, echo=lambda *a: None)
    assert {"a", "b", "score_lstm"} <= set(res.scores.columns) and len(res.scores) == 200
    with pytest.raises(ValueError, match="detector: 'forecast' models one channel, got 2"):
        job.train(_cfg(tmp_path, "f", detector="forecast", window=12), two, echo=lambda *a: None)
