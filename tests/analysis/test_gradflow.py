"""gradflow: the gradient probe matches the equations' story at initialisation (a forget-gate
bias of 1 keeps more gradient over distance than 0), and the command writes its files."""

import json

import torch

from lstmkit.analysis.gradflow import AddingModel, GradflowConfig, grad_norm_by_distance
from lstmkit.cli import main
from lstmkit.data.synthetic import adding_problem


def test_forget_bias_one_carries_more_gradient_back_than_zero_at_init():
    x, y = adding_problem(32, 40, torch.Generator().manual_seed(0))
    norms = {}
    for cell in ("lstm_fb0", "lstm_fb1"):
        torch.manual_seed(0)
        norms[cell] = grad_norm_by_distance(AddingModel(cell, 16), x, y)
    assert len(norms["lstm_fb0"]) == 40
    # same weights but the forget bias: f ~ sigmoid(1) vs sigmoid(0) per step of distance
    assert norms["lstm_fb1"][-1] > 100 * norms["lstm_fb0"][-1]
    assert norms["lstm_fb1"][0] > 0 and norms["lstm_fb0"][0] > 0


def test_gradflow_command_writes_table_json_and_png(tmp_path, capsys):
    assert main(["gradflow", "--lengths", "4,6", "--cells", "rnn,gru", "--hidden-size", "4",
                 "--train-steps", "3", "--batch-size", "8", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "predict the mean" in out and "GRU" in out
    data = json.loads((tmp_path / "gradflow.json").read_text())
    assert set(data["success"]) == {"rnn", "gru"} and len(data["success"]["gru"]) == 2
    assert (tmp_path / "gradflow.png").stat().st_size > 5000
    assert main(["gradflow", "--cells", "lstm2", "--out", str(tmp_path)]) == 2


def test_config_checks_name_the_argument():
    import pytest

    with pytest.raises(ValueError, match="lengths"):
        GradflowConfig(lengths=(1,))
