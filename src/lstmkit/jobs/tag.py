"""The tag job: label every token of a sequence with a BiLSTM (softmax or CRF), beside the
most-frequent-tag-per-token baseline.

Symbols: N sentences, B batch, T tokens, W characters per token, K tags.

``train(TagConfig) -> Result``:

1. Data: the catalogue's ``stdlib_tokens`` (standard-library files labelled by ``tokenize``; the
   test files are never seen in training) or CoNLL files (``token tag`` lines, blank line between
   sentences) with ``test_conll`` or a held-out ``test_size`` of the sentences.
2. Validation: ``val_size`` of the training data, whole files (groups) when the data has several,
   else sentences. Vocabularies (words with count >= 2, characters) come from the training part.
3. ``SequenceTagger`` (word embeddings + character BiLSTM + BiLSTM, softmax or CRF) trains
   through ``train.Trainer`` with early stopping on the validation loss.
4. Test metrics: token accuracy, macro-F1 over tags, per-tag precision/recall/F1 and seqeval's
   entity F1 (tags in BIO form are used as they are; plain tags count each token as a
   one-token entity of its tag, ``O`` as outside), for the model and the baseline.
5. ``out``: ``config.json``, ``metrics.json``, ``model.pt``, ``confusion.png``.

``predict(checkpoint, conll=... | source=...)`` tags a CoNLL file (tags optional) or a Python
source file (tokenised by ``tokenize``; its real types are then used to score).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from .._io import atomic_write_text
from .._threads import limited_threads
from ..data import datasets
from ..data.labelled import (
    TagSet,
    Vocab,
    clip_word,
    pad_ids,
    read_conll,
    stratified_split,
    tokenize_source,
    unique_char_ids,
)
from ..data.split import resolve_size
from ..models.tagger import SequenceTagger, TaggerConfig
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..train.trainer import TrainConfig, Trainer, autocast_for
from .classify import plot_confusion


@dataclass
class TagConfig:
    dataset: str | None = "stdlib_tokens"
    conll: str | None = None
    test_conll: str | None = None
    test_size: float = 0.2
    val_size: float = 0.1
    out: str = "runs/tag"
    crf: bool = False
    chars: bool = True
    cell: str = "lstm"
    embed_dim: int = 64
    hidden_size: int = 96
    char_hidden_size: int = 32
    dropout: float = 0.2
    word_dropout: float = 0.1
    epochs: int = 10
    patience: int = 3
    batch_size: int = 32
    lr: float = 3e-3
    seed: int = 0
    baselines: bool = True
    progress: bool | None = None
    threads: int = 1  # torch and BLAS threads (a small recurrent model runs fastest on one)
    precision: str = "float32"  # "bfloat16": train under torch.autocast (scored in float32)
    chosen: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "hidden_size", "embed_dim", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        autocast_for(self.precision)
        if self.dataset is None and self.conll is None:
            raise ValueError("dataset: expected a catalogue name or a conll path, got neither")


@dataclass
class Result:
    metrics: dict
    setup: dict
    seconds: float
    out: str


def load_data(cfg: TagConfig) -> tuple[TagSet, TagSet, str]:
    if cfg.conll:
        train = read_conll(cfg.conll)
        if cfg.test_conll:
            return train, read_conll(cfg.test_conll), f"{cfg.conll} (test: {cfg.test_conll})"
        n = len(train)
        rng = np.random.default_rng(cfg.seed)
        perm = rng.permutation(n)
        k = resolve_size(cfg.test_size, n, "test_size")
        if not 0 < k < n:
            raise ValueError(f"test_size: expected a fraction or count leaving both parts "
                             f"non-empty ({n} sentences), got {cfg.test_size}")
        return (train.subset(np.sort(perm[k:])), train.subset(np.sort(perm[:k])),
                f"{cfg.conll} ({k} sentences held out for test)")
    if cfg.dataset not in datasets.names("tag"):
        raise ValueError(f"dataset: expected a tagging set {datasets.names('tag')}, got {cfg.dataset!r}")
    got = datasets.load(cfg.dataset)
    return got["train"], got["test"], f"{cfg.dataset} (split by file)"


def split_groups(data: TagSet, val_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Validation = whole groups (files) when there are several, else sentences."""
    groups = sorted(set(data.groups)) if data.groups else []
    if len(groups) >= 3:
        rng = np.random.default_rng(seed)
        k = max(1, int(round(val_size * len(groups))))
        held = set(rng.permutation(groups)[:k].tolist())
        va = np.array([i for i, g in enumerate(data.groups) if g in held], dtype=int)
        tr = np.array([i for i, g in enumerate(data.groups) if g not in held], dtype=int)
        return tr, va
    return stratified_split(np.zeros(len(data), dtype=int).astype(str), val_size, seed)


