"""CRF against brute-force enumeration, SequenceTagger, voting ensembles."""

import itertools

import pytest
import torch

from lstmkit.models.classifier import ClassifierConfig, SequenceClassifier
from lstmkit.models.crf import LinearChainCRF
from lstmkit.models.ensemble import VotingEnsemble, hard_vote, soft_vote
from lstmkit.models.tagger import SequenceTagger, TaggerConfig


def _brute(crf, e, n):
    """Scores of every tag path of length n for one sequence's emissions e (T, K)."""
    K = e.shape[1]
    paths = list(itertools.product(range(K), repeat=n))
    scores = []
    for p in paths:
        s = crf.start[p[0]] + crf.end[p[-1]] + sum(e[t, p[t]] for t in range(n))
        s = s + sum(crf.transitions[p[t - 1], p[t]] for t in range(1, n))
        scores.append(s)
    return paths, torch.stack(scores)


@pytest.mark.parametrize("K,lengths", [(3, [4, 2, 1]), (2, [5, 5]), (4, [3])])
def test_crf_log_likelihood_and_viterbi_equal_brute_force(K, lengths):
    torch.manual_seed(K)
    crf = LinearChainCRF(K).double()
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    T = max(lengths)
    e = torch.randn(len(lengths), T, K, dtype=torch.float64)
    tags = torch.randint(0, K, (len(lengths), T))
    lengths_t = torch.tensor(lengths)
    ll = crf.log_likelihood(e, tags, lengths_t)
    best = crf.decode(e, lengths_t)
    for b, n in enumerate(lengths):
        paths, scores = _brute(crf, e[b], n)
        logz = torch.logsumexp(scores, 0)
        torch.testing.assert_close(crf.log_partition(e[b:b + 1], [n])[0], logz)
        i = paths.index(tuple(tags[b, :n].tolist()))
        torch.testing.assert_close(ll[b], scores[i] - logz)
        assert tuple(best[b, :n].tolist()) == paths[int(scores.argmax())]
        assert (best[b, n:] == -1).all()


def test_crf_probabilities_of_all_paths_sum_to_one():
    torch.manual_seed(0)
    crf = LinearChainCRF(3)
    e = torch.randn(1, 3, 3)
    total = sum(torch.exp(crf.log_likelihood(e, torch.tensor([p]), [3]))[0]
                for p in itertools.product(range(3), repeat=3))
    torch.testing.assert_close(total, torch.tensor(1.0))


@pytest.mark.parametrize("crf,chars", [(False, False), (True, True)])
def test_tagger_overfits_one_small_batch_and_padding_changes_nothing(crf, chars):
    torch.manual_seed(0)
    cfg = TaggerConfig(vocab_size=12, num_tags=4, embed_dim=8, hidden_size=16, crf=crf,
                       char_vocab_size=9 if chars else 0, char_hidden_size=8)
    m = SequenceTagger(cfg)
    tok = torch.randint(2, 12, (4, 6))
    lengths = torch.tensor([6, 4, 5, 2])
    tags = (tok % 4).masked_fill(torch.arange(6)[None] >= lengths[:, None], -1)
    ch = torch.randint(1, 9, (4, 6, 3)) if chars else None
    cl = torch.full((4, 6), 3).masked_fill(torch.arange(6)[None] >= lengths[:, None], 0) if chars else None
    opt = torch.optim.Adam(m.parameters(), lr=0.03)
    for _ in range(120):
        loss = m.loss(m(tok, lengths, ch, cl), tags, lengths)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    pred = m.decode(m(tok, lengths, ch, cl), lengths)
    assert (pred == tags).all()
    tok2 = tok.masked_fill(torch.arange(6)[None] >= lengths[:, None], 0)
    one = m(tok2[1:2, :4], torch.tensor([4]), None if ch is None else ch[1:2, :4],
            None if cl is None else cl[1:2, :4])
    torch.testing.assert_close(m(tok2, lengths, ch, cl)[1:2, :4], one, rtol=1e-5, atol=1e-5)


def test_tagger_without_chars_given_is_a_clear_error():
    m = SequenceTagger(TaggerConfig(vocab_size=5, num_tags=2, char_vocab_size=4))
    with pytest.raises(ValueError, match="chars"):
        m(torch.ones(1, 3, dtype=torch.long), [3])


def test_soft_voting_of_identical_members_equals_one_member():
    torch.manual_seed(0)
    m = SequenceClassifier(ClassifierConfig(input_size=2, num_classes=3, hidden_size=8)).eval()
    x = torch.randn(5, 4, 2)
    ens = VotingEnsemble([m, m, m], voting="soft").eval()
    with torch.no_grad():
        torch.testing.assert_close(ens(x), torch.softmax(m(x), -1))
        assert (VotingEnsemble([m, m], voting="hard")(x).argmax(1) == m(x).argmax(1)).all()


def test_hard_voting_ensemble_breaks_ties_as_hard_vote_does():
    class Fixed(torch.nn.Module):
        def __init__(self, logits):
            super().__init__()
            self.logits = torch.tensor(logits)

        def forward(self, x):
            return self.logits.expand(x.shape[0], -1)

    a, b = Fixed([0.0, 2.2]), Fixed([0.4, 0.0])  # one vote each; class 0 has the larger sum
    x = torch.zeros(3, 1)
    ens = VotingEnsemble([a, b], voting="hard")
    out = ens(x)
    torch.testing.assert_close(out.sum(1), torch.ones(3))
    assert out.argmax(1).tolist() == hard_vote(ens.member_probs(x)).tolist()


def test_hard_vote_is_the_majority_and_ties_go_to_the_summed_probability():
    p = torch.tensor([[[0.9, 0.1, 0.0]], [[0.0, 0.6, 0.4]], [[0.1, 0.5, 0.4]]])
    assert hard_vote(p).tolist() == [1]  # two votes for class 1 beat a confident one
    tie = torch.tensor([[[0.9, 0.1]], [[0.4, 0.6]]])
    assert hard_vote(tie).tolist() == [0]  # 1 vote each; summed 1.3 vs 0.7
    assert soft_vote(tie).argmax(1).tolist() == [0]
    with pytest.raises(ValueError, match="probs"):
        soft_vote(torch.ones(3, 2))
