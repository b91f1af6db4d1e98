"""Forecast weekly Mauna Loa CO2 13 weeks ahead with an LSTM and compare it with the baselines.

Run: ``python examples/forecast_co2.py`` (about half a minute on 2 cores). The same job as
``lstmkit forecast``; this shows the pieces: data -> windows -> Forecaster -> Trainer -> metrics.
"""

import tempfile

import numpy as np
import torch

from lstmkit.cli.forecast import forecast_loss, predict_levels, seasonal_naive_forecast
from lstmkit.data.timeseries import (
    Prepared,
    SeriesSpec,
    co2_frame,
    infer_freq,
    infer_season,
    read_frame,
    split_for,
)
from lstmkit.data.windows import make_windows, window_origins
from lstmkit.models.forecaster import Forecaster, ForecasterConfig
from lstmkit.train.metrics import forecast_metrics, mase_scale
from lstmkit.train.trainer import TrainConfig, Trainer

torch.set_num_threads(1)  # a small LSTM is fastest on one thread
values, times = read_frame(co2_frame(), target="co2", time="date")  # (N, 1) with NaN gaps
spec = SeriesSpec(target="co2", time="date", input_len=52, horizon=13, impute="ffill",
                  season=infer_season(infer_freq(times)))
train, val, test = split_for(len(values), spec, test_size=104, val_size=104)
prep = Prepared(spec, values, times, scaler=None, train=train)  # differenced, scaled on train


def loader(origins, shuffle):
    x, y, _ = make_windows(prep.features, prep.d_scaled, spec.input_len, spec.horizon, origins=origins)
    fut = prep.future_features(origins, spec.horizon)
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(fut), torch.from_numpy(y))
    return torch.utils.data.DataLoader(ds, batch_size=64, shuffle=shuffle)


n, T, h = len(values), spec.input_len, spec.horizon
torch.manual_seed(0)
model = Forecaster(ForecasterConfig(input_size=prep.features.shape[1], horizon=h, mode="direct",
                                    n_future=prep.n_future))
trainer = Trainer(model, forecast_loss, TrainConfig(epochs=30, lr=3e-3, patience=8),
                  tempfile.mkdtemp())
trainer.fit(loader(window_origins(n, T, h, first=T, last=train.stop - 1 - h), True),
            loader(window_origins(n, T, h, first=val.start - 1, last=val.stop - 1 - h), False))
trainer.load_best()

origins = window_origins(n, T, h, first=test.start - 1)  # rolling origin over the test split
actual = prep.observed[origins[:, None] + np.arange(1, h + 1)]
scale = mase_scale(prep.observed[train], spec.season)
for name, pred in [("lstm", predict_levels(model, prep, origins)),
                   ("seasonal_naive", seasonal_naive_forecast(prep.level, origins, h, spec.season))]:
    m = forecast_metrics(actual, pred, scale)
    print(f"{name:<15} MAE {m['mae']:.3f}  MASE {m['mase']:.3f}")
