"""The seq2seq job: train an attention encoder-decoder, translate, evaluate (DESIGN.md section 6).

Symbols: B batch, S source length, T target length.

Tasks: ``g2p`` (CMUdict, letters -> ARPAbet phonemes, split by word: the test words are never
seen in training), ``dates`` (Babel dates in 20 locales -> ISO, split by date), or ``tsv``
(your own file: ``source<TAB>target`` per line; tokens are characters or whitespace-separated,
``src_tokens`` / ``tgt_tokens``).

``train(config)`` trains the configured model and, with ``compare_none``, the same model
without attention (the fixed-context baseline), both through ``train.Trainer`` with early
stopping on the validation loss; then scores both on the test split with greedy and beam
search. Writes into ``config.out``: ``config.json``, ``metrics.json`` (one entry per model and
decoder), ``model.pt`` (weights_only-loadable, configs and vocabularies inside),
``attention.png`` (heatmaps of test examples), ``accuracy_by_length.png`` (exact match by source
length, attention vs none), and the Trainer's folders ``train/`` and ``train_none/``.

Metrics (same names for every task): ``exact_match``; ``ter`` token error rate (edit distance
/ reference tokens: the phoneme error rate for G2P); ``wer``: for G2P the share of words with any
error (the G2P convention), otherwise the word error rate over the whitespace words of the
outputs; ``bleu`` and ``chrf`` from sacrebleu; ``accuracy_by_length``. Where a source has
several references (G2P words with several pronunciations) the closest one counts.

Unknown source tokens at translation time map to ``<unk>`` (a note lists them); an empty
source and one longer than ``max_source_len`` (twice the longest training source unless set)
raise ``ValueError``.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from .._io import atomic_write, atomic_write_text
from ..data.batching import LengthBuckets
from ..data.labelled import pad_ids
from ..decoding.beam import check_beam_options
from ..models.seq2seq import SCHEDULES, Seq2Seq, Seq2SeqConfig, teacher_forcing_ratio
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..train.trainer import TrainConfig, Trainer

TASKS = ("g2p", "dates", "tsv")
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
CHECKPOINT_KIND = "seq2seq"


@dataclass
class Seq2SeqJobConfig:
    task: str = "dates"  # g2p | dates | tsv
    tsv: str | None = None  # with task "tsv" (or alone): a source<TAB>target file
    src_tokens: str = "char"  # char | space (tsv only; g2p: char -> space, dates: char -> char)
    tgt_tokens: str = "char"
    attention: str = "bahdanau"
    input_feeding: bool = True
    bidirectional: bool = True
    embedding_dim: int = 64
    hidden_size: int = 128
    decoder_hidden_size: int = 0
    num_layers: int = 1
    decoder_layers: int = 1
    dropout: float = 0.1
    bridge: bool = True
    tie_embeddings: bool = False
    tie_output: bool = False
    label_smoothing: float = 0.0
    scheduled_sampling: str = "none"  # none | linear | exponential | inverse-sigmoid
    decay_k: float = 1.0  # linear: start; exponential: base < 1; inverse-sigmoid: k >= 1
    decay_c: float = 0.0  # linear: slope per step
    min_teacher_forcing: float = 0.0
    epochs: int = 10
    batch_size: int = 64
    lr: float = 3e-3
    patience: int = 3
    beam_width: int = 5
    length_penalty: float = 1.0
    coverage_penalty: float = 0.0
    max_source_len: int = 0  # 0: twice the longest training source
    max_train: int = 0  # 0: all training pairs; else a seeded subsample (bounded runs)
    max_test: int = 0  # 0: the whole test split
    n_dates: int = 30000  # dates task: training examples
    compare_none: bool = True  # also train the attention="none" baseline
    seed: int = 0
    out: str = "runs/seq2seq"
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.tsv is not None and self.task != "tsv":
            self.task = "tsv"
        if self.task not in TASKS:
            raise ValueError(f"task: expected one of {list(TASKS)}, got {self.task!r}")
        if self.task == "tsv" and not self.tsv:
            raise ValueError("tsv: task 'tsv' needs a file (--tsv PATH)")
        for name in ("src_tokens", "tgt_tokens"):
            if getattr(self, name) not in ("char", "space"):
                raise ValueError(f"{name}: expected 'char' or 'space', got {getattr(self, name)!r}")
        if self.scheduled_sampling not in SCHEDULES:
            raise ValueError(f"scheduled_sampling: expected one of {list(SCHEDULES)}, got "
                             f"{self.scheduled_sampling!r}")
        teacher_forcing_ratio(self.scheduled_sampling, 0, k=self.decay_k, c=self.decay_c)  # checks k
        for name in ("epochs", "batch_size", "beam_width"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing: expected a number in [0, 1), got {self.label_smoothing}")


@dataclass
class Result:
    metrics: dict
    out: str
    config: Seq2SeqJobConfig
    data: dict = field(default_factory=dict, repr=False)


# -- vocabulary and data ---------------------------------------------------------------------
class TokenVocab:
    """Specials ``<pad> <bos> <eos> <unk>`` at 0..3, then the tokens (first seen first)."""

    def __init__(self, tokens=()) -> None:
        self.itos = list(SPECIALS)
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        for t in tokens:
            if t not in self.stoi:
                self.stoi[t] = len(self.itos)
                self.itos.append(t)

    @classmethod
    def fit(cls, seqs) -> TokenVocab:
        counts: dict[str, int] = defaultdict(int)
        for s in seqs:
            for t in s:
                counts[t] += 1
        return cls(sorted(counts, key=lambda t: (-counts[t], t)))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, tokens) -> list[int]:
        return [self.stoi.get(t, UNK) for t in tokens]

    def decode(self, ids) -> list[str]:
        return [self.itos[i] for i in ids if i >= len(SPECIALS)]


def tokenize(text: str, how: str) -> list[str]:
    return list(text) if how == "char" else text.split()


def detokenize(tokens: list[str], how: str) -> str:
    return "".join(tokens) if how == "char" else " ".join(tokens)


def read_tsv(path: str | os.PathLike) -> list[tuple[str, str]]:
    """``source<TAB>target`` lines (blank lines skipped); a line without a target is an error."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"tsv: no such file {path!r}")
    pairs = []
    with open(path, encoding="utf-8", newline="") as f:
        for n, row in enumerate(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not row or not any(x.strip() for x in row):
                continue
            if len(row) < 2 or not row[0].strip() or not row[1].strip():
                raise ValueError(f"tsv: line {n} of {path}: expected 2 tab-separated columns "
                                 f"(source, target), got {len(row)} column(s): {row!r:.80}")
            pairs.append((row[0].strip(), row[1].strip()))
    if len(pairs) < 10:
        raise ValueError(f"tsv: expected at least 10 source/target pairs in {path}, got {len(pairs)}")
    return pairs


def _split(items: list, seed: int, val: float = 0.05, test: float = 0.1) -> tuple[list, list, list]:
    items = list(items)
    random.Random(seed).shuffle(items)
    n_test, n_val = max(1, int(len(items) * test)), max(1, int(len(items) * val))
    return items[n_test + n_val:], items[n_test:n_test + n_val], items[:n_test]


def load_task(config: Seq2SeqJobConfig) -> dict:
    """``{"train"|"val"|"test": [(src_tokens, [ref_tokens, ...]), ...], "src_tokens", "tgt_tokens",
    "meta": {...}}``: training pairs are expanded to one per reference."""
    from ..data import datasets

    if config.task == "g2p":
        words = datasets.load("cmudict-g2p")
        train, val, test = _split(sorted(words), config.seed, val=0.02, test=0.05)  # split by WORD
        data = {s: [(list(w), words[w]) for w in ws]
                for s, ws in (("train", train), ("val", val), ("test", test))}
        data.update(src_tokens="char", tgt_tokens="space", meta={"words": len(words)})
    elif config.task == "dates":
        d = datasets.load("babel-dates", n_train=config.n_dates, n_val=max(500, config.n_dates // 30),
                          n_test=2000, seed=config.seed)
        data = {s: [(list(text), [list(iso)]) for text, iso, _ in rows] for s, rows in d.items()}
        data["locales"] = {s: [loc for _, _, loc in rows] for s, rows in d.items()}
        data["raw"] = d
        data.update(src_tokens="char", tgt_tokens="char", meta={})
    else:
        pairs = read_tsv(config.tsv)
        grouped: dict[str, list[str]] = defaultdict(list)
        for s, t in pairs:
            if t not in grouped[s]:
                grouped[s].append(t)
        train, val, test = _split(sorted(grouped), config.seed)  # split by source: no leak
        data = {name: [(tokenize(s, config.src_tokens), [tokenize(t, config.tgt_tokens) for t in grouped[s]])
                       for s in srcs] for name, srcs in (("train", train), ("val", val), ("test", test))}
        data.update(src_tokens=config.src_tokens, tgt_tokens=config.tgt_tokens, meta={})
    if config.max_train and len(data["train"]) > config.max_train:
        data["train"] = random.Random(config.seed + 1).sample(data["train"], config.max_train)
    if config.max_test and len(data["test"]) > config.max_test:
        data["test"] = data["test"][:config.max_test]
    return data


class Batches:
    """Batches of similar source length (:class:`~lstmkit.data.batching.LengthBuckets`, pools of
    50 batches), reshuffled every epoch from torch's RNG (which the Trainer reseeds per epoch):
    items are (src_ids, tgt_ids). Yields (src, lengths, tgt_in, tgt_out)."""

    def __init__(self, items: list[tuple[list[int], list[int]]], batch_size: int, shuffle: bool) -> None:
        self.items = items
        self.buckets = LengthBuckets([len(s) for s, _ in items], batch_size, shuffle=shuffle)

    def __len__(self) -> int:
        return len(self.buckets)

    def __iter__(self):
        for idx in self.buckets:
            yield collate([self.items[j] for j in idx])


def collate(items: list[tuple[list[int], list[int]]]):
    """(src (B, S), lengths (B,), tgt_in (B, T) = bos + target, tgt_out (B, T) = target + eos)."""
    src, lengths = pad_ids([s for s, _ in items], PAD)
    return (src, lengths, pad_ids([[BOS] + t for _, t in items], PAD)[0],
            pad_ids([t + [EOS] for _, t in items], PAD)[0])


# -- metrics ---------------------------------------------------------------------------------
def edit_distance(a: list, b: list) -> int:
    """Levenshtein distance between two token lists."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def score(hyps: list[list[str]], refs: list[list[list[str]]], srcs: list[list[str]], tgt_tokens: str,
          g2p: bool) -> dict:
    """Exact match, token error rate, word error rate, BLEU, chrF, accuracy by source length."""
    import sacrebleu

    exact, tok_err, tok_n, word_err, word_n = 0, 0, 0, 0, 0
    by_len: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    best_refs = []
    for h, rs, s in zip(hyps, refs, srcs):
        dists = [edit_distance(h, r) for r in rs]
        k = min(range(len(rs)), key=lambda i: (dists[i] / max(len(rs[i]), 1), i))
        ref = rs[k]
        best_refs.append(ref)
        ok = int(h in rs)
        exact += ok
        tok_err += dists[k]
        tok_n += len(ref)
        hw, rw = detokenize(h, tgt_tokens).split(), detokenize(ref, tgt_tokens).split()
        if not g2p:
            word_err += edit_distance(hw, rw)
            word_n += len(rw)
        by_len[len(s)][0] += ok
        by_len[len(s)][1] += 1
    n = max(len(hyps), 1)
    hyp_text = [detokenize(h, tgt_tokens) for h in hyps]
    ref_text = [detokenize(r, tgt_tokens) for r in best_refs]
    return {
        "n": len(hyps),
        "exact_match": exact / n,
        "ter": tok_err / max(tok_n, 1),
        "wer": 1 - exact / n if g2p else word_err / max(word_n, 1),
        "bleu": sacrebleu.corpus_bleu(hyp_text, [ref_text]).score,
        "chrf": sacrebleu.corpus_chrf(hyp_text, [ref_text]).score,
        "accuracy_by_length": {str(k): {"n": v[1], "exact_match": v[0] / v[1]}
                               for k, v in sorted(by_len.items())},
    }


# -- training --------------------------------------------------------------------------------
def _model_config(config: Seq2SeqJobConfig, src_vocab: TokenVocab, tgt_vocab: TokenVocab,
                  attention: str) -> Seq2SeqConfig:
    return Seq2SeqConfig(
        src_vocab_size=len(src_vocab), tgt_vocab_size=len(tgt_vocab), embedding_dim=config.embedding_dim,
        hidden_size=config.hidden_size, num_layers=config.num_layers, bidirectional=config.bidirectional,
        decoder_hidden_size=config.decoder_hidden_size, decoder_layers=config.decoder_layers,
        attention=attention, input_feeding=config.input_feeding, bridge=config.bridge,
        dropout=config.dropout, tie_embeddings=config.tie_embeddings, tie_output=config.tie_output,
        pad_id=PAD, bos_id=BOS, eos_id=EOS)


def _fit(model: Seq2Seq, config: Seq2SeqJobConfig, train_items, val_items, out_dir: str, extra: dict) -> dict:
    holder: dict = {}

    def loss_fn(m: Seq2Seq, batch) -> torch.Tensor:
        ratio = None
        if m.training and config.scheduled_sampling != "none":
            ratio = teacher_forcing_ratio(config.scheduled_sampling, holder["trainer"].step, k=config.decay_k,
                                          c=config.decay_c, minimum=config.min_teacher_forcing)
        return m.loss(*batch, label_smoothing=config.label_smoothing if m.training else 0.0,
                      teacher_forcing_ratio=ratio)

    tc = TrainConfig(epochs=config.epochs, lr=config.lr, patience=config.patience, seed=config.seed,
                     progress=config.progress, weight_decay=1e-4, schedule="cosine",
                     warmup_steps=min(200, len(train_items) // config.batch_size))
    trainer = Trainer(model, loss_fn, tc, out_dir, extra=extra)
    holder["trainer"] = trainer
    t0 = time.perf_counter()
    history = trainer.fit(Batches(train_items, config.batch_size, shuffle=True),
                          Batches(val_items, 256, shuffle=False))
    trainer.load_best()
    model.eval()
    return {"epochs": len(history), "steps": trainer.step, "seconds": round(time.perf_counter() - t0, 1),
            "best_val_loss": trainer.best_val, "stopped_early": trainer.stopped_early}


def decode_all(model: Seq2Seq, srcs: list[list[int]], *, beam_width: int = 1, length_penalty: float = 1.0,
               coverage_penalty: float = 0.0, n_best: int = 1, max_new_tokens: int | None = None,
               batch_size: int = 128) -> list[list]:
    """Translate id sequences in length-sorted batches; returns hypotheses per source (input order)."""
    order = sorted(range(len(srcs)), key=lambda i: len(srcs[i]))
    out: list = [None] * len(srcs)
    for k in range(0, len(order), batch_size):
        idx = order[k:k + batch_size]
        src, lengths = pad_ids([srcs[i] for i in idx], PAD)
        hyps = model.translate(src, lengths, beam_width=beam_width, length_penalty=length_penalty,
                               coverage_penalty=coverage_penalty, n_best=n_best,
                               max_new_tokens=max_new_tokens or 2 * src.shape[1] + 10)
        for i, h in zip(idx, hyps):
            out[i] = h
    return out


def _evaluate_model(model: Seq2Seq, data: dict, src_vocab: TokenVocab, tgt_vocab: TokenVocab,
                    config: Seq2SeqJobConfig, max_new_tokens: int) -> dict:
    test = data["test"]
    srcs = [src_vocab.encode(s) for s, _ in test]
    refs = [r for _, r in test]
    res = {}
    for name, width in (("greedy", 1), (f"beam{config.beam_width}", config.beam_width)):
        if name == "beam1":
            continue
        t0 = time.perf_counter()
        hyps = decode_all(model, srcs, beam_width=width, length_penalty=config.length_penalty,
                          coverage_penalty=config.coverage_penalty if width > 1 else 0.0,
                          max_new_tokens=max_new_tokens)
        secs = time.perf_counter() - t0
        toks = [tgt_vocab.decode(h[0].tokens) for h in hyps]
        res[name] = score(toks, refs, [s for s, _ in test], data["tgt_tokens"], config.task == "g2p")
        res[name]["decode_seconds"] = round(secs, 2)
    return res


def _baseline_dates(data: dict) -> dict[str, dict]:
    """What a practitioner tries first: Babel's own parser told the locale, and dateutil's
    parser (English month names, day first where the locale writes the day first)."""
    from babel.dates import parse_date
    from dateutil import parser as du

    rows = data["raw"]["test"][:len(data["test"])]
    refs, srcs = [r for _, r in data["test"]], [s for s, _ in data["test"]]
    out = {}
    for name, parse in (
            ("babel.parse_date (locale given)", lambda text, loc: parse_date(text, locale=loc)),
            ("dateutil.parser.parse",
             lambda text, loc: du.parse(text, dayfirst=not loc.startswith("en_US")))):
        hyps = []
        for text, _, loc in rows:
            try:
                hyps.append(list(parse(text, loc).strftime("%Y-%m-%d")))
            except Exception:  # noqa: BLE001 - a parser that gives up is wrong on that example
                hyps.append([])
        out[name] = score(hyps, refs, srcs, "char", False)
    return out


def train(config: Seq2SeqJobConfig) -> Result:
    """Train (and score on the held-out test split) as the module docstring says."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    data = load_task(config)
    src_vocab = TokenVocab.fit(s for s, _ in data["train"])
    tgt_vocab = TokenVocab.fit(r for _, rs in data["train"] for r in rs)
    train_items = [(src_vocab.encode(s), tgt_vocab.encode(r)) for s, rs in data["train"] for r in rs]
    val_items = [(src_vocab.encode(s), tgt_vocab.encode(r)) for s, rs in data["val"] for r in rs]
    longest_src = max(len(s) for s, _ in data["train"])
    longest_tgt = max(len(r) for _, rs in data["train"] for r in rs)
    if not config.max_source_len:
        config.max_source_len = 2 * longest_src
    max_new = int(1.5 * longest_tgt) + 5
    chosen = {"max_source_len": config.max_source_len, "max_new_tokens": max_new,
              "src_vocab": len(src_vocab), "tgt_vocab": len(tgt_vocab),
              "train_pairs": len(train_items), "val_pairs": len(val_items), "test_sources": len(data["test"])}
    print(f"seq2seq {config.task}: {len(train_items):,} training pairs, {len(val_items):,} val, "
          f"{len(data['test']):,} test sources; vocabularies {len(src_vocab)} -> {len(tgt_vocab)}; "
          f"chosen from the data: max_source_len {config.max_source_len}, max output {max_new} tokens",
          file=sys.stderr)
    atomic_write_text(out / "config.json", json.dumps(asdict(config), indent=2) + "\n")

    kinds = [config.attention] + (["none"] if config.compare_none and config.attention != "none" else [])
    metrics: dict = {"task": config.task, "chosen": chosen, "models": {}}
    models = {}
    for kind in kinds:
        torch.manual_seed(config.seed)
        model = Seq2Seq(_model_config(config, src_vocab, tgt_vocab, kind))
        n_params = sum(p.numel() for p in model.parameters())
        sub = "train" if kind == config.attention else "train_none"
        fit = _fit(model, config, train_items, val_items, str(out / sub), extra={"job": asdict(config)})
        ev = _evaluate_model(model, data, src_vocab, tgt_vocab, config, max_new)
        for dec, m in ev.items():
            metrics["models"][f"seq2seq-{kind}/{dec}"] = {**m, "parameters": n_params, **fit}
        models[kind] = model
        if kind == config.attention:
            save_model(model, out / "model.pt", config, src_vocab, tgt_vocab, data["src_tokens"],
                       data["tgt_tokens"], max_new)
    if config.task == "dates":
        metrics["models"].update(_baseline_dates(data))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _plots(out, models, config, data, src_vocab, tgt_vocab, metrics)
    print(table(metrics))
    return Result(metrics, str(out), config, data)


def table(metrics: dict) -> str:
    rows = [f"{'model':44s} {'exact':>7s} {'TER':>7s} {'WER':>7s} {'BLEU':>6s} {'chrF':>6s}"]
    for name, m in metrics["models"].items():
        rows.append(f"{name:44s} {m['exact_match']:7.2%} {m['ter']:7.2%} {m['wer']:7.2%} "
                    f"{m['bleu']:6.1f} {m['chrf']:6.1f}")
    return "\n".join(rows)


# -- checkpoints, translation ----------------------------------------------------------------
def save_model(model: Seq2Seq, path, config: Seq2SeqJobConfig, src_vocab: TokenVocab, tgt_vocab: TokenVocab,
               src_tokens: str, tgt_tokens: str, max_new_tokens: int) -> None:
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, kind=CHECKPOINT_KIND, config=asdict(model.config), model=state, job=asdict(config),
                    src_vocab=src_vocab.itos[len(SPECIALS):], tgt_vocab=tgt_vocab.itos[len(SPECIALS):],
                    src_tokens=src_tokens, tgt_tokens=tgt_tokens, max_new_tokens=max_new_tokens)


@dataclass
class Loaded:
    model: Seq2Seq
    job: Seq2SeqJobConfig
    src_vocab: TokenVocab
    tgt_vocab: TokenVocab
    src_tokens: str
    tgt_tokens: str
    max_new_tokens: int


def load_model(path: str | os.PathLike) -> Loaded:
    """Load ``model.pt`` (or the folder holding it) written by :func:`train`."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    ck = load_checkpoint(path)
    if ck.get("kind") != CHECKPOINT_KIND:
        raise ValueError(f"checkpoint: expected a {CHECKPOINT_KIND!r} checkpoint, got kind "
                         f"{ck.get('kind')!r} in {path}")
    names = {f.name for f in fields(Seq2SeqConfig)}
    model = Seq2Seq(Seq2SeqConfig(**{k: v for k, v in ck["config"].items() if k in names}))
    model.load_state_dict(ck["model"])
    model.eval()
    jnames = {f.name for f in fields(Seq2SeqJobConfig)}
    job = Seq2SeqJobConfig(**{k: v for k, v in ck["job"].items() if k in jnames})
    return Loaded(model, job, TokenVocab(ck["src_vocab"]), TokenVocab(ck["tgt_vocab"]), ck["src_tokens"],
                  ck["tgt_tokens"], int(ck["max_new_tokens"]))


def predict(checkpoint: str | os.PathLike | Loaded, texts: list[str], *, beam_width: int = 1,
            n_best: int = 1, length_penalty: float = 1.0, coverage_penalty: float = 0.0,
            warn=None) -> list[list[tuple[str, float]]]:
    """Translate texts; returns per text its ``n_best`` (output, score) pairs, best first.

    Unknown source tokens become ``<unk>`` (``warn`` is told which); an empty text or one longer
    than the checkpoint's ``max_source_len`` raises ValueError."""
    ld = checkpoint if isinstance(checkpoint, Loaded) else load_model(checkpoint)
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts: expected a list of str")
    check_beam_options(beam_width, n_best, length_penalty, ld.max_new_tokens, 0)  # before any work
    srcs, unknown = [], {}
    for i, text in enumerate(texts):
        toks = tokenize(text.strip() if ld.src_tokens == "space" else text, ld.src_tokens)
        if not toks:
            raise ValueError(f"texts[{i}]: expected a non-empty source, got {text!r}")
        if len(toks) > ld.job.max_source_len:
            raise ValueError(f"texts[{i}]: expected at most max_source_len={ld.job.max_source_len} tokens "
                             f"(twice the longest training source), got {len(toks)}")
        for t in toks:
            if t not in ld.src_vocab.stoi:
                unknown.setdefault(t, None)
        srcs.append(ld.src_vocab.encode(toks))
    if unknown and warn is not None:
        shown = ", ".join(repr(u) for u in list(unknown)[:10])
        warn(f"note: {len(unknown)} source token(s) never seen in training ({shown}) were mapped to <unk>")
    hyps = decode_all(ld.model, srcs, beam_width=beam_width, n_best=n_best, length_penalty=length_penalty,
                      coverage_penalty=coverage_penalty, max_new_tokens=ld.max_new_tokens)
    return [[(detokenize(ld.tgt_vocab.decode(h.tokens), ld.tgt_tokens), h.score) for h in hs] for hs in hyps]


def evaluate(checkpoint: str | os.PathLike, *, task: str | None = None, tsv: str | None = None,
             beam_width: int | None = None, max_test: int | None = None, out: str | None = None) -> dict:
    """Score a checkpoint on its task's test split (the same seeded split as in training), or on
    a TSV given here (every row is scored). Writes ``metrics.json`` into ``out`` if given."""
    ld = load_model(checkpoint)
    job = Seq2SeqJobConfig(**{**asdict(ld.job), "progress": False})
    if tsv is not None:
        pairs = read_tsv(tsv)
        grouped: dict[str, list[str]] = defaultdict(list)
        for s, t in pairs:
            grouped[s].append(t)
        data = {"test": [(tokenize(s, ld.src_tokens), [tokenize(t, ld.tgt_tokens) for t in ts])
                         for s, ts in grouped.items()], "tgt_tokens": ld.tgt_tokens}
    else:
        if task is not None and task != job.task:
            raise ValueError(f"task: the checkpoint was trained on {job.task!r}, got {task!r}")
        if max_test is not None:
            job.max_test = max_test
        data = load_task(job)
    if beam_width is not None:
        job.beam_width = beam_width
    too_long = [i for i, (s, _) in enumerate(data["test"]) if len(s) > job.max_source_len]
    if too_long:
        raise ValueError(f"tsv: {len(too_long)} source(s) are longer than max_source_len="
                         f"{job.max_source_len}")
    metrics = {"task": job.task if tsv is None else "tsv",
               "models": {f"seq2seq-{ld.model.config.attention}/{k}": v
                          for k, v in _evaluate_model(ld.model, data, ld.src_vocab, ld.tgt_vocab, job,
                                                      ld.max_new_tokens).items()}}
    if out is not None:
        atomic_write_text(Path(out) / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return metrics


# -- plots -----------------------------------------------------------------------------------
def _save_fig(fig, path: Path) -> None:
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))


