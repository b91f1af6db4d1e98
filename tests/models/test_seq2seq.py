"""Seq2Seq with attention: masking, padding invariance, scheduled sampling, decoding, learning."""

import pytest
import torch

from lstmkit.decoding import beam_search
from lstmkit.models.attention import make_attention
from lstmkit.models.seq2seq import Seq2Seq, Seq2SeqConfig, teacher_forcing_ratio
from lstmkit.train.trainer import TrainConfig, Trainer

PAD, BOS, EOS = 0, 1, 2
KINDS = ["bahdanau", "luong-dot", "luong-general", "luong-concat"]


def model(attention="bahdanau", seed=0, **kw):
    torch.manual_seed(seed)
    cfg = dict(src_vocab_size=12, tgt_vocab_size=12, embedding_dim=8, hidden_size=8, dropout=0.0,
               attention=attention)
    cfg.update(kw)
    return Seq2Seq(Seq2SeqConfig(**cfg)).eval()


def pad(seqs, value=PAD):
    T = max(len(s) for s in seqs)
    return torch.tensor([list(s) + [value] * (T - len(s)) for s in seqs], dtype=torch.long)


def batch(pairs):
    """(src, lengths, tgt_in, tgt_out) from (source ids, target ids) pairs."""
    src = pad([s for s, _ in pairs])
    lengths = torch.tensor([len(s) for s, _ in pairs])
    return src, lengths, pad([[BOS] + list(t) for _, t in pairs]), pad([list(t) + [EOS] for _, t in pairs])


SOURCES = [[5, 6, 7, 8, 9, 10, 4], [3, 4], [11, 5, 9, 6], [7]]


@pytest.mark.parametrize("kind", KINDS)
def test_attention_weights_sum_to_one_and_are_zero_on_padding(kind):
    m = model(kind)
    src, lengths, tgt_in, _ = batch([(s, [4, 5, 6]) for s in SOURCES])
    _, attn = m(src, lengths, tgt_in)  # (B, T, S)
    torch.testing.assert_close(attn.sum(-1), torch.ones(attn.shape[:2]))
    for b, n in enumerate(lengths.tolist()):
        assert torch.all(attn[b, :, n:] == 0)
        assert torch.all(attn[b, :, :n] > 0)


def test_attention_module_masks_padding_for_every_scorer():
    memory = torch.randn(3, 5, 6)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    for kind in ("bahdanau", "luong-general", "luong-concat", "luong-dot"):
        att = make_attention(kind, query_size=6, memory_size=6)
        ctx, w = att(torch.randn(3, 6), memory, mask)
        assert torch.all(w[~mask] == 0)
        torch.testing.assert_close(w.sum(-1), torch.ones(3))
        torch.testing.assert_close(ctx[2], memory[2, 0])  # one valid position: its memory


@pytest.mark.parametrize("kind", KINDS + ["none"])
def test_padded_batch_translates_exactly_as_each_sentence_alone(kind):
    m = model(kind, seed=1, decoder_layers=2, num_layers=2)
    src, lengths, _, _ = batch([(s, []) for s in SOURCES])
    greedy_all = m.translate(src, lengths, max_new_tokens=8)
    beam_all = m.translate(src, lengths, beam_width=3, n_best=3, max_new_tokens=8)
    for b, s in enumerate(SOURCES):
        one, n = torch.tensor([s]), torch.tensor([len(s)])
        assert m.translate(one, n, max_new_tokens=8)[0][0].tokens == greedy_all[b][0].tokens
        alone = m.translate(one, n, beam_width=3, n_best=3, max_new_tokens=8)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in beam_all[b]]
        assert [h.score for h in alone] == pytest.approx([h.score for h in beam_all[b]], abs=1e-5)


