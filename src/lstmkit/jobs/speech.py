"""The speech job: a BiLSTM-CTC recogniser of connected digit strings spoken by espeak-ng (or of
your own WAV folder), decoded by best path, prefix beam search, and beam search with a fused
character language model, beside trivial baselines.

Symbols: B batch, T frames, T' frames after stacking, F features, V characters + blank.

``train(SpeechConfig) -> SpeechResult``:

1. Data: ``data.speech.generate_digits`` into ``cache`` (made once per seed and size), split by
   *voice*: the validation and test voices never occur in training; or ``data=FOLDER`` with a
   transcript file (``data.speech.read_folder``). Utterances CTC cannot align (fewer output
   frames than labels + repeats) are dropped from training and counted; none exist in the
   digit data with the defaults.
2. Features: log-mel (or MFCC) frames; the model normalises them (per utterance, or with the
   training set's statistics for a streamable unidirectional model) and applies SpecAugment in
   training. A ``noise_prob`` share of the training utterances get white or pink noise at an SNR
   drawn from ``[noise_snr_min, noise_snr_max]`` dB, fresh every epoch.
3. Training through ``train.Trainer`` (AdamW, warm-up + cosine, gradient clipping, early stopping
   on the validation *greedy CER*, best weights restored).
4. Decoding choices made on the validation voices (never the test ones): the LM weight and the
   insertion bonus of the fused beam search, from a small grid. The LM is a character n-gram
   fitted on the training transcripts (or ``lm=DIR``: an ``lstmkit lm train`` checkpoint).
5. Test voices, clean and at each SNR in ``snrs``: WER and CER (jiwer) of greedy, beam and
   beam+LM; per-voice WER; the real-time factor of each decoder; and two trivial baselines
   (the empty transcript; the most frequent training word said the median number of times).
   There is no pip-installable ASR library that runs offline without downloading weights, so
   no off-the-shelf recogniser is compared.
6. ``out``: ``config.json``, ``metrics.json``, ``model.pt`` (weights_only, kind
   ``speech_recognizer``, alphabet, features, LM and decoding choices inside),
   ``posteriors.png`` (a test spectrogram with the CTC posteriors under it), ``wer_snr.png``.

``transcribe(checkpoint, paths)``, ``evaluate(checkpoint, ...)`` and :class:`StreamingRecognizer`
(audio in chunks -> the same text as offline, for unidirectional models) use a saved model.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import torch

from .._io import atomic_write_text
from ..data import speech as sd
from ..data.batching import LengthBuckets
from ..decoding.ctc import LSTMCharLM, NGramCharLM, PrefixBeamSearch, greedy_decode
from ..models.speech import (
    CHECKPOINT_KIND,
    RecognizerConfig,
    SpeechRecognizer,
    ctc_feasible,
    ctc_loss,
    recognizer_from_dict,
)
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..train.trainer import TrainConfig, Trainer
from ._config import merge_config_file

DECODERS = ("greedy", "beam", "beam+lm")


default_cache = sd.default_cache


@dataclass
class SpeechConfig:
    out: str = "runs/speech"
    data: str | None = None  # your folder of audio files; None: synthesised digit strings
    transcripts: str | None = None  # default: DATA/transcripts.txt
    cache: str | None = None  # where synthesised data goes; None: $LSTMKIT_CACHE or ~/.cache/lstmkit
    utterances: int = 3000
    seed: int = 0
    features: str = "logmel"  # "logmel" | "mfcc"
    n_mels: int = 40
    hidden_size: int = 96
    num_layers: int = 3
    bidirectional: bool = True
    subsample: int = 3
    dropout: float = 0.1
    cmvn: str | None = None  # None: "utterance" (BiLSTM) or "global" (unidirectional, streamable)
    spec_augment: bool = True
    noise_prob: float = 0.5
    noise_snr_min: float = 0.0
    noise_snr_max: float = 30.0
    batch_size: int = 32
    lr: float = 3e-3
    max_steps: int = 3000
    max_time: float | None = 1200.0  # seconds (wall clock) of training; None: no limit
    val_every: int = 150
    patience: int = 6
    max_val: int = 200  # validation utterances scored (greedy CER) at each validation
    beam_width: int = 16
    lm: str | None = None  # an `lstmkit lm train` folder; None: a char n-gram on the training text
    lm_order: int = 7
    lm_weight: float | None = None  # None: chosen on the validation voices
    insertion_bonus: float | None = None  # None: chosen with lm_weight
    snrs: list[float] = field(default_factory=lambda: [20.0, 10.0, 5.0, 0.0])
    max_test: int | None = None  # test utterances per condition; None: all
    max_seconds: float = 30.0
    progress: bool | None = None
    resume: bool = True
    chosen: dict = field(default_factory=dict)  # filled in: what the run chose automatically

    def __post_init__(self) -> None:
        for name in ("utterances", "n_mels", "hidden_size", "num_layers", "subsample", "batch_size",
                     "max_steps", "val_every", "patience", "max_val", "beam_width", "lm_order"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name.replace('_', '-')}: expected an int >= 1, got {v!r}")
        if self.features not in ("logmel", "mfcc"):
            raise ValueError(f"features: expected 'logmel' or 'mfcc', got {self.features!r}")
        if self.cmvn is not None and self.cmvn not in ("utterance", "global", "none"):
            raise ValueError(f"cmvn: expected 'utterance', 'global' or 'none', got {self.cmvn!r}")
        if not 0 <= self.noise_prob <= 1:
            raise ValueError(f"noise-prob: expected a fraction in [0, 1], got {self.noise_prob}")
        if self.noise_snr_min > self.noise_snr_max:
            raise ValueError(f"noise-snr-min: expected <= noise-snr-max, got {self.noise_snr_min} > "
                             f"{self.noise_snr_max}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"max-time: expected seconds > 0 or None, got {self.max_time}")
        self.snrs = [float(s) for s in self.snrs]


@dataclass
class SpeechResult:
    config: SpeechConfig
    metrics: dict
    model: SpeechRecognizer
    seconds: float

    @property
    def out(self) -> str:
        return self.config.out


# --- data ---------------------------------------------------------------------------------------
def load_utterances(cfg: SpeechConfig, echo=print) -> tuple[list[sd.Utterance], str]:
    if cfg.data:
        utts = sd.read_folder(cfg.data, cfg.transcripts, seed=cfg.seed)
        given = all(u.info.get("speaker_given") for u in utts)
        how = "by speaker" if given else "at random (no speaker column in the transcripts)"
        return utts, f"{cfg.data}: {len(utts)} files, split {how}"
    cache = cfg.cache or default_cache()
    t = time.perf_counter()
    utts = sd.generate_digits(os.path.join(cache, "speech"), cfg.utterances, seed=cfg.seed,
                              progress=bool(cfg.progress))
    voices = {s: len({u.voice.split("+")[1] for u in utts if u.split == s}) for s in ("train", "val", "test")}
    echo(f"data: {len(utts)} espeak-ng digit strings ({time.perf_counter() - t:.1f} s); voice variants "
         f"train/val/test {voices['train']}/{voices['val']}/{voices['test']}, x {len(sd.ACCENTS)} accents")
    return utts, (f"{len(utts)} synthesised digit strings (espeak-ng, seed {cfg.seed}), split by voice "
                  f"variant {voices['train']}/{voices['val']}/{voices['test']}")


class Alphabet:
    """Symbol 0 is the CTC blank; then the characters of the training transcripts."""

    def __init__(self, symbols: list[str]) -> None:
        self.chars = list(symbols)  # symbols[0] is the blank, shown as "-"
        self.index = {c: i for i, c in enumerate(self.chars) if i > 0}

    @classmethod
    def fit(cls, texts: list[str]) -> Alphabet:
        return cls(["-"] + sorted({c for t in texts for c in t}))

    def encode(self, text: str) -> list[int]:
        unknown = sorted({c for c in text if c not in self.index})
        if unknown:
            raise ValueError(f"text: characters {unknown} are not in the model's alphabet "
                             f"{''.join(self.chars[1:])!r} (in {text!r})")
        return [self.index[c] for c in text]

    def decode(self, ids) -> str:
        return "".join(self.chars[i] for i in ids)

    def __len__(self) -> int:
        return len(self.chars)


def _feats(y: np.ndarray, fc: sd.FeatureConfig) -> torch.Tensor:
    return torch.from_numpy(sd.features(y, fc))


class SpeechBatches:
    """Batches ``(feats (B, T, F), lengths (B,), targets (sum L,), target_lengths (B,))`` of
    similar length (:class:`~lstmkit.data.batching.LengthBuckets`, pools of 16 batches). With
    ``noise_prob`` > 0, that share of the utterances are re-read and get fresh noise each epoch
    (seeded from torch's RNG, which the Trainer seeds per epoch)."""

    def __init__(self, utts, feats, targets, fc, batch_size, *, shuffle, noise_prob=0.0,
                 snr=(0.0, 30.0)) -> None:
        self.utts, self.feats, self.targets, self.fc = utts, feats, targets, fc
        self.shuffle, self.noise_prob, self.snr = shuffle, noise_prob, snr
        self.buckets = LengthBuckets([len(f) for f in feats], batch_size, shuffle=shuffle, pool=16)

    def __len__(self) -> int:
        return len(self.buckets)

    def _get(self, i: int, rng) -> torch.Tensor:
        if rng is not None and rng.random() < self.noise_prob:
            y = sd.read_audio(self.utts[i].path, sample_rate=self.fc.sample_rate)
            y = sd.add_noise(y, rng.uniform(*self.snr), rng, kind="white" if rng.random() < 0.5 else "pink")
            f = _feats(y, self.fc)
            return f[:len(self.feats[i])]
        return self.feats[i]

    def __iter__(self):
        rng = (np.random.default_rng(int(torch.randint(0, 2 ** 31 - 1, ())))
               if self.shuffle and self.noise_prob > 0 else None)
        for b in self.buckets:
            xs = [self._get(i, rng) for i in b]
            lengths = torch.tensor([len(x) for x in xs])
            x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)
            tl = torch.tensor([len(self.targets[i]) for i in b])
            tg = torch.tensor([t for i in b for t in self.targets[i]], dtype=torch.long)
            yield x, lengths, tg, tl


