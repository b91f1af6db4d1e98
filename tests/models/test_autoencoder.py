"""EncDec-AD autoencoder and the LSTM-AD error vectors: built as the papers say."""

import numpy as np
import pytest
import torch

from lstmkit.models.anomaly import (
    StreamingPredictionScorer,
    errors_from_predictions,
    prediction_errors,
    reconstruction_errors,
)
from lstmkit.models.autoencoder import AutoencoderConfig, LSTMAutoencoder, reverse_target
from lstmkit.models.checkpoints import load_model, save_model
from lstmkit.models.forecaster import Forecaster, ForecasterConfig
from lstmkit.train.anomaly_metrics import GaussianErrors


def _ae(**kw):
    torch.manual_seed(0)
    return LSTMAutoencoder(AutoencoderConfig(input_size=2, hidden_size=6, **kw))


def test_reverse_target_is_the_window_backwards_in_time():
    x = torch.arange(12.0).view(2, 3, 2)
    t = reverse_target(x)
    for k in range(3):
        torch.testing.assert_close(t[:, k], x[:, 2 - k], rtol=0, atol=0)


def test_teacher_forcing_feeds_the_true_previous_point_x_T_down_to_x_2():
    m = _ae().train()
    x = torch.randn(3, 5, 2)
    out = m(x)  # training mode: teacher forcing
    # by hand: h^D_T = h^E_T emits x'_T; the input that yields x'_{i-1} is the true x_i
    state = m.encoder(x)[1]
    want = [m.head(state[0][-1])]
    for i in range(4, 0, -1):  # x_5 .. x_2 (0-based 4 .. 1)
        y, state = m.decoder(x[:, i:i + 1], state)
        want.append(m.head(y[:, 0]))
    torch.testing.assert_close(out, torch.stack(want, 1))
    # and the first output sees the whole window only through the encoder's final state
    x2 = x.clone()
    x2[:, 0] += 5.0  # x_1 is never a decoder input
    torch.testing.assert_close(m(x2)[:, 0], m.head(m.encoder(x2)[1][0][-1]))


def test_inference_feeds_back_its_own_outputs_and_differs_from_teacher_forcing():
    m = _ae().eval()
    x = torch.randn(3, 5, 2)
    out = m(x)  # eval mode: no teacher forcing
    state = m.encoder(x)[1]
    prev = m.head(state[0][-1]).unsqueeze(1)
    want = [prev]
    for _ in range(4):
        y, state = m.decoder(prev, state)
        prev = m.head(y)
        want.append(prev)
    torch.testing.assert_close(out, torch.cat(want, 1))
    assert not torch.allclose(out, m(x, teacher_forcing=True))
    torch.testing.assert_close(m.reconstruct(x), out.flip(1))


def test_latent_only_decoder_never_reads_the_window():
    m = _ae(latent_only=True)
    x = torch.randn(2, 6, 2)
    torch.testing.assert_close(m(x, teacher_forcing=True), m(x, teacher_forcing=False))


@pytest.mark.slow
def test_autoencoder_overfits_one_batch_and_reconstructs_in_time_order():
    torch.manual_seed(0)
    m = LSTMAutoencoder(AutoencoderConfig(input_size=1, hidden_size=16))
    t = torch.linspace(0, 6.28, 12)
    x = torch.stack([torch.sin(t + p) for p in (0.0, 1.0, 2.0)])[..., None]  # (3, 12, 1)
    opt = torch.optim.Adam(m.parameters(), lr=3e-2)
    for _ in range(150):
        opt.zero_grad()
        loss = torch.nn.functional.mse_loss(m(x, teacher_forcing=False), reverse_target(x))
        loss.backward()
        opt.step()
    with torch.no_grad():
        assert float((m.reconstruct(x) - x).abs().mean()) < 0.1


def test_autoencoder_checkpoint_round_trip(tmp_path):
    m = _ae()
    save_model(tmp_path / "model.pt", m, window=5)
    back, parts = load_model(tmp_path)
    x = torch.randn(2, 5, 2)
    assert parts["kind"] == "lstm_autoencoder" and parts["window"] == 5
    torch.testing.assert_close(back(x), m.eval()(x), rtol=0, atol=0)


def test_bad_window_shape_names_the_argument():
    with pytest.raises(ValueError, match=r"x: expected windows \(B, T >= 1, 2\)"):
        _ae()(torch.randn(3, 4, 3))


def test_prediction_error_vector_holds_the_l_forecasts_of_each_point():
    x = np.arange(6.0)
    pred = np.arange(18.0).reshape(6, 3) * 10  # pred[t, j] forecasts x[t + 1 + j]
    e = errors_from_predictions(x, pred)
    assert e[4].tolist() == [4 - pred[3, 0], 4 - pred[2, 1], 4 - pred[1, 2]]
    assert np.isnan(e[0]).all() and np.isnan(e[2, 2]) and not np.isnan(e[2, :2]).any()


def test_streaming_scorer_gives_the_offline_scores_point_by_point():
    torch.manual_seed(1)
    m = Forecaster(ForecasterConfig(input_size=1, horizon=4, hidden_size=12))
    x = np.sin(np.arange(120) / 3.0)[:, None] + 0.1 * np.random.default_rng(0).normal(size=(120, 1))
    offline = prediction_errors(m, x)
    g = GaussianErrors().fit(offline[4:60])
    s = StreamingPredictionScorer(m, g)
    got = np.array([s.score(v) for v in x[:, 0]])  # (N, 2): error, Mahalanobis
    ok = np.isfinite(offline).all(axis=1)
    assert np.isnan(got[~ok]).all() and ok.sum() == 116
    np.testing.assert_allclose(got[ok, 0], np.abs(offline[ok]).mean(1), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(got[ok, 1], g.score(offline[ok]), rtol=1e-5, atol=1e-8)
    s.reset()  # a reset stream starts afresh
    np.testing.assert_allclose(s.update(x[0, 0]), np.full(4, np.nan))


def test_reconstruction_errors_cover_every_point_with_any_stride():
    m = _ae().eval()
    x = np.random.default_rng(0).normal(size=(23, 2))
    for stride in (1, 4, 7):
        e = reconstruction_errors(m, x, window=7, stride=stride)
        assert e.shape == (23, 2) and np.isfinite(e).all()
    # with stride = window the windows do not overlap: each point's error is its own window's
    w = torch.as_tensor(x[7:14], dtype=torch.float32)[None]
    own = (w - m.reconstruct(w)).abs()[0].detach().double().numpy()
    np.testing.assert_allclose(reconstruction_errors(m, x, 7, 7)[7:14], own, rtol=1e-6)
