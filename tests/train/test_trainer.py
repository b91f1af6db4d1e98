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