def _loss(model, batch):
    x, lengths, tg, tl = batch
    lp, out_len, _ = model(x, lengths)
    return ctc_loss(lp, out_len, tg, tl)


@torch.no_grad()
def posteriors(model: SpeechRecognizer, feats: list[torch.Tensor], batch_size: int = 64) -> list[np.ndarray]:
    """Log-posteriors (T', V) per utterance."""
    model.eval()
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
    res = {}
    for s in range(0, len(order), batch_size):
        b = order[s:s + batch_size]
        x = torch.nn.utils.rnn.pad_sequence([feats[i] for i in b], batch_first=True)
        lp, ol, _ = model(x, torch.tensor([len(feats[i]) for i in b]))
        for j, i in enumerate(b):
            res[i] = lp[j, :int(ol[j])].double().numpy()
    return [res[i] for i in range(len(feats))]


def wer_cer(refs: list[str], hyps: list[str]) -> dict:
    """Corpus WER and CER (jiwer); an empty hypothesis counts its reference as deleted."""
    import jiwer

    if not refs:
        raise ValueError("refs: expected at least one reference transcript")
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps)), "n": len(refs)}


class Decoder:
    """The three decoders of a trained model, one call per utterance's log-posteriors."""

    def __init__(self, alphabet: Alphabet, beam_width: int, lm=None, lm_weight: float = 0.0,
                 insertion_bonus: float = 0.0, prune: float = math.log(1e-4)) -> None:
        self.alphabet, self.K, self.lm = alphabet, beam_width, lm
        self.w, self.bonus, self.prune = lm_weight, insertion_bonus, prune

    def search(self, name: str) -> PrefixBeamSearch:
        if name == "beam+lm":
            return PrefixBeamSearch(self.alphabet.chars, self.K, lm=self.lm, lm_weight=self.w,
                                    insertion_bonus=self.bonus, prune=self.prune)
        return PrefixBeamSearch(self.alphabet.chars, self.K, prune=self.prune)

    def __call__(self, lp: np.ndarray, name: str) -> str:
        if name == "greedy":
            return self.alphabet.decode(greedy_decode(lp))
        s = self.search(name)
        s.advance(lp)
        return s.finish()[0].text


