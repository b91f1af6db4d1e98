import json
import os

import numpy as np
import pandas as pd
import pytest

from lstmkit.cli import build_parser, main
from lstmkit.cli.forecast import config_from_args
from lstmkit.jobs.forecast import train
from lstmkit.jobs.forecast_baselines import ets_forecast, seasonal_naive_forecast
from lstmkit.train.checkpoint import load_checkpoint

FAST = ["--horizon", "3", "--input-len", "14", "--test-size", "30", "--val-size", "20",
        "--epochs", "3", "--hidden-size", "8", "--no-progress", "--no-search"]


def _csv(path, n=160, holes=True, **changes):
    rng = np.random.default_rng(0)
    t = np.arange(n)
    df = pd.DataFrame({
        "day": pd.date_range("2021-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "sales": 10 + 0.05 * t + np.sin(2 * np.pi * t / 7) + 0.1 * rng.normal(size=n),
        "temp": rng.normal(size=n),
    })
    if holes:
        df.loc[[20, 21, 90], "sales"] = np.nan
    for col, fn in changes.items():
        df = fn(df) if col == "frame" else df.assign(**{col: fn(df)})
    df.to_csv(path, index=False)
    return str(path)


def test_small_run_writes_all_four_models_plot_and_checkpoint_then_predicts(tmp_path, capsys):
    csv = _csv(tmp_path / "s.csv")
    out = tmp_path / "run"
    argv = ["forecast", "--csv", csv, "--target", "sales", "--time", "day", "--covariates", "temp",
            *FAST, "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    m = json.loads((out / "metrics.json").read_text())
    for name in ("lstm", "naive", "seasonal_naive", "ets", "arima", "theta"):
        assert {"mae", "rmse", "mape", "smape", "mase"} <= set(m[name]), name
        assert np.isfinite(list(m[name].values())).all()
        assert name in printed
    assert {"coverage_80", "pinball", "crps"} <= set(m["lstm"])
    assert json.loads((out / "config.json").read_text())["season"] == 7  # daily data, weekly cycle
    assert (out / "forecast.png").read_bytes()[:4] == b"\x89PNG"
    again = config_from_args(build_parser().parse_args(["forecast", "--config", str(out / "config.json")]))
    assert again.to_dict() == json.loads((out / "config.json").read_text())  # a run's config reproduces it
    ck = load_checkpoint(out / "model.pt")
    assert ck["forecast_config"]["covariates"] == ["temp"] and ck["model_config"]["horizon"] == 3
    assert len(list((out / "train").glob("model-0-*/metrics.csv"))) == 1  # the Trainer's log
    assert not [f for f in os.listdir(out) if f.startswith(".")]  # no leftover work dirs

    assert main(["forecast", "predict", "--checkpoint", str(out), "--csv", csv,
                 "--out", str(tmp_path / "pred")]) == 0
    lines = (tmp_path / "pred" / "predictions.csv").read_text().strip().splitlines()
    assert lines[0] == "day,sales_forecast,q0.1,q0.5,q0.9" and len(lines) == 4
    assert lines[1].startswith("2021-06-10")  # the day after the last row (2021-06-09)


def test_parser_accepts_both_forms():
    p = build_parser()
    assert p.parse_args(["forecast", "--horizon", "4"]).action == "train"
    a = p.parse_args(["forecast", "predict", "--checkpoint", "d", "--csv", "x.csv"])
    assert a.action == "predict" and a.checkpoint == "d"


def test_config_file_sets_fields_flags_win_and_unknown_keys_are_named(tmp_path, capsys):
    toml = tmp_path / "f.toml"
    toml.write_text('horizon = 5\nmode = "recursive"\nquantiles = [0.2, 0.8]\nout = "x"\n')
    parse = build_parser().parse_args
    cfg = config_from_args(parse(["forecast", "--config", str(toml)]))
    assert (cfg.horizon, cfg.mode, cfg.quantiles, cfg.out) == (5, "recursive", [0.2, 0.5, 0.8], "x")
    cfg = config_from_args(parse(["forecast", "--config", str(toml), "--horizon", "7", "--out", "y"]))
    assert (cfg.horizon, cfg.mode, cfg.out) == (7, "recursive", "y")  # a given flag wins
    assert config_from_args(parse(["forecast"])).horizon == 13  # no file: the defaults
    toml.write_text("horizn = 5\n")
    assert main(["forecast", "--config", str(toml), "--out", str(tmp_path / "run")]) == 2
    assert "unknown field(s) ['horizn']" in capsys.readouterr().err
    assert main(["forecast", "online", "--config", str(toml)]) == 2
    assert "--config: only for forecast train" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("change, extra, msg", [
    ({}, ["--target", "nope"], "'nope': not in the data"),
    ({"temp": lambda d: ["warm"] * len(d)}, [], "'temp': expected numbers"),
    ({"frame": lambda d: d.iloc[::-1]}, [], "sorted"),
    ({"frame": lambda d: pd.concat([d.iloc[:5], d.iloc[4:]])}, [], "unique"),
    ({"temp": lambda d: [np.nan] * len(d)}, [], "temp: every value is missing"),
    ({"frame": lambda d: d.iloc[:12]}, [], "expected at least"),
    ({}, ["--quantiles", "0.1,1.5"], "quantiles: expected levels strictly between 0 and 1"),
    ({}, ["--season", "500"], "season: expected a period shorter than the series"),
])
def test_bad_input_gives_a_clear_error_and_no_files(tmp_path, capsys, change, extra, msg):
    csv = _csv(tmp_path / "bad.csv", **change)
    out = tmp_path / "run"
    args = ["forecast", "--csv", csv, "--target", "sales", "--time", "day", "--covariates", "temp",
            *FAST, "--out", str(out)] + extra
    assert main(args) == 2
    assert msg in capsys.readouterr().err
    assert not out.exists()


def test_unwritable_out_gives_a_clear_error(tmp_path, capsys):
    csv = _csv(tmp_path / "s.csv")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (blocker, blocker / "sub"):
        assert main(["forecast", "--csv", csv, "--target", "sales", *FAST, "--out", str(out)]) == 2
        assert "out" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["file", "s.csv"]


def test_baselines_use_only_data_up_to_the_origin():
    level = np.arange(100, dtype=float) ** 1.1
    origins = np.array([60, 70])
    sn = seasonal_naive_forecast(level, origins, 5, season=3)
    np.testing.assert_array_equal(sn[0], level[[58, 59, 60, 58, 59]])
    a = ets_forecast(level, 50, origins, 4, 1)
    changed = level.copy()
    changed[71:] = -1e6  # the future after the last origin must not matter
    np.testing.assert_array_equal(ets_forecast(changed, 50, origins, 4, 1), a)


def test_default_co2_run_lstm_beats_the_baselines(tmp_path):
    """The README's main job end to end on the bundled weekly Mauna Loa CO2 (without the search,
    to keep the suite short; `make run` searches)."""
    args = build_parser().parse_args(["forecast", "--no-progress", "--no-search", "--epochs", "15",
                                      "--eval-stride", "4", "--out", str(tmp_path)])
    res = train(config_from_args(args), echo=lambda *_: None, log=lambda *_: None)
    m = res.metrics
    assert res.config.season == 52 and res.config.input_len == 52 and res.choices["n_test"] == 104
    for base in ("seasonal_naive", "ets", "arima", "theta"):
        assert m["lstm"]["mase"] < m[base]["mase"], base
