"""Batched beam search: all sentences' beams in one batch, the same answers as one at a time."""

import math

import pytest
import torch

from lstmkit.decoding import beam_search, beam_search_batch, greedy

EOS = 3


def random_lm_step(V=7, H=5, seed=0):
    """A small seeded recurrent step function with a tensor state (1, B, H)."""
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(V, H, generator=g, dtype=torch.float64)
    W = torch.randn(H, H, generator=g, dtype=torch.float64)
    out = torch.randn(H, V, generator=g, dtype=torch.float64)

    def step(tokens, state):
        h = torch.zeros(1, tokens.shape[0], H, dtype=torch.float64) if state is None else state
        h = torch.tanh(emb[tokens] + h[0] @ W).unsqueeze(0)  # (1, B, H)
        return torch.log_softmax(2.0 * h[0] @ out, dim=-1), h

    return step


def initial_states(B, H=5, seed=0):
    return torch.randn(1, B, H, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
@pytest.mark.parametrize("min_new", [0, 3])
@pytest.mark.parametrize("K", [1, 3, 5])
def test_batched_beam_equals_beam_search_on_each_sentence_alone(K, min_new, length_penalty):
    step = random_lm_step(seed=K)
    start = torch.tensor([0, 4, 5, 1, 2])
    h0 = initial_states(5, seed=min_new)
    batched = beam_search_batch(step, start, h0, beam_width=K, max_new_tokens=9, eos_id=EOS,
                                min_new_tokens=min_new, length_penalty=length_penalty)
    assert len(batched) == 5
    for b in range(5):
        alone = beam_search(step, start[b:b + 1], h0[:, b:b + 1], beam_width=K, max_new_tokens=9,
                            eos_id=EOS, min_new_tokens=min_new, length_penalty=length_penalty)
        again = beam_search_batch(step, start[b:b + 1], h0[:, b:b + 1], beam_width=K, max_new_tokens=9,
                                  eos_id=EOS, min_new_tokens=min_new, length_penalty=length_penalty)[0]
        assert [h.tokens for h in batched[b]] == [h.tokens for h in alone] == [h.tokens for h in again]
        assert [h.score for h in batched[b]] == pytest.approx([h.score for h in alone], abs=1e-9)


@pytest.mark.parametrize("kwargs, want", [
    (dict(beam_width=3, max_new_tokens=6, length_penalty=1.0),
     [([6, 2, 1, 4, 2, 1], -0.318328), ([6, 1, 1, 1, 2, 1], -0.386463), ([6, 2, 1, 4, 3], -0.443777)]),
    (dict(beam_width=4, max_new_tokens=5, min_new_tokens=2, length_penalty=0.0, n_best=2),
     [([6, 2, 1, 4, 2], -1.829334), ([6, 1, 1, 1, 2], -2.049289)]),
])
def test_beam_search_keeps_the_answers_of_its_former_one_sentence_loop(kwargs, want):
    # beam_search became a call of beam_search_batch; these were its own loop's answers
    hyps = beam_search(random_lm_step(seed=0), torch.tensor([0]), initial_states(1, seed=0), eos_id=EOS,
                       **kwargs)
    assert [h.tokens for h in hyps] == [w[0] for w in want]
    assert [h.score for h in hyps] == pytest.approx([w[1] for w in want], abs=1e-6)


def test_width_1_equals_greedy_per_sentence():
    step = random_lm_step(seed=7)
    start = torch.tensor([0, 1, 2, 4])
    h0 = initial_states(4, seed=1)
    g = greedy(step, start, h0, max_new_tokens=12, eos_id=EOS, pad_id=-1)
    b = beam_search_batch(step, start, h0, beam_width=1, max_new_tokens=12, eos_id=EOS, length_penalty=0.0)
    for row, hyps in zip(g.tolist(), b):
        assert hyps[0].tokens == [x for x in row if x != -1]


def test_does_not_emit_eos_before_min_length():
    step = random_lm_step(seed=2)
    out = beam_search_batch(step, torch.tensor([0, 1, 2]), initial_states(3), beam_width=4, max_new_tokens=8,
                            eos_id=EOS, min_new_tokens=5)
    for hyps in out:
        for h in hyps:
            assert EOS not in h.tokens[:5]
            assert len(h.tokens) <= 8


def test_n_best_are_sorted_and_scored_as_log_probs():
    step = random_lm_step(seed=4)
    start = torch.tensor([2, 5])
    h0 = initial_states(2, seed=3)
    out = beam_search_batch(step, start, h0, beam_width=4, n_best=3, max_new_tokens=6, eos_id=EOS)
    for b, hyps in enumerate(out):
        assert len(hyps) == 3
        assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
        for h in hyps:  # recompute each hypothesis' log-probability token by token
            lp, state, last = 0.0, h0[:, b:b + 1], start[b:b + 1]
            for tok in h.tokens:
                log_probs, state = step(last, state)
                lp += log_probs[0, tok].item()
                last = torch.tensor([tok])
            assert h.log_prob == pytest.approx(lp, abs=1e-9)
            assert h.score == pytest.approx(lp / len(h.tokens), abs=1e-9)


def test_coverage_penalty_prefers_hypotheses_that_cover_the_source():
    # from the start token 2: 0 (.6) or 1 (.4); after 0 or 1: eos (.9) or the other one (.1).
    # Reading token x puts .9 of the attention on source position x and .1 on the other.
    table = torch.log(torch.tensor([[0.0, 0.1, 0.0, 0.9], [0.1, 0.0, 0.0, 0.9], [0.6, 0.4, 0.0, 0.0],
                                    [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64))
    attend = torch.tensor([[0.9, 0.1], [0.1, 0.9], [0.0, 0.0], [0.0, 0.0]], dtype=torch.float64)

    def step(tokens, cov):
        return table[tokens], cov + attend[tokens]

    cov0 = torch.zeros(1, 2, dtype=torch.float64)
    kw = dict(beam_width=2, max_new_tokens=5, eos_id=EOS, length_penalty=0.0, state_batch_dim=0)
    plain = beam_search_batch(step, torch.tensor([2]), cov0, **kw)[0]
    covered = beam_search_batch(step, torch.tensor([2]), cov0, coverage_penalty=1.0,
                                coverage=lambda cov: cov, **kw)[0]
    assert plain[0].tokens == [0, EOS]  # p = .54, but source position 1 got only .1 attention
    assert covered[0].tokens == [0, 1, EOS]  # p = .054, both positions covered: no penalty
    assert covered[0].score == pytest.approx(math.log(0.054), abs=1e-9)
    assert covered[1].score == pytest.approx(math.log(0.54) + math.log(0.9) + math.log(0.1), abs=1e-9)


@pytest.mark.parametrize("kwargs, match", [
    (dict(beam_width=0), "beam_width"),
    (dict(beam_width=2, n_best=3), "n_best"),
    (dict(beam_width=2, coverage_penalty=0.5), "coverage"),
    (dict(beam_width=2, length_penalty=-1.0), "length_penalty"),
])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        beam_search_batch(random_lm_step(), torch.tensor([0]), None, max_new_tokens=3, **kwargs)