def _clean(t: str) -> str:
    return " ".join(t.split())


def decode_all(dec: Decoder, lps: list[np.ndarray], name: str) -> list[str]:
    return [_clean(dec(lp, name)) for lp in lps]


def choose_fusion(dec: Decoder, lps, refs, cfg: SpeechConfig, echo=print) -> tuple[float, float, list]:
    """LM weight and insertion bonus with the lowest validation WER (ties: smaller weight)."""
    weights = [cfg.lm_weight] if cfg.lm_weight is not None else [0.2, 0.5, 1.0]
    bonuses = [cfg.insertion_bonus] if cfg.insertion_bonus is not None else [0.0, 0.5, 1.5]
    grid = []
    for w in weights:
        for b in bonuses:
            dec.w, dec.bonus = w, b
            grid.append((wer_cer(refs, decode_all(dec, lps, "beam+lm"))["wer"], w, b))
    best = min(grid, key=lambda g: (g[0], g[1], g[2]))
    dec.w, dec.bonus = best[1], best[2]
    if len(grid) > 1:
        echo(f"fusion: lm_weight {best[1]}, insertion_bonus {best[2]} (validation WER {best[0]:.4f}, "
             f"grid of {len(grid)})")
    return best[1], best[2], [list(g) for g in grid]


def build_lm(cfg: SpeechConfig, train_texts: list[str]):
    if cfg.lm:
        from ..jobs.lm import load as load_lm

        model, tok, _ = load_lm(cfg.lm)
        return LSTMCharLM(model, tok), {"lstm": cfg.lm}
    lm = NGramCharLM(cfg.lm_order).fit(train_texts)
    return lm, {"ngram": lm.to_dict()}


