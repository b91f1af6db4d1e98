"""Greedy, sampling (temperature, top-k, top-p) and beam search on step functions."""

import math

import pytest
import torch

from lstmkit.decoding import beam_search, filter_log_probs, greedy, sample

EOS = 3


def markov_step(table):
    """A step function whose next-token distribution depends only on the last token."""
    log_table = torch.log(torch.as_tensor(table, dtype=torch.float64)).float()

    def step(tokens, state):
        return log_table[tokens], state

    return step


def random_lm_step(V=7, H=5, seed=0):
    """A small seeded recurrent step function with a tensor state (1, B, H)."""
    g = torch.Generator().manual_seed(seed)
    emb, W = torch.randn(V, H, generator=g), torch.randn(H, H, generator=g)
    out = torch.randn(H, V, generator=g)

    def step(tokens, state):
        h = torch.zeros(1, tokens.shape[0], H) if state is None else state
        h = torch.tanh(emb[tokens] + h[0] @ W).unsqueeze(0)  # (1, B, H)
        return torch.log_softmax(2.0 * h[0] @ out, dim=-1), h

    return step


# greedy from token 0: 1 (p .6) then eos (p .4) = .24; the best sequence is 2, eos = .4 * .9 = .36
TRAP = [[0.0, 0.6, 0.4, 0.0], [0.0, 0.3, 0.3, 0.4], [0.0, 0.05, 0.05, 0.9], [0.0, 0.0, 0.0, 1.0]]


def test_greedy_misses_what_beam_search_finds():
    step = markov_step(TRAP)
    start = torch.tensor([0])
    assert greedy(step, start, max_new_tokens=5, eos_id=EOS).tolist() == [[1, EOS]]
    best = beam_search(step, start, beam_width=2, max_new_tokens=5, eos_id=EOS, length_penalty=0.0)
    assert best[0].tokens == [2, EOS]
    assert best[0].log_prob == pytest.approx(math.log(0.36), rel=1e-5)
    assert best[1].tokens == [1, EOS]
    assert best[1].log_prob == pytest.approx(math.log(0.24), rel=1e-5)


@pytest.mark.parametrize("eos", [None, EOS])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_width_1_equals_greedy(eos, seed):
    step = random_lm_step(seed=seed)
    start = torch.tensor([seed % 7])
    g = greedy(step, start, max_new_tokens=12, eos_id=eos)[0].tolist()
    b = beam_search(step, start, beam_width=1, max_new_tokens=12, eos_id=eos, length_penalty=0.0)
    assert len(b) == 1 and b[0].tokens == g


def test_beam_scores_are_the_sequences_log_probs_normalised():
    step = random_lm_step(seed=3)
    start = torch.tensor([0])
    hyps = beam_search(step, start, beam_width=4, max_new_tokens=6, eos_id=EOS, length_penalty=1.0)
    assert len(hyps) == 4
    assert [h.score for h in hyps] == sorted((h.score for h in hyps), reverse=True)
    for h in hyps:  # recompute each hypothesis' log-probability token by token
        lp, state, last = 0.0, None, start
        for tok in h.tokens:
            log_probs, state = step(last, state)
            lp += log_probs[0, tok].item()
            last = torch.tensor([tok])
        assert h.log_prob == pytest.approx(lp, abs=1e-4)
        assert h.score == pytest.approx(lp / len(h.tokens), abs=1e-4)


def test_does_not_emit_eos_before_min_length():
    # eos is by far the most likely token everywhere
    table = [[0.05, 0.05, 0.05, 0.85]] * 4
    step = markov_step(table)
    for width in (1, 3):
        hyps = beam_search(step, torch.tensor([0]), beam_width=width, max_new_tokens=8, eos_id=EOS,
                           min_new_tokens=5)
        for h in hyps:
            assert EOS not in h.tokens[:5]
            assert len(h.tokens) >= 6 and h.tokens[5] == EOS
    out = greedy(step, torch.tensor([0, 1]), max_new_tokens=8, eos_id=EOS, min_new_tokens=5)
    assert (out[:, :5] != EOS).all() and (out[:, 5] == EOS).all()


