"""ablate: every Greff variant is a real option set of lk.LSTM, the interval is the t interval,
and the command trains, ranks and plots on a tiny budget."""

import json
import math

import pytest
import torch

import lstmkit as lk
from lstmkit.analysis.ablate import VARIANTS, AblateConfig, AblateResult
from lstmkit.cli import main


def test_each_variant_is_one_change_from_the_peephole_lstm():
    base = VARIANTS["vanilla"]
    for name, opts in VARIANTS.items():
        changed = {k for k in set(opts) | set(base) if opts.get(k, False) != base.get(k, False)}
        assert len(changed) == (0 if name == "vanilla" else 1), name
        lk.LSTM(3, 4, **opts)(torch.randn(2, 1, 3))  # builds and runs


def test_summary_is_the_95_percent_t_interval_best_first():
    res = AblateResult(AblateConfig(seeds=3))
    res.bpc = {"a": [2.0, 2.2, 2.4], "b": [1.0, 1.0, 1.3]}
    (v1, m1, lo1, hi1), (v2, m2, lo2, hi2) = res.summary()
    assert v1 == "b" and v2 == "a" and m2 == pytest.approx(2.2)
    half = 4.302652729911275 * 0.2 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert (lo2, hi2) == (pytest.approx(2.2 - half), pytest.approx(2.2 + half))


def test_ablate_command_on_a_tiny_budget(tmp_path, capsys):
    assert main(["ablate", "--variants", "vanilla,NFG", "--seeds", "2", "--steps", "2",
                 "--hidden-size", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "vanilla" in out and "NFG" in out and "unigram" in out
    data = json.loads((tmp_path / "ablate.json").read_text())
    assert set(data["bpc"]) == {"vanilla", "NFG"} and len(data["bpc"]["NFG"]) == 2
    assert data["params"]["NFG"] < data["params"]["vanilla"]  # one gate fewer
    assert (tmp_path / "ablate.png").stat().st_size > 3000
    assert main(["ablate", "--variants", "XYZ", "--out", str(tmp_path)]) == 2
    assert main(["ablate", "--seeds", "1", "--out", str(tmp_path)]) == 2
