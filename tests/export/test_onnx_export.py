"""ONNX export: onnxruntime agrees with PyTorch across random lengths (0 and full included),
steps equal the cell fed step by step, nothing is written when parity fails."""

import numpy as np
import pytest
import torch

import lstmkit as lk
from lstmkit.export import onnx_export as ox
from lstmkit.export.onnx_export import ParityError, session, to_onnx
from lstmkit.models.forecaster import Forecaster, ForecasterConfig
from lstmkit.models.language_model import LanguageModel, LanguageModelConfig

pytest.importorskip("onnxruntime")

ATOL = 1e-5

CONFIGS = [
    ("LSTM", {}),
    ("LSTM", dict(peephole=True, bidirectional=True, num_layers=2)),
    ("LSTM", dict(batch_first=True, num_layers=3, residual=True)),
    ("LSTM", dict(coupled=True, bidirectional=True)),
    ("LSTM", dict(layer_norm=True)),
    ("LSTM", dict(proj_size=3, num_layers=2, bidirectional=True)),
    ("LSTM", dict(zoneout=(0.2, 0.1), peephole=True)),
    ("LSTM", dict(bias=False, coupled=True, peephole=True, layer_norm=True, proj_size=2)),
    ("GRU", dict(bidirectional=True)),
    ("GRU", dict(reset_after=False, num_layers=2)),
    ("GRU", dict(zoneout=0.3)),
    ("RNN", dict(nonlinearity="relu", bidirectional=True)),
    ("RNN", dict(num_layers=2)),
]


def _make(family, kw, seed=0):
    torch.manual_seed(seed)
    return getattr(lk, family)(3, 5, **kw).eval()


def _run_both(m, path, T, lens, seed):
    """Our own check of the written file: (onnxruntime outputs, torch outputs, h0)."""
    g = torch.Generator().manual_seed(seed)
    B = len(lens)
    D = 2 if m.bidirectional else 1
    P = m.proj_size if getattr(m, "proj_size", 0) else m.hidden_size
    x = torch.randn(T, B, 3, generator=g)
    h0 = torch.randn(m.num_layers * D, B, P, generator=g)
    c0 = torch.randn(m.num_layers * D, B, m.hidden_size, generator=g)
    hx = (h0, c0) if m.mode == "LSTM" else h0
    xin = x.transpose(0, 1).contiguous() if m.batch_first else x
    lengths = torch.tensor(lens)
    with torch.no_grad():
        y, st = m(xin, hx, lengths=lengths)
    ref = [y] + (list(st) if m.mode == "LSTM" else [st])
    feed = {"input": xin.numpy(), "lengths": lengths.numpy(), "h0": h0.numpy()}
    if m.mode == "LSTM":
        feed["c0"] = c0.numpy()
    return session(path).run(None, feed), [r.numpy() for r in ref], h0.numpy()


@pytest.mark.parametrize("family,kw", CONFIGS, ids=[f"{f}-{k}" for f, k in CONFIGS])
@pytest.mark.parametrize("lowering", ["auto", "scan"])
def test_sequence_export_matches_torch_on_random_lengths_with_0_and_full(family, kw, lowering, tmp_path):
    m = _make(family, kw)
    path = tmp_path / "m.onnx"
    rep = to_onnx(m, path, lowering=lowering)
    assert rep.max_abs_error <= ATOL and rep.trials >= 3
    for T, lens, seed in ((6, [6, 0, 2, 5], 1), (9, [1, 9, 0], 2)):  # other T, B than the export's
        got, ref, h0 = _run_both(m, str(path), T, lens, seed)
        for a, b in zip(got, ref):
            np.testing.assert_allclose(a, b, atol=ATOL, rtol=0)
        y = got[0] if not m.batch_first else got[0].transpose(1, 0, 2)
        zero = lens.index(0)
        assert np.all(y[:, zero] == 0)  # a length-0 sequence outputs only zeros
        np.testing.assert_allclose(got[1][:, zero], h0[:, zero], atol=ATOL)  # and keeps h0


def test_auto_lowering_uses_onnx_operators_where_they_compute_the_layer(tmp_path):
    import onnx

    for family, kw, want in (("LSTM", dict(peephole=True), "LSTM"), ("GRU", dict(reset_after=False), "GRU"),
                             ("RNN", dict(nonlinearity="relu"), "RNN"), ("LSTM", dict(coupled=True), "Scan")):
        to_onnx(_make(family, kw), tmp_path / "m.onnx")
        ops = {n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node}
        assert want in ops, (family, kw, ops)


@pytest.mark.parametrize("cls,kw", [(lk.LSTMCell, dict(peephole=True)),
                                    (lk.LSTMCell, dict(coupled=True, layer_norm=True)),
                                    (lk.GRUCell, dict(reset_after=False)), (lk.RNNCell, {})])