def test_beam_stops_at_max_length_without_eos():
    step = random_lm_step(seed=4)
    hyps = beam_search(step, torch.tensor([1]), beam_width=3, max_new_tokens=5)
    assert len(hyps) == 3 and all(len(h.tokens) == 5 for h in hyps)
    assert len({tuple(h.tokens) for h in hyps}) == 3


def test_greedy_pads_finished_rows():
    step = markov_step(TRAP)
    out = greedy(step, torch.tensor([0, 2]), max_new_tokens=4, eos_id=EOS, pad_id=0)
    assert out.tolist() == [[1, EOS], [EOS, 0]]


def test_top_k_never_emits_outside_the_k_most_likely():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 50, generator=g)
    lp = torch.log_softmax(logits, -1)
    step = lambda tokens, state: (lp, state)
    for k in (1, 3, 10):
        out = sample(step, torch.zeros(64, dtype=torch.long), max_new_tokens=20, top_k=k,
                     temperature=1.5, generator=g)
        allowed = lp.topk(k, dim=-1).indices  # (64, k)
        assert (out.unsqueeze(-1) == allowed.unsqueeze(1)).any(-1).all()
        if k == 1:
            torch.testing.assert_close(out, lp.argmax(-1, keepdim=True).expand(-1, 20))


def test_top_p_samples_only_from_the_smallest_set_reaching_p():
    probs = torch.tensor([[0.05, 0.4, 0.1, 0.25, 0.2]])
    lp = probs.log()
    # sorted: .4, .25, .2, .1, .05 -> cumulative .4, .65, .85, .95, 1.0
    expected = {0.3: {1}, 0.39: {1}, 0.41: {1, 3}, 0.64: {1, 3}, 0.66: {1, 3, 4}, 0.9: {1, 3, 4, 2}}
    g = torch.Generator().manual_seed(1)
    step = lambda tokens, state: (lp.expand(tokens.shape[0], -1), state)
    for p, allowed in expected.items():
        kept = filter_log_probs(lp, top_p=p).isfinite()[0].nonzero().flatten().tolist()
        assert set(kept) == allowed, p
        out = sample(step, torch.zeros(200, dtype=torch.long), max_new_tokens=5, top_p=p, generator=g)
        assert set(out.flatten().tolist()) == allowed  # only from the set, and all of it is reachable


def test_temperature_sharpens_and_flattens():
    lp = torch.log_softmax(torch.tensor([[2.0, 1.0, 0.0]]), -1)
    cold = filter_log_probs(lp, temperature=0.5).exp()
    hot = filter_log_probs(lp, temperature=2.0).exp()
    assert cold[0, 0] > lp.exp()[0, 0] > hot[0, 0]
    torch.testing.assert_close(filter_log_probs(lp, temperature=1.0), lp)


def test_sampling_is_reproducible_with_a_seed():
    step = random_lm_step(seed=5)
    start = torch.zeros(3, dtype=torch.long)
    run = lambda seed: sample(step, start, max_new_tokens=40, top_p=0.95,
                              generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(run(7), run(7))
    assert not torch.equal(run(7), run(8))


def test_bad_arguments():
    step = markov_step(TRAP)
    start = torch.tensor([0])
    with pytest.raises(ValueError, match="temperature"):
        sample(step, start, max_new_tokens=2, temperature=0.0)
    with pytest.raises(ValueError, match="top_p"):
        sample(step, start, max_new_tokens=2, top_p=1.5)
    with pytest.raises(ValueError, match="top_k"):
        sample(step, start, max_new_tokens=2, top_k=0)
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(step, start, beam_width=0, max_new_tokens=2)
    with pytest.raises(ValueError, match="tokens"):
        greedy(step, torch.tensor([[0]]), max_new_tokens=2)
    with pytest.raises(ValueError, match="min_new_tokens"):
        greedy(step, start, max_new_tokens=2, min_new_tokens=3)