class TagEncoder:
    def __init__(self, words: list[str], chars: list[str], tags: list[str]) -> None:
        self.words, self.chars, self.tags = Vocab(words), Vocab(chars), list(tags)
        self.tag_index = {t: i for i, t in enumerate(self.tags)}

    @classmethod
    def fit(cls, data: TagSet) -> TagEncoder:
        w = Vocab.build(data.sentences, min_freq=2)
        c = Vocab.build([clip_word(t) for s in data.sentences for t in s])
        return cls(w.itos, c.itos, sorted({t for ts in data.tags for t in ts}))

    def state(self) -> dict:
        return {"words": self.words.itos, "chars": self.chars.itos, "tags": self.tags}

    def encode(self, data: TagSet, with_tags: bool = True) -> list[tuple]:
        out = []
        for i, s in enumerate(data.sentences):
            if not s:
                raise ValueError(f"sentences: sentence {i} is empty (expected >= 1 token)")
            t = [self.tag_index.get(v, -1) for v in data.tags[i]] if with_tags else [-1] * len(s)
            out.append((self.words.encode(s), s, t))
        return out


def _collate(enc: TagEncoder, use_chars: bool):
    def collate(items):
        tok, lengths = pad_ids([it[0] for it in items])
        tags, _ = pad_ids([it[2] for it in items], fill=-1)
        ch = unique_char_ids([it[1] for it in items], enc.chars) if use_chars else (None,) * 3
        return tok, lengths, ch, tags

    return collate


def tag_loss(model, batch) -> torch.Tensor:
    tok, lengths, ch, tags = batch
    return model.loss(model(tok, lengths, *ch), tags, lengths)


@torch.no_grad()
def predict_tags(model: SequenceTagger, items: list[tuple], enc: TagEncoder,
                 batch_size: int = 64) -> list[list[int]]:
    model.eval()
    collate = _collate(enc, model.config.char_vocab_size > 0)
    out = []
    for i in range(0, len(items), batch_size):
        tok, lengths, ch, _ = collate(items[i:i + batch_size])
        pred = model.decode(model(tok, lengths, *ch), lengths)
        out += [pred[b, :n].tolist() for b, n in enumerate(lengths.tolist())]
    return out


def _as_entities(seq: list[str]) -> list[str]:
    """Tags for seqeval: BIO tags unchanged; a plain tag X becomes B-X (a one-token entity)."""
    return [t if t == "O" or t[:2] in ("B-", "I-", "E-", "S-") else f"B-{t}" for t in seq]


def tagging_metrics(true: list[list[str]], pred: list[list[str]], tags: list[str]) -> dict:
    from seqeval.metrics import f1_score as entity_f1
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    flat_t = [t for s in true for t in s]
    flat_p = [t for s in pred for t in s]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, s = precision_recall_fscore_support(flat_t, flat_p, labels=tags, zero_division=0)
        out = {
            "accuracy": float(np.mean([a == b for a, b in zip(flat_t, flat_p)])),
            "macro_f1": float(f1_score(flat_t, flat_p, labels=tags, average="macro", zero_division=0)),
            "entity_f1": float(entity_f1([_as_entities(x) for x in true],
                                         [_as_entities(x) for x in pred])),
        }
    out["per_tag"] = {t: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                          "support": int(s[i])} for i, t in enumerate(tags)}
    return out


