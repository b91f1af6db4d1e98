"""LanguageModel: shapes, weight tying, step/prime == forward, checkpoints, overfitting, and a
short TBPTT training run on held-out standard-library text that beats a unigram model."""

import collections
import math

import pytest
import torch

from lstmkit.data.text import CharTokenizer, StreamLoader, stdlib_corpus
from lstmkit.models.language_model import (
    LanguageModel,
    LanguageModelConfig,
    evaluate_language_model,
    lm_metrics,
    load_language_model,
    save_language_model,
)
from lstmkit.train.checkpoint import save_checkpoint
from lstmkit.train.trainer import TrainConfig, Trainer


def fit(model, stream, tmp_path, *, batch_size, bptt, lr, max_steps):
    """Stateful TBPTT through the one Trainer (what jobs.lm does)."""

    def loss_fn(m, batch, hx):
        x, y = batch
        logits, hx = m(x, hx)  # (B, T, V)
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), hx

    cfg = TrainConfig(max_steps=max_steps, lr=lr, weight_decay=0.0, patience=None, progress=False,
                      schedule="constant", val_every=max_steps)
    Trainer(model, loss_fn, cfg, tmp_path, stateful=True).fit(StreamLoader(stream, batch_size, bptt))


def small(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=30, embedding_dim=8, hidden_size=12, num_layers=2, dropout=0.0,
               embedding_dropout=0.0, output_dropout=0.0)
    cfg.update(kw)
    return LanguageModel(LanguageModelConfig(**cfg)).eval()


def test_shapes_and_weight_tying():
    m = small(tie_weights=True, proj_size=8)
    logits, (h, c) = m(torch.randint(0, 30, (3, 7)))
    assert logits.shape == (3, 7, 30) and h.shape == (2, 3, 8) and c.shape == (2, 3, 12)
    assert m.decoder.weight is m.embedding.weight
    with pytest.raises(ValueError, match="tie_weights"):
        LanguageModelConfig(vocab_size=30, embedding_dim=8, hidden_size=12, tie_weights=True)
    with pytest.raises(ValueError, match="tokens"):
        m(torch.zeros(3, 7))


def test_step_and_prime_match_forward():
    m = small(recurrent_dropout=0.2, zoneout=0.1)  # dropout family: deterministic in eval
    ids = torch.randint(0, 30, (1, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, _ = m(ids)
        last, state = m.prime(ids[0])
        lp, _ = m.step(last, state)
    torch.testing.assert_close(lp, torch.log_softmax(logits[:, -1], -1))


def test_checkpoint_round_trip(tmp_path):
    m = small(tie_weights=True, hidden_size=8)
    save_language_model(m, tmp_path / "model.pt", level="char", bptt=16)
    back, extra = load_language_model(tmp_path / "model.pt")
    assert back.config == m.config and extra == {"level": "char", "bptt": 16}
    assert back.decoder.weight is back.embedding.weight
    x = torch.randint(0, 30, (2, 5))
    with torch.no_grad():
        torch.testing.assert_close(back(x)[0], m(x)[0])
    save_checkpoint(tmp_path / "other.pt", kind="forecaster", model={})
    with pytest.raises(ValueError, match="language_model"):
        load_language_model(tmp_path / "other.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_language_model(tmp_path / "junk.pt")


def test_overfits_a_small_stream(tmp_path):
    m = small(vocab_size=12)
    g = torch.Generator().manual_seed(0)
    stream = torch.randint(4, 12, (40,), generator=g).repeat(8)  # a 40-token pattern, repeated
    before = evaluate_language_model(m, stream, batch_size=2, bptt=20)
    fit(m.train(), stream, tmp_path, batch_size=2, bptt=20, lr=2e-2, max_steps=150)
    after = evaluate_language_model(m, stream, batch_size=2, bptt=20)
    assert after < 0.2 * before and after < 0.3


def test_short_training_run_beats_unigram_on_held_out_stdlib_text(tmp_path):
    train_texts = stdlib_corpus(200_000)
    val_text = "\n".join(stdlib_corpus(10_000, skip=len(train_texts) + 5))  # other files
    tok = CharTokenizer.fit(train_texts)
    train_ids = torch.tensor(tok.encode("\n".join(train_texts)))
    val_ids = torch.tensor(tok.encode(val_text))
    torch.manual_seed(0)
    m = LanguageModel(LanguageModelConfig(len(tok), embedding_dim=32, hidden_size=128, num_layers=1,
                                          dropout=0.0, embedding_dropout=0.0, output_dropout=0.0))
    fit(m, train_ids, tmp_path, batch_size=32, bptt=64, lr=1e-2, max_steps=100)
    loss = evaluate_language_model(m, val_ids, batch_size=1, bptt=256)
    bpc = lm_metrics(loss, len(val_ids) - 1, len(val_text) - 1)["val_bpc"]
    counts = collections.Counter(val_text)  # the unigram model fitted on the held-out text itself
    unigram = -sum(c / len(val_text) * math.log2(c / len(val_text)) for c in counts.values())
    print(f"held-out bits/char: LSTM {bpc:.3f}, unigram {unigram:.3f}")
    assert bpc < unigram - 0.5, (bpc, unigram)
