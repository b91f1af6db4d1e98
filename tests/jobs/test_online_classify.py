"""Online classification: test-then-train order, a reservoir of the past only, recovery after an
injected label permutation, determinism."""

import numpy as np
import pytest
import torch

from lstmkit.jobs import online_classify as oc


def _stream(n=120, T=8, seed=0):
    """Two classes: a rising or a falling ramp, with noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    ramp = np.linspace(-1, 1, T)
    xs = [((1 if v else -1) * ramp + 0.3 * rng.standard_normal(T))[:, None] for v in y]
    return xs, np.array(["up" if v else "down" for v in y])


def _learner_run(xs, ys, cfg):
    torch.manual_seed(0)
    lr = oc.OnlineClassifier(oc.new_model(cfg, 1, 2), cfg)
    for i in range(5):
        lr.remember(i, torch.from_numpy(xs[i].astype(np.float32)), int(ys[i]))
    preds, buffers = [], []
    for i in range(5, len(ys)):
        buffers.append((i, [b[0] for b in lr.buffer]))
        preds.append(lr.observe(i, torch.from_numpy(xs[i].astype(np.float32)), int(ys[i])))
    return lr, preds, buffers


def test_prediction_never_depends_on_its_own_label_and_replay_is_the_past():
    xs, labels = _stream(40)
    ys = (labels == "up").astype(int)
    cfg = oc.OnlineClassifyConfig(hidden_size=4, update_every=1, update_steps=1, window=4, replay=3,
                                  buffer=6, online_lr=0.05, drift_threshold=0.5, drift_steps=2)
    lr, preds, buffers = _learner_run(xs, ys, cfg)
    assert lr.updates and lr.alarms  # it learned after every example, drift updates included
    for i, held in buffers:  # when example i arrives, the reservoir holds earlier examples only
        assert held and max(held) < i
    assert len(lr.buffer) == cfg.buffer  # and it is a bounded reservoir, not the whole past
    for i in (10, 25):
        flipped = ys.copy()
        flipped[i] = 1 - flipped[i]
        lr2, preds2, _ = _learner_run(xs, flipped, cfg)
        k = i - 5
        assert preds2[:k + 1] == preds[:k + 1]  # the prediction of i (and before) is unchanged
        w1, w2 = lr.model.heads[0].weight, lr2.model.heads[0].weight
        assert not torch.equal(w1, w2)  # the label was learned from, after it was predicted


def test_run_predicts_before_learning_for_every_model():
    xs, labels = _stream(60)
    cfg = oc.OnlineClassifyConfig(hidden_size=4, warmup=20, fit_epochs=2, holdout=0.0, rolling=5,
                                  drift="none", change_point=None, update_every=1,
                                  retrain_every=5, seed=3)
    r = oc.run(xs, labels, cfg)
    order = np.random.default_rng(3).permutation(60)  # the stream order (holdout 0)
    i = 33
    flipped = labels.copy()
    flipped[order[i]] = "up" if labels[order[i]] == "down" else "down"
    r2 = oc.run(xs, flipped, cfg)
    k = i - 20  # warm-up 20
    for m in oc.MODELS:
        assert r2["preds"][m][:k + 1] == r["preds"][m][:k + 1], m
        # the same prediction is scored against the flipped label: the right example was flipped
        assert r2["correct"][m][k] != r["correct"][m][k], m
        assert r2["correct"][m][:k] == r["correct"][m][:k], m


def test_online_beats_frozen_after_a_label_permutation_and_is_deterministic():
    xs, labels = _stream(160)
    cfg = oc.OnlineClassifyConfig(hidden_size=8, warmup=30, fit_epochs=40, lr=1e-2, holdout=0.1,
                                  rolling=10, drift="permute", change_point=70, buffer=30, window=6,
                                  replay=4, online_lr=5e-2, models=["frozen", "online"], seed=1)
    r = oc.run(xs, labels, cfg)
    assert r["acc_before"]["frozen"] > 0.8  # the task is learnt before the change
    assert r["acc_after"]["frozen"] < 0.2  # the permutation makes the old model wrong
    assert r["acc_after"]["online"] > r["acc_after"]["frozen"] + 0.4
    assert r["alarms"]["online"] and min(r["alarms"]["online"]) >= 70  # drift seen, after it
    assert r["recovery_steps"]["online"] is not None and r["recovery_steps"]["frozen"] is None
    assert r["holdout_new"]["online"] > r["holdout_new"]["frozen"]
    again = oc.run(xs, labels, cfg)
    assert again["correct"] == r["correct"] and again["holdout_old"] == r["holdout_old"]
    assert "frozen" in oc.format_table(r)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="drift: expected one of"):
        oc.OnlineClassifyConfig(drift="flip")
    with pytest.raises(ValueError, match="models: expected some of"):
        oc.OnlineClassifyConfig(models=["oracle"])
    xs, labels = _stream(40)
    with pytest.raises(ValueError, match="change_point"):
        oc.run(xs, labels, oc.OnlineClassifyConfig(warmup=10, change_point=5, holdout=0.0))
    with pytest.raises(ValueError, match="series: expected >= 20"):
        oc.run(xs[:10], labels[:10], oc.OnlineClassifyConfig())
    with pytest.raises(ValueError, match="dataset: expected a series problem"):
        oc.classify_online("fortunes")


def test_cli_online_builds_the_config(monkeypatch):
    from lstmkit.cli import main

    got = {}
    monkeypatch.setattr(oc, "classify_online", lambda dataset, **kw: got.update(dataset=dataset, **kw))
    assert main(["classify", "online", "--dataset", "gunpoint", "--drift", "permute",
                 "--change-point", "0.6", "--replay", "0", "--hidden-size", "8",
                 "--no-baselines", "--out", "x"]) == 0
    cfg = got["config"]
    assert got["dataset"] == "gunpoint" and got["out"] == "x"
    assert (cfg.drift, cfg.change_point, cfg.replay, cfg.hidden_size) == ("permute", 0.6, 0, 8)
    assert "1nn" not in cfg.models and "retrain" in cfg.models


def test_cli_online_defaults_are_the_config_defaults(monkeypatch):
    from lstmkit.cli import main

    got = {}
    monkeypatch.setattr(oc, "classify_online", lambda dataset, **kw: got.update(kw))
    assert main(["classify", "online"]) == 0
    assert got["config"] == oc.OnlineClassifyConfig()  # every field: --help and the job agree