def test_step_export_equals_the_cell_fed_step_by_step(cls, kw, tmp_path):
    torch.manual_seed(0)
    cell = cls(3, 4, **kw).eval()
    to_onnx(cell, tmp_path / "c.onnx", step=True)
    sess = session(str(tmp_path / "c.onnx"))
    g = torch.Generator().manual_seed(3)
    lstm = cls is lk.LSTMCell
    state_t = (torch.zeros(2, 4), torch.zeros(2, 4)) if lstm else torch.zeros(2, 4)
    state_o = [np.zeros((2, 4), np.float32)] * (2 if lstm else 1)
    for _ in range(8):
        x = torch.randn(2, 3, generator=g)
        with torch.no_grad():
            state_t = cell(x, state_t)
        feed = {"input": x.numpy(), "h0": state_o[0]}
        if lstm:
            feed["c0"] = state_o[1]
        state_o = sess.run(None, feed)
        ref = state_t if lstm else (state_t,)
        for a, b in zip(state_o, ref):
            np.testing.assert_allclose(a, b.numpy(), atol=ATOL, rtol=0)


def test_layer_step_export_fed_step_by_step_equals_the_sequence(tmp_path):
    m = _make("LSTM", dict(num_layers=2, proj_size=2, zoneout=0.1))
    to_onnx(m, tmp_path / "s.onnx", step=True)
    sess = session(str(tmp_path / "s.onnx"))
    x = torch.randn(7, 2, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y, (h, c) = m(x)
    st = [np.zeros((2, 2, 2), np.float32), np.zeros((2, 2, 5), np.float32)]
    for t in range(7):
        out, *st = sess.run(None, {"input": x[t].numpy(), "h0": st[0], "c0": st[1]})
        np.testing.assert_allclose(out, y[t].numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(st[0], h.numpy(), atol=ATOL, rtol=0)
    np.testing.assert_allclose(st[1], c.numpy(), atol=ATOL, rtol=0)


def test_task_models_export_with_parity(tmp_path):
    torch.manual_seed(0)
    lm = LanguageModel(LanguageModelConfig(vocab_size=20, embedding_dim=6, hidden_size=8, num_layers=2,
                                           proj_size=6, tie_weights=True))
    for step in (True, False):
        rep = to_onnx(lm, tmp_path / "lm.onnx", step=step)
        assert rep.max_abs_error <= ATOL and rep.lowering == "scan"
    fc = Forecaster(ForecasterConfig(input_size=3, horizon=4, hidden_size=8))
    rep = to_onnx(fc, tmp_path / "fc.onnx")
    assert rep.max_abs_error <= ATOL and rep.lowering == "native" and rep.outputs == ["forecast"]
    with pytest.raises(ValueError, match="recursive"):
        to_onnx(Forecaster(ForecasterConfig(input_size=3, horizon=2, mode="recursive")), tmp_path / "r.onnx")


def test_an_lm_with_large_logits_exports_and_its_error_is_judged_at_their_scale(tmp_path):
    """A trained LM's logits reach tens; float32 summation order moves their last digits by more
    than 1e-5 absolute (a default `lstmkit lm train` run was refused at 1.5e-5). The check is
    relative to an output's scale beyond [-1, 1], absolute within it (the states)."""
    torch.manual_seed(0)
    lm = LanguageModel(LanguageModelConfig(vocab_size=300, embedding_dim=32, hidden_size=256)).eval()
    with torch.no_grad():
        lm.decoder.weight.mul_(400.0)  # logits of order 100, as after training
    rep = to_onnx(lm, tmp_path / "lm.onnx")
    assert rep.max_abs_error <= ATOL
    sess = session(str(tmp_path / "lm.onnx"))
    tok = torch.randint(0, 300, (2, 9))
    h0 = np.zeros((lm.config.num_layers, 2, 256), np.float32)
    logits = sess.run(None, {"tokens": tok.numpy(), "h0": h0, "c0": h0})[0]
    with torch.no_grad():
        want = lm(tok)[0].numpy()
    scale = np.abs(want).max()
    assert scale > 10
    np.testing.assert_allclose(logits, want, atol=ATOL * scale, rtol=0)
    assert ox._err(np.array([0.5 + 2e-5]), np.array([0.5])) > ATOL  # within [-1, 1]: absolute


def test_failed_parity_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(ox, "check_layer_sequence", lambda *a, **k: (0.5, 3))
    path = tmp_path / "bad.onnx"
    with pytest.raises(ParityError, match="not written"):
        to_onnx(_make("LSTM", {}), path)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_configurations_say_what_and_why(tmp_path):
    with pytest.raises(ValueError, match="coupled"):
        to_onnx(_make("LSTM", dict(coupled=True)), tmp_path / "a.onnx", lowering="native")
    with pytest.raises(ValueError, match="bidirectional"):
        to_onnx(_make("GRU", dict(bidirectional=True)), tmp_path / "a.onnx", step=True)
    with pytest.raises(ValueError, match="ConvLSTM"):
        to_onnx(lk.ConvLSTM(2, 3, 3), tmp_path / "a.onnx")
    with pytest.raises(TypeError, match="torch.nn.LSTM"):
        to_onnx(torch.nn.LSTM(2, 3), tmp_path / "a.onnx")
    with pytest.raises(ValueError, match="lowering"):
        to_onnx(_make("LSTM", {}), tmp_path / "a.onnx", lowering="fast")
    with pytest.raises(ValueError, match="IndRNN export is not supported"):
        to_onnx(lk.nn.IndRNN(2, 3), tmp_path / "a.onnx")
    assert not (tmp_path / "a.onnx").exists()