def _plots(out: Path, models: dict, config: Seq2SeqJobConfig, data: dict, src_vocab: TokenVocab,
           tgt_vocab: TokenVocab, metrics: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    att = models.get(config.attention)
    if att is not None and att.attention is not None:
        # examples whose characters DejaVu Sans draws (Latin, Greek, Cyrillic), longest first
        test = [p for p in data["test"][:400] if all(ord(ch) < 0x530 for ch in p[0])] or data["test"][:400]
        test = sorted(test, key=lambda p: -len(p[0]))
        picks = [test[0], test[len(test) // 3], test[len(test) // 2], test[-1]][:4]
        fig, axes = plt.subplots(1, len(picks), figsize=(4.2 * len(picks), 4.2))
        for ax, (s, _) in zip(axes, picks):
            hyp = att.translate(torch.tensor([src_vocab.encode(s)]), torch.tensor([len(s)]),
                                max_new_tokens=2 * len(s) + 10)[0][0].tokens
            tgt_in = torch.tensor([[BOS] + hyp])
            with torch.no_grad():
                _, a = att(torch.tensor([src_vocab.encode(s)]), torch.tensor([len(s)]), tgt_in)
            out_toks = tgt_vocab.decode(hyp) + ["</s>"]
            ax.imshow(a[0].numpy(), cmap="Greys", vmin=0, vmax=1, aspect="auto")
            ax.set_xticks(range(len(s)), [t if t.strip() else "␣" for t in s], fontsize=7,
                          rotation=90 if data["src_tokens"] == "space" else 0)
            ax.set_yticks(range(len(out_toks)), out_toks, fontsize=7)
            ax.set_xlabel("source")
        axes[0].set_ylabel("output")
        fig.suptitle(f"{config.attention} attention on held-out {config.task} examples")
        _save_fig(fig, out / "attention.png")
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, m in metrics["models"].items():
        if not name.endswith("/greedy"):
            continue
        acc = m["accuracy_by_length"]
        xs = [int(k) for k in acc if acc[k]["n"] >= 5]
        ax.plot(xs, [100 * acc[str(x)]["exact_match"] for x in xs], marker="o", label=name.split("/")[0])
    ax.set_xlabel("source length (tokens)")
    ax.set_ylabel("exact match on the test split (%)")
    ax.set_title(f"{config.task}: attention vs fixed context (greedy; lengths with >= 5 examples)")
    ax.legend()
    ax.grid(alpha=0.3)
    _save_fig(fig, out / "accuracy_by_length.png")
    plt.close(fig)
