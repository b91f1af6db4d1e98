"""Speech data: spoken digit strings synthesised by espeak-ng, your own WAV folders, audio I/O,
noise and features.

Symbols: N samples, T frames, F features per frame (mels or MFCCs).

- :func:`generate_digits`: connected digit strings ("seven three oh nine", 1-7 digits, the
  TIDIGITS task) spoken by Debian's ``espeak-ng`` with every English accent x voice variant,
  random speed, pitch and word gap, a random sox tempo change for some and a telephone band
  (300-3400 Hz) for others, resampled by sox to 16 kHz. Deterministic from the seed; written
  into a cache folder (WAVs + ``manifest.jsonl``) once and reused. The split is by *voice*
  (accent + variant): whole variants are held out for validation and test, so a test voice
  never appears in training.
- :func:`read_folder`: your own data, a folder of audio files and a transcript file.
- :func:`read_audio`: one file -> mono float32 at the wanted rate, with clear errors for what
  is not audio, silent, too short or too long.
- :func:`add_noise`: white or pink noise at a given SNR (dB), from a seed.
- :class:`FeatureConfig` / :func:`features`: log-mel filterbanks (librosa's mel filterbank) or
  MFCCs, frames without centring (so chunks of a stream give the same frames as the whole).

>>> fc = FeatureConfig()
>>> features(np.zeros(16000, np.float32) + 0.01 * np.sin(np.arange(16000)), fc).shape
(98, 40)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np

from .._io import atomic_write, atomic_write_text

DIGITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SAMPLE_RATE = 16000
# espeak-ng's English voices (the gmw ones ship with the Debian package; mbrola ones need extras)
ACCENTS = ["en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
           "en-029", "en-us-nyc"]
MANIFEST = "manifest.jsonl"


def default_cache() -> str:
    """``$LSTMKIT_CACHE`` or ``~/.cache/lstmkit``: where synthesised data is kept."""
    return os.environ.get("LSTMKIT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "lstmkit")


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise FileNotFoundError(
            f"{tool}: not found on PATH; the speech data is synthesised by Debian's espeak-ng and "
            f"sox (install them with `sudo apt-get install espeak-ng sox`, as `make system` does)")
    return path


def variants() -> list[str]:
    """The voice variants espeak-ng has installed (``espeak-ng --voices=variant``), sorted."""
    out = subprocess.run([_need("espeak-ng"), "--voices=variant"], capture_output=True, text=True,
                         check=True).stdout
    names = []
    for line in out.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 5 and parts[4].startswith("!v/"):
            names.append(parts[4][3:])
    # whispered voices have no voicing; the "fast_test" variant is a test fixture
    return sorted(n for n in set(names) if n not in ("fast", "whisper", "whisperf"))


def digit_words(digits: str, rng: np.random.Generator) -> str:
    """'7309' -> 'seven three oh nine' (zero is said 'oh' or 'zero', as in TIDIGITS)."""
    return " ".join(("oh" if rng.random() < 0.5 else "zero") if d == "0" else DIGITS[int(d)]
                    for d in digits)


@dataclass(frozen=True)
class Utterance:
    id: str
    path: str  # absolute path of the WAV
    text: str
    voice: str  # accent+variant: the unit of the train/val/test split
    split: str  # "train" | "val" | "test"
    info: dict  # how it was made (speed, pitch, tempo, telephone...) or {} for your own data


def split_voices(all_variants: list[str], seed: int, val: float = 0.1, test: float = 0.2):
    """(train, val, test) variant lists: whole variants held out, chosen with the seed."""
    rng = np.random.default_rng(seed + 7919)
    order = [str(v) for v in rng.permutation(sorted(all_variants))]
    n_test = max(1, round(test * len(order)))
    n_val = max(1, round(val * len(order)))
    if len(order) < n_test + n_val + 1:
        raise ValueError(f"variants: need at least {n_test + n_val + 1} espeak-ng voice variants "
                         f"for a train/val/test split by voice, got {len(order)}")
    return (sorted(order[n_test + n_val:]), sorted(order[n_test:n_test + n_val]),
            sorted(order[:n_test]))


def _synth(job: dict) -> None:
    """Speak one utterance with espeak-ng and pipe it through sox into a 16 kHz WAV."""
    esp = [_need("espeak-ng"), "-v", job["voice"], "-s", str(job["speed"]), "-p", str(job["pitch"]),
           "-g", str(job["gap"]), "--stdout", job["text"]]
    effects = ["rate", "-h", str(SAMPLE_RATE)]
    if job["tempo"] != 1.0:
        effects = ["tempo", "-s", f"{job['tempo']:.3f}"] + effects
    if job["telephone"]:
        effects += ["sinc", "300-3400"]
    effects += ["pad", f"{job['pad'][0]:.3f}", f"{job['pad'][1]:.3f}"]

    def write(tmp: str) -> None:
        p1 = subprocess.Popen(esp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        p2 = subprocess.run([_need("sox"), "-q", "-t", "wav", "-", "-t", "wav", "-b", "16", "-c", "1",
                             tmp, *effects], stdin=p1.stdout, capture_output=True)
        p1.stdout.close()
        err1 = p1.stderr.read().decode(errors="replace")
        if p1.wait() != 0 or p2.returncode != 0:
            raise RuntimeError(f"espeak-ng/sox failed for voice {job['voice']!r}: "
                               f"{err1.strip() or p2.stderr.decode(errors='replace').strip()}")

    atomic_write(job["path"], write)


def generate_digits(cache: str | os.PathLike, n: int = 3000, *, seed: int = 0, min_digits: int = 1,
                    max_digits: int = 7, telephone: float = 0.15, tempo: float = 0.3,
                    val: float = 0.1, test: float = 0.2, workers: int = 2,
                    progress: bool = False) -> list[Utterance]:
    """``n`` spoken digit strings in ``cache/digits-<hash>/`` (made once; the hash covers every
    argument but ``workers`` and ``progress``). The utterances of each split use only that
    split's voices; ``telephone`` and ``tempo`` are the fractions band-limited and tempo-changed.

    Returns the utterances (all splits) in a fixed order."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n: expected an int >= 1, got {n!r}")
    if not 1 <= min_digits <= max_digits:
        raise ValueError(f"min_digits/max_digits: expected 1 <= min <= max, got {min_digits}, {max_digits}")
    for name, v in (("telephone", telephone), ("tempo", tempo)):
        if not 0 <= v <= 1:
            raise ValueError(f"{name}: expected a fraction in [0, 1], got {v}")
    var = variants()
    key = dict(n=n, seed=seed, min_digits=min_digits, max_digits=max_digits, telephone=telephone,
               tempo=tempo, val=val, test=test, accents=ACCENTS, variants=var, v=1)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]
    folder = os.path.join(os.path.abspath(os.fspath(cache)), f"digits-{digest}")
    manifest = os.path.join(folder, MANIFEST)
    if os.path.exists(manifest):
        return read_manifest(manifest)
    splits = dict(zip(("train", "val", "test"), split_voices(var, seed, val, test)))
    fractions = {"train": 1 - val - test, "val": val, "test": test}
    rng = np.random.default_rng(seed)
    jobs = []
    for i in range(n):
        u = rng.random()  # which split, in proportion to the fractions
        split = "train" if u < fractions["train"] else ("val" if u < 1 - test else "test")
        variant = splits[split][rng.integers(len(splits[split]))]
        accent = ACCENTS[rng.integers(len(ACCENTS))]
        k = int(rng.integers(min_digits, max_digits + 1))
        digits = "".join(str(d) for d in rng.integers(0, 10, k))
        jobs.append(dict(
            id=f"{split}-{i:06d}", split=split, voice=f"{accent}+{variant}", digits=digits,
            text=digit_words(digits, rng), speed=int(rng.integers(120, 221)),
            pitch=int(rng.integers(20, 81)), gap=int(rng.integers(0, 6)),
            tempo=float(rng.uniform(0.85, 1.15)) if rng.random() < tempo else 1.0,
            telephone=bool(rng.random() < telephone),
            pad=(float(rng.uniform(0.02, 0.25)), float(rng.uniform(0.02, 0.25))),
            path=os.path.join(folder, split, f"{split}-{i:06d}.wav")))
    os.makedirs(folder, exist_ok=True)
    from tqdm.auto import tqdm

    with ThreadPoolExecutor(max(1, workers)) as pool:
        list(tqdm(pool.map(_synth, jobs), total=len(jobs), disable=not progress, desc="espeak-ng",
                  leave=False))
    lines = []
    for j in jobs:
        info = {k: j[k] for k in ("speed", "pitch", "gap", "tempo", "telephone", "digits")}
        lines.append(json.dumps(dict(id=j["id"], path=os.path.relpath(j["path"], folder), text=j["text"],
                                     voice=j["voice"], split=j["split"], info=info)))
    atomic_write_text(manifest, "\n".join(lines) + "\n")
    return read_manifest(manifest)


