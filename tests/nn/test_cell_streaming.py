"""Cells built from a layer's weights (``from_layer``) step the layer exactly; an LSTM cell's
streaming step runs in the weight precision it was given (``step_weights``)."""

import pytest
import torch

import lstmkit as lk
from lstmkit import kernels
from lstmkit.nn import _params
from lstmkit.serve.adapters import LSTMStepper

T, B, I, H = 5, 3, 4, 6


def step_stack(cells, x, reverse=False, residual=False):
    """Run a stack of cells over x (T, B, I) step by step -> the top layer's outputs (T, B, H)."""
    state = [None] * len(cells)
    ys = []
    steps = range(x.shape[0] - 1, -1, -1) if reverse else range(x.shape[0])
    for t in steps:
        inp = x[t]
        for k, cell in enumerate(cells):
            state[k] = cell(inp, state[k])
            h = state[k][0] if isinstance(state[k], tuple) else state[k]
            inp = h + inp if residual and k else h
        ys.append(inp)
    if reverse:
        ys.reverse()
    return torch.stack(ys)


@pytest.mark.parametrize("cls, layer_cls, opts", [
    (lk.LSTMCell, lk.LSTM, {}), (lk.LSTMCell, lk.LSTM, {"peephole": True}),
    (lk.LSTMCell, lk.LSTM, {"coupled": True}), (lk.LSTMCell, lk.LSTM, {"layer_norm": True}),
    (lk.LSTMCell, lk.LSTM, {"residual": True}), (lk.GRUCell, lk.GRU, {})],
    ids=["plain", "peephole", "coupled", "layer_norm", "residual", "gru"])
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_cells_from_a_layer_step_it_exactly(cls, layer_cls, opts, grad):
    torch.manual_seed(0)
    residual = opts.pop("residual", False)
    layer = layer_cls(I, H, num_layers=2, residual=residual, **opts) if residual else layer_cls(
        I, H, num_layers=2, **opts)
    x = torch.randn(T, B, I)
    cells = [cls.from_layer(layer, k) for k in range(2)]
    assert cells[1].input_size == H and cells[0].input_size == I
    with torch.set_grad_enabled(grad):
        y_ref = layer(x)[0]
        y = step_stack(cells, x, residual=residual)
    torch.testing.assert_close(y, y_ref, atol=1e-5, rtol=0)  # float32, the kernels' exp
    assert all(torch.equal(c.weight_hh, getattr(layer, f"weight_hh_l{k}")) for k, c in enumerate(cells))
    assert cells[0].weight_hh.data_ptr() != layer.weight_hh_l0.data_ptr()  # a copy


def test_reverse_cell_of_a_bidirectional_layer_runs_right_to_left():
    torch.manual_seed(1)
    layer = lk.LSTM(I, H, bidirectional=True, peephole=True)
    x = torch.randn(T, B, I)
    with torch.no_grad():
        y = layer(x)[0]
        fwd = step_stack([lk.LSTMCell.from_layer(layer, 0)], x)
        bwd = step_stack([lk.LSTMCell.from_layer(layer, 0, reverse=True)], x, reverse=True)
    torch.testing.assert_close(torch.cat([fwd, bwd], -1), y, atol=2e-6, rtol=0)


def test_from_layer_refuses_what_has_no_cell():
    lstm = lk.LSTM(I, H, num_layers=2)
    with pytest.raises(ValueError, match=r"index: expected a layer in \[0, 2\), got 2"):
        lk.LSTMCell.from_layer(lstm, 2)
    with pytest.raises(ValueError, match="reverse: the layer is not bidirectional"):
        lk.LSTMCell.from_layer(lstm, 0, reverse=True)
    with pytest.raises(ValueError, match="proj_size=3"):
        lk.LSTMCell.from_layer(lk.LSTM(I, H, proj_size=3), 0)
    with pytest.raises(ValueError, match="layer: expected a LSTM|layer: expected an? .*for LSTMCell"):
        lk.LSTMCell.from_layer(lk.GRU(I, H), 0)
    with pytest.raises(ValueError, match=r"layer: a layer with zoneout=\(0.1, 0.1\) has no cell"):
        lk.LSTMCell.from_layer(lk.LSTM(I, H, zoneout=0.1), 0)
    assert lk.LSTMCell.from_layer(lk.LSTM(I, H, engine="reference"), 0).engine == "reference"


@pytest.mark.parametrize("weights", ["bfloat16", "int8"])
def test_cell_streams_in_its_step_weights_and_trains_in_full(weights, need_kernels):
    torch.manual_seed(2)
    cell = lk.LSTMCell(I, H, peephole=True, step_weights=weights)
    assert f"step_weights={weights!r}" in repr(cell)
    x, h, c = torch.randn(B, I), torch.randn(B, H).tanh(), torch.randn(B, H)
    params = _params.gather(cell, cell.v, "")  # the parameters as the kernel sees them
    with torch.no_grad():
        h_q, c_q = cell(x, (h, c))
        h_k, c_k = kernels.lstm_step(x, h, c, params, weights)
        h_f, _ = kernels.lstm_step(x, h, c, params, "full")
    assert torch.equal(h_q, h_k) and torch.equal(c_q, c_k)
    assert 0 < (h_q - h_f).abs().max() < 3e-2
    h_g, _ = cell(x, (h, c))  # gradients wanted: the parameters as they are
    assert h_g.requires_grad
    torch.testing.assert_close(h_g.detach(), h_f, atol=2e-6, rtol=0)


