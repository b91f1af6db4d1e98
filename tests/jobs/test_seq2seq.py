"""The seq2seq job: tiny runs on the dates task and a TSV, artefacts, metrics, bad input."""

import json

import pytest
import torch

from lstmkit.jobs import seq2seq as job


def tiny(tmp_path, **kw):
    cfg = dict(task="dates", n_dates=300, epochs=1, batch_size=32, embedding_dim=8, hidden_size=8,
               beam_width=2, max_test=40, out=str(tmp_path / "run"), progress=False)
    cfg.update(kw)
    return job.Seq2SeqJobConfig(**cfg)


def test_dates_run_writes_its_artefacts_and_metrics(tmp_path):
    res = job.train(tiny(tmp_path))
    out = tmp_path / "run"
    for name in ("config.json", "metrics.json", "model.pt", "attention.png", "accuracy_by_length.png"):
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    assert set(m["models"]) == {"seq2seq-bahdanau/greedy", "seq2seq-bahdanau/beam2", "seq2seq-none/greedy",
                                "seq2seq-none/beam2", "babel.parse_date (locale given)",
                                "dateutil.parser.parse"}
    for v in m["models"].values():
        assert {"exact_match", "ter", "wer", "bleu", "chrf", "accuracy_by_length"} <= set(v)
        assert v["n"] == 40
    assert m["chosen"]["max_source_len"] == res.config.max_source_len > 0
    assert m["models"]["dateutil.parser.parse"]["exact_match"] > 0.1  # a real baseline
    ev = job.evaluate(out, max_test=40)
    name = "seq2seq-bahdanau/greedy"
    assert ev["models"][name]["exact_match"] == m["models"][name]["exact_match"]


def test_split_keeps_test_dates_and_words_out_of_training():
    d = job.load_task(job.Seq2SeqJobConfig(task="dates", n_dates=1000, max_train=300))
    assert len(d["train"]) == 300
    assert not {"".join(r[0]) for _, r in d["train"]} & {"".join(r[0]) for _, r in d["test"]}
    g = job.load_task(job.Seq2SeqJobConfig(task="g2p"))
    train_words = {"".join(s) for s, _ in g["train"]}
    test_words = {"".join(s) for s, _ in g["test"]}
    assert len(test_words) > 5000 and not train_words & test_words
    assert all(len(refs) >= 1 for _, refs in g["test"])


def write_tsv(path, n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    lines = []
    for _ in range(n):
        s = "".join("abcdefgh"[i] for i in torch.randint(0, 8, (int(torch.randint(2, 6, (1,), generator=g)),),
                                                          generator=g).tolist())
        lines.append(f"{s}\t{s[::-1]}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_tsv_predict_policies(tmp_path, capsys):
    tsv = write_tsv(tmp_path / "rev.tsv")
    job.train(tiny(tmp_path, task="tsv", tsv=str(tsv), compare_none=False, epochs=2))
    ld = job.load_model(tmp_path / "run")
    notes = []
    out = job.predict(ld, ["abc", "abz"], beam_width=2, n_best=2, warn=notes.append)
    assert len(out) == 2 and len(out[0]) == 2
    assert notes and "'z'" in notes[0] and "<unk>" in notes[0]
    with pytest.raises(ValueError, match=r"texts\[0\].*non-empty"):
        job.predict(ld, [""])
    with pytest.raises(ValueError, match="max_source_len"):
        job.predict(ld, ["a" * (ld.job.max_source_len + 1)])
    with pytest.raises(ValueError, match="n_best"):
        job.predict(ld, ["abc"], beam_width=2, n_best=3)


def test_tsv_with_a_missing_column_is_named(tmp_path):
    bad = tmp_path / "bad.tsv"
    bad.write_text("abc\tcba\n" * 12 + "lonely\n")
    with pytest.raises(ValueError, match="line 13.*2 tab-separated columns"):
        job.read_tsv(bad)
    with pytest.raises(FileNotFoundError, match="tsv"):
        job.read_tsv(tmp_path / "missing.tsv")
    with pytest.raises(ValueError, match="scheduled_sampling"):
        job.Seq2SeqJobConfig(scheduled_sampling="cosine")
    with pytest.raises(ValueError, match="k"):
        job.Seq2SeqJobConfig(scheduled_sampling="exponential", decay_k=2.0)


def test_metrics_on_hand_computed_cases():
    refs = [[["K", "AE", "T"]], [["T", "AH", "M", "EY", "T", "OW"], ["T", "AH", "M", "AA", "T", "OW"]]]
    hyps = [["K", "AE", "T"], ["T", "AH", "M", "AA", "D", "OW"]]
    m = job.score(hyps, refs, [list("cat"), list("tomato")], "space", g2p=True)
    assert m["exact_match"] == 0.5 and m["wer"] == 0.5
    assert m["ter"] == pytest.approx(1 / 9)  # one substitution against the closer reference
    assert m["accuracy_by_length"] == {"3": {"n": 1, "exact_match": 1.0}, "6": {"n": 1, "exact_match": 0.0}}
    assert job.edit_distance(list("kitten"), list("sitting")) == 3
