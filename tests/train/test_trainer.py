import csv

import pytest
import torch
from torch import nn

from lstmkit import LSTM
from lstmkit.train.trainer import NonFiniteError, TrainConfig, Trainer


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = LSTM(2, 8, batch_first=True, recurrent_dropout=0.2)
        self.drop = nn.Dropout(0.3)  # randomness that must be replayed exactly on resume
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        y, _ = self.lstm(x)  # (B, T, H)
        return self.head(self.drop(y[:, -1])).squeeze(-1)


def _loaders():
    g = torch.Generator().manual_seed(123)
    x = torch.randn(96, 6, 2, generator=g)
    y = x[:, :, 0].sum(1)
    ds = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.DataLoader(ds, batch_size=16, shuffle=True)
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:32], y[:32]), batch_size=32)
    return train, val


def mse(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def _fit(out_dir, loss_fn=mse, epochs=4, **kw):
    torch.manual_seed(0)
    model = Tiny()
    cfg = TrainConfig(epochs=epochs, lr=1e-2, seed=7, patience=None, progress=False, **kw)
    tr = Trainer(model, loss_fn, cfg, out_dir)
    tr.fit(*_loaders())
    return model, tr


def test_resumed_run_ends_exactly_where_an_uninterrupted_run_ends(tmp_path):
    full, _ = _fit(tmp_path / "a")

    calls = {"n": 0}

    def crashing(model, batch):  # dies in the middle of epoch 3 (6 training batches per epoch)
        if model.training:
            calls["n"] += 1
            if calls["n"] == 15:
                raise KeyboardInterrupt("simulated crash")
        return mse(model, batch)

    with pytest.raises(KeyboardInterrupt):
        _fit(tmp_path / "b", loss_fn=crashing)
    resumed, tr = _fit(tmp_path / "b")  # fresh model, resumes from last.pt (after epoch 2)
    assert tr.epoch == 4 and tr.step == 24
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    with open(tmp_path / "b" / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]


def test_training_lowers_the_validation_loss_and_logs_it(tmp_path):
    _, tr = _fit(tmp_path, epochs=3, resume=False)
    assert tr.history[-1]["val_loss"] < tr.history[0]["val_loss"]
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()


def test_nan_loss_stops_with_a_clear_message(tmp_path):
    def nan_loss(model, batch):
        return mse(model, batch) * float("nan")

    with pytest.raises(NonFiniteError, match="loss is nan at epoch 1, step 1.*learning rate"):
        _fit(tmp_path, loss_fn=nan_loss)


def test_early_stopping_when_validation_does_not_improve(tmp_path):
    def flat_val(model, batch):
        loss = mse(model, batch)
        return loss if model.training else loss.detach() * 0 + 1.0

    torch.manual_seed(0)
    cfg = TrainConfig(epochs=20, patience=2, progress=False)
    tr = Trainer(Tiny(), flat_val, cfg, tmp_path)
    tr.fit(*_loaders())
    assert tr.stopped_early and tr.epoch == 3  # best at epoch 1, then 2 epochs without gain


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="schedule"):
        TrainConfig(schedule="linear")


# --- the one-loop Trainer: step-based schedules, accumulation, callbacks, stateful TBPTT -------
def _plain_loaders(batch_size=16, shuffle=False):
    g = torch.Generator().manual_seed(5)
    x = torch.randn(64, 6, 2, generator=g)
    y = x[:, :, 0].sum(1)
    ds = torch.utils.data.TensorDataset(x, y)
    return (torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle),
            torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x[:16], y[:16]), batch_size=16))


class NoDrop(Tiny):
    def __init__(self):
        super().__init__()
        self.lstm = LSTM(2, 8, batch_first=True)
        self.drop = nn.Identity()


