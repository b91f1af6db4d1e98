"""``lstmkit speech``: help, flags -> config, bad input as exit code 2."""

import pytest

from lstmkit.cli import main
from lstmkit.jobs import speech as job


def test_help_fits_on_a_screen(capsys):
    for cmd in (["speech", "--help"], ["speech", "train", "--help"], ["speech", "transcribe", "--help"]):
        with pytest.raises(SystemExit):
            main(cmd)
        assert len(capsys.readouterr().out.splitlines()) <= 60


def test_every_train_flag_is_a_config_field():
    from lstmkit.cli import build_parser

    p = build_parser()
    speech = p._subparsers._group_actions[0].choices["speech"]
    train = speech._subparsers._group_actions[0].choices["train"]
    dests = {a.dest for a in train._actions} - {"help", "config"}
    assert dests <= set(job.config_fields()), dests - set(job.config_fields())


def test_toml_fills_what_the_flags_leave_at_default(tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('hidden_size = 32\nlr = 0.01\nsnrs = [10.0]\nmax_time = 0\n')
    cfg = job.config_from_flags({"hidden_size": job.SpeechConfig().hidden_size, "lr": 0.5}, str(f))
    assert (cfg.hidden_size, cfg.lr, cfg.snrs, cfg.max_time) == (32, 0.5, [10.0], None)
    (tmp_path / "bad.toml").write_text("hiden_size = 3\n")
    with pytest.raises(ValueError, match="hiden_size"):
        job.config_from_flags({}, str(tmp_path / "bad.toml"))


def test_bad_flags_are_exit_code_2(tmp_path, capsys):
    assert main(["speech", "train", "--out", str(tmp_path), "--hidden-size", "0"]) == 2
    assert "hidden-size" in capsys.readouterr().err
    assert main(["speech", "transcribe", "--checkpoint", str(tmp_path / "none"), "x.wav"]) == 2
