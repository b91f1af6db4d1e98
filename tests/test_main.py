"""``python -m lstmkit`` is the ``lstmkit`` command (pyproject's console script ``lstmkit.cli:main``)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import lstmkit
from lstmkit.cli import main


def _python_m(*args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(Path(lstmkit.__file__).parents[1]),
                                           os.environ.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "lstmkit", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_python_m_lstmkit_prints_the_commands_help(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    want = capsys.readouterr().out
    got = _python_m("--help", cwd=tmp_path)
    assert got.returncode == 0 and got.stdout == want
    assert want.startswith("usage: lstmkit ")


def test_python_m_lstmkit_exits_with_the_commands_status(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("only-one-column\n")
    got = _python_m("seq2seq", "train", "--tsv", str(bad), "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert got.returncode == 2  # main's return value, passed to sys.exit
    assert "lstmkit seq2seq: error: tsv: line 1" in got.stderr
