"""The speech job: streaming == offline, a tiny end-to-end run through the CLI, saved-model use."""

import json
import math
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from lstmkit.data import speech as sd
from lstmkit.jobs import speech as job
from lstmkit.models.speech import RecognizerConfig, SpeechRecognizer


@pytest.fixture(scope="module")
def espeak():
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{missing} not installed: the speech tests need Debian's espeak-ng and sox "
                    f"(`sudo apt-get install espeak-ng sox`, or `make system`)", pytrace=False)


def _streamable(seed=0, subsample=3):
    torch.manual_seed(seed)
    alphabet = job.Alphabet(["-", " ", "e", "n", "o", "t", "w"])
    m = SpeechRecognizer(RecognizerConfig(n_features=40, vocab_size=len(alphabet), hidden_size=16,
                                          num_layers=2, bidirectional=False, subsample=subsample,
                                          cmvn="global", dropout=0.0))
    m.set_stats(torch.full((40,), -6.0), torch.full((40,), 3.0))
    with torch.no_grad():
        m.out.weight.mul_(8.0)  # peaky posteriors, so the decoders emit something
    return m.eval(), alphabet


def _audio(seconds=1.3, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * (300 + 400 * np.sin(3 * t)) * t) + 0.05 * rng.standard_normal(len(t))
            ).astype(np.float32)


@pytest.mark.parametrize("decoder", ["greedy", "beam", "beam+lm"])
@pytest.mark.parametrize("chunk", [160, 1000, 4321])
def test_streaming_equals_offline(decoder, chunk):
    model, alphabet = _streamable(subsample=3)
    fc = sd.FeatureConfig()
    lm = job.NGramCharLM(4).fit(["one two", "two ten", "net one"])
    dec = job.Decoder(alphabet, 6, lm, lm_weight=0.8, insertion_bonus=0.5, prune=None)
    y = _audio()
    offline_lp = job.posteriors(model, [job._feats(y, fc)])[0]
    offline = job._clean(dec(offline_lp, decoder))
    stream = job.StreamingRecognizer(model, fc, alphabet, dec, decoder)
    partials = [stream.accept(y[i:i + chunk]) for i in range(0, len(y), chunk)]
    final = stream.finish()
    assert final == offline
    assert len(offline) > 0 and len(set(partials)) > 1  # something was said, and heard as it came
    np.testing.assert_allclose(np.concatenate(stream.log_probs), offline_lp, rtol=1e-4, atol=1e-4)


def test_streaming_refuses_a_bidirectional_model():
    model = SpeechRecognizer(RecognizerConfig(n_features=40, vocab_size=4, hidden_size=4, num_layers=1))
    alphabet = job.Alphabet(["-", "a", "b", "c"])
    with pytest.raises(ValueError, match="unidirectional"):
        job.StreamingRecognizer(model, sd.FeatureConfig(), alphabet, job.Decoder(alphabet, 4))


def test_wer_and_cer_are_jiwer_corpus_rates():
    m = job.wer_cer(["one two three", "four"], ["one too three", ""])
    assert m["wer"] == pytest.approx(2 / 4) and m["n"] == 2
    assert m["cer"] == pytest.approx((1 + 4) / (13 + 4))


@pytest.mark.slow
def test_speech_train_end_to_end_through_the_cli(tmp_path, capsys, espeak):
    from lstmkit.cli import main
    from lstmkit.models.checkpoints import load_model

    out = tmp_path / "run"
    rc = main(["speech", "train", "--out", str(out), "--cache", str(tmp_path / "cache"),
               "--utterances", "40", "--hidden-size", "8", "--num-layers", "1", "--max-steps", "4",
               "--batch-size", "8", "--max-test", "6", "--beam-width", "4", "--lm-weight", "0.5",
               "--insertion-bonus", "0.5", "--no-progress"])
    assert rc == 0
    for name in ("config.json", "metrics.json", "model.pt", "posteriors.png", "wer_snr.png"):
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    for name in ("greedy", "beam", "beam+lm", "baseline_empty", "baseline_majority"):
        assert math.isfinite(m[name]["wer"]) and math.isfinite(m[name]["cer"]), name
    assert m["baseline_empty"]["wer"] == 1.0
    assert set(m["snr"]) == {"clean", "20dB", "10dB", "5dB", "0dB"}
    assert m["per_voice_wer"] and all("+" in v for v in m["per_voice_wer"])
    assert m["setup"]["chosen"]["lm_weight"] == 0.5
    model, parts = load_model(out)  # the shared checkpoint reader knows the kind
    assert parts["kind"] == "speech_recognizer" and isinstance(model, SpeechRecognizer)

    capsys.readouterr()
    assert main(["speech", "data", "--cache", str(tmp_path / "cache"), "--utterances", "40"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert sum(summary[s]["utterances"] for s in ("train", "val", "test")) == 40
    assert not set(summary["train"]["variants"]) & set(summary["test"]["variants"])
    utts = sd.generate_digits(tmp_path / "cache" / "speech", 40, seed=0)
    texts = job.transcribe(out, [utts[0].path, utts[1].path], "beam+lm")
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert job.transcribe(out, [utts[0].path, utts[1].path], "beam+lm") == texts  # deterministic
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio at all")
    with pytest.raises(ValueError, match="not a readable"):
        job.transcribe(out, [str(bad)])
    assert main(["speech", "transcribe", "--checkpoint", str(out), str(bad)]) == 2
    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(ValueError, match="silent"):
        job.transcribe(out, [str(tmp_path / "silence.wav")])
    ev = job.evaluate(out, out=str(tmp_path / "ev"), cache=str(tmp_path / "cache"), utterances=40,
                      snrs=(10.0,), max_test=4, echo=lambda s: None)
    assert set(ev["snr"]) == {"clean", "10dB"} and (tmp_path / "ev" / "metrics.json").exists()
