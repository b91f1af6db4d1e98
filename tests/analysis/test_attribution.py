"""Attributions: integrated gradients are complete (they sum to f(x) - f(baseline)) through
captum and through the autograd fallback, on an lstmkit forecaster and a classifier-shaped
model in eval mode; saliency is the gradient's magnitude."""

import pytest
import torch

import lstmkit as lk
from lstmkit.analysis.attribution import integrated_gradients, saliency
from lstmkit.models.forecaster import Forecaster, ForecasterConfig


def forecaster():
    torch.manual_seed(0)
    m = Forecaster(ForecasterConfig(input_size=3, hidden_size=8, horizon=4, num_layers=2))
    return m.eval()


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = lk.GRU(3, 6, batch_first=True, bidirectional=True)
        self.head = torch.nn.Linear(12, 4)

    def forward(self, x):
        return self.head(self.rnn(x)[0].mean(1))


@pytest.mark.parametrize("backend", ["captum", "autograd"])
@pytest.mark.parametrize("which", ["forecaster", "classifier"])
def test_integrated_gradients_are_complete_to_one_percent(backend, which):
    torch.manual_seed(1)
    x = torch.randn(5, 12, 3)
    if which == "forecaster":
        m = forecaster()

        def f(z):
            return m(z)[:, 0]
    else:
        torch.manual_seed(2)
        m = Classifier().eval()

        def f(z):
            return torch.log_softmax(m(z), -1)[:, 2]
    base = torch.zeros_like(x)
    a = integrated_gradients(f, x, base, steps=32, backend=backend)
    assert a.backend == backend and a.attributions.shape == x.shape
    with torch.no_grad():
        gap = f(x) - f(base)
    torch.testing.assert_close(a.attributions.sum((1, 2)), gap, rtol=0.01, atol=1e-4)
    assert (a.delta.abs() <= 0.01 * gap.abs() + 1e-4).all()


def test_captum_and_autograd_agree_and_saliency_is_the_gradient():
    m = forecaster()
    x = torch.randn(3, 7, 3)

    def f(z):
        return m(z)[:, 1]

    base = torch.full_like(x, 0.3)
    a = integrated_gradients(f, x, base, steps=16, backend="captum")
    b = integrated_gradients(f, x, base, steps=16, backend="autograd")
    torch.testing.assert_close(a.attributions, b.attributions, rtol=1e-4, atol=1e-6)
    z = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(f(z).sum(), [z])
    torch.testing.assert_close(saliency(f, x), g.abs())
    with pytest.raises(ValueError, match="baseline"):
        integrated_gradients(f, x, base[:1])
