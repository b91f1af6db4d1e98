"""``lstmkit inspect`` on a real (tiny) forecast run: the pictures, and integrated gradients
that are complete on most windows."""

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
