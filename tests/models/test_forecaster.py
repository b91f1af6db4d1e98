import pytest
import torch

import lstmkit
from lstmkit.models.forecaster import Forecaster, ForecasterConfig


@pytest.mark.parametrize("mode, h", [("single", 1), ("direct", 4), ("recursive", 4), ("seq2seq", 4)])
def test_every_mode_emits_the_horizon_and_backpropagates(mode, h):
    torch.manual_seed(0)
    m = Forecaster(ForecasterConfig(input_size=5, horizon=h, mode=mode, hidden_size=8, n_future=2))
    assert isinstance(m.lstm, lstmkit.LSTM)
    x, fut = torch.randn(3, 7, 5), torch.randn(3, h, 2)
    out = m(x, fut)
    assert out.shape == (3, h)
    out.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())


def test_recursive_mode_feeds_its_prediction_back():
    torch.manual_seed(0)
    m = Forecaster(ForecasterConfig(input_size=3, horizon=2, mode="recursive", hidden_size=8))
    x = torch.randn(2, 5, 3)
    y1 = m(x)[:, 0]
    step = torch.zeros(2, 1, 3)
    step[:, 0, 0] = y1
    _, state = m.lstm(x)
    y, _ = m.lstm(step, state)
    torch.testing.assert_close(m(x)[:, 1], m.head(y[:, -1])[:, 0])


@pytest.mark.parametrize("mode", ["direct", "seq2seq", "recursive"])
def test_overfits_one_small_batch(mode):
    torch.manual_seed(0)
    m = Forecaster(ForecasterConfig(input_size=2, horizon=3, mode=mode, hidden_size=16))
    x = torch.randn(8, 6, 2)
    y = torch.randn(8, 3)
    opt = torch.optim.Adam(m.parameters(), lr=2e-2)
    first = None
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(m(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first


def test_bad_config_and_inputs_raise():
    with pytest.raises(ValueError, match="mode"):
        ForecasterConfig(input_size=2, horizon=3, mode="magic")
    with pytest.raises(ValueError, match="horizon"):
        ForecasterConfig(input_size=2, horizon=3, mode="single")
    m = Forecaster(ForecasterConfig(input_size=4, horizon=2, mode="seq2seq", n_future=1))
    with pytest.raises(ValueError, match="x: expected"):
        m(torch.randn(2, 5, 3))
    with pytest.raises(ValueError, match="future: expected"):
        m(torch.randn(2, 5, 4))


def test_docstring_example_holds():
    import doctest

    from lstmkit.models import forecaster

    assert doctest.testmod(forecaster).failed == 0
