"""``lstmkit classify`` / ``lstmkit tag`` end to end on tiny CSV/CoNLL files."""

import dataclasses
import json
import types

import numpy as np
import pytest
import torch

from lstmkit.cli import main
from lstmkit.jobs import classify as job
from lstmkit.jobs import tag as tag_job
from lstmkit.models.classifier import SequenceClassifier


def _series_csv(path, n, lengths, seed):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "up" if i % 2 else "down"
        T = int(rng.choice(lengths))
        x = np.linspace(0, 1, T) * (1 if label == "up" else -1) + 0.1 * rng.standard_normal(T)
        rows.append(label + "," + ",".join(f"{v:.4f}" for v in x))
    path.write_text("\n".join(rows) + "\n")
    return path


def test_classify_train_never_sees_the_test_split_and_predict_reuses_the_model(tmp_path, monkeypatch):
    train_csv = _series_csv(tmp_path / "train.csv", 24, [8, 9, 10], 0)
    test_csv = _series_csv(tmp_path / "test.csv", 10, [13], 1)  # only the test series are 13 long
    seen, selecting = [], {"on": False}
    real_select, real_encode = job.select_model, SequenceClassifier.encode

    def select(cands, enc_x, y, tr_idx, va_idx, *a, **kw):
        # the validation part is drawn from the training rows, disjoint from the trained part
        assert len(enc_x[0]) == 24 and not set(tr_idx) & set(va_idx)
        assert sorted([*tr_idx, *va_idx]) == list(range(24))
        selecting["on"] = True
        try:
            return real_select(cands, enc_x, y, tr_idx, va_idx, *a, **kw)
        finally:
            selecting["on"] = False

    def encode(self, x, lengths=None):
        if selecting["on"]:
            seen.append(int(torch.as_tensor(lengths).max()))
        return real_encode(self, x, lengths)

    monkeypatch.setattr(job, "select_model", select)
    monkeypatch.setattr(SequenceClassifier, "encode", encode)
    out = tmp_path / "run"
    rc = main(["classify", "train", "--csv", str(train_csv), "--test-csv", str(test_csv),
               "--epochs", "3", "--hidden-size", "8", "--no-baselines", "--no-progress",
               "--out", str(out)])
    assert rc == 0
    assert seen and max(seen) <= 10  # no 13-step test series went through training or selection
    m = json.loads((out / "metrics.json").read_text())
    assert m["setup"]["val"] > 0 and m["setup"]["train"] + m["setup"]["val"] == 24
    assert m["setup"]["model"] in job.SERIES_PRESETS and len(m["setup"]["selection"]) == 3
    assert {"accuracy", "balanced_accuracy", "macro_f1", "log_loss", "per_class"} <= set(m["lstmkit"])
    for name in ("confusion.png", "attention.png", "model.pt", "config.json"):
        assert (out / name).stat().st_size > 0
    monkeypatch.undo()
    res = job.predict(str(out), csv=str(test_csv), out=str(tmp_path / "pred"), echo=lambda s: None)
    assert res["accuracy"] == pytest.approx(m["lstmkit"]["accuracy"])
    assert (tmp_path / "pred" / "predictions.csv").read_text().count("\n") == 11


