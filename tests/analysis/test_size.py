"""analysis.size: parameter counts from the equations equal the modules', the predicted training
activations equal the bytes the engines really save, FLOPs by hand, and the command runs."""

import json

import pytest
import torch

from lstmkit import kernels
from lstmkit.analysis.size import (
    SizeConfig,
    activation_bytes,
    count_params,
    flops,
    measure_saved_bytes,
    size_report,
)
from lstmkit.cli import main
from lstmkit.functional import registry

LSTM_GRID = registry.get("lstm").option_grid()
CONFIGS = (
    [SizeConfig("lstm", 3, 4, options=o) for o in LSTM_GRID]
    + [SizeConfig("lstm", 3, 4, num_layers=2, bidirectional=True, proj_size=2, options=o)
       for o in LSTM_GRID]
    + [SizeConfig(f, 3, 4, num_layers=3, bidirectional=bd, bias=b, options=o)
       for f in ("gru", "rnn", "indrnn") for o in registry.get(f).option_grid()
       for bd in (False, True) for b in (False, True)]
    + [SizeConfig("conv_lstm", 2, 4, num_layers=2, kernel=3, bias=b, options=o)
       for o in registry.get("conv_lstm").option_grid() for b in (False, True)]
)


@pytest.mark.parametrize("cfg", CONFIGS, ids=[c.describe() + f"-b{c.bias}" for c in CONFIGS])
def test_parameter_count_from_the_equations_equals_the_module(cfg):
    assert count_params(cfg) == sum(p.numel() for p in cfg.build().parameters())


def test_flops_by_hand():
    cfg = SizeConfig("lstm", 10, 20, proj_size=5)
    # gates 80 rows: input GEMM 2*80*10, recurrent 2*80*5, projection 2*5*20; pointwise 2*80 + 5*20
    assert flops(cfg, T=1, B=1)["forward"] == 2 * 80 * 10 + 2 * 80 * 5 + 2 * 5 * 20 + 160 + 100
    assert flops(cfg, T=7, B=3)["training"] == 3 * 21 * flops(cfg, 1, 1)["forward"]
    gru = SizeConfig("gru", 10, 20, num_layers=2, bidirectional=True)
    assert flops(gru, 1, 1)["gemm_forward"] == 2 * (2 * 60 * (10 + 20)) + 2 * (2 * 60 * (40 + 20))


SAVED = [SizeConfig("lstm", 3, 5, options=o) for o in LSTM_GRID[:8]] + [
    SizeConfig("lstm", 3, 5, num_layers=2, bidirectional=True, proj_size=2),
    SizeConfig("gru", 3, 5, num_layers=2), SizeConfig("gru", 3, 5, options={"reset_after": False}),
    SizeConfig("rnn", 3, 5, bidirectional=True), SizeConfig("indrnn", 3, 5),
    SizeConfig("conv_lstm", 2, 3, num_layers=2, frame=(4, 4)),
]


@pytest.mark.parametrize("cfg", SAVED, ids=[c.describe() for c in SAVED])
def test_predicted_training_activations_equal_what_each_engine_saves(cfg):
    fam = registry.get(cfg.family)
    engines = [e for e in fam.engines(cfg.opts) if e != "vendor"] if fam.layer else ["reference"]
    for engine in engines:
        if engine == "fused" and not kernels.available():
            continue
        T, B = 6, 3
        m = cfg.build(engine)
        shape = (B, T, cfg.input_size, *cfg.frame) if cfg.family == "conv_lstm" else (T, B, cfg.input_size)
        got = measure_saved_bytes(m, torch.randn(*shape))
        assert got == activation_bytes(cfg, T, B, training=True, engine=engine), engine


def test_report_measures_time_and_memory_and_the_command_writes_its_files(tmp_path, capsys):
    rows = size_report(SizeConfig("gru", 4, 8), 5, 2, engines=("reference",), min_time=0.01)
    (r,) = rows
    assert r.measured_seconds["forward"] > 0 and r.predicted_seconds["training"] > 0
    assert r.measured_saved_bytes == r.predicted_bytes["training"]
    assert main(["size", "--family", "lstm", "--option", "peephole", "--input-size", "4",
                 "--hidden-size", "8", "--seq-len", "4", "--batch", "2,3", "--engines",
                 "reference", "--min-time", "0.01", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "LSTM(I=4, H=8, peephole=True)" in out and "ratio" in out
    data = json.loads((tmp_path / "size.json").read_text())
    assert [d["B"] for d in data] == [2, 3] and (tmp_path / "size.png").stat().st_size > 1000
    assert main(["size", "--family", "gru", "--option", "peephole", "--no-measure"]) == 2
    assert main(["size", "--batch", "0", "--no-measure"]) == 2


def test_size_reads_the_layers_of_a_checkpoint(tmp_path, capsys):
    import lstmkit as lk
    from lstmkit.models.checkpoints import save_model

    layer = lk.LSTM(5, 6, num_layers=2, bidirectional=True, proj_size=3, peephole=True)
    save_model(tmp_path / "model.pt", layer)
    assert main(["size", str(tmp_path), "--no-measure", "--seq-len", "7", "--batch", "2"]) == 0
    out = capsys.readouterr().out
    assert "LSTM(I=5, H=6, L=2, bidirectional, proj=3, peephole=True)" in out
    assert f" {sum(p.numel() for p in layer.parameters())} " in out


def test_bad_sizes_are_refused_by_name():
    with pytest.raises(ValueError, match="hidden_size: expected an int >= 1, got -1"):
        SizeConfig("lstm", 8, -1)
    with pytest.raises(ValueError, match=r"proj_size: expected an int in \[0, hidden_size=16\), got 16"):
        SizeConfig("lstm", 8, 16, proj_size=16)


def test_a_layer_flag_without_family_sizes_that_lstm_not_the_default_suite(tmp_path):
    assert main(["size", "--proj-size", "4", "--hidden-size", "8", "--input-size", "3", "--no-measure",
                 "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "size.json").read_text())
    rows = rows["rows"] if isinstance(rows, dict) else rows
    assert rows and all("proj=4" in str(r) for r in rows)