def most_frequent_tag(train: TagSet) -> tuple[dict[str, str], str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    overall = Counter()
    for s, ts in zip(train.sentences, train.tags):
        for w, t in zip(s, ts):
            counts[w][t] += 1
            overall[t] += 1
    return {w: c.most_common(1)[0][0] for w, c in counts.items()}, overall.most_common(1)[0][0]


def train(cfg: TagConfig, echo=print) -> Result:
    """Run the whole job (module docstring) on ``cfg.threads`` threads."""
    with limited_threads(cfg.threads):
        return _train(cfg, echo)


def _train(cfg: TagConfig, echo) -> Result:
    t0 = time.perf_counter()
    trn, test, about = load_data(cfg)
    tr_idx, va_idx = split_groups(trn, cfg.val_size, cfg.seed)
    part, val = trn.subset(tr_idx), trn.subset(va_idx)
    enc = TagEncoder.fit(part)
    unseen = sorted({t for ts in test.tags for t in ts} - set(enc.tags))
    if unseen:
        raise ValueError(f"test tags: {unseen} never occur in the training part "
                         f"(expected tags among {enc.tags})")
    if not cfg.conll and set(test.groups) & set(trn.groups):
        raise RuntimeError(f"{about}: files {sorted(set(test.groups) & set(trn.groups))} are in "
                           "both the training and the test split")
    mcfg = TaggerConfig(vocab_size=len(enc.words), num_tags=len(enc.tags), embed_dim=cfg.embed_dim,
                        hidden_size=cfg.hidden_size, dropout=cfg.dropout,
                        word_dropout=cfg.word_dropout,
                        char_vocab_size=len(enc.chars) if cfg.chars else 0,
                        char_hidden_size=cfg.char_hidden_size, crf=cfg.crf, cell=cfg.cell)
    echo(f"tag: {about}: {len(enc.tags)} tags, train {len(part)} sentences "
         f"({sum(map(len, part.sentences))} tokens) + validation {len(val)} (from the training "
         f"data), test {len(test)} ({sum(map(len, test.sentences))} tokens); "
         f"{'CRF' if cfg.crf else 'softmax'} output")
    torch.manual_seed(cfg.seed)
    model = SequenceTagger(mcfg)
    collate = _collate(enc, cfg.chars)
    g = torch.Generator().manual_seed(cfg.seed)
    tl = torch.utils.data.DataLoader(enc.encode(part), batch_size=cfg.batch_size, shuffle=True,
                                     generator=g, collate_fn=collate)
    vl = torch.utils.data.DataLoader(enc.encode(val), batch_size=128, collate_fn=collate) \
        if len(val) else None
    tcfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, patience=cfg.patience, seed=cfg.seed,
                       progress=cfg.progress, resume=False, autocast=autocast_for(cfg.precision))
    trainer = Trainer(model, tag_loss, tcfg, os.path.join(cfg.out, "train"))
    t1 = time.perf_counter()
    trainer.fit(tl, vl)
    train_s = time.perf_counter() - t1
    trainer.load_best()
    # --- only now is the test split scored
    pred = predict_tags(model, enc.encode(test, with_tags=False), enc)
    pred_tags = [[enc.tags[i] for i in p] for p in pred]
    metrics = {"lstmkit": tagging_metrics(test.tags, pred_tags, enc.tags)}
    if cfg.baselines:
        table, default = most_frequent_tag(trn)
        base = [[table.get(w, default) for w in s] for s in test.sentences]
        metrics["most_frequent_tag"] = tagging_metrics(test.tags, base, enc.tags)
    oov = np.mean([w not in enc.words.stoi for s in test.sentences for w in s])
    setup = dict(data=about, train=len(part), val=len(val), test=len(test), tags=enc.tags,
                 vocab=len(enc.words), chars=len(enc.chars), test_oov_rate=float(oov),
                 crf=cfg.crf, epochs_run=trainer.epoch, train_seconds=round(train_s, 1),
                 train_groups=sorted(set(part.groups)) if part.groups else [],
                 val_groups=sorted(set(val.groups)) if val.groups else [],
                 test_groups=sorted(set(test.groups)) if test.groups else [])
    cfg = replace(cfg, chosen=dict(model_config=mcfg.to_dict(), epochs_run=trainer.epoch))
    save_checkpoint(os.path.join(cfg.out, "model.pt"), model=model.state_dict(),
                    kind="sequence_tagger", model_config=mcfg, encoder=enc.state(),
                    job_config=asdict(cfg))
    secs = time.perf_counter() - t0
    atomic_write_text(os.path.join(cfg.out, "metrics.json"),
                      json.dumps({**metrics, "setup": dict(setup, seconds=round(secs, 1))}, indent=2)
                      + "\n")
    atomic_write_text(os.path.join(cfg.out, "config.json"), json.dumps(asdict(cfg), indent=2) + "\n")
    ti = enc.tag_index
    plot_confusion(os.path.join(cfg.out, "confusion.png"),
                   [ti[t] for s in test.tags for t in s], [ti[t] for s in pred_tags for t in s],
                   enc.tags, f"lstmkit tagger on {about}: token accuracy "
                             f"{metrics['lstmkit']['accuracy']:.4f}")
    echo(format_table(metrics, f"test split of {about}: {setup['test']} sentences, "
                               f"OOV rate {oov:.3f}; {trainer.epoch} epochs in {train_s:.1f} s"))
    return Result(metrics, setup, secs, cfg.out)


