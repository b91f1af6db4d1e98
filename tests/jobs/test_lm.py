"""jobs.lm on the one Trainer: early stopping restores the best weights, a killed run resumes to
the same end, the artefacts, and the Kneser-Ney baseline."""

import json
import math

import pytest
import torch

from lstmkit.jobs import lm
from lstmkit.models.language_model import load_language_model

# a small English text with enough variety to overfit and then get worse on validation
TEXT = "".join(
    f"{a} {b} the {c} {d}.\n" for a, b, c, d in
    [(w1, w2, w3, w4) for w1 in ("a cat", "the dog", "my aunt", "one bird", "his son")
     for w2 in ("saw", "ate", "likes", "drew")
     for w3 in ("red", "old", "big")
     for w4 in ("hat", "mouse", "tree", "lamp", "bone")])


def _config(tmp_path, **kw):
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "t.txt").write_text(TEXT)
    base = dict(out=str(tmp_path / "out"), text=[str(tmp_path / "t.txt")], max_steps=60,
                max_time=None, batch_size=4, bptt=16, embedding_dim=16, hidden_size=16,
                lr=2e-2, weight_decay=0.0, val_every=5, patience=3, progress=False, ngram_order=3,
                embedding_dropout=0.0, output_dropout=0.0)
    base.update(kw)
    return lm.LMConfig(**base)


def _quiet(_):
    pass


def test_stops_early_and_restores_the_best_weights(tmp_path):
    cfg = _config(tmp_path, max_steps=400, lr=5e-2, hidden_size=48, embedding_dim=48,
                  val_fraction=0.05, test_fraction=0.0, lr_drops=1)
    res = lm.train(cfg, echo=_quiet)
    vals = [r["val_loss"] for r in res.history]
    assert res.metrics["setup"]["stopped"] == "patience" and res.metrics["steps"] < 400
    assert len(vals) - 1 - vals.index(min(vals)) >= cfg.patience  # best, then `patience` worse
    assert sum("lr_drop" in r for r in res.history) == cfg.lr_drops  # the LR was dropped first
    # the model that comes back is the best one: scored afresh, its validation loss is the best
    # logged (which the report then quotes without a second pass)
    val_text = lm.split_text(TEXT, cfg.val_fraction, cfg.test_fraction)[1]
    fresh = lm.evaluate(res.model.eval(), res.tokenizer, val_text)
    assert fresh["loss"] == pytest.approx(min(vals), rel=1e-9, abs=1e-12)
    assert res.metrics["lstm"]["val_loss"] == fresh["loss"] and res.metrics["lstm"]["val_bpc"] == fresh["bpc"]
    assert res.metrics["lstm"]["val_loss"] < vals[-1]


def test_resume_after_interruption_ends_where_an_uninterrupted_run_ends(tmp_path):
    full = lm.train(_config(tmp_path / "a", patience=100), echo=_quiet)

    class Crash:
        def on_step(self, trainer, loss):
            if trainer.step == 23:  # after the mid-epoch checkpoint of step 20
                raise KeyboardInterrupt("simulated kill")

    cfg = _config(tmp_path / "b", patience=100)
    with pytest.raises(KeyboardInterrupt):
        lm.train(cfg, callbacks=[Crash()], echo=_quiet)
    assert (tmp_path / "b" / "out" / "train" / "last.pt").exists()
    resumed = lm.train(cfg, echo=_quiet)
    for (name, a), (_, b) in zip(full.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    drop = ("seconds", "train_bits", "val_bits")
    assert ([{k: v for k, v in r.items() if k not in drop} for r in full.metrics["history"]]
            == [{k: v for k, v in r.items() if k not in drop} for r in resumed.metrics["history"]])
    assert resumed.metrics["lstm"] == full.metrics["lstm"]


def test_writes_config_metrics_checkpoint_and_plot(tmp_path):
    cfg = _config(tmp_path, max_steps=12)
    res = lm.train(cfg, echo=_quiet)
    out = tmp_path / "out"
    back = lm.LMConfig(**json.loads((out / "config.json").read_text()))
    assert back.val_every == 5 and back.warmup_steps == 0  # automatic choices resolved and saved
    m = json.loads((out / "metrics.json").read_text())
    assert {"lstm", "kn3", "unigram", "history", "setup"} <= m.keys()
    assert [r["step"] for r in m["history"]] == [5, 10, 12]
    assert all(r["train_loss"] > 0 and r["val_loss"] > 0 for r in m["history"])
    assert m["lstm"]["val_ppl"] == pytest.approx(math.exp(m["lstm"]["val_loss"]))
    ck = torch.load(out / "model.pt", weights_only=True)
    assert ck["kind"] == "language_model" and ck["config"]["hidden_size"] == 16
    model, extra = load_language_model(out / "model.pt")
    assert extra["job_config"]["max_steps"] == 12 and extra["bptt"] == 16
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = lm.predict(out, "the ", strategy="greedy", max_new_tokens=5)
    assert text.startswith("the ") and len(text) > 4
    assert res.metrics["lstm"]["val_bpc"] == m["val_bpc"]


def test_kneser_ney_is_normalised_and_learns_the_text():
    kn = lm.KneserNeyCharModel(4).fit(TEXT)
    for h in ("", "t", "the", "qqq", "cat "):
        assert sum(kn.prob(h, c) for c in kn.vocab) + kn.prob(h, "\x00") * 1 <= 1 + 1e-9
        assert sum(kn.prob(h, c) for c in kn.vocab) == pytest.approx(1 - kn.prob(h, "\x00"))
    held = "one bird drew the old lamp.\n"
    assert kn.bits_per_char(held) < 0.5 * lm.unigram_model_bpc(TEXT, held)
    assert lm.unigram_bpc("aabb") == 1.0


def test_bad_config_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="val-fraction"):
        lm.LMConfig(out="o", val_fraction=0.0)
    with pytest.raises(ValueError, match="embedding-dim"):
        lm.LMConfig(out="o", embedding_dim=8, hidden_size=16)
    with pytest.raises(ValueError, match="level"):
        lm.LMConfig(out="o", level="byte")
    with pytest.raises(ValueError, match="batch-size"):
        lm.train(_config(tmp_path, batch_size=10_000), echo=_quiet)


def test_docstring_examples_hold():
    import doctest

    from lstmkit.data import text

    for mod in (lm, text):
        assert doctest.testmod(mod).failed == 0, mod.__name__


def test_bfloat16_training_carries_its_state_and_ends_near_float32(tmp_path):
    # autocast hands the LSTM state back in bfloat16; the stateful TBPTT loop carries it on
    f32 = lm.train(_config(tmp_path / "f32", max_steps=40), echo=_quiet)
    b16 = lm.train(_config(tmp_path / "b16", max_steps=40, precision="bfloat16"), echo=_quiet)
    a, b = f32.metrics["lstm"]["val_bpc"], b16.metrics["lstm"]["val_bpc"]
    assert abs(b - a) / a < 0.05, (a, b)
    with pytest.raises(ValueError, match=r"precision: expected one of .*, got 'float16'"):
        _config(tmp_path / "bad", precision="float16")
