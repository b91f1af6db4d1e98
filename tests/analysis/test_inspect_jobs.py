"""``lstmkit inspect`` on a real (tiny) forecast run: the pictures, and integrated gradients
that are complete on most windows."""

import numpy as np
import pytest

from lstmkit.cli import main


@pytest.mark.slow
def test_inspect_a_forecast_run(tmp_path, capsys):
    run = tmp_path / "fc"
    assert main(["forecast", "--out", str(run), "--no-search", "--ensemble", "1", "--epochs", "1",
                 "--hidden-size", "4", "--quantiles", "none"]) == 0
    capsys.readouterr()
    assert main(["inspect", str(run)]) == 0
    out = capsys.readouterr().out
    median = float(out.split("completeness error median ")[1].split(",")[0])
    assert median < 0.01
    for png in ("gates", "saturation", "pca", "attribution"):
        assert (run / "inspect" / f"{png}.png").stat().st_size > 3000
    assert main(["inspect", str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_inspect_a_series_classify_run(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        sign, T = (1 if i % 2 else -1), int(rng.choice([8, 9, 10]))
        x = sign * np.linspace(0, 1, T) + 0.1 * rng.standard_normal(T)
        rows.append(("up," if sign > 0 else "down,") + ",".join(f"{v:.4f}" for v in x))
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "cls"
    assert main(["classify", "train", "--csv", str(tmp_path / "train.csv"), "--epochs", "2",
                 "--hidden-size", "4", "--no-baselines", "--no-progress", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["inspect", str(run)]) == 0
    out = capsys.readouterr().out
    median, worst = out.split("completeness error median ")[1].split(" of ")[0].split(", max ")
    assert float(median) <= float(worst) < 0.05
    for png in ("gates", "saturation", "pca", "attribution"):
        assert (run / "inspect" / f"{png}.png").stat().st_size > 3000