def format_table(metrics: dict, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'model':<20}{'accuracy':>10}{'macroF1':>10}{'entityF1':>10}")
    for name, m in metrics.items():
        lines.append(f"{name:<20}{m['accuracy']:>10.4f}{m['macro_f1']:>10.4f}{m['entity_f1']:>10.4f}")
    return "\n".join(lines)


def load_model(checkpoint: str):
    path = os.path.join(checkpoint, "model.pt") if os.path.isdir(checkpoint) else checkpoint
    ck = load_checkpoint(path)
    for key in ("model", "model_config", "encoder"):
        if key not in ck:
            raise ValueError(f"checkpoint {path!r}: expected a tag checkpoint with {key!r}")
    model = SequenceTagger(TaggerConfig(**ck["model_config"]))
    model.load_state_dict(ck["model"])
    return model.eval(), TagEncoder(**ck["encoder"])


def predict(checkpoint: str, conll: str | None = None, source: str | None = None,
            out: str | None = None, echo=print, threads: int = 1) -> dict:
    """Tag a CoNLL file or the tokens of a Python ``source`` file with a saved model; writes
    ``out``/predictions.conll."""
    with limited_threads(threads):
        return _predict(checkpoint, conll, source, out, echo)


def _predict(checkpoint, conll, source, out, echo) -> dict:
    if (conll is None) == (source is None):
        raise ValueError("predict: expected exactly one of conll or source")
    model, enc = load_model(checkpoint)
    if source is not None:
        with open(source, encoding="utf-8") as f:
            data = tokenize_source(f.read(), os.path.basename(source))
    else:
        data = read_conll(conll, require_tags=False)
    pred = predict_tags(model, enc.encode(data, with_tags=False), enc)
    pred_tags = [[enc.tags[i] for i in p] for p in pred]
    result: dict = {"pred": pred_tags}
    given = [t for ts in data.tags for t in ts if t]
    if given:
        unseen = sorted(set(given) - set(enc.tags))
        if unseen:
            raise ValueError(f"tags: {unseen} were never seen in training (expected tags among "
                             f"{enc.tags}); cannot score them")
        ok = [p == t for ps, ts in zip(pred_tags, data.tags) for p, t in zip(ps, ts) if t]
        result["accuracy"] = float(np.mean(ok))
    text = "\n\n".join("\n".join(f"{w} {t}" for w, t in zip(s, ps))
                       for s, ps in zip(data.sentences, pred_tags)) + "\n"
    if out:
        os.makedirs(out, exist_ok=True)
        atomic_write_text(os.path.join(out, "predictions.conll"), text)
    echo(f"tagged {sum(map(len, pred_tags))} tokens in {len(pred_tags)} sequences"
         + (f", accuracy {result['accuracy']:.4f}" if "accuracy" in result else ""))
    return result
