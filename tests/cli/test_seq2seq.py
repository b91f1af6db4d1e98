"""``lstmkit seq2seq`` train / translate / evaluate on a tiny TSV."""

from lstmkit.cli import main


def test_train_translate_evaluate_on_a_tsv(tmp_path, capsys):
    tsv = tmp_path / "pairs.tsv"
    words = ["abc", "bca", "cab", "aab", "bba", "ccb", "acb", "bac", "cba", "abb", "bcc", "caa"] * 3
    tsv.write_text("".join(f"{w}\t{w[::-1]}\n" for w in words))
    out = tmp_path / "run"
    rc = main(["seq2seq", "train", "--tsv", str(tsv), "--epochs", "1", "--embedding-dim", "8",
               "--hidden-size", "8", "--beam-width", "2", "--no-compare-none", "--out", str(out),
               "--no-progress", "--scheduled-sampling", "inverse-sigmoid", "--decay-k", "10",
               "--label-smoothing", "0.1"])
    assert rc == 0
    assert "seq2seq-bahdanau/greedy" in capsys.readouterr().out
    assert main(["seq2seq", "translate", "--checkpoint", str(out), "--beam-width", "2", "--n-best", "2",
                 "abc"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("abc\t1\t")
    assert main(["seq2seq", "evaluate", "--checkpoint", str(out), "--tsv", str(tsv),
                 "--out", str(out / "ev")]) == 0
    assert (out / "ev" / "metrics.json").exists()


def test_bad_input_exits_2_with_the_argument_named(tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("only-one-column\n")
    assert main(["seq2seq", "train", "--tsv", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "tsv: line 1" in capsys.readouterr().err
    assert main(["seq2seq", "translate", "--checkpoint", str(tmp_path / "nope"), "x"]) == 2
    assert "checkpoint" in capsys.readouterr().err


def test_train_with_no_flags_builds_the_config_defaults(monkeypatch):
    from types import SimpleNamespace

    from lstmkit.jobs import seq2seq as job

    got = []
    monkeypatch.setattr(job, "train", lambda cfg: got.append(cfg) or SimpleNamespace(out=cfg.out))
    assert main(["seq2seq", "train", "--out", "x"]) == 0  # --out is required
    assert got == [job.Seq2SeqJobConfig(out="x")]  # every field: --help and the job agree