def test_reduced_step_weights_are_refused_by_name_without_the_kernels(monkeypatch):
    monkeypatch.setattr(kernels, "available", lambda: False)
    with pytest.raises(ValueError, match="step_weights: .int8. runs the compiled step kernel, which is not"):
        lk.LSTMCell(I, H, step_weights="int8")
    with pytest.raises(ValueError, match="step_weights: 'bfloat16' runs the compiled step kernel"):
        lk.LSTM(I, H, step_weights="bfloat16")
    assert lk.LSTMCell(I, H, step_weights="full").step_weights == "full"


def test_step_weights_refused_where_the_packed_step_cannot_serve():
    with pytest.raises(ValueError, match="step_weights: expected one of"):
        lk.LSTMCell(I, H, step_weights="int4")
    with pytest.raises(ValueError, match="step_weights: 'int8' serves float32 LSTMs without layer norm"):
        lk.LSTMCell(I, H, layer_norm=True, step_weights="int8")
    with pytest.raises(ValueError, match="step_weights: 'bfloat16' serves float32"):
        lk.LSTMCell(I, H, dtype=torch.float64, step_weights="bfloat16")
    with pytest.raises(ValueError, match="'fused'; got a plain LSTM in torch.float32 on 'reference'"):
        lk.LSTMCell(I, H, engine="reference", step_weights="int8")


@pytest.mark.parametrize("weights", kernels.STEP_WEIGHTS)
def test_server_stepper_in_each_precision(weights, need_kernels):
    torch.manual_seed(3)
    lstm = lk.LSTM(I, 16, num_layers=2, batch_first=True, residual=True).eval()
    stepper = LSTMStepper(lstm, weights)
    x = torch.randn(B, T, I)
    lengths = torch.tensor([T, 2, 4])
    h0 = torch.zeros(2, B, 16)
    y, h_n, c_n = stepper(x, lengths, h0, h0.clone())
    with torch.no_grad():
        y_ref, (h_ref, _) = lstm(x, lengths=lengths)
    tol = {"full": 2e-6, "bfloat16": 1e-2, "int8": 3e-2}[weights]
    torch.testing.assert_close(y, y_ref, atol=tol, rtol=0)
    torch.testing.assert_close(h_n, h_ref, atol=tol, rtol=0)
    assert (y[1, 2:] == 0).all()  # past its length a row outputs zeros


def test_server_stepper_steps_a_zoneout_lstm_through_the_layer():
    torch.manual_seed(5)
    lstm = lk.LSTM(I, 8, num_layers=2, batch_first=True, zoneout=0.3).eval()
    stepper = LSTMStepper(lstm)
    assert stepper.cells is None  # eval zoneout blends in its expectation: no cell does that
    x = torch.randn(B, T, I)
    h0 = torch.zeros(2, B, 8)
    y, _, _ = stepper(x, torch.full((B,), T), h0, h0.clone())
    with torch.no_grad():
        torch.testing.assert_close(y, lstm(x)[0], atol=2e-6, rtol=0)
    with pytest.raises(ValueError, match="without projection or zoneout"):
        LSTMStepper(lstm, "int8")


def test_packed_steppers_leave_the_cache_with_their_weights(need_kernels):
    import gc

    cell = lk.LSTMCell(I, H)
    with torch.no_grad():
        cell(torch.randn(1, I))
    keys = [k for k, (refs, _, _) in kernels._STEPPERS.items() if refs[0]() is cell.weight_ih]
    assert len(keys) == 1
    del cell
    gc.collect()
    assert keys[0] not in kernels._STEPPERS


def test_server_stepper_refuses_reduced_weights_for_a_projected_lstm():
    with pytest.raises(ValueError, match="step_weights: 'int8' needs an LSTM without projection"):
        LSTMStepper(lk.LSTM(I, 8, proj_size=4, batch_first=True), "int8")


@pytest.mark.parametrize("opts", [{}, {"peephole": True}, {"coupled": True}, {"residual": True}],
                         ids=["plain", "peephole", "coupled", "residual"])