def test_teacher_forcing_ratio_1_in_the_scheduled_sampling_path_equals_teacher_forcing():
    m = model("luong-general", decoder_layers=2)
    src, lengths, tgt_in, _ = batch([(s, [4, 5, 6, 7, 8]) for s in SOURCES])
    plain, attn = m(src, lengths, tgt_in)
    g = torch.Generator().manual_seed(0)
    scheduled, attn_s = m(src, lengths, tgt_in, teacher_forcing_ratio=1.0, generator=g)
    torch.testing.assert_close(scheduled, plain, rtol=0, atol=0)
    torch.testing.assert_close(attn_s, attn, rtol=0, atol=0)
    own, _ = m(src, lengths, tgt_in, teacher_forcing_ratio=0.0, generator=g)
    torch.testing.assert_close(own[:, 0], plain[:, 0], rtol=0, atol=0)  # the first input is always bos
    assert not torch.allclose(own[:, 1:], plain[:, 1:])  # later steps fed the model's own tokens


def test_scheduled_sampling_decides_per_token_not_per_sequence():
    m = model("bahdanau")
    src, lengths, tgt_in, _ = batch([(SOURCES[0], list(range(3, 12)) * 3)] * 64)
    seen = []
    orig = m.decode_step

    def spy(tokens, state):
        seen.append(tokens.clone())
        return orig(tokens, state)

    m.decode_step = spy
    m(src, lengths, tgt_in, teacher_forcing_ratio=0.5, generator=torch.Generator().manual_seed(3))
    fed = torch.stack(seen, 1)[:, 1:]  # (B, T-1)
    gold = (fed == tgt_in[:, 1:]).float()
    per_seq = gold.mean(1)
    assert 0.3 < gold.mean() < 0.7
    assert ((per_seq > 0.05) & (per_seq < 0.95)).float().mean() > 0.9  # mixed within a sequence


def test_decay_schedules_follow_bengio_et_al():
    lin = [teacher_forcing_ratio("linear", i, k=1.0, c=0.01, minimum=0.2) for i in (0, 50, 1000)]
    assert lin == pytest.approx([1.0, 0.5, 0.2])
    assert teacher_forcing_ratio("exponential", 10, k=0.9) == pytest.approx(0.9 ** 10)
    inv = [teacher_forcing_ratio("inverse-sigmoid", i, k=100.0) for i in (0, 460, 2000)]
    assert inv[0] == pytest.approx(100 / 101) and inv[1] == pytest.approx(0.5, abs=0.01) and inv[2] < 0.01
    assert teacher_forcing_ratio("none", 10**6, k=0.0) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        teacher_forcing_ratio("cosine", 1, k=1.0)


@pytest.mark.parametrize("kind", ["bahdanau", "luong-general"])
def test_beam_width_1_equals_greedy(kind):
    m = model(kind, seed=2)
    src, lengths, _, _ = batch([(s, []) for s in SOURCES])
    g = m.translate(src, lengths, max_new_tokens=10)
    b = m.translate(src, lengths, beam_width=1, n_best=1, length_penalty=0.0, coverage_penalty=0.0,
                    max_new_tokens=10, min_new_tokens=0)
    # n_best=1 and width 1 go to greedy; force the beam path through a width-1 beam search per sentence
    for i, s in enumerate(SOURCES):
        bos, state = m.start(torch.tensor([s]), torch.tensor([len(s)]))
        with torch.no_grad():
            hyp = beam_search(m.step, bos, state, beam_width=1, max_new_tokens=10, eos_id=EOS,
                              length_penalty=0.0, state_batch_dim=0)[0]
        assert [t for t in hyp.tokens if t != EOS] == g[i][0].tokens == b[i][0].tokens


@pytest.mark.parametrize("kind", ["bahdanau", "luong-concat", "none"])
def test_batched_beam_equals_per_sentence_beam(kind):
    m = model(kind, seed=3)
    src, lengths, _, _ = batch([(s, []) for s in SOURCES])
    out = m.translate(src, lengths, beam_width=4, n_best=4, max_new_tokens=9)
    for i, s in enumerate(SOURCES):
        bos, state = m.start(torch.tensor([s]), torch.tensor([len(s)]))
        with torch.no_grad():
            alone = beam_search(m.step, bos, state, beam_width=4, max_new_tokens=9, eos_id=EOS,
                                state_batch_dim=0)
        assert [h.tokens for h in out[i]] == [[t for t in h.tokens if t != EOS] for h in alone]
        assert [h.score for h in out[i]] == pytest.approx([h.score for h in alone], abs=1e-5)


