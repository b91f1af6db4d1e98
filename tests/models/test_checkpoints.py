"""The checkpoints the jobs really write open in every tool: models.checkpoints, the server's
adapter and the ONNX exporter (the seam between the jobs and the deployment tools)."""

import numpy as np
import pandas as pd
import pytest
import torch

import lstmkit as lk
from lstmkit.export.onnx_export import to_onnx
from lstmkit.jobs import forecast, lm
from lstmkit.models.checkpoints import ForecasterEnsemble, load_model, save_model
from lstmkit.models.forecaster import Forecaster
from lstmkit.models.language_model import LanguageModel
from lstmkit.serve.adapters import load_streaming_model


def _series():
    rng = np.random.default_rng(0)
    return pd.DataFrame({"year": np.arange(1950, 2010),
                         "y": 50 + np.sin(np.arange(60) / 2) * 5 + rng.normal(size=60)})


@pytest.fixture(scope="module")
def forecast_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("fc") / "run"
    cfg = forecast.ForecastConfig(out=str(out), target="y", time="year", horizon=2, epochs=2,
                                  hidden_size=8, ensemble=1, no_progress=True, search=False)
    forecast.train(cfg, data=_series(), log=lambda *_: None, echo=lambda *_: None)
    return out


def test_a_forecast_job_checkpoint_opens_in_every_tool(forecast_run, tmp_path):
    model, parts = load_model(forecast_run)
    assert isinstance(model, Forecaster) and parts["kind"] == "forecaster"
    x = torch.randn(3, 10, model.config.input_size)
    served = load_streaming_model(forecast_run)
    with torch.no_grad():
        torch.testing.assert_close(served.predict(x), model(x)[..., model.config.median_index])
        y, _ = served.step(x, torch.full((3,), 10), served.init_state(3))
        torch.testing.assert_close(y[:, -1], served.predict(x))
    to_onnx(model, tmp_path / "fc.onnx")  # raises ParityError (and writes nothing) if it differs
    assert (tmp_path / "fc.onnx").exists()


def test_a_seed_ensemble_loads_as_the_median_of_its_members(tmp_path):
    torch.manual_seed(0)
    members = [Forecaster(forecast_member_config()) for _ in range(3)]
    ens = ForecasterEnsemble(members)
    save_model(tmp_path / "ens.pt", ens)
    back, _ = load_model(tmp_path / "ens.pt")
    x = torch.randn(2, 6, 1)
    with torch.no_grad():
        want = torch.stack([m(x) for m in members]).median(0).values
        torch.testing.assert_close(back(x), want)
    with pytest.raises(ValueError, match="ensemble"):
        load_streaming_model(tmp_path / "ens.pt")


def forecast_member_config():
    from lstmkit.models.forecaster import ForecasterConfig

    return ForecasterConfig(input_size=1, horizon=2, hidden_size=4)


def test_a_language_model_job_checkpoint_opens_in_every_tool(tmp_path):
    (tmp_path / "t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 40)
    cfg = lm.LMConfig(out=str(tmp_path / "out"), text=[str(tmp_path / "t.txt")], max_steps=4,
                      max_time=None, batch_size=2, bptt=8, embedding_dim=8, hidden_size=8,
                      val_every=2, progress=False, ngram_order=2)
    lm.train(cfg, echo=lambda *_: None)
    model, parts = load_model(tmp_path / "out")
    assert isinstance(model, LanguageModel) and parts["kind"] == "language_model"
    served = load_streaming_model(tmp_path / "out")
    assert served.tokenizer is not None and len(served.tokenizer) == model.config.vocab_size
    ids = torch.randint(0, model.config.vocab_size, (2, 7))
    with torch.no_grad():
        torch.testing.assert_close(served.predict(ids), torch.log_softmax(model(ids)[0], -1))
    to_onnx(model, tmp_path / "lm.onnx", step=True)
    assert (tmp_path / "lm.onnx").exists()


def test_a_bare_layer_round_trips_and_serves(tmp_path):
    layer = lk.LSTM(3, 5, num_layers=2, peephole=True)
    save_model(tmp_path / "layer.pt", layer)
    served = load_streaming_model(tmp_path / "layer.pt")
    x = torch.randn(2, 4, 3)
    with torch.no_grad():
        torch.testing.assert_close(served.predict(x), layer.eval()(x.transpose(0, 1))[0].transpose(0, 1))
    save_model(tmp_path / "gru.pt", lk.GRU(3, 5))
    with pytest.raises(ValueError, match="lstmkit.LSTM"):
        load_streaming_model(tmp_path / "gru.pt")


def test_another_jobs_checkpoint_is_named_not_misread_as_a_forecaster(tmp_path):
    from lstmkit.train.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "tag.pt", kind="sequence_tagger", model_config={"vocab_size": 3},
                    model={})
    with pytest.raises(ValueError, match="sequence_tagger.*lstmkit tag predict"):
        load_model(tmp_path / "tag.pt")