def test_step_based_schedule_validates_every_n_steps(tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(max_steps=10, val_every=4, lr=1e-2, patience=None, progress=False)
    tr = Trainer(Tiny(), mse, cfg, tmp_path)
    hist = tr.fit(*_plain_loaders())  # 4 batches per epoch
    assert tr.step == 10 and [r["step"] for r in hist] == [4, 8, 10]  # and once at the end
    assert [r["epoch"] for r in hist] == [1, 2, 2.5]
    assert all(r["val_loss"] is not None for r in hist)
    with open(tmp_path / "metrics.csv") as f:
        assert [r["step"] for r in csv.DictReader(f)] == ["4", "8", "10"]


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    def run(batch_size, accum, out, batch_sampler=None, clip=0.5):
        torch.manual_seed(0)
        model = NoDrop()
        cfg = TrainConfig(epochs=2, lr=1e-2, patience=None, progress=False, grad_accum=accum,
                          clip_grad_norm=clip)
        train, val = _plain_loaders(batch_size)
        if batch_sampler is not None:
            train = torch.utils.data.DataLoader(train.dataset, batch_sampler=batch_sampler)
        Trainer(model, mse, cfg, out).fit(train, val)
        return model

    def same(a_model, b_model):
        for (name, a), (_, b) in zip(a_model.state_dict().items(), b_model.state_dict().items()):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)

    same(run(32, 1, tmp_path / "big"), run(8, 4, tmp_path / "acc"))
    # 4 batches of 16 with accum 3: a group of 3 (48 examples) and a short group of 1 (16) per
    # epoch, each averaged over its own size == batches of 48 and 16 without accumulation
    # (no clipping here: a clipped norm would hide a wrongly scaled short group)
    uneven = [list(range(0, 48)), list(range(48, 64))]
    same(run(16, 3, tmp_path / "odd", clip=None),
         run(16, 1, tmp_path / "uneven", batch_sampler=uneven, clip=None))


def test_callbacks_see_every_step_and_validation_and_can_stop(tmp_path):
    from lstmkit.train.trainer import Callback

    class Spy(Callback):
        def __init__(self):
            self.steps, self.vals = [], []

        def on_step(self, trainer, loss):
            self.steps.append((trainer.step, loss))

        def on_validation(self, trainer, record):
            self.vals.append(record["step"])

        def should_stop(self, trainer):
            return trainer.step >= 7  # e.g. an Optuna pruner

    torch.manual_seed(0)
    spy = Spy()
    cfg = TrainConfig(max_steps=100, val_every=3, progress=False, patience=None)
    tr = Trainer(Tiny(), mse, cfg, tmp_path, callbacks=[spy])
    hist = tr.fit(*_plain_loaders())
    assert [s for s, _ in spy.steps] == list(range(1, 8)) and all(v > 0 for _, v in spy.steps)
    assert spy.vals == [3, 6, 7]  # a last validation scores the weights it stops with
    assert tr.stopped_early and tr.stop_reason == "callback" and hist[-1]["stopped"] == "callback"


def test_restore_best_puts_the_best_validated_weights_back(tmp_path):
    vals = iter([3.0, 1.0, 2.0, 4.0])

    def scripted_eval(model, loader):
        return next(vals)

    torch.manual_seed(0)
    cfg = TrainConfig(max_steps=8, val_every=2, progress=False, patience=None, restore_best=True)
    seen = {}

    class Grab:
        def on_validation(self, trainer, record):
            seen[record["step"]] = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    model = Tiny()
    tr = Trainer(model, mse, cfg, tmp_path, eval_fn=scripted_eval, callbacks=[Grab()])
    tr.fit(*_plain_loaders())
    assert tr.best_val == 1.0
    for name, v in model.state_dict().items():
        assert torch.equal(v, seen[4][name]), name  # the weights validated at step 4


class Streamer(nn.Module):
    """A stateful toy: predicts the next value of a stream, state carried across batches."""

    def __init__(self):
        super().__init__()
        self.lstm = LSTM(1, 6, batch_first=True, recurrent_dropout=0.2)
        self.head = nn.Linear(6, 1)

    def forward(self, x, hx=None):
        y, hx = self.lstm(x, hx)  # (B, T, H)
        return self.head(y), hx


def stream_loss(model, batch, hx):
    x, y = batch
    pred, hx = model(x, hx)
    return nn.functional.mse_loss(pred, y), hx


