"""Compression: int8 and half weights agree with float within stated tolerances, a structurally
pruned layer is an ordinary torch.nn.LSTM, SVD at full rank reproduces the weights, pruned
weights stay zero through fine-tuning, the CLI round-trips checkpoints."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

import lstmkit as lk
from lstmkit.cli import main
from lstmkit.export import compress as C
from lstmkit.export.checkpoints import load_model, save_model
from lstmkit.models.language_model import LanguageModel, LanguageModelConfig

VARIANTS = [("LSTM", {}), ("LSTM", dict(peephole=True, bidirectional=True, num_layers=2)),
            ("LSTM", dict(coupled=True, layer_norm=True, proj_size=8)), ("GRU", dict(reset_after=False)),
            ("RNN", dict(nonlinearity="relu"))]


def _layer(family, kw, seed=0):
    torch.manual_seed(seed)
    return getattr(lk, family)(16, 32, **kw).eval()


def _x(T=12, B=4, I=16, seed=1):
    return torch.randn(T, B, I, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("family,kw", VARIANTS, ids=[f"{f}-{k}" for f, k in VARIANTS])
def test_int8_and_half_weights_agree_with_float(family, kw):
    m = _layer(family, kw)
    x = _x()
    with torch.no_grad():
        y = m(x, lengths=[12, 0, 5, 9])[0]
        # observed max over the variants and 3 seeds: int8 0.018, float16 9e-4, bfloat16 5e-3
        for small, tol in ((C.quantize_int8(m), C.INT8_TOL), (C.cast_weights(m, "float16"), 2.5e-3),
                           (C.cast_weights(m, "bfloat16"), 1.5e-2)):
            torch.testing.assert_close(small(x, lengths=[12, 0, 5, 9])[0], y, atol=tol, rtol=0)
    q = C.quantize_int8(m)
    float_bytes = sum(m.get_parameter(n).numel() * 4 for n in q._names)
    int8_bytes = sum(b.numel() * b.element_size() for b in q.buffers())  # int8 + one scale per row
    assert float_bytes / int8_bytes > 3.0  # the weight matrices; biases and norms stay float32
    assert C.model_bytes(q) < C.model_bytes(m) / 2


@pytest.mark.parametrize("settings", [None, dict(per_channel=False, reduce_range=False),
                                      dict(per_channel=True, reduce_range=True)],
                         ids=["this-cpu", "vnni-settings", "no-vnni-settings"])
def test_onnx_int8_agrees_with_float_and_is_smaller(tmp_path, settings):
    """Both quantiser settings (full 8-bit weights for VNNI CPUs; 7-bit per-channel weights,
    which cannot saturate onnxruntime's u8s8 kernels, elsewhere) and this CPU's own choice keep
    the bound on this machine."""
    pytest.importorskip("onnxruntime")
    from lstmkit.cpu import probe
    from lstmkit.export.onnx_export import session, to_onnx

    c = probe()
    if settings == dict(per_channel=False, reduce_range=False) and c.onnx_int8()["reduce_range"]:
        pytest.skip("8-bit weights are the VNNI CPUs' setting: onnxruntime's u8s8 kernels saturate on "
                    "this CPU (0.036 seen on an AVX2 CPU), which is why the quantiser never picks it here")
    m = _layer("LSTM", dict(num_layers=2))
    to_onnx(m, tmp_path / "f.onnx")
    used = C.quantize_onnx(tmp_path / "f.onnx", tmp_path / "q.onnx", **(settings or {}))
    assert settings is None or all(used[k] == v for k, v in settings.items())
    assert (tmp_path / "q.onnx").stat().st_size < (tmp_path / "f.onnx").stat().st_size / 2.5
    x, lens = _x(), np.array([12, 0, 5, 9])
    feed = {"input": x.numpy(), "lengths": lens, "h0": np.zeros((2, 4, 32), np.float32),
            "c0": np.zeros((2, 4, 32), np.float32)}
    f, q = (session(str(tmp_path / n)).run(None, feed)[0] for n in ("f.onnx", "q.onnx"))
    # onnxruntime's dynamic int8 quantises the activations too, per call: observed 9.4e-4 here
    # (AVX-512 VNNI) and 0.036 on an AVX2 CPU with the VNNI settings (saturation); the bound is 5x
    # the former, an order of magnitude inside the documented INT8_TOL
    np.testing.assert_allclose(q, f, atol=5e-3, rtol=0)


@pytest.mark.parametrize("vnni", [True, False])
def test_onnx_int8_settings_follow_the_cpu_probe_and_are_recorded_in_the_file(tmp_path, monkeypatch, vnni):
    pytest.importorskip("onnxruntime")
    import json

    import onnx

    from lstmkit import cpu
    from lstmkit.export.onnx_export import to_onnx

    real = cpu.probe()
    fake = dataclasses.replace(real, arch="x86_64", vnni=vnni, features=frozenset({"avx2", "fma"}))
    monkeypatch.setattr(cpu, "probe", lambda: fake)
    to_onnx(_layer("LSTM", {}), tmp_path / "f.onnx")
    used = C.quantize_onnx(tmp_path / "f.onnx", tmp_path / "q.onnx")
    assert used["reduce_range"] is (not vnni) and used["per_channel"] is (not vnni)
    props = {p.key: p.value for p in onnx.load(tmp_path / "q.onnx").metadata_props}
    assert json.loads(props["lstmkit.int8"]) == used


@pytest.mark.parametrize("kw", [dict(num_layers=2), dict(num_layers=2, bidirectional=True, batch_first=True)])
def test_structurally_pruned_lstm_loads_into_torch_nn_lstm_and_gives_its_outputs(kw):
    m = _layer("LSTM", kw)
    small = C.prune_hidden(m, 0.5)
    assert small.hidden_size == 16
    ref = torch.nn.LSTM(16, 16, **kw)
    ref.load_state_dict(small.state_dict())
    x = _x()
    x = x.transpose(0, 1) if kw.get("batch_first") else x
    with torch.no_grad():
        (y, (h, c)), (yt, (ht, ct)) = small(x), ref(x)
    torch.testing.assert_close(y, yt, atol=1e-6, rtol=0)
    torch.testing.assert_close(h, ht, atol=1e-6, rtol=0)
    torch.testing.assert_close(c, ct, atol=1e-6, rtol=0)


def test_pruning_that_keeps_every_unit_changes_nothing():
    torch.manual_seed(0)
    cfg = LanguageModelConfig(vocab_size=20, embedding_dim=6, hidden_size=10, num_layers=2)
    lm = LanguageModel(cfg).eval()
    same = C.prune_hidden(lm, 10)
    tok = torch.randint(0, 20, (3, 7))
    with torch.no_grad():
        torch.testing.assert_close(same(tok)[0], lm(tok)[0], atol=1e-6, rtol=0)
    half = C.prune_hidden(lm, 5)
    assert half.config.hidden_size == 5 and half(tok)[0].shape == (3, 7, 20)
    with pytest.raises(ValueError, match="tie"):
        cfg = LanguageModelConfig(vocab_size=20, embedding_dim=6, hidden_size=6, tie_weights=True)
        tied = LanguageModel(cfg)
        C.prune_hidden(tied, 3)


@pytest.mark.parametrize("family,kw", VARIANTS[:3], ids=["plain", "peephole-bi", "cifg-ln-proj"])
def test_svd_at_full_rank_reproduces_the_weights(family, kw):
    m = _layer(family, kw)
    lr = C.low_rank(m, 1.0)
    for name in lr._names:
        torch.testing.assert_close(lr.weight(name), m.get_parameter(name), atol=1e-5, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(lr(_x())[0], m(_x())[0], atol=1e-5, rtol=0)
    small = C.low_rank(m, 4)
    assert C.count_params(small) < C.count_params(m)
    assert all(r == 4 for r in small.ranks.values())


def test_magnitude_pruning_zeros_stay_zero_through_fine_tuning(tmp_path):
    torch.manual_seed(0)
    m = lk.LSTM(4, 8, batch_first=True)
    pruned, masks = C.magnitude_prune(m, 0.6)
    w = pruned.weight_hh_l0
    assert abs(float((w == 0).float().mean()) - 0.6) < 0.05
    x, y = torch.randn(16, 5, 4), torch.randn(16, 5, 8)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    loss = lambda model, b: ((model(b[0])[0] - b[1]) ** 2).mean()  # noqa: E731
    before = float(loss(pruned, (x, y)).detach())
    C.fine_tune(pruned, loss, loader, loader, out_dir=tmp_path, epochs=3, lr=1e-2, masks=masks)
    assert float(loss(pruned, (x, y)).detach()) < before
    for n, mask in masks.items():
        assert torch.all(pruned.get_parameter(n)[mask == 0] == 0), n


def test_low_rank_factors_fine_tune_through_the_trainer(tmp_path):
    torch.manual_seed(0)
    lr = C.low_rank(lk.GRU(4, 8, batch_first=True), 2)
    x, y = torch.randn(16, 5, 4), torch.randn(16, 5, 8)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    loss = lambda model, b: ((model(b[0])[0] - b[1]) ** 2).mean()  # noqa: E731
    before = float(loss(lr, (x, y)).detach())
    C.fine_tune(lr, loss, loader, out_dir=tmp_path, epochs=3, lr=1e-2)
    assert float(loss(lr, (x, y)).detach()) < before


def test_checkpoints_round_trip_and_the_cli(tmp_path, capsys):
    torch.manual_seed(0)
    lm = LanguageModel(LanguageModelConfig(vocab_size=20, embedding_dim=6, hidden_size=8)).eval()
    save_model(tmp_path / "lm" / "model.pt", lm)
    for method in ("int8", "prune", "low-rank", "bfloat16"):
        assert main(["compress", str(tmp_path / "lm"), "--method", method, "--out",
                     str(tmp_path / method)]) == 0
        info = json.loads((tmp_path / method / "compress.json").read_text())
        assert info["max_abs_diff_vs_original"] < 1.0 and info["params_after"] > 0
        back, _ = load_model(tmp_path / method)
        tok = torch.randint(0, 20, (2, 5))
        assert back(tok)[0].shape == (2, 5, 20)
    assert main(["export", str(tmp_path / "prune"), "--step"]) == 0
    assert "max abs error" in capsys.readouterr().out
    assert (tmp_path / "prune" / "model.step.onnx").exists()
    assert main(["export", str(tmp_path / "int8")]) == 2  # a clear error, not a traceback
    assert "onnx-int8" in capsys.readouterr().err
    out = str(tmp_path / "o")
    assert main(["compress", str(tmp_path / "lm"), "--method", "onnx-int8", "--out", out]) == 0
    layer = lk.GRU(3, 5, zoneout=0.1)
    save_model(tmp_path / "g.pt", layer)
    back, _ = load_model(tmp_path / "g.pt")
    assert back.zoneout == layer.zoneout and back.hidden_size == 5
    assert main(["export", str(tmp_path / "g.pt")]) == 0


def test_distillation_moves_the_student_towards_the_teacher(tmp_path):
    torch.manual_seed(0)
    teacher = LanguageModel(LanguageModelConfig(vocab_size=12, embedding_dim=8, hidden_size=16)).eval()
    student = LanguageModel(LanguageModelConfig(vocab_size=12, embedding_dim=4, hidden_size=4))
    x = torch.randint(0, 12, (32, 10))
    with torch.no_grad():
        y = teacher(x)[0].argmax(-1)
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    kd = C.DistillLoss(teacher, temperature=2.0, alpha=1.0)
    before = float(kd(student, (x, y)).detach())
    C.distill(teacher, student, loader, out_dir=tmp_path, alpha=1.0, epochs=3, lr=1e-2)
    assert float(kd(student, (x, y)).detach()) < before
    with pytest.raises(ValueError, match="temperature"):
        C.DistillLoss(teacher, temperature=0)