def lm_from_parts(parts: dict):
    if "ngram" in parts:
        return NGramCharLM.from_dict(parts["ngram"])
    if "lstm" in parts:
        from ..jobs.lm import load as load_lm

        model, tok, _ = load_lm(parts["lstm"])
        return LSTMCharLM(model, tok)
    return None


def _resolve(cfg: SpeechConfig) -> SpeechConfig:
    chosen = dict(cfg.chosen)
    if cfg.cmvn is None:
        cfg.cmvn = "utterance" if cfg.bidirectional else "global"
        chosen["cmvn"] = f"{cfg.cmvn} ({'bidirectional' if cfg.bidirectional else 'streamable'} model)"
    cfg.chosen = chosen
    return cfg


def _noisy(utts, fc, snr: float | None, seed: int, max_seconds: float) -> list[torch.Tensor]:
    out = []
    for k, u in enumerate(utts):
        y = sd.read_audio(u.path, sample_rate=fc.sample_rate, max_seconds=max_seconds)
        if snr is not None:
            y = sd.add_noise(y, snr, np.random.default_rng([seed, k, int(snr * 10) + 1000]),
                             kind="white" if k % 2 == 0 else "pink")
        out.append(_feats(y, fc))
    return out


def train(cfg: SpeechConfig, echo=print) -> SpeechResult:
    t0 = time.perf_counter()
    cfg = _resolve(cfg)
    torch.manual_seed(cfg.seed)
    utts, described = load_utterances(cfg, echo)
    split = {s: [u for u in utts if u.split == s] for s in ("train", "val", "test")}
    for s, us in split.items():
        if not us:
            raise ValueError(f"data: the {s} split is empty (got {len(utts)} utterances); give more data")
    fc = sd.FeatureConfig(kind=cfg.features, n_mels=cfg.n_mels)
    alphabet = Alphabet.fit([u.text for u in split["train"]])

    def prepare(us, name):
        feats = [_feats(sd.read_audio(u.path, max_seconds=cfg.max_seconds), fc) for u in us]
        targets, keep = [], []
        for i, u in enumerate(us):
            ids = alphabet.encode(u.text) if name == "train" else [alphabet.index.get(c, 0) for c in u.text]
            n_out = -(-len(feats[i]) // cfg.subsample)
            if name != "train" or ctc_feasible(ids, n_out):
                keep.append(i)
                targets.append(ids)
        return [us[i] for i in keep], [feats[i] for i in keep], targets, len(us) - len(keep)

    tr_u, tr_f, tr_t, dropped = prepare(split["train"], "train")
    va_u, va_f, va_t, _ = prepare(split["val"][:cfg.max_val], "val")
    if dropped:
        echo(f"data: dropped {dropped} training utterance(s) too short for their transcript "
             f"(CTC needs one output frame per character + one per repeat)")
    cfg.chosen["dropped_unalignable"] = dropped
    hours = sum(len(f) for f in tr_f) * fc.hop_length / fc.sample_rate / 3600
    echo(f"train {len(tr_u)} utterances ({hours:.2f} h), val {len(va_u)}, test {len(split['test'])}; "
         f"alphabet {''.join(alphabet.chars[1:])!r}")

    mc = RecognizerConfig(n_features=fc.dim, vocab_size=len(alphabet), hidden_size=cfg.hidden_size,
                          num_layers=cfg.num_layers, bidirectional=cfg.bidirectional,
                          subsample=cfg.subsample, dropout=cfg.dropout, cmvn=cfg.cmvn,
                          freq_masks=2 if cfg.spec_augment else 0, time_masks=2 if cfg.spec_augment else 0,
                          freq_mask_width=max(1, fc.dim // 7))
    model = SpeechRecognizer(mc)
    allf = torch.cat(tr_f)
    model.set_stats(allf.mean(0), allf.std(0))
    n_params = sum(p.numel() for p in model.parameters())
    echo(f"model: {'Bi' if cfg.bidirectional else ''}LSTM {cfg.num_layers}x{cfg.hidden_size}, stacking "
         f"{cfg.subsample} frames, {n_params / 1e6:.2f} M parameters, cmvn {cfg.cmvn}")

    train_loader = SpeechBatches(tr_u, tr_f, tr_t, fc, cfg.batch_size, shuffle=True,
                                 noise_prob=cfg.noise_prob, snr=(cfg.noise_snr_min, cfg.noise_snr_max))
    refs_val = [u.text for u in va_u]
    dec0 = Decoder(alphabet, cfg.beam_width)

    def val_cer(m, _loader) -> float:
        return wer_cer(refs_val, decode_all(dec0, posteriors(m, va_f), "greedy"))["cer"]

    out = cfg.out
    tdir = os.path.join(out, "train")
    if not cfg.resume and os.path.isdir(tdir):
        shutil.rmtree(tdir)
    tc = TrainConfig(max_steps=cfg.max_steps, val_every=cfg.val_every, lr=cfg.lr, weight_decay=1e-2,
                     warmup_steps=min(200, cfg.max_steps // 10), patience=cfg.patience, lr_drops=1,
                     clip_grad_norm=5.0, seed=cfg.seed, progress=cfg.progress, max_time=cfg.max_time,
                     restore_best=True, resume=cfg.resume, min_lr_ratio=0.05)
    trainer = Trainer(model, _loss, tc, tdir, extra={"job_config": asdict(cfg)}, eval_fn=val_cer)
    t_train, cpu_train = time.perf_counter(), time.process_time()
    history = trainer.fit(train_loader, [None])
    train_seconds, train_cpu = time.perf_counter() - t_train, time.process_time() - cpu_train
    model.eval()
    echo(f"trained {trainer.step} steps in {train_seconds:.0f} s; best validation greedy CER "
         f"{trainer.best_val:.4f}" + (f" (stopped: {trainer.stop_reason})" if trainer.stop_reason else ""))

    lm, lm_parts = build_lm(cfg, [u.text for u in tr_u])
    dec = Decoder(alphabet, cfg.beam_width, lm)
    va_lp = posteriors(model, va_f)
    w, b, grid = choose_fusion(dec, va_lp, refs_val, cfg, echo)
    cfg.chosen.update(lm_weight=w, insertion_bonus=b, fusion_grid=grid)

    metrics = evaluate_model(model, fc, alphabet, dec, split["test"], cfg, [u.text for u in tr_u], echo)
    metrics["setup"] = dict(data=described, train_utterances=len(tr_u), train_hours=round(hours, 3),
                            parameters=n_params, steps=trainer.step, train_seconds=round(train_seconds, 1),
                            train_cpu_seconds=round(train_cpu, 1),
                            threads=torch.get_num_threads(), load_average=list(os.getloadavg()),
                            chosen=cfg.chosen)
    metrics["history"] = history

    save_checkpoint(os.path.join(out, "model.pt"), kind=CHECKPOINT_KIND, config=asdict(mc),
                    model={k: v.detach().cpu() for k, v in model.state_dict().items()},
                    alphabet=alphabet.chars, features=fc.to_dict(), lm=lm_parts, lm_weight=w,
                    insertion_bonus=b, beam_width=cfg.beam_width, job_config=asdict(cfg))
    atomic_write_text(os.path.join(out, "config.json"), json.dumps(asdict(cfg), indent=2) + "\n")
    atomic_write_text(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    echo(format_table(metrics))
    echo(f"wrote {out}/config.json, metrics.json, model.pt, posteriors.png, wer_snr.png")
    return SpeechResult(cfg, metrics, model, time.perf_counter() - t0)


def evaluate_model(model, fc, alphabet, dec: Decoder, test_utts, cfg: SpeechConfig, train_texts=None,
                   echo=print) -> dict:
    """Every decoder on the test utterances, clean and at each SNR; per-voice WER; RTF; plots."""
    utts = test_utts[:cfg.max_test] if cfg.max_test else test_utts
    refs = [u.text for u in utts]
    metrics: dict = {}
    snr_table: dict = {}
    for snr in [None] + list(cfg.snrs):
        lps = posteriors(model, _noisy(utts, fc, snr, cfg.seed, cfg.max_seconds))
        key = "clean" if snr is None else f"{snr:g}dB"
        snr_table[key] = {}
        for name in DECODERS:
            hyps = decode_all(dec, lps, name)
            snr_table[key][name] = wer_cer(refs, hyps)
            if snr is None:
                metrics[name] = dict(snr_table[key][name])
                if name == "beam+lm":
                    per = defaultdict(lambda: ([], []))
                    for u, h in zip(utts, hyps):
                        per[u.voice][0].append(u.text)
                        per[u.voice][1].append(h)
                    metrics["per_voice_wer"] = {v: round(wer_cer(r, h)["wer"], 4)
                                                for v, (r, h) in sorted(per.items())}
                    clean_lps, clean_hyps = lps, hyps
    metrics["snr"] = snr_table
    if train_texts:
        words = Counter(w for t in train_texts for w in t.split())
        common = words.most_common(1)[0][0]
        n = int(statistics.median(len(t.split()) for t in train_texts))
        metrics["baseline_empty"] = wer_cer(refs, [""] * len(refs))
        metrics["baseline_majority"] = dict(wer_cer(refs, [" ".join([common] * n)] * len(refs)),
                                            transcript=" ".join([common] * n))
    metrics["rtf"] = real_time_factor(model, fc, dec, utts[:40], cfg.max_seconds)
    per_voice = metrics["per_voice_wer"]
    worst = max(per_voice, key=per_voice.get)
    echo(f"per-voice WER (beam+lm, clean): {len(per_voice)} voices, worst {worst} {per_voice[worst]:.3f}")
    os.makedirs(cfg.out, exist_ok=True)
    k = int(np.argmax([len(r.split()) for r in refs[:50]]))
    plot_posteriors(os.path.join(cfg.out, "posteriors.png"), utts[k], fc, clean_lps[k], alphabet,
                    clean_hyps[k], model.config.subsample, cfg.max_seconds)
    plot_wer_snr(os.path.join(cfg.out, "wer_snr.png"), snr_table)
    return metrics


def real_time_factor(model, fc, dec: Decoder, utts, max_seconds: float = 30.0) -> dict:
    """Seconds of compute per second of audio, one utterance at a time (features + network +
    decoder), for each decoder: wall clock (``<decoder>``) and this process's CPU time
    (``<decoder> cpu``, what a busy shared machine does not inflate)."""
    audio = [sd.read_audio(u.path, sample_rate=fc.sample_rate, max_seconds=max_seconds) for u in utts]
    dur = sum(len(y) for y in audio) / fc.sample_rate
    model.eval()
    out = {}
    for name in DECODERS:
        t, c = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for y in audio:
                f = _feats(y, fc)
                lp, _, _ = model(f[None], torch.tensor([len(f)]))
                dec(lp[0].double().numpy(), name)
        out[name] = round((time.perf_counter() - t) / dur, 5)
        out[f"{name} cpu"] = round((time.process_time() - c) / dur, 5)
    out["audio_seconds"] = round(dur, 2)
    return out


def format_table(metrics: dict) -> str:
    snr = metrics["snr"]
    conds = list(snr)
    lines = ["test voices (never seen in training): WER % (CER %)",
             f"{'decoder':<18}" + "".join(f"{c:>15}" for c in conds) + f"{'RTF':>9}"]
    for name in DECODERS:
        cells = "".join(f"{100 * snr[c][name]['wer']:>7.2f} ({100 * snr[c][name]['cer']:5.2f})"
                        for c in conds)
        lines.append(f"{name:<18}{cells}{metrics['rtf'][name]:>9.4f}")
    for base in ("baseline_empty", "baseline_majority"):
        if base in metrics:
            m = metrics[base]
            label = base.replace("baseline_", "baseline: ")
            lines.append(f"{label:<18}{100 * m['wer']:>7.2f} ({100 * m['cer']:5.2f})")
    return "\n".join(lines)


# --- plots ----------------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_posteriors(path, utt, fc, lp: np.ndarray, alphabet: Alphabet, hyp: str, subsample: int,
                    max_seconds: float = 30.0) -> None:
    """Log-mel spectrogram over the CTC posteriors of each character (the blank dashed)."""
    from .._io import atomic_write

    plt = _plt()
    y = sd.read_audio(utt.path, sample_rate=fc.sample_rate, max_seconds=max_seconds)
    spec = sd.features(y, sd.FeatureConfig(n_mels=fc.n_mels))  # (T, F) log-mel for the picture
    hop_s = fc.hop_length / fc.sample_rate
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(10, 5.5), sharex=True,
                                 gridspec_kw={"height_ratios": [1.2, 1]})
    a1.imshow(spec.T, origin="lower", aspect="auto", cmap="magma",
              extent=[0, len(spec) * hop_s, 0, spec.shape[1]])
    a1.set_ylabel("mel band")
    a1.set_title(f"{utt.voice}: ref {utt.text!r}\nbeam+LM {hyp!r}", fontsize=9)
    p = np.exp(lp)
    t = (np.arange(len(p)) * subsample + subsample / 2) * hop_s
    a2.plot(t, p[:, 0], "k--", lw=0.8, label="blank")
    cmap = plt.get_cmap("tab20")
    for s in range(1, p.shape[1]):
        if p[:, s].max() > 0.3:
            a2.plot(t, p[:, s], color=cmap(s % 20), lw=1.2)
    best = p.argmax(1)
    for k in range(len(best)):  # label each character where the best path starts emitting it
        s = int(best[k])
        if s != 0 and (k == 0 or best[k - 1] != s):
            a2.text(t[k], 1.03, "␣" if alphabet.chars[s] == " " else alphabet.chars[s], ha="center",
                    fontsize=8, color=cmap(s % 20))
    a2.set_ylim(0, 1.12)
    a2.set_ylabel("CTC posterior")
    a2.set_xlabel("seconds")
    a2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def plot_wer_snr(path, snr_table: dict) -> None:
    from .._io import atomic_write

    plt = _plt()
    conds = list(snr_table)
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, style in zip(DECODERS, ("o-", "s-", "^-")):
        ax.plot(range(len(conds)), [100 * snr_table[c][name]["wer"] for c in conds], style, label=name)
    ax.set_xticks(range(len(conds)), conds)
    ax.set_xlabel("noise (white/pink) SNR")
    ax.set_ylabel("WER % (test voices)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


# --- using a saved model -----------------------------------------------------------------------------
def load(checkpoint: str | os.PathLike):
    """(model in eval mode, feature config, alphabet, Decoder with the saved choices, parts)."""
    path = os.fspath(checkpoint)
    if os.path.isdir(path):
        path = os.path.join(path, "model.pt")
    ck = load_checkpoint(path)
    if ck.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"checkpoint: expected a {CHECKPOINT_KIND!r} checkpoint (from `lstmkit speech "
                         f"train`), got kind {ck.get('kind')!r} in {path}")
    model = recognizer_from_dict(ck["config"])
    model.load_state_dict(ck["model"])
    model.eval()
    fc = sd.FeatureConfig(**ck["features"])
    alphabet = Alphabet(list(ck["alphabet"]))
    dec = Decoder(alphabet, int(ck["beam_width"]), lm_from_parts(ck.get("lm", {})),
                  float(ck["lm_weight"]), float(ck["insertion_bonus"]))
    return model, fc, alphabet, dec, ck


def transcribe(checkpoint: str | os.PathLike, paths: list[str], decoder: str = "beam+lm",
               max_seconds: float = 30.0) -> list[str]:
    """The transcript of each audio file (any rate: resampled)."""
    if decoder not in DECODERS:
        raise ValueError(f"decoder: expected one of {DECODERS}, got {decoder!r}")
    if not paths:
        raise ValueError("paths: expected at least one audio file")
    model, fc, _, dec, _ = load(checkpoint)
    feats = [_feats(sd.read_audio(p, sample_rate=fc.sample_rate, max_seconds=max_seconds), fc)
             for p in paths]
    return decode_all(dec, posteriors(model, feats), decoder)


def evaluate(checkpoint: str | os.PathLike, *, out: str, data: str | None = None,
             transcripts: str | None = None, cache: str | None = None, utterances: int = 3000,
             seed: int = 0, snrs=(20.0, 10.0, 5.0, 0.0), max_test: int | None = None, echo=print) -> dict:
    """Score a saved model on a test split (the synthesised digits' test voices with the same
    ``utterances``/``seed``, or your folder's test part); writes ``out/metrics.json`` and PNGs."""
    model, fc, alphabet, dec, ck = load(checkpoint)
    cfg = SpeechConfig(out=out, data=data, transcripts=transcripts, cache=cache, utterances=utterances,
                       seed=seed, snrs=list(snrs), max_test=max_test)
    utts, _ = load_utterances(cfg, echo)
    test = [u for u in utts if u.split == "test"]
    metrics = evaluate_model(model, fc, alphabet, dec, test, cfg, None, echo)
    atomic_write_text(os.path.join(out, "metrics.json"), json.dumps(metrics, indent=2) + "\n")
    echo(format_table(metrics))
    return metrics


class StreamingRecognizer:
    """Audio in chunks -> partial and final transcripts, for a unidirectional model with
    ``cmvn`` "global" or "none" (a BiLSTM or per-utterance CMVN needs the whole utterance: a
    ``ValueError``). The result equals offline decoding of the whole audio with the same model.

    ``accept(samples) -> partial text``; ``finish() -> final text``."""

    def __init__(self, model: SpeechRecognizer, fc: sd.FeatureConfig, alphabet: Alphabet,
                 decoder: Decoder, name: str = "beam+lm") -> None:
        c = model.config
        if c.bidirectional or c.cmvn == "utterance":
            raise ValueError(f"model: streaming needs a unidirectional model with cmvn 'global' or "
                             f"'none', got bidirectional={c.bidirectional}, cmvn={c.cmvn!r}")
        if name not in DECODERS:
            raise ValueError(f"name: expected one of {DECODERS}, got {name!r}")
        self.model, self.fc, self.alphabet, self.name = model.eval(), fc, alphabet, name
        self.search = None if name == "greedy" else decoder.search(name)
        from ..decoding.ctc import StreamingGreedy

        self.greedy = StreamingGreedy() if name == "greedy" else None
        self.samples = np.zeros(0, np.float32)  # not yet framed (starts at the next frame)
        self.frames: list[torch.Tensor] = []  # framed, not yet a whole group of `subsample`
        self.hx = None
        self.log_probs: list[np.ndarray] = []  # (T', V) per model call, for inspection

    def _run(self, f: torch.Tensor) -> None:
        if len(f) == 0:
            return
        with torch.no_grad():
            lp, _, self.hx = self.model(f[None], torch.tensor([len(f)]), self.hx)
        lp = lp[0].double().numpy()
        self.log_probs.append(lp)
        if self.greedy is not None:
            self.greedy.advance(lp)
        else:
            self.search.advance(lp)

    def accept(self, samples: np.ndarray) -> str:
        self.samples = np.concatenate([self.samples, np.asarray(samples, np.float32).reshape(-1)])
        n = sd.num_frames(len(self.samples), self.fc)
        if n:
            take = (n - 1) * self.fc.hop_length + self.fc.n_fft
            self.frames.append(_feats(self.samples[:take], self.fc))
            self.samples = self.samples[n * self.fc.hop_length:]
        f = torch.cat(self.frames) if self.frames else torch.zeros(0, self.fc.dim)
        S = self.model.config.subsample
        whole = len(f) // S * S
        self._run(f[:whole])
        self.frames = [f[whole:]]
        return self.partial()

    def partial(self) -> str:
        if self.greedy is not None:
            return self.alphabet.decode(self.greedy.tokens)
        return self.search.best().text

    def finish(self) -> str:
        if self.frames:
            self._run(torch.cat(self.frames))  # the last, short group: zero-padded as offline
            self.frames = []
        if self.greedy is not None:
            return _clean(self.alphabet.decode(self.greedy.tokens))
        return _clean(self.search.finish()[0].text)


def config_fields() -> list[str]:
    return [f.name for f in fields(SpeechConfig)]


def make_data(cache: str | None = None, utterances: int = 3000, seed: int = 0, progress: bool = True) -> dict:
    """``lstmkit speech data``: synthesise (or find) the digit strings; a summary per split."""
    cache = os.path.join(cache or default_cache(), "speech")
    utts = sd.generate_digits(cache, utterances, seed=seed, progress=progress)
    out = {"folder": os.path.dirname(utts[0].path.rstrip(os.sep)).rsplit(os.sep, 1)[0]}
    for s in ("train", "val", "test"):
        us = [u for u in utts if u.split == s]
        out[s] = {"utterances": len(us), "voices": len({u.voice for u in us}),
                  "variants": sorted({u.voice.split("+")[1] for u in us})}
    return out


def config_from_flags(flags: dict, toml_path: str | None = None) -> SpeechConfig:
    """The config of ``lstmkit speech train``: ``flags`` over the fields of a TOML file
    (:mod:`lstmkit.jobs._config`); ``max_time <= 0`` means no limit."""
    kw = merge_config_file(SpeechConfig, flags, toml_path)
    if kw.get("max_time") is not None and kw["max_time"] <= 0:
        kw["max_time"] = None
    return SpeechConfig(**kw)
