"""Speech data: features against librosa, audio reading errors, noise, espeak-ng digit strings."""

import os
import shutil

import librosa
import numpy as np
import pytest
import scipy.fft
import soundfile as sf

from lstmkit.data import speech as sd

SR = 16000


@pytest.fixture(scope="module")
def espeak():
    """The speech data is synthesised; a machine without espeak-ng/sox fails here, loudly, rather
    than skipping (`make system` installs both)."""
    missing = [t for t in ("espeak-ng", "sox") if shutil.which(t) is None]
    if missing:
        pytest.fail(f"{missing} not installed: the speech tests need Debian's espeak-ng and sox "
                    f"(`sudo apt-get install espeak-ng sox`, or `make system`)", pytrace=False)


def _chirp(seconds=1.0, seed=0):
    t = np.arange(int(seconds * SR)) / SR
    rng = np.random.default_rng(seed)
    y = 0.3 * np.sin(2 * np.pi * (200 * t + 1500 * t ** 2)) + 0.01 * rng.standard_normal(len(t))
    return y.astype(np.float32)


def test_log_mel_matches_librosa_reference():
    y, fc = _chirp(), sd.FeatureConfig()
    got = sd.features(y, fc)
    ref = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=400, hop_length=160, win_length=400,
                                         window="hann", center=False, power=2.0, n_mels=40,
                                         fmin=20.0, fmax=SR / 2, htk=False, norm="slaney")
    assert got.shape == (1 + (len(y) - 400) // 160, 40)
    np.testing.assert_allclose(got, np.log(ref.T + 1e-6), rtol=1e-5, atol=1e-5)


def test_mfcc_is_the_orthonormal_dct_of_the_db_mel_spectrum():
    y, fc = _chirp(seed=1), sd.FeatureConfig(kind="mfcc", n_mfcc=13)
    got = sd.features(y, fc)
    mel = librosa.feature.melspectrogram(y=y, sr=SR, n_fft=400, hop_length=160, center=False,
                                         n_mels=40, fmin=20.0)
    db = 10 * np.log10(np.maximum(mel, 1e-10))
    ref = scipy.fft.dct(db, type=2, norm="ortho", axis=0)[:13].T
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-3)


def test_a_pure_tone_lights_the_mel_band_nearest_its_frequency():
    t = np.arange(SR) / SR
    got = sd.features((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), sd.FeatureConfig())
    centres = librosa.mel_frequencies(n_mels=42, fmin=20.0, fmax=SR / 2)[1:-1]
    assert abs(centres[got.mean(0).argmax()] - 1000) == np.abs(centres - 1000).min()


def test_frames_of_a_prefix_are_the_first_frames_of_the_whole():
    y, fc = _chirp(), sd.FeatureConfig()
    whole = sd.features(y, fc)
    part = sd.features(y[:5000], fc)
    assert len(part) == sd.num_frames(5000, fc) == 29
    np.testing.assert_allclose(part, whole[:len(part)], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="n_fft=400"):
        sd.features(y[:100], fc)
    with pytest.raises(ValueError, match="features"):
        sd.FeatureConfig(kind="plp")


def test_add_noise_reaches_the_asked_snr():
    y = _chirp()
    for kind in ("white", "pink"):
        noisy = sd.add_noise(y, 10.0, np.random.default_rng(0), kind=kind)
        snr = 10 * np.log10(np.mean(y.astype(np.float64) ** 2) / np.mean((noisy - y).astype(np.float64) ** 2))
        assert abs(snr - 10.0) < 0.05, (kind, snr)
    with pytest.raises(ValueError, match="kind"):
        sd.add_noise(y, 10.0, np.random.default_rng(0), kind="brown")


def test_read_audio_resamples_averages_channels_and_refuses_bad_files(tmp_path):
    y = _chirp()
    sf.write(tmp_path / "a8k.wav", librosa.resample(y, orig_sr=SR, target_sr=8000), 8000)
    got = sd.read_audio(tmp_path / "a8k.wav")
    assert got.dtype == np.float32 and abs(len(got) - len(y)) <= 2
    with pytest.raises(ValueError, match="8000 Hz, expected 16000 Hz"):
        sd.read_audio(tmp_path / "a8k.wav", resample=False)
    sf.write(tmp_path / "st.wav", np.stack([y, 0 * y], 1), SR)
    np.testing.assert_allclose(sd.read_audio(tmp_path / "st.wav"), y / 2, atol=1e-4)
    (tmp_path / "notes.wav").write_text("this is not audio")
    with pytest.raises(ValueError, match="not a readable WAV"):
        sd.read_audio(tmp_path / "notes.wav")
    sf.write(tmp_path / "quiet.wav", np.zeros(SR, np.float32), SR)
    with pytest.raises(ValueError, match="silent"):
        sd.read_audio(tmp_path / "quiet.wav")
    sf.write(tmp_path / "long.wav", np.tile(y, 3), SR)
    with pytest.raises(ValueError, match="max_seconds=2"):
        sd.read_audio(tmp_path / "long.wav", max_seconds=2)
    with pytest.raises(FileNotFoundError):
        sd.read_audio(tmp_path / "missing.wav")
    with open(tmp_path / "cut.wav", "wb") as f:  # a WAV header and nothing after it
        f.write(open(tmp_path / "st.wav", "rb").read()[:30])
    with pytest.raises(ValueError, match="cut.wav"):
        sd.read_audio(tmp_path / "cut.wav")


def test_read_folder_pairs_files_and_transcripts(tmp_path):
    for i in range(5):
        sf.write(tmp_path / f"u{i}.wav", _chirp(seed=i), SR)
    (tmp_path / "transcripts.txt").write_text(
        "".join(f"u{i}.wav\tHello  World {i}\tspk{i % 3}\n" for i in range(5)))
    utts = sd.read_folder(tmp_path)
    assert [u.text for u in utts] == [f"hello world {i}" for i in range(5)]
    by_spk = {}
    for u in utts:
        by_spk.setdefault(u.voice, set()).add(u.split)
    assert all(len(s) == 1 for s in by_spk.values())  # a speaker sits in one split
    (tmp_path / "bad.txt").write_text("nope hello\n")
    with pytest.raises(ValueError, match="names 'nope'"):
        sd.read_folder(tmp_path, tmp_path / "bad.txt")
    with pytest.raises(FileNotFoundError, match="transcripts"):
        sd.read_folder(tmp_path, tmp_path / "none.txt")


def test_digit_strings_are_deterministic_and_split_by_voice(tmp_path, espeak):
    a = sd.generate_digits(tmp_path / "a", 24, seed=3)
    b = sd.generate_digits(tmp_path / "b", 24, seed=3)
    assert [(u.text, u.voice, u.split) for u in a] == [(u.text, u.voice, u.split) for u in b]
    assert os.path.getsize(a[0].path) == os.path.getsize(b[0].path)
    variants = {s: {u.voice.split("+")[1] for u in a if u.split == s} for s in ("train", "val", "test")}
    assert not variants["train"] & variants["test"] and not variants["train"] & variants["val"]
    words = set(sd.DIGITS) | {"oh"}
    for u in a:
        assert 1 <= len(u.text.split()) <= 7 and set(u.text.split()) <= words
        y = sd.read_audio(u.path)
        assert 0.2 < len(y) / SR < 10
    # a second call with the same arguments reads the cache instead of synthesising again
    mtime = os.path.getmtime(a[0].path)
    assert sd.generate_digits(tmp_path / "a", 24, seed=3)[0].path == a[0].path
    assert os.path.getmtime(a[0].path) == mtime