def _stream_loader():
    t = torch.arange(4 * 41, dtype=torch.float32)
    s = torch.sin(0.3 * t).view(4, 41, 1)  # 4 parallel streams (B, T, 1)
    return [(s[:, i:i + 8], s[:, i + 1:i + 9]) for i in range(0, 40, 8)]  # 5 chunks of 8


def test_stateful_batches_carry_the_state_and_resume_mid_epoch_exactly(tmp_path):
    seen = []

    def spying_loss(model, batch, hx):
        if model.training:
            seen.append(hx)
        return stream_loss(model, batch, hx)

    def fit(out, loss_fn):
        torch.manual_seed(0)
        model = Streamer()
        cfg = TrainConfig(max_steps=12, val_every=3, lr=1e-2, seed=3, patience=None, progress=False)
        tr = Trainer(model, loss_fn, cfg, out, stateful=True)
        tr.fit(_stream_loader(), _stream_loader()[:2])
        return model, tr

    full, tr_full = fit(tmp_path / "a", spying_loss)
    assert seen[0] is None and seen[5] is None  # each epoch (5 batches) starts afresh
    assert all(h is not None and not h[0].requires_grad for h in seen[1:5])

    calls = {"n": 0}

    def crashing(model, batch, hx):  # dies at step 8, after the mid-epoch checkpoint of step 6
        if model.training:
            calls["n"] += 1
            if calls["n"] == 8:
                raise KeyboardInterrupt("simulated crash")
        return stream_loss(model, batch, hx)

    with pytest.raises(KeyboardInterrupt):
        fit(tmp_path / "b", crashing)
    resumed, tr = fit(tmp_path / "b", stream_loss)
    assert tr.step == 12
    for (name, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items()):
        assert torch.equal(a, b), name
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in tr_full.history]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in tr.history]


def test_new_options_are_checked():
    for kw, name in [(dict(grad_accum=0), "grad_accum"), (dict(max_steps=0), "max_steps"),
                     (dict(val_every=-1), "val_every"), (dict(max_time=0), "max_time"),
                     (dict(min_lr_ratio=2), "min_lr_ratio")]:
        with pytest.raises(ValueError, match=name):
            TrainConfig(**kw)


def test_patience_first_drops_the_learning_rate_then_stops(tmp_path):
    torch.manual_seed(0)
    cfg = TrainConfig(epochs=20, patience=2, lr_drops=1, lr_drop_factor=0.25, schedule="constant",
                      lr=1e-2, progress=False)
    tr = Trainer(Tiny(), lambda m, b: mse(m, b) if m.training else torch.tensor(1.0), cfg, tmp_path)
    hist = tr.fit(*_plain_loaders())
    assert tr.epoch == 5 and tr.stop_reason == "patience"  # best at 1, drop after 3, stop after 5
    assert hist[2].get("lr_drop") == 1
    assert hist[1]["lr"] == pytest.approx(1e-2) and hist[3]["lr"] == pytest.approx(2.5e-3)


def test_max_time_stops_after_a_last_validation_and_a_rerun_does_not_train_more(tmp_path, monkeypatch):
    import types

    from lstmkit.train import trainer as trainer_mod

    clock = {"t": 0.0}

    def perf_counter():  # a fake clock: every reading is one second later
        clock["t"] += 1.0
        return clock["t"]

    monkeypatch.setattr(trainer_mod, "time", types.SimpleNamespace(perf_counter=perf_counter))
    cfg = TrainConfig(max_steps=1000, val_every=50, max_time=10.0, progress=False, patience=None)
    torch.manual_seed(0)
    tr = Trainer(Tiny(), mse, cfg, tmp_path)
    hist = tr.fit(*_plain_loaders())
    assert tr.stop_reason == "max_time" and tr.step < 20 and hist[-1]["step"] == tr.step
    assert hist[-1]["lr"] < 1e-3 * 0.05  # the cosine followed the clock down
    again = Trainer(Tiny(), mse, cfg, tmp_path)
    again.fit(*_plain_loaders())
    assert again.step == tr.step and again.stop_reason == "max_time"
