"""Tuning: the study resumes from its file with no trial lost or repeated (a killed worker's
trial runs again with its parameters); every rank of a data-parallel run trains the same trial
parameters."""

import json
import os

import numpy as np
import optuna
import pandas as pd
import pytest

from lstmkit.jobs import tune
from lstmkit.train.distributed import spawn


@pytest.fixture
def series_csv(tmp_path):
    rng = np.random.default_rng(0)
    t = np.arange(160)
    y = 10 + 0.05 * t + np.sin(2 * np.pi * t / 12) + 0.2 * rng.standard_normal(160)
    path = tmp_path / "s.csv"
    pd.DataFrame({"t": t, "y": y}).to_csv(path, index=False)
    return str(path)


def _cfg(csv, out, trials, **kw):
    base = dict(csv=csv, target="y", horizon=4, season=12, epochs=2, quantiles=None, patience=2)
    return tune.TuneConfig(job="forecast", trials=trials, seeds=1, final=False, base=base,
                           out=str(out), **kw)


def _trials(out):
    study = optuna.load_study(study_name="tune-forecast", storage=f"sqlite:///{out}/study.db")
    return study.trials


@pytest.mark.slow
def test_study_resumes_from_its_file_without_losing_or_repeating_a_trial(series_csv, tmp_path):
    out = tmp_path / "t"
    quiet = dict(echo=lambda *_: None, log=lambda *_: None)
    first = tune.run(_cfg(series_csv, out, 2), **quiet)
    before = [(t.number, t.params, t.value) for t in _trials(out)]
    assert len(before) == 2 and first["finished"] == 2
    second = tune.run(_cfg(series_csv, out, 4), **quiet)  # a later session, same file
    after = _trials(out)
    assert [t.number for t in after] == [0, 1, 2, 3]
    assert [(t.number, t.params, t.value) for t in after[:2]] == before  # kept, not rerun
    assert all(t.state.is_finished() for t in after)
    scored = [c for c in second["calls"] if c[0] == "score" and c[1][2].startswith("trial-")]
    assert [c[1][2] for c in scored] == ["trial-0002", "trial-0003"]  # only the missing ones
    files = sorted(os.listdir(out / "trials"))
    assert files == ["0000.json", "0001.json", "0002.json", "0003.json"]
    rec = json.loads((out / "trials" / "0003.json").read_text())
    assert rec["config"]["lr"] == rec["params"]["lr"] and rec["value"] == after[3].value
    summary = json.loads((out / "tune.json").read_text())
    assert summary["best_trial"] in (0, 1, 2, 3) and summary["finished"] == 4
    assert os.path.exists(out / "history.png")
    # asking for what the study already holds trains nothing new
    third = tune.run(_cfg(series_csv, out, 4), **quiet)
    assert not [c for c in third["calls"] if c[1][2].startswith("trial-")]


@pytest.mark.slow
def test_every_rank_trains_the_same_trial_parameters(series_csv, tmp_path):
    out = tmp_path / "ddp"
    cfg = _cfg(series_csv, out, 2)
    cfg.base["batch_size"] = 32
    spawn(tune._ranks_check, 2, cfg, timeout=240)
    r0 = json.loads((out / "rank0.json").read_text())
    r1 = json.loads((out / "rank1.json").read_text())
    assert len(r0) >= 2 and r0 == r1
    assert len({json.dumps(c[1][0], sort_keys=True) for c in r0 if c[1][2].startswith("trial-")}) == 2


def test_pruner_and_job_are_checked():
    with pytest.raises(ValueError, match="job: expected one of"):
        tune.TuneConfig(job="speech")
    with pytest.raises(ValueError, match="pruner"):
        tune.TuneConfig(pruner="hyperband")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Heartbeat of storage")  # the test asks outside optimize()
def test_a_killed_workers_trial_is_retried_with_its_parameters(series_csv, tmp_path):
    import sqlalchemy

    out = tmp_path / "k"
    quiet = dict(echo=lambda *_: None, log=lambda *_: None)
    tune.run(_cfg(series_csv, out, 1), **quiet)
    url = f"sqlite:///{out}/study.db"
    # a worker took a trial and died: RUNNING, with a heartbeat long gone
    storage = tune._storage(url)
    study = optuna.load_study(study_name="tune-forecast", storage=storage)
    task = tune.ForecastTask(_cfg(series_csv, out, 1).base, str(tmp_path / "w"))
    trial = study.ask()
    params = task.suggest(trial)
    storage.record_heartbeat(trial._trial_id)
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as con:
        con.execute(sqlalchemy.text("UPDATE trial_heartbeats SET heartbeat = '2000-01-01 00:00:00'"))
    engine.dispose()
    tune.run(_cfg(series_csv, out, 2), **quiet)
    trials = _trials(out)
    assert trials[trial.number].state == optuna.trial.TrialState.FAIL
    retried = [t for t in trials if t.number > trial.number and t.state.is_finished()
               and t.state != optuna.trial.TrialState.FAIL]
    assert retried and retried[0].params == params  # the lost trial ran again, same parameters
    assert len(tune.finished(study)) == 2