def test_a_single_step_of_a_layer_streams_and_equals_the_sequence_path(opts, monkeypatch):
    torch.manual_seed(4)
    lstm = lk.LSTM(I, H, num_layers=2, batch_first=True, stateful=True, **opts).eval()
    x = torch.randn(B, 3, I)
    calls = []
    real = lk.LSTM._forward_step
    monkeypatch.setattr(lk.LSTM, "_forward_step", lambda self, *a: calls.append(1) or real(self, *a))
    with torch.no_grad():
        steps = [lstm(x[:, t:t + 1])[0] for t in range(3)]  # stateful: carries (h, c)
        state = lstm._state
        lstm.reset_state()
        y_seq, (h_seq, c_seq) = lstm(x)
    # each one-step call took the packed step path, where the kernels are built
    assert len(calls) == (3 if kernels.available() else 0)
    torch.testing.assert_close(torch.cat(steps, 1), y_seq, atol=2e-6, rtol=0)
    torch.testing.assert_close(state[0], h_seq, atol=2e-6, rtol=0)
    torch.testing.assert_close(state[1], c_seq, atol=2e-6, rtol=0)


def test_a_single_step_keeps_the_sequence_path_where_it_must(monkeypatch):
    lstm = lk.LSTM(I, H, num_layers=2)
    monkeypatch.setattr(lk.LSTM, "_forward_step", lambda *a: pytest.fail("streamed"))
    x = torch.randn(1, B, I)
    lstm(x)  # gradients wanted
    with torch.no_grad():
        lstm.train()(x)  # training mode: dropouts may be active
        lstm.eval()(x, lengths=torch.tensor([1, 0, 1]))  # an empty row keeps its state
        lk.LSTM(I, H, layer_norm=True).eval()(x)  # layer norm: not the packed step's
        lk.LSTM(I, H, zoneout=0.1).eval()(x)  # eval zoneout blends in its expectation
        lk.LSTM(I, H, bidirectional=True).eval()(x)
        lk.LSTM(I, H, engine="reference").eval()(x)


def test_models_made_under_inference_mode_stream(need_kernels):
    with torch.inference_mode():  # parameters without a version counter
        cell, lstm = lk.LSTMCell(I, H, step_weights="int8"), lk.LSTM(I, H, num_layers=2).eval()
        x = torch.randn(B, I)
        h, _ = cell(x)
        y, _ = lstm(x.unsqueeze(0))
        y_ref = lstm(torch.stack([x, x]))[0][:1]  # two steps: the sequence path; its first step
    assert h.shape == (B, H) and torch.isfinite(h).all()
    torch.testing.assert_close(y, y_ref, atol=2e-6, rtol=0)


@pytest.mark.parametrize("weights", ["bfloat16", "int8"])
def test_a_layer_steps_in_its_step_weights(weights, need_kernels):
    torch.manual_seed(6)
    lstm = lk.LSTM(I, 16, num_layers=2, peephole=True, step_weights=weights).eval()
    assert f"step_weights={weights!r}" in repr(lstm)
    cells = [lk.LSTMCell.from_layer(lstm, k, step_weights=weights) for k in range(2)]
    x = torch.randn(1, B, I)
    with torch.no_grad():
        y, (h, c) = lstm(x)
        y_cells = step_stack(cells, x)
        y_full = lstm.set_step_weights("full")(x)[0]
    torch.testing.assert_close(y, y_cells, atol=1e-6, rtol=0)  # the same packed step per layer
    assert 0 < (y - y_full).abs().max() < 3e-2
    assert lstm.step_weights == "full"


def test_layer_step_weights_refused_where_never_used():
    for kw, why in (({"bidirectional": True}, "not bidirectional"), ({"proj_size": 4}, "not a projection"),
                    ({"zoneout": 0.1}, "not zoneout"), ({"layer_norm": True}, "without layer norm"),
                    ({"engine": "reference"}, "on 'reference'")):
        with pytest.raises(ValueError, match=f"step_weights: 'int8' serves .*{why}"):
            lk.LSTM(I, H, step_weights="int8", **kw)
    with pytest.raises(ValueError, match="step_weights: expected one of"):
        lk.LSTM(I, H).set_step_weights("fp8")


def test_the_quick_streaming_path_equals_the_checked_one_and_keeps_its_errors(monkeypatch, need_kernels):
    torch.manual_seed(7)
    cell = lk.LSTMCell(I, H, peephole=True, step_weights="int8")
    x, h, c = torch.randn(B, I), torch.randn(B, H), torch.randn(B, H)
    with torch.no_grad():
        quick = cell(x, (h, c))
        checked = cell._step(x, (h, c))
        assert all(torch.equal(a, b) for a, b in zip(quick, checked))
        calls = []
        monkeypatch.setattr(type(cell), "_step", lambda self, *a: calls.append(a) or ("slow",))
        cell(x, (h, c))
        assert not calls  # a well-formed step never reached the checks
        cell(x, [h, c])
        cell(x.unsqueeze(0)[0, :1], None)
        assert len(calls) == 2  # anything else goes through them
    monkeypatch.undo()
    with torch.no_grad():
        with pytest.raises(ValueError, match=r"hx\[0\] \(h\): expected shape"):
            cell(x, (h[:, :3], c))
        with pytest.raises(ValueError, match="input: expected last dimension input_size"):
            cell(torch.randn(B, I + 1), (h, c))
