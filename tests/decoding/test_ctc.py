"""CTC decoders: best path, prefix beam search (against an exhaustive sum over alignments), LM
fusion, streaming."""

import itertools
import math

import numpy as np
import pytest
import torch

from lstmkit.decoding.ctc import (
    END,
    LSTMCharLM,
    NGramCharLM,
    PrefixBeamSearch,
    StreamingGreedy,
    collapse,
    greedy_decode,
    prefix_beam_search,
)


def _random_log_probs(T, V, seed, peak=2.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((T, V)) * peak
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def test_collapse_merges_repeats_then_drops_blanks():
    assert collapse([1, 1, 0, 1, 2, 2, 0, 0, 3]) == [1, 1, 2, 3]
    assert collapse([0, 0, 0]) == []
    assert collapse([]) == []
    assert collapse([2, 2, 2]) == [2]
    assert collapse([1, 0, 0, 1]) == [1, 1]  # a blank separates two equal labels
    assert collapse([3, 1, 3], blank=3) == [1]  # the blank need not be 0


def test_streaming_greedy_merges_a_repeat_split_across_chunks():
    path = [2, 2, 0, 0, 1, 1, 2, 0, 2]  # with blank 0: [2, 1, 2, 2]; with blank 2: [0, 1, 0]
    lp = np.log(np.eye(3)[path] * 0.9 + 0.1 / 3)
    for blank in (0, 2):
        for cut in range(len(path) + 1):
            g = StreamingGreedy(blank)
            assert g.advance(lp[:cut]) + g.advance(lp[cut:cut]) + g.advance(lp[cut:]) == g.tokens
            assert g.tokens == greedy_decode(lp, blank) == collapse(path, blank)


def test_greedy_takes_the_best_symbol_per_frame():
    lp = np.log(np.array([[.1, .8, .1], [.1, .8, .1], [.6, .3, .1], [.1, .7, .2], [.1, .1, .8]]))
    assert greedy_decode(lp) == [1, 1, 2]  # a a - a b -> "aab"
    assert greedy_decode(torch.tensor(lp)) == [1, 1, 2]
    assert greedy_decode(np.zeros((0, 3))) == []
    with pytest.raises(ValueError, match="log_probs"):
        greedy_decode(np.zeros(3))


def _exhaustive(lp):
    """Every alignment (V^T of them), collapsed; the total probability of each labelling."""
    T, V = lp.shape
    total = {}
    for path in itertools.product(range(V), repeat=T):
        lab = tuple(collapse(path))
        p = sum(lp[t, s] for t, s in enumerate(path))
        total[lab] = np.logaddexp(total.get(lab, -np.inf), p)
    return total


@pytest.mark.parametrize("seed", range(4))
def test_wide_prefix_beam_equals_exhaustive_search_over_alignments(seed):
    T, V = 5, 3
    lp = _random_log_probs(T, V, seed, peak=1.0)
    truth = _exhaustive(lp)
    best = max(truth, key=truth.get)
    hyps = prefix_beam_search(lp, beam_width=V ** T)
    assert hyps[0].tokens == best
    assert math.isclose(hyps[0].score, truth[best], rel_tol=1e-9, abs_tol=1e-12)
    # every labelling's probability, not only the best one, and nothing else
    got = {h.tokens: h.score for h in hyps}
    assert set(got) == set(truth)
    for lab, p in truth.items():
        assert math.isclose(got[lab], p, rel_tol=1e-9, abs_tol=1e-12), lab
    assert math.isclose(np.logaddexp.reduce(list(got.values())), 0.0, abs_tol=1e-9)


def test_beam_beats_greedy_when_alignments_add_up():
    # best path is "-" (blank, blank) but "a" has more mass over its three alignments
    lp = np.log(np.array([[.4, .35, .25], [.4, .35, .25]]))
    assert greedy_decode(lp) == []
    assert prefix_beam_search(lp, 8)[0].tokens == (1,)  # 0.35*.35 + 2*.4*.35 = .4025 > .16


def test_narrow_beam_keeps_k_hypotheses():
    lp = _random_log_probs(6, 4, 0)
    assert len(prefix_beam_search(lp, 3)) == 3


def test_prune_drops_unlikely_extensions_only():
    lp = _random_log_probs(8, 5, 1)
    full = prefix_beam_search(lp, 16)
    pruned = prefix_beam_search(lp, 16, prune=-50.0)  # prunes nothing here
    assert [h.tokens for h in full] == [h.tokens for h in pruned]


def test_ngram_lm_is_normalised_and_prefers_seen_words():
    lm = NGramCharLM(4).fit(["seven three", "three oh", "nine seven one"])
    for text in ["", "se", "seven th", "xyz"]:
        s = lm.start()
        for ch in text:
            s = lm.advance(s, ch)
        total = sum(math.exp(lm.log_prob(s, c)) for c in lm.vocab + [END])
        assert math.isclose(total, 1.0, rel_tol=1e-9), text
    s = lm.start()
    for ch in "sev":
        s = lm.advance(s, ch)
    assert lm.log_prob(s, "e") > lm.log_prob(s, "o")
    back = NGramCharLM.from_dict(lm.to_dict())
    assert back.log_prob(s, "e") == lm.log_prob(s, "e")


def _alphabet():
    return ["-", "a", "b", " "]


def test_lm_weight_zero_equals_plain_beam_search():
    lp = _random_log_probs(12, 4, 3)
    lm = NGramCharLM(3).fit(["ab ab", "ba", "a b"])
    plain = prefix_beam_search(lp, 6, _alphabet())
    fused = prefix_beam_search(lp, 6, _alphabet(), lm=lm, lm_weight=0.0)
    assert [h.tokens for h in plain] == [h.tokens for h in fused]
    assert [h.score for h in plain] == [h.score for h in fused]
    # and the LM does change the answer when it has weight (this could fail)
    heavy = prefix_beam_search(lp, 6, _alphabet(), lm=NGramCharLM(3).fit(["bbbb"] * 5), lm_weight=5.0)
    assert heavy[0].tokens != plain[0].tokens


def test_insertion_bonus_lengthens_the_answer():
    lp = _random_log_probs(12, 4, 5)
    lm = NGramCharLM(2).fit(["ab ba"])
    short = prefix_beam_search(lp, 8, _alphabet(), lm=lm, lm_weight=1.0, insertion_bonus=-3.0)
    long = prefix_beam_search(lp, 8, _alphabet(), lm=lm, lm_weight=1.0, insertion_bonus=3.0)
    assert len(long[0].tokens) > len(short[0].tokens)


def test_fusion_without_lm_is_an_error():
    with pytest.raises(ValueError, match="lm_weight"):
        PrefixBeamSearch(_alphabet(), 4, lm_weight=0.5)
    with pytest.raises(ValueError, match="beam_width"):
        PrefixBeamSearch(_alphabet(), 0)


@pytest.mark.parametrize("chunks", [[1] * 15, [4, 4, 7], [15], [0, 2, 13]])
def test_streaming_search_equals_offline(chunks):
    lp = _random_log_probs(15, 4, 7)
    lm = NGramCharLM(3).fit(["ab ab", "ba b"])
    offline = prefix_beam_search(lp, 5, _alphabet(), lm=lm, lm_weight=0.7, insertion_bonus=0.3)
    stream = PrefixBeamSearch(_alphabet(), 5, lm=lm, lm_weight=0.7, insertion_bonus=0.3)
    greedy = StreamingGreedy()
    t = 0
    for n in chunks:
        stream.advance(lp[t:t + n])
        greedy.advance(lp[t:t + n])
        t += n
    assert [(h.tokens, h.score) for h in stream.finish()] == [(h.tokens, h.score) for h in offline]
    assert greedy.tokens == greedy_decode(lp)


def test_lstm_language_model_as_fusion_lm():
    from lstmkit.data.text import CharTokenizer
    from lstmkit.models.language_model import LanguageModel, LanguageModelConfig

    torch.manual_seed(0)
    tok = CharTokenizer.fit(["ab ba\n"])
    model = LanguageModel(LanguageModelConfig(vocab_size=tok.vocab_size, embedding_dim=8,
                                              hidden_size=8, num_layers=1, tie_weights=True))
    lm = LSTMCharLM(model, tok)
    s = lm.start()
    s2 = lm.advance(s, "a")
    # the state after "a" is the model's own step on "\n" then "a"
    with torch.no_grad():
        ref, _ = model(torch.tensor([tok.encode("\na")]))
    want = torch.log_softmax(ref[0, -1].double(), -1)[tok.encode("b")[0]].item()
    assert math.isclose(lm.log_prob(s2, "b"), want, rel_tol=1e-5)
    assert lm.advance(s, "a") is s2  # cached
    hyps = prefix_beam_search(_random_log_probs(6, 4, 0), 4, _alphabet(), lm=lm, lm_weight=0.5)
    assert all(math.isfinite(h.score) for h in hyps)
