"""Every engine against the reference through the public layers: outputs and gradients,
with a tolerance per dtype. The fused engine is skipped cleanly where it cannot build."""

import pytest
import torch

import lstmkit as lk
from lstmkit import kernels

# float64 is the exactness check; float32 gradients are sums over T*B rows taken in another
# order (and layer norm cancels), so they get a looser bound.
TOL = {torch.float64: dict(rtol=1e-9, atol=1e-10), torch.float32: dict(rtol=1e-3, atol=2e-4)}
LAYERS = {
    "lstm-all-options": lambda **kw: lk.LSTM(5, 6, peephole=True, layer_norm=True, proj_size=3, **kw),
    "lstm-coupled": lambda **kw: lk.LSTM(5, 6, coupled=True, **kw),
    "gru": lambda **kw: lk.GRU(5, 6, **kw),
    "rnn-relu": lambda **kw: lk.RNN(5, 6, nonlinearity="relu", **kw),
}


def run(m, x, lengths):
    out = m(x, lengths=lengths)
    states = list(out[1]) if isinstance(out[1], tuple) else [out[1]]
    g = torch.Generator().manual_seed(4)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in [out[0], *states])
    return [out[0], *states], torch.autograd.grad(loss, [x, *m.parameters()])


@pytest.fixture(scope="module")
def fused():
    if not kernels.available():
        pytest.skip("the fused kernels could not be built here")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("name", list(LAYERS))
def test_fused_engine_equals_reference_through_the_layer(fused, name, dtype):
    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True, zoneout=0.2, recurrent_dropout=0.3)
    ref = LAYERS[name](engine="reference", **kw).to(dtype)
    fast = LAYERS[name](engine="fused", **kw).to(dtype)
    fast.load_state_dict(ref.state_dict())
    x = torch.randn(7, 4, 5, dtype=dtype, requires_grad=True)
    lengths = [7, 4, 0, 6]
    torch.manual_seed(1)
    a = run(ref, x, lengths)
    torch.manual_seed(1)  # same dropout and zoneout masks
    b = run(fast, x, lengths)
    for u, v in zip(a[0] + list(a[1]), b[0] + list(b[1])):
        torch.testing.assert_close(v, u, **TOL[dtype])


def test_auto_uses_vendor_for_plain_lstm_and_falls_back_for_variants(monkeypatch):
    monkeypatch.setattr(kernels, "available", lambda: False)  # as if the build failed
    torch.manual_seed(0)
    plain, variant = lk.LSTM(3, 4), lk.LSTM(3, 4, peephole=True)
    x = torch.randn(5, 2, 3)
    assert plain._pick_engine(x, None, False) == "vendor"
    assert plain._pick_engine(x, torch.tensor([5, 3]), False) == "fused_or_reference"
    # torch has no oneDNN projection path (it warns and runs a slow default)
    assert lk.LSTM(3, 4, proj_size=2)._pick_engine(x, None, False) == "fused_or_reference"
    ref = lk.LSTM(3, 4, peephole=True, engine="reference")
    ref.load_state_dict(variant.state_dict())
    torch.testing.assert_close(variant(x)[0], ref(x)[0])
    with pytest.raises(ValueError, match="fused"):
        lk.LSTM(3, 4, engine="fused")(x)


@pytest.mark.parametrize("engine", ["auto", "fused"])
def test_engine_is_resolved_once_per_call_for_every_layer_and_direction(fused, monkeypatch, engine):
    # the choice depends only on what every layer-direction of one call shares (options, dtype,
    # device): the runner asks once, not 2 layers x 2 directions = 4 times, and the result is
    # the reference engine's (forced engine="fused" included)
    from lstmkit.functional import registry

    asked = []
    real = registry.Family.fused_ok
    monkeypatch.setattr(registry.Family, "fused_ok", lambda *a, **k: asked.append(1) or real(*a, **k))
    torch.manual_seed(0)
    m = lk.LSTM(3, 4, num_layers=2, bidirectional=True, peephole=True, engine=engine)
    ref = lk.LSTM(3, 4, num_layers=2, bidirectional=True, peephole=True, engine="reference")
    ref.load_state_dict(m.state_dict())
    x = torch.randn(5, 2, 3)
    y = m(x, lengths=[5, 3])[0]
    assert len(asked) == 1
    torch.testing.assert_close(y, ref(x, lengths=[5, 3])[0], **TOL[torch.float32])


def test_forced_vendor_with_lengths_raises():
    with pytest.raises(ValueError, match="vendor"):
        lk.LSTM(3, 4, engine="vendor")(torch.randn(5, 2, 3), lengths=[5, 2])


@pytest.mark.parametrize("options", [{"peephole": True, "layer_norm": True}, {"coupled": True}])
def test_lstm_cell_streams_through_the_fused_step_without_grad_and_matches_reference(fused, options):
    torch.manual_seed(0)
    cell = lk.LSTMCell(5, 6, **options)
    ref = lk.LSTMCell(5, 6, engine="reference", **options)
    ref.load_state_dict(cell.state_dict())
    x = torch.randn(3, 5)
    hx = (torch.randn(3, 6), torch.randn(3, 6))
    with torch.no_grad():
        assert cell._streaming("auto", x, list(hx))
        h, c = cell(x, hx)
        h_ref, c_ref = ref(x, hx)
    torch.testing.assert_close(h, h_ref, **TOL[torch.float32])
    torch.testing.assert_close(c, c_ref, **TOL[torch.float32])
    assert not cell._streaming("auto", x, list(hx))  # grad mode with trainable weights
