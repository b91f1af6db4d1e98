"""``lstmkit lm train`` + ``lstmkit lm generate`` on a tiny corpus."""

import json

import pytest

from lstmkit.cli import main

CORPUS = "def add(a, b):\n    return a + b\n\n\ndef sub(a, b):\n    return a - b\n\n" * 30
SMALL = ["--max-steps", "30", "--max-time", "0", "--batch-size", "4", "--bptt", "16",
         "--hidden-size", "24", "--embedding-dim", "24", "--val-every", "10", "--patience", "50",
         "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("lm")
    (d / "a.py").write_text(CORPUS)
    (d / "blob.bin").write_bytes(bytes(range(256)) * 4)
    rc = main(["lm", "train", "--text", str(d / "a.py"), str(d / "blob.bin"), "--out", str(d / "out"),
               "--seed", "0", *SMALL])
    assert rc == 0
    return d / "out"


def test_train_writes_metrics_checkpoint_and_tokenizer(trained):
    m = json.loads((trained / "metrics.json").read_text())
    assert {"val_loss", "val_ppl", "val_bpc"} <= m["lstm"].keys() and {"kn5", "unigram"} <= m.keys()
    assert m["val_ppl"] == pytest.approx(2.718281828 ** m["val_loss"], rel=1e-6)
    assert 0 < m["val_bpc"] < 8.5 and m["steps"] == 30
    assert [r["step"] for r in m["history"]] == [10, 20, 30]
    for name in ("model.pt", "tokenizer.json", "config.json", "loss.png"):
        assert (trained / name).is_file(), name
    cfg = json.loads((trained / "config.json").read_text())
    assert cfg["hidden_size"] == 24 and cfg["max_time"] is None


def test_train_prints_the_table_beside_the_baselines(tmp_path, capsys):
    (tmp_path / "a.txt").write_text(CORPUS)
    assert main(["lm", "train", "--text", str(tmp_path / "a.txt"), "--out", str(tmp_path / "o"),
                 "--max-steps", "5", *SMALL[2:]]) == 0
    out = capsys.readouterr().out
    assert "LSTM (lstmkit)" in out and "Kneser-Ney 5-gram" in out and "unigram" in out


def test_help_lists_every_config_field():
    import argparse

    from lstmkit.cli import build_parser
    from lstmkit.jobs.lm import config_fields

    parser = build_parser()
    lm_parser = parser._subparsers._group_actions[0].choices["lm"]
    train = lm_parser._subparsers._group_actions[0].choices["train"]
    dests = {a.dest for a in train._actions if not isinstance(a, argparse._HelpAction)}
    assert set(config_fields()) <= dests


@pytest.mark.parametrize("strategy", ["greedy", "sample", "beam"])
def test_generate_is_reproducible(trained, capsys, strategy):
    args = ["lm", "generate", "--checkpoint", str(trained), "--prompt", "def ", "--strategy", strategy,
            "--max-new-tokens", "12", "--seed", "3", "--top-k", "5", "--beam-width", "2"]
    assert main(args) == 0
    first = capsys.readouterr().out
    assert main(args) == 0
    assert capsys.readouterr().out == first
    assert first.startswith("def ") and len(first) > len("def \n")


@pytest.mark.parametrize("weights", ["bfloat16", "int8"])
def test_generate_with_reduced_step_weights(trained, capsys, weights, monkeypatch):
    import lstmkit as lk
    from lstmkit import kernels

    used = []
    real = lk.LSTM._forward_step
    monkeypatch.setattr(lk.LSTM, "_forward_step", lambda self, *a: used.append(self.step_weights)
                        or real(self, *a))
    args = ["lm", "generate", "--checkpoint", str(trained), "--prompt", "def ", "--strategy", "greedy",
            "--max-new-tokens", "12", "--step-weights", weights]
    if not kernels.available():  # no compiled step kernel here: refused by name, nothing generated
        assert main(args) == 2
        assert f"step_weights: {weights!r} runs the compiled step kernel" in capsys.readouterr().err
        return
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("def ") and len(out) > len("def \n")
    assert used and set(used) == {weights}  # every generated token stepped in that precision


def test_generate_reports_unseen_characters_and_long_prompts(trained, capsys):
    rc = main(["lm", "generate", "--checkpoint", str(trained), "--prompt", "def λ(x): " * 3,
               "--max-context", "8", "--max-new-tokens", "5", "--strategy", "greedy"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "not seen in training" in err and "'λ'" in err
    assert "longer than the context of 8" in err


def test_bad_input_gives_clear_errors(tmp_path, capsys):
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01\x02")
    assert main(["lm", "train", "--text", str(tmp_path / "empty.txt"), str(tmp_path / "b.bin"),
                 "--out", str(tmp_path / "o"), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "binary" in err and "corpus is empty" in err
    assert main(["lm", "generate", "--checkpoint", str(tmp_path / "nope"), "--prompt", "x"]) == 2
    assert "not found" in capsys.readouterr().err


def test_config_file_gives_the_fields_and_flags_win(tmp_path, monkeypatch):
    from lstmkit.jobs import lm as job

    seen = {}
    monkeypatch.setattr(job, "train", lambda cfg: seen.setdefault("cfg", cfg))
    (tmp_path / "c.toml").write_text(f'out = "{tmp_path / "o"}"\nhidden_size = 32\nembedding_dim = 32\n'
                                     f'lr = 0.01\n')
    assert main(["lm", "train", "--config", str(tmp_path / "c.toml"), "--lr", "0.02"]) == 0
    cfg = seen["cfg"]
    assert cfg.hidden_size == 32 and cfg.lr == 0.02 and cfg.out == str(tmp_path / "o")
    (tmp_path / "bad.toml").write_text("hiden_size = 3\n")
    assert main(["lm", "train", "--config", str(tmp_path / "bad.toml"), "--out", "x"]) == 2