def read_manifest(path: str) -> list[Utterance]:
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                d = json.loads(line)
                out.append(Utterance(d["id"], os.path.join(folder, d["path"]), d["text"], d["voice"],
                                     d["split"], d.get("info", {})))
    return out


def normalise_text(text: str) -> str:
    """Lower case, one space between words."""
    return " ".join(text.lower().split())


def read_folder(folder: str | os.PathLike, transcripts: str | os.PathLike | None = None, *,
                seed: int = 0, val: float = 0.1, test: float = 0.2) -> list[Utterance]:
    """Your own data: audio files in ``folder`` and a transcript file (default
    ``folder/transcripts.txt``) with one line per file: ``NAME<tab or space>TRANSCRIPT``, NAME
    being the file name with or without its extension. An optional third tab-separated column
    names the speaker, which becomes the unit of the split; without it files are split at random
    (seeded), and the report says so."""
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"data: expected a folder of audio files, got {folder!r}")
    transcripts = os.fspath(transcripts) if transcripts else os.path.join(folder, "transcripts.txt")
    if not os.path.isfile(transcripts):
        raise FileNotFoundError(f"transcripts: expected a file of 'NAME TRANSCRIPT' lines, "
                                f"{transcripts!r} does not exist")
    files = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = os.path.splitext(name)
        if ext.lower() in (".wav", ".flac", ".ogg"):
            files[name] = files[stem] = os.path.join(folder, name)
    rows = []
    with open(transcripts, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            if "\t" in line:
                parts = line.rstrip("\n").split("\t") + ["", ""]
                name, text, speaker = parts[0], parts[1], parts[2]
            else:
                name, _, text = line.strip().partition(" ")
                speaker = ""
            if name not in files:
                raise ValueError(f"transcripts: line {lineno} names {name!r}, expected one of the "
                                 f"audio files in {folder} (.wav/.flac/.ogg)")
            rows.append((name, normalise_text(text), speaker.strip()))
    if len(rows) < 3:
        raise ValueError(f"transcripts: expected at least 3 transcribed files, got {len(rows)}")
    rng = np.random.default_rng(seed)
    units = sorted({s or n for n, _, s in rows})
    order = list(rng.permutation(units))
    n_test, n_val = max(1, round(test * len(order))), max(1, round(val * len(order)))
    where = {u: "test" for u in order[:n_test]}
    where.update({u: "val" for u in order[n_test:n_test + n_val]})
    return [Utterance(os.path.splitext(n)[0], files[n], t, s or "?", where.get(s or n, "train"),
                      {"speaker_given": bool(s)}) for n, t, s in rows]


# --- audio -------------------------------------------------------------------------------------
def read_audio(path: str | os.PathLike, *, sample_rate: int = SAMPLE_RATE, max_seconds: float = 30.0,
               resample: bool = True, min_seconds: float = 0.05, silence_db: float = -60.0) -> np.ndarray:
    """Mono float32 samples of an audio file at ``sample_rate``.

    Other rates are resampled (librosa's soxr) unless ``resample=False``, which makes them an
    error; several channels are averaged. Errors (``ValueError`` naming the file): not a readable
    audio file, shorter than ``min_seconds``, longer than ``max_seconds``, silent (peak below
    ``silence_db`` dBFS)."""
    import soundfile as sf

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"audio: {path!r} does not exist")
    try:
        y, sr = sf.read(path, dtype="float32", always_2d=True)
    except Exception as e:  # soundfile raises LibsndfileError/RuntimeError for what it cannot parse
        raise ValueError(f"audio: {path!r} is not a readable WAV/FLAC/OGG file ({e})") from None
    y = y.mean(axis=1)
    seconds = len(y) / sr
    if seconds > max_seconds:
        raise ValueError(f"audio: {path!r} lasts {seconds:.1f} s, expected at most max_seconds="
                         f"{max_seconds:g} (cut it into shorter clips)")
    if seconds < min_seconds:
        raise ValueError(f"audio: {path!r} lasts {seconds:.3f} s, expected at least {min_seconds:g} s")
    if sr != sample_rate:
        if not resample:
            raise ValueError(f"audio: {path!r} is sampled at {sr} Hz, expected {sample_rate} Hz "
                             f"(resample it, or allow resampling)")
        import librosa

        y = librosa.resample(y, orig_sr=sr, target_sr=sample_rate).astype(np.float32)
    peak = float(np.abs(y).max()) if len(y) else 0.0
    if peak == 0.0 or 20 * np.log10(peak) < silence_db:
        level = "-inf" if peak == 0.0 else f"{20 * np.log10(peak):.1f}"
        raise ValueError(f"audio: {path!r} is silent (peak {level} dBFS, expected above "
                         f"{silence_db:g} dBFS)")
    return y