def fit(m, pairs, tmp_path, epochs, lr=1e-2, batch_size=16):
    data = [batch(pairs[i:i + batch_size]) for i in range(0, len(pairs), batch_size)]
    m.train()
    Trainer(m, lambda mod, b: mod.loss(*b), TrainConfig(epochs=epochs, lr=lr, patience=None, progress=False,
                                                        weight_decay=0.0, schedule="constant"),
            tmp_path).fit(data)
    return m.eval()


def test_overfits_a_small_batch_to_exact_match(tmp_path):
    g = torch.Generator().manual_seed(0)
    pairs = []
    for _ in range(8):
        s = torch.randint(3, 12, (int(torch.randint(2, 7, (1,), generator=g)),), generator=g).tolist()
        t = torch.randint(3, 12, (int(torch.randint(1, 6, (1,), generator=g)),), generator=g).tolist()
        pairs.append((s, t))
    m = fit(model("luong-general", hidden_size=16, embedding_dim=16), pairs, tmp_path, epochs=150)
    src, lengths, _, _ = batch(pairs)
    out = m.translate(src, lengths, max_new_tokens=8)
    assert [h[0].tokens for h in out] == [t for _, t in pairs]


@pytest.mark.parametrize("task, kind", [("copy", "luong-general"), ("reverse", "bahdanau")])
def test_attention_learns_the_known_alignment(task, kind, tmp_path):
    g = torch.Generator().manual_seed(1)
    pairs = []
    for _ in range(512):
        s = torch.randint(3, 12, (int(torch.randint(3, 9, (1,), generator=g)),), generator=g).tolist()
        pairs.append((s, s if task == "copy" else s[::-1]))
    m = fit(model(kind, hidden_size=16, embedding_dim=16), pairs, tmp_path, epochs=15, batch_size=32)
    test = [[3, 9, 4, 11, 6, 8, 5], [10, 7, 3, 5, 6], [4, 9, 11, 3, 7, 8, 5, 10]]  # no repeats: one alignment
    for s in test:
        t = s if task == "copy" else s[::-1]
        src, lengths, tgt_in, _ = batch([(s, t)])
        with torch.no_grad():
            _, attn = m(src, lengths, tgt_in)  # (1, T, S)
        n = len(s)
        want = torch.arange(n) if task == "copy" else torch.arange(n - 1, -1, -1)
        assert attn[0, :n].argmax(-1).tolist() == want.tolist()


def test_tying_shares_parameters():
    m = model("bahdanau", tie_embeddings=True, tie_output=True, embedding_dim=16, hidden_size=8)
    assert m.tgt_embedding.weight is m.src_embedding.weight is m.generator.weight
    with pytest.raises(ValueError, match="tie_output"):
        model("bahdanau", tie_output=True, embedding_dim=8, hidden_size=8)
    with pytest.raises(ValueError, match="tie_embeddings"):
        model("bahdanau", tie_embeddings=True, tgt_vocab_size=20)


def test_bad_input_is_named():
    m = model("bahdanau")
    with pytest.raises(ValueError, match="lengths.*empty source"):
        m.translate(torch.tensor([[3, 4], [5, 0]]), torch.tensor([2, 0]))
    with pytest.raises(ValueError, match="src"):
        m.translate(torch.tensor([[3.0, 4.0]]), torch.tensor([2]))
    with pytest.raises(ValueError, match="lengths"):
        m.translate(torch.tensor([[3, 4]]), torch.tensor([2, 1]))
    with pytest.raises(ValueError, match="attention"):
        model("transformer")
    with pytest.raises(ValueError, match="luong-dot"):
        model("luong-dot", decoder_hidden_size=10)
    with pytest.raises(ValueError, match="teacher_forcing_ratio"):
        src, lengths, tgt_in, _ = batch([(s, [4]) for s in SOURCES])
        m(src, lengths, tgt_in, teacher_forcing_ratio=1.5)
