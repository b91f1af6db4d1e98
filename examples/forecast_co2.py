"""Forecast weekly Mauna Loa CO2 13 weeks ahead with an LSTM and compare it with the baselines.

Run: ``python examples/forecast_co2.py`` (about half a minute on 2 cores). The same job as
``lstmkit forecast``; this shows the pieces: data -> season -> windows -> Forecaster ->
Trainer -> metrics.
"""

import tempfile

import numpy as np
import torch

from lstmkit.data.season import detect_season
from lstmkit.data.split import chronological_split
from lstmkit.data.timeseries import Prepared, SeriesSpec, co2_frame, infer_freq, read_frame, season_hint
from lstmkit.jobs.forecast import make_loss, predict_paths
from lstmkit.jobs.forecast_baselines import seasonal_naive_forecast
from lstmkit.models.forecaster import Forecaster, ForecasterConfig
from lstmkit.train.metrics import forecast_metrics, mase_scale
from lstmkit.train.trainer import TrainConfig, Trainer

torch.set_num_threads(1)  # a small LSTM is fastest on one thread
values, times = read_frame(co2_frame(), target="co2", time="date")  # (N, 1) with NaN gaps
freq = infer_freq(times)
season = detect_season(values[:, 0], hint=season_hint(freq))  # 52, from the data
print("season:", season.season, "-", season.reason)
T, h, n = 52, 13, len(values)
spec = SeriesSpec(target="co2", time="date", input_len=T, horizon=h, impute="ffill",
                  season=season.season, freq=freq, transform="diff")
train, val, test = chronological_split(n, test_size=104, val_size=104)
prep = Prepared(spec, values, times, scaler=None, train=train)  # differenced, scaled on train
quantiles = [0.1, 0.5, 0.9]


def loader(origins, shuffle):
    w = prep.windows(origins, T, h)  # x (W, T, F), future (W, h, K), target path z (W, h)
    ds = torch.utils.data.TensorDataset(*(torch.from_numpy(a) for a in (
        w.x, w.future, w.z, w.step_offset.astype(np.float32))))
    return torch.utils.data.DataLoader(ds, batch_size=64, shuffle=shuffle)


torch.manual_seed(0)
model = Forecaster(ForecasterConfig(input_size=prep.input_size, horizon=h, mode="direct",
                                    n_future=prep.n_future, quantiles=quantiles))
trainer = Trainer(model, make_loss("direct", "diff", quantiles), TrainConfig(epochs=30, lr=3e-3, patience=8),
                  tempfile.mkdtemp())
trainer.fit(loader(np.arange(T, train.stop - h), True), loader(np.arange(val.start - 1, val.stop - h), False))
trainer.load_best()

origins = np.arange(test.start - 1, n - h)  # rolling origin over the test split
actual = prep.observed[origins[:, None] + np.arange(1, h + 1)]
scale = mase_scale(prep.observed[train], season.season)
q = predict_paths([model], prep, origins)  # (W, h, 3) levels: 10%, median, 90%
for name, pred in [("lstm", q[..., 1]),
                   ("seasonal_naive", seasonal_naive_forecast(prep.level, origins, h, season.season))]:
    m = forecast_metrics(actual, pred, scale)
    print(f"{name:<15} MAE {m['mae']:.3f}  MASE {m['mase']:.3f}")
inside = (actual >= q[..., 0]) & (actual <= q[..., 2])
print(f"80% interval covers {inside[np.isfinite(actual)].mean():.0%} of the test points")
