from lstmkit.cli import main


def test_demo_command_runs_and_reports_mse(capsys):
    assert main(["demo", "--steps", "10", "--iters", "20"]) == 0
    out = capsys.readouterr().out
    assert "held-out MSE" in out and "->" in out
