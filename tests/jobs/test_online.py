"""Online learning: the carried state is exactly a single offline pass's; the comparison runs."""

import copy

import numpy as np
import pytest
import torch

from lstmkit.jobs import online


def _series(n=160, shift_at=None):
    rng = np.random.default_rng(0)
    y = 5 * np.sin(2 * np.pi * np.arange(n) / 12) + 0.3 * rng.standard_normal(n)
    if shift_at is not None:
        y[shift_at:] += 8
    return y


def test_state_is_carried_across_updates_as_one_offline_pass():
    cfg = online.OnlineConfig(hidden_size=6, update_every=3, update_steps=2, window=7, replay=2,
                              drift_threshold=0.5, drift_delta=0.0, drift_steps=3, seed=1)
    torch.manual_seed(0)
    learner = online.OnlineLearner(online.new_model(cfg), cfg)
    z = torch.randn(40)
    weights, preds = [], []
    for v in z.tolist():
        weights.append(copy.deepcopy(learner.model.state_dict()))  # the weights that read v
        preds.append(learner.observe(v))
    assert learner.updates and learner.alarms  # it did learn (scheduled and drift updates)
    # offline: one pass over the stream, switching to the weights in force at each step
    ref = online.new_model(cfg)
    hx, want = None, [0.0]
    with torch.no_grad():
        for t, v in enumerate(z.tolist()):
            ref.load_state_dict(weights[t])
            y, hx = ref.lstm(torch.tensor([[[v]]]), hx)
            if t + 1 < len(z):
                ref.load_state_dict(weights[t + 1])  # the next prediction uses the next weights
                want.append(float(ref.head(y[:, -1])))
    for a, b in zip(learner.hx, hx):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(torch.tensor(preds), torch.tensor(want), rtol=1e-5, atol=1e-5)
    # without updates the learner is the plain offline pass
    frozen = online.OnlineLearner(online.new_model(cfg), cfg, learn=False)
    p = [frozen.observe(v) for v in z.tolist()]
    with torch.no_grad():
        path, h_end = online.predict_path(frozen.model, z[None])
    torch.testing.assert_close(torch.tensor(p[1:]), path[0, :-1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(frozen.hx[0], h_end[0])


def test_page_hinkley_fires_on_a_rise_only():
    ph = online.PageHinkley(delta=0.05, threshold=2.0)
    assert not any(ph.update(0.1) for _ in range(200))
    assert any(ph.update(1.0) for _ in range(20))


@pytest.mark.slow
def test_online_recovers_from_a_level_shift_faster_than_frozen(tmp_path):
    y = _series(220, shift_at=150)
    cfg = online.OnlineConfig(hidden_size=16, warmup=90, fit_epochs=15, change_point=150,
                              rolling=10, seed=0, models=["frozen", "online"])
    r = online.run(y, cfg)
    assert r["mae_after"]["online"] < r["mae_after"]["frozen"]
    assert set(r["mae"]) == {"frozen", "online"}


def test_bad_config_is_named():
    with pytest.raises(ValueError, match="models: expected some of"):
        online.OnlineConfig(models=["oracle"])
    with pytest.raises(ValueError, match="warmup"):
        online.run(np.arange(20.0), online.OnlineConfig(warmup=19))


def test_cli_online_defaults_are_the_config_defaults(monkeypatch):
    from lstmkit.cli import main

    got = {}
    monkeypatch.setattr(online, "forecast_online", lambda csv, **kw: got.update(kw))
    assert main(["forecast", "online"]) == 0
    assert got["config"] == online.OnlineConfig()  # every field: --help and the job agree