def test_classify_trains_in_bfloat16_on_this_cpu_and_records_it(tmp_path):
    """--precision bfloat16 trains under autocast (the FCN branch's masked batch norm keeps
    float32 statistics); on a CPU without oneDNN bfloat16 the LSTM takes the fused kernels."""
    train_csv = _series_csv(tmp_path / "train.csv", 24, [8, 9, 10], 0)
    out = tmp_path / "run"
    assert main(["classify", "train", "--csv", str(train_csv), "--model", "lstm-fcn", "--epochs", "2",
                 "--hidden-size", "8", "--precision", "bfloat16", "--no-baselines", "--no-progress",
                 "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["precision"] == "bfloat16"
    m = json.loads((out / "metrics.json").read_text())
    assert 0 <= m["lstmkit"]["accuracy"] <= 1 and np.isfinite(m["lstmkit"]["log_loss"])
    with pytest.raises(SystemExit):
        main(["classify", "train", "--precision", "float16"])


def test_classify_text_csv_with_ensemble_beside_tfidf(tmp_path):
    rng = np.random.default_rng(0)
    words = {"cat": ["meow", "purr", "whiskers", "mouse"], "dog": ["bark", "bone", "fetch", "leash"]}
    lines = ["text,label"]
    for i in range(60):
        label = "cat" if i % 2 else "dog"
        ws = list(rng.choice(words[label], 4)) + list(rng.choice(["the", "a", "and", "big"], 3))
        lines.append(f"\"{' '.join(rng.permutation(ws))}\",{label}")
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n")
    cfg = job.ClassifyConfig(dataset=None, csv=str(tmp_path / "t.csv"), out=str(tmp_path / "run"),
                             model="bilstm-max", hidden_size=8, epochs=4, seeds=2, progress=False)
    r = job.train(cfg, echo=lambda s: None)
    assert {"lstmkit", "lstmkit_soft_vote", "lstmkit_hard_vote", "tfidf_logreg"} <= set(r.metrics)
    assert r.metrics["tfidf_logreg"]["accuracy"] > 0.9
    assert len(r.chosen["member_accuracy"]) == 2 and "soft_vote_gain" in r.chosen
    assert r.chosen["test"] == 12  # 20% held out, stratified


@pytest.mark.parametrize("rows,match", [
    (["a,1,2,3", "b,4,,nan"], "line 2: NaN"),
    (["a,1,2,3", "b"], "line 2: empty series"),
    (["a,1,2,3", "b,1,x,3"], "line 2: expected numbers"),
])
def test_bad_series_csv_is_a_clear_error(tmp_path, rows, match):
    p = tmp_path / "bad.csv"
    p.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=match):
        job.train(job.ClassifyConfig(dataset=None, csv=str(p), out=str(tmp_path / "o")))


def test_ragged_text_csv_and_unseen_labels_are_clear_errors(tmp_path, capsys):
    p = tmp_path / "bad.csv"
    p.write_text("text,label\nhello there,a\nhi,b,extra\n")
    assert main(["classify", "train", "--csv", str(p), "--out", str(tmp_path / "o")]) == 2
    assert "line 3: expected 2 fields" in capsys.readouterr().err
    train_csv = _series_csv(tmp_path / "train.csv", 10, [6], 0)
    out = tmp_path / "run"
    job.train(job.ClassifyConfig(dataset=None, csv=str(train_csv), test_csv=str(train_csv),
                                 model="bilstm-attention", hidden_size=4, epochs=1, baselines=False,
                                 out=str(out), progress=False), echo=lambda s: None)
    (tmp_path / "new.csv").write_text("sideways,1,2,3\n")
    with pytest.raises(ValueError, match=r"\['sideways'\] were never seen in training"):
        job.predict(str(out), csv=str(tmp_path / "new.csv"), echo=lambda s: None)


def test_tag_cli_trains_on_conll_and_predicts(tmp_path):
    rng = np.random.default_rng(0)
    vocab = {"DET": ["the", "a"], "NOUN": ["cat", "dog", "tree", "car"], "VERB": ["runs", "sees"]}
    sents = []
    for _ in range(60):
        seq = [("DET", w) for w in rng.choice(vocab["DET"], 1)] + [("NOUN", rng.choice(vocab["NOUN"]))]
        seq += [("VERB", rng.choice(vocab["VERB"])), ("DET", "the"), ("NOUN", rng.choice(vocab["NOUN"]))]
        sents.append("\n".join(f"{w} {t}" for t, w in seq))
    (tmp_path / "d.conll").write_text("\n\n".join(sents) + "\n")
    out = tmp_path / "run"
    assert main(["tag", "train", "--conll", str(tmp_path / "d.conll"), "--crf", "--epochs", "8",
                 "--batch-size", "8", "--lr", "0.01",
                 "--hidden-size", "16", "--no-progress", "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["lstmkit"]["accuracy"] > 0.95 and m["most_frequent_tag"]["accuracy"] == 1.0
    assert "entity_f1" in m["lstmkit"] and (out / "confusion.png").stat().st_size > 0
    (tmp_path / "new.conll").write_text("the\nzebra\nsees\n")
    assert main(["tag", "predict", "--checkpoint", str(out), "--conll", str(tmp_path / "new.conll"),
                 "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "predictions.conll").read_text().split()[1::2][0] == "DET"
    bad = tmp_path / "bad.conll"
    bad.write_text("the DET\ncat\n")
    assert main(["tag", "train", "--conll", str(bad), "--out", str(tmp_path / "o")]) == 2


def test_help_fits_on_a_screen(capsys):
    for cmd in ("classify", "tag"):
        with pytest.raises(SystemExit):
            main([cmd, "--help"])
        assert len(capsys.readouterr().out.splitlines()) <= 60


def _shifted(config_cls, **extra):
    """A subclass of ``config_cls`` whose every int / float default is moved, and ``dataset``, ``out``
    and ``extra`` replaced: a CLI that repeats a default instead of reading it cannot build it."""
    moved = dict(dataset="somewhere_else", out="elsewhere", **extra)
    for f in dataclasses.fields(config_cls):
        v = f.default
        if f.name in moved or isinstance(v, bool):
            continue
        if isinstance(v, int):
            moved[f.name] = v + 1
        elif isinstance(v, float):
            moved[f.name] = v / 2
    return dataclasses.make_dataclass(
        "Shifted" + config_cls.__name__,
        [(k, type(v), dataclasses.field(default=v)) for k, v in moved.items()], bases=(config_cls,))


@pytest.mark.parametrize("cmd, module, name, extra", [
    ("classify", job, "ClassifyConfig", dict(model="lstm-fcn")),
    ("tag", tag_job, "TagConfig", dict(cell="gru")),
])
def test_train_with_no_flags_builds_the_config_defaults(monkeypatch, cmd, module, name, extra):
    got = []
    monkeypatch.setattr(module, "train", lambda cfg, **kw: got.append(cfg) or
                        types.SimpleNamespace(attention=None))
    assert main([cmd, "train"]) == 0
    config_cls = getattr(module, name)
    assert got[-1] == config_cls()  # every field: --help and the job agree
    shifted = _shifted(config_cls, **extra)
    monkeypatch.setattr(module, name, shifted)  # the CLI reads its defaults from the dataclass
    assert main([cmd, "train"]) == 0
    assert type(got[-1]) is shifted and got[-1] == shifted()
    assert got[-1].lr == config_cls().lr / 2 and got[-1].out == "elsewhere"