def write_wav(path: str | os.PathLike, y: np.ndarray, sample_rate: int = SAMPLE_RATE) -> None:
    """16-bit PCM WAV, written atomically."""
    import soundfile as sf

    atomic_write(path, lambda tmp: sf.write(tmp, np.asarray(y, np.float32), sample_rate,
                                            subtype="PCM_16", format="WAV"))


def add_noise(y: np.ndarray, snr_db: float, rng: np.random.Generator, kind: str = "white") -> np.ndarray:
    """``y`` plus ``kind`` ("white" or "pink") noise scaled to ``snr_db`` (signal power over the
    whole clip / noise power)."""
    if kind not in ("white", "pink"):
        raise ValueError(f"kind: expected 'white' or 'pink', got {kind!r}")
    noise = rng.standard_normal(len(y))
    if kind == "pink":  # 1/f power: scale the spectrum by 1/sqrt(f)
        spec = np.fft.rfft(noise)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        noise = np.fft.irfft(spec / np.sqrt(f), n=len(y))
    p_sig = float(np.mean(np.square(y, dtype=np.float64)))
    p_noise = float(np.mean(noise ** 2)) or 1.0
    noise *= np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))
    return (y + noise).astype(np.float32)


# --- features ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureConfig:
    kind: str = "logmel"  # "logmel" | "mfcc"
    sample_rate: int = SAMPLE_RATE
    n_fft: int = 400  # 25 ms window at 16 kHz
    hop_length: int = 160  # 10 ms
    n_mels: int = 40
    n_mfcc: int = 13
    fmin: float = 20.0
    fmax: float | None = None  # None: sample_rate / 2

    def __post_init__(self) -> None:
        if self.kind not in ("logmel", "mfcc"):
            raise ValueError(f"features: expected 'logmel' or 'mfcc', got {self.kind!r}")
        for name in ("sample_rate", "n_fft", "hop_length", "n_mels", "n_mfcc"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")

    @property
    def dim(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def to_dict(self) -> dict:
        return asdict(self)


def num_frames(n_samples: int, fc: FeatureConfig) -> int:
    """Frames of ``n_samples`` (no centring): ``1 + (N - n_fft) // hop``, 0 when shorter."""
    return 0 if n_samples < fc.n_fft else 1 + (n_samples - fc.n_fft) // fc.hop_length


def features(y: np.ndarray, fc: FeatureConfig) -> np.ndarray:
    """(T, F) float32: natural log of the mel power spectrogram (+1e-6), or MFCCs (librosa's DCT
    of the dB mel spectrogram). Frames are not centred: frame t covers samples
    ``[t*hop, t*hop + n_fft)``, so a stream cut into chunks yields the same frames."""
    import librosa

    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"audio: expected mono samples (N,), got shape {y.shape}")
    if len(y) < fc.n_fft:
        raise ValueError(f"audio: expected at least n_fft={fc.n_fft} samples "
                         f"({fc.n_fft / fc.sample_rate * 1000:.0f} ms), got {len(y)}")
    mel = librosa.feature.melspectrogram(y=y, sr=fc.sample_rate, n_fft=fc.n_fft,
                                         hop_length=fc.hop_length, center=False, power=2.0,
                                         n_mels=fc.n_mels, fmin=fc.fmin, fmax=fc.fmax)  # (F, T)
    if fc.kind == "mfcc":
        out = librosa.feature.mfcc(S=librosa.power_to_db(mel, ref=1.0, top_db=None), n_mfcc=fc.n_mfcc)
    else:
        out = np.log(mel + 1e-6)
    return np.ascontiguousarray(out.T, dtype=np.float32)  # (T, F)
