"""SequenceClassifier: masked pooling, attention, LSTM-FCN, multi-task, overfitting a batch."""

import pytest
import torch

from lstmkit.models.classifier import (
    ClassifierConfig,
    MultiTaskLoss,
    SequenceClassifier,
    masked_max,
    masked_mean,
)

LENGTHS = torch.tensor([7, 3, 5])


def _padded(seed=0, C=3, T=7):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, T, C, generator=g)
    garbage = x.clone()
    for b, n in enumerate(LENGTHS.tolist()):
        garbage[b, n:] = 1e3 * torch.randn(T - n, C, generator=g)
    for b, n in enumerate(LENGTHS.tolist()):
        x[b, n:] = 0.0
    return x, garbage


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("cell,bidirectional,fcn", [("lstm", False, False), ("lstm", True, True),
                                                    ("gru", True, False), ("rnn", False, True)])
def test_garbage_in_padded_steps_changes_nothing_and_matches_one_at_a_time(pooling, cell,
                                                                           bidirectional, fcn):
    torch.manual_seed(0)
    cfg = ClassifierConfig(input_size=3, num_classes=4, cell=cell, hidden_size=8,
                           bidirectional=bidirectional, pooling=pooling, fcn=fcn,
                           fcn_channels=[4, 6, 5])
    m = SequenceClassifier(cfg).eval()
    x, garbage = _padded()
    with torch.no_grad():
        a, b = m(x, LENGTHS), m(garbage, LENGTHS)
        alone = torch.cat([m(x[i:i + 1, :n], torch.tensor([n])) for i, n in enumerate(LENGTHS.tolist())])
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, alone, rtol=1e-5, atol=1e-5)


def test_masked_mean_and_max_ignore_padding():
    y = torch.tensor([[[1.0], [3.0], [100.0]], [[-2.0], [-50.0], [-60.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    assert masked_mean(y, mask).flatten().tolist() == [2.0, -2.0]
    assert masked_max(y, mask).flatten().tolist() == [3.0, -2.0]


def test_attention_weights_sum_to_one_on_valid_steps_and_are_zero_on_padding():
    torch.manual_seed(1)
    m = SequenceClassifier(ClassifierConfig(input_size=3, num_classes=2, pooling="attention",
                                            hidden_size=8, bidirectional=True)).eval()
    x, _ = _padded()
    _, w = m(x, LENGTHS, return_attention=True)
    torch.testing.assert_close(w.sum(1), torch.ones(3))
    for b, n in enumerate(LENGTHS.tolist()):
        assert (w[b, n:] == 0).all()
        assert (w[b, :n] > 0).all()


def test_empty_sequence_is_a_clear_error():
    m = SequenceClassifier(ClassifierConfig(input_size=2, num_classes=2))
    with pytest.raises(ValueError, match="lengths: .*empty"):
        m(torch.randn(2, 4, 2), torch.tensor([4, 0]))


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="pooling"):
        ClassifierConfig(input_size=2, num_classes=2, pooling="sum")
    with pytest.raises(ValueError, match="num_classes"):
        ClassifierConfig(input_size=2, num_classes=[3, 1])


@pytest.mark.parametrize("kw", [dict(pooling="last"), dict(pooling="attention", cell="gru"),
                                dict(pooling="mean", fcn=True, fcn_channels=[8, 8, 8]),
                                dict(pooling="max", bidirectional=True, num_layers=2),
                                dict(pooling="mean", vocab_size=30, embed_dim=8)])
def test_every_classifier_overfits_one_small_batch(kw):
    torch.manual_seed(0)
    text = kw.get("vocab_size", 0) > 0
    m = SequenceClassifier(ClassifierConfig(input_size=2, num_classes=3, hidden_size=16, **kw))
    x = torch.randint(1, 30, (8, 9)) if text else torch.randn(8, 9, 2)
    lengths = torch.tensor([9, 8, 7, 6, 5, 4, 3, 9])
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    opt = torch.optim.Adam(m.parameters(), lr=0.02)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(m(x, lengths), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.eval()
    assert (m(x, lengths).argmax(1) == y).all(), float(loss)


def test_multi_task_heads_and_losses():
    torch.manual_seed(0)
    m = SequenceClassifier(ClassifierConfig(input_size=2, num_classes=[3, 2], hidden_size=8))
    out = m(torch.randn(4, 5, 2))
    assert [tuple(o.shape) for o in out] == [(4, 3), (4, 2)]
    losses = [torch.tensor(2.0), torch.tensor(0.5)]
    assert float(MultiTaskLoss(2, weights=[1.0, 4.0])(losses)) == pytest.approx(4.0)
    learned = MultiTaskLoss(2, learned=True)
    assert float(learned(losses).detach()) == pytest.approx(2.5)  # s = 0 at start
    with torch.no_grad():
        learned.log_vars.fill_(1.0)
    assert float(learned(losses).detach()) == pytest.approx(2.5 * torch.exp(torch.tensor(-1.0)).item() + 1.0)
    learned(losses).backward()
    assert learned.log_vars.grad is not None
