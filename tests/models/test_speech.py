"""The BiLSTM-CTC recogniser: shapes and lengths, CTC edge cases, and overfitting real utterances."""

import math
import shutil

import pytest
import torch

from lstmkit.decoding.ctc import greedy_decode
from lstmkit.models.speech import RecognizerConfig, SpeechRecognizer, ctc_feasible, ctc_loss


def _model(**kw):
    torch.manual_seed(0)
    base = dict(n_features=6, vocab_size=5, hidden_size=8, num_layers=2, subsample=2, dropout=0.0)
    return SpeechRecognizer(RecognizerConfig(**{**base, **kw})).eval()


@pytest.mark.parametrize("cmvn", ["utterance", "global", "none"])
def test_a_padded_batch_gives_what_each_utterance_gives_alone(cmvn):
    m = _model(cmvn=cmvn)
    xs = [torch.randn(n, 6) * 3 + 1 for n in (9, 4, 7)]
    x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
    x[1, 4:] = 100.0  # padding content must not leak (into CMVN statistics or the reverse LSTM)
    lp, lens, _ = m(x, torch.tensor([9, 4, 7]))
    assert lens.tolist() == [5, 2, 4]
    for b, xb in enumerate(xs):
        alone, n, _ = m(xb[None], torch.tensor([len(xb)]))
        torch.testing.assert_close(lp[b, :int(n[0])], alone[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lp.exp().sum(-1), torch.ones(3, 5))


def test_bad_inputs_name_the_argument():
    m = _model()
    with pytest.raises(ValueError, match="feats"):
        m(torch.randn(2, 5, 7))
    with pytest.raises(ValueError, match="lengths"):
        m(torch.randn(2, 5, 6), torch.tensor([6, 2]))
    with pytest.raises(ValueError, match="cmvn"):
        RecognizerConfig(n_features=6, vocab_size=5, cmvn="mean")


def test_ctc_target_longer_than_input_is_infinite_and_zeroed_by_policy():
    torch.manual_seed(0)
    lp = torch.randn(1, 3, 5).log_softmax(-1).requires_grad_()
    tg, tl, ol = torch.tensor([1, 2, 3, 4]), torch.tensor([4]), torch.tensor([3])
    assert not ctc_feasible([1, 2, 3, 4], 3)
    assert math.isinf(ctc_loss(lp, ol, tg, tl, zero_infinity=False).item())
    loss = ctc_loss(lp, ol, tg, tl)  # the default policy: zero_infinity=True
    loss.backward()
    assert loss.item() == 0.0 and torch.all(lp.grad == 0)
    # a repeated label needs a blank between: "aa" cannot fit 2 frames, fits 3
    assert not ctc_feasible([1, 1], 2) and ctc_feasible([1, 1], 3)
    lp2 = torch.randn(1, 2, 5).log_softmax(-1)
    assert math.isinf(ctc_loss(lp2, torch.tensor([2]), torch.tensor([1, 1]), torch.tensor([2]),
                               zero_infinity=False).item())


def test_ctc_zero_length_target_is_all_blanks():
    torch.manual_seed(1)
    lp = torch.randn(2, 4, 5).log_softmax(-1)
    loss = ctc_loss(lp, torch.tensor([4, 3]), torch.tensor([2], dtype=torch.long), torch.tensor([0, 1]),
                    zero_infinity=False)
    # reduction "mean": each loss over max(target length, 1), then the batch mean
    blank_only = -lp[0, :, 0].sum()
    one = torch.nn.functional.ctc_loss(lp[1:, :3].transpose(0, 1), torch.tensor([2]), torch.tensor([3]),
                                       torch.tensor([1]), reduction="sum")
    torch.testing.assert_close(loss, (blank_only / 1 + one / 1) / 2)


@pytest.mark.slow
def test_overfits_a_handful_of_real_utterances_to_zero_cer(tmp_path):
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        pytest.fail("espeak-ng and sox are needed (`sudo apt-get install espeak-ng sox`)", pytrace=False)
    from lstmkit.data import speech as sd

    utts = [u for u in sd.generate_digits(tmp_path, 10, seed=5, max_digits=3) if u.split == "train"][:4]
    fc = sd.FeatureConfig(n_mels=20)
    feats = [torch.from_numpy(sd.features(sd.read_audio(u.path), fc)) for u in utts]
    chars = ["-"] + sorted({c for u in utts for c in u.text})
    targets = [[chars.index(c) for c in u.text] for u in utts]
    torch.manual_seed(0)
    m = SpeechRecognizer(RecognizerConfig(n_features=20, vocab_size=len(chars), hidden_size=48, num_layers=1,
                                          subsample=3, dropout=0.0, freq_masks=0, time_masks=0))
    x = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
    lengths = torch.tensor([len(f) for f in feats])
    tg = torch.tensor([t for ts in targets for t in ts])
    tl = torch.tensor([len(t) for t in targets])
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    for step in range(400):
        lp, ol, _ = m(x, lengths)
        loss = ctc_loss(lp, ol, tg, tl)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 49:
            m.eval()
            with torch.no_grad():
                lp, ol, _ = m(x, lengths)
            m.train()
            if all(greedy_decode(lp[b, :ol[b]]) == targets[b] for b in range(len(utts))):
                break
    m.eval()
    with torch.no_grad():
        lp, ol, _ = m(x, lengths)
    got = ["".join(chars[i] for i in greedy_decode(lp[b, :ol[b]])) for b in range(len(utts))]
    assert got == [u.text for u in utts], loss.item()
