"""The classify job: sequence classification of time series or texts, beside strong baselines.

Symbols: N examples, B batch, T time steps / tokens, C channels, K classes, M ensemble members.

``train(ClassifyConfig) -> Result``:

1. Data: a catalogue set (aeon UCR/UEA problem with its official split, or ``fortunes``) or your
   CSV (``label,x_1..x_T`` rows for series, ``text,label`` columns for texts) with ``test_csv``
   or a stratified ``test_size`` held out first. The test split is put aside and only scored at
   the end.
2. Validation: a stratified ``val_size`` of the *training* data (a class with one example stays in
   training, reported). Series are standardised per channel with training statistics; texts are
   lower-cased words, the vocabulary built from the training part.
3. Model selection: every candidate configuration (``model="auto"``: the presets for the data's
   kind; or one named preset) trains through ``train.Trainer`` with early stopping on the
   validation loss; the best validation accuracy (ties: lower loss) wins, and the choice is
   reported. ``seeds > 1`` trains that many members of the chosen configuration and reports the
   soft- and hard-voting ensembles beside the single model (the gain is on the test split).
4. Baselines on the same split: 1-NN DTW and MiniRocket (aeon) for series; TF-IDF + logistic
   regression (scikit-learn, C chosen on the validation split) for texts.
5. ``out``: ``config.json``, ``metrics.json`` (one entry per model: accuracy, balanced accuracy,
   macro-F1, per-class precision/recall/F1, log loss where the model gives probabilities),
   ``model.pt`` (weights_only-loadable, config inside), ``confusion.png``, ``attention.png``,
   and each candidate's Trainer folder under ``train/``.

``predict(checkpoint, csv=..., dataset=...)`` labels new data with a saved model; labels in the
data that the model never saw in training are a ``ValueError`` naming them.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import nn

from .._io import atomic_write_text
from .._threads import limited_threads
from ..data import datasets
from ..data.batching import LengthBuckets
from ..data.labelled import (
    SeriesSet,
    TextSet,
    Vocab,
    check_series,
    pad_ids,
    pad_series,
    read_csv_set,
    stratified_split,
    words,
)
from ..models.classifier import ClassifierConfig, SequenceClassifier
from ..models.ensemble import hard_vote, soft_vote
from ..train.checkpoint import load_checkpoint, save_checkpoint
from ..train.trainer import TrainConfig, Trainer, autocast_for

# named configurations (fields of ClassifierConfig); "auto" tries every preset of the data's kind
SERIES_PRESETS = {
    "lstm-fcn": dict(cell="lstm", hidden_size=64, pooling="last", fcn=True,
                     fcn_channels=[64, 128, 64], dropout=0.2),
    "bilstm-attention": dict(cell="lstm", hidden_size=64, bidirectional=True, pooling="attention",
                             dropout=0.2),
    "gru-fcn-mean": dict(cell="gru", hidden_size=64, pooling="mean", fcn=True,
                         fcn_channels=[64, 128, 64], dropout=0.2),
}
TEXT_PRESETS = {
    "bilstm-max": dict(cell="lstm", hidden_size=96, bidirectional=True, pooling="max", dropout=0.3,
                       embed_dim=96),
    "bilstm-attention": dict(cell="lstm", hidden_size=96, bidirectional=True, pooling="attention",
                             dropout=0.3, embed_dim=96),
}

# what ClassifyConfig's None epochs / patience / batch_size become, by the data's kind
KIND_DEFAULTS = {
    "series": dict(epochs=300, patience=50, batch_size=16),
    "text": dict(epochs=20, patience=4, batch_size=64),
}


@dataclass
class ClassifyConfig:
    dataset: str | None = "gunpoint"
    csv: str | None = None
    test_csv: str | None = None
    test_size: float = 0.2  # held out of csv/fortunes when there is no official test split
    val_size: float = 0.2  # of the training data
    out: str = "runs/classify"
    model: str = "auto"  # "auto" or a preset name
    cell: str | None = None  # overrides of the presets' fields
    hidden_size: int | None = None
    pooling: str | None = None
    bidirectional: bool | None = None
    fcn: bool | None = None
    epochs: int | None = None  # None: by the data's kind (KIND_DEFAULTS: 300 series, 20 texts)
    patience: int | None = None  # None: KIND_DEFAULTS (50 series, 4 texts)
    batch_size: int | None = None  # None: KIND_DEFAULTS (16 series, 64 texts)
    lr: float = 3e-3
    max_len: int = 200  # text: longer texts keep their first max_len words (reported)
    seeds: int = 1  # ensemble members of the chosen configuration
    seed: int = 0
    baselines: bool = True
    progress: bool | None = None
    threads: int = 1  # torch and BLAS threads (a small recurrent model runs fastest on one)
    precision: str = "float32"  # "bfloat16": train under torch.autocast (scored in float32)
    chosen: dict = field(default_factory=dict)  # filled in: what the run chose automatically

    def __post_init__(self) -> None:
        for name in ("max_len", "seeds", "threads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        for name in ("epochs", "patience", "batch_size", "hidden_size"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise ValueError(f"{name}: expected >= 1, got {v}")
        autocast_for(self.precision)
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if self.dataset is None and self.csv is None:
            raise ValueError("dataset: expected a catalogue name or a csv path, got neither")


@dataclass
class Result:
    metrics: dict  # model name -> metric dict
    chosen: dict
    selection: list  # one row per candidate: name, val accuracy, val loss, epochs
    seconds: float
    out: str
    attention: np.ndarray | None = None


# --- data ------------------------------------------------------------------------------------
def load_data(cfg: ClassifyConfig) -> tuple[SeriesSet | TextSet, SeriesSet | TextSet, str]:
    """(train, test, description); the test split is official or held out with cfg.seed."""
    if cfg.csv:
        train = read_csv_set(cfg.csv)
        if cfg.test_csv:
            test = read_csv_set(cfg.test_csv)
            if type(test) is not type(train):
                raise ValueError(f"test_csv: expected the same kind of CSV as csv "
                                 f"({type(train).__name__}), got {type(test).__name__}")
            return train, test, f"{cfg.csv} (test: {cfg.test_csv})"
        keep, held = stratified_split(train.labels, cfg.test_size, cfg.seed, "test_size")
        return train.subset(keep), train.subset(held), f"{cfg.csv} ({len(held)} held out for test)"
    if cfg.dataset not in datasets.names("classify"):  # checked before anything is loaded
        raise ValueError(f"dataset: expected a classification set {datasets.names('classify')}, "
                         f"got {cfg.dataset!r}")
    got = datasets.load(cfg.dataset)
    if isinstance(got, dict):
        return got["train"], got["test"], f"{cfg.dataset} (official split)"
    keep, held = stratified_split(got.labels, cfg.test_size, cfg.seed, "test_size")
    return got.subset(keep), got.subset(held), f"{cfg.dataset} ({len(held)} held out for test)"


class SeriesEncoder:
    """Per-channel standardisation with training statistics; series -> padded tensors."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)

    @classmethod
    def fit(cls, s: SeriesSet) -> SeriesEncoder:
        allv = np.concatenate(s.series)  # (sum T_i, C)
        std = allv.std(0)
        return cls(allv.mean(0).tolist(), np.where(std > 0, std, 1.0).tolist())

    def state(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    def encode(self, series: list[np.ndarray]):
        check_series(series)
        if series[0].shape[1] != len(self.mean):
            raise ValueError(f"series: expected {len(self.mean)} channels like the training data, "
                             f"got {series[0].shape[1]}")
        return pad_series([(s - self.mean) / self.std for s in series])


class TextEncoder:
    def __init__(self, itos: list[str], max_len: int) -> None:
        self.vocab, self.max_len = Vocab(itos), max_len

    @classmethod
    def fit(cls, s: TextSet, max_len: int) -> TextEncoder:
        return cls(Vocab.build([words(t) for t in s.texts], min_freq=2, max_size=30000).itos, max_len)

    def state(self) -> dict:
        return {"itos": self.vocab.itos, "max_len": self.max_len}

    def encode(self, texts: list[str]):
        ids = []
        for i, t in enumerate(texts):
            w = words(t)
            if not w:
                raise ValueError(f"texts: text {i} has no words (expected a non-empty text)")
            ids.append(self.vocab.encode(w[:self.max_len]))
        return pad_ids(ids)


def _loader(x, lengths, y, batch_size: int, shuffle: bool, seed: int):
    """Batches trimmed to their longest sequence; shuffled ones grouped by length."""
    ds = torch.utils.data.TensorDataset(x, lengths, y)

    def collate(items):
        xb, lb, yb = (torch.stack(t) for t in zip(*items))
        T = int(lb.max())
        return xb[:, :T], lb, yb  # trim the padding to this batch's longest

    if shuffle:
        return torch.utils.data.DataLoader(ds, batch_sampler=LengthBuckets(lengths, batch_size),
                                           collate_fn=collate)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, collate_fn=collate)


def classify_loss(model, batch) -> torch.Tensor:
    x, lengths, y = batch
    return nn.functional.cross_entropy(model(x, lengths), y)


@torch.no_grad()
def predict_proba(model: SequenceClassifier, x, lengths, batch_size: int = 256,
                  attention: bool = False):
    """(N, K) probabilities [and (N, T) attention weights]."""
    model.eval()
    probs, attn = [], []
    for i in range(0, len(x), batch_size):
        lb = lengths[i:i + batch_size]
        T = int(lb.max())
        logits, w = model(x[i:i + batch_size, :T], lb, return_attention=True)
        probs.append(torch.softmax(logits, -1))
        if attention and w is not None:
            attn.append(nn.functional.pad(w, (0, x.shape[1] - T)))
    p = torch.cat(probs).double().numpy()
    return (p, torch.cat(attn).numpy() if attn else None) if attention else p


# --- metrics ---------------------------------------------------------------------------------
def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str],
                           proba: np.ndarray | None = None) -> dict:
    """accuracy, balanced accuracy, macro-F1, per-class P/R/F1 and log loss (None without
    probabilities); ``y_true``/``y_pred`` are class indices into ``classes``."""
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        f1_score,
        log_loss,
        precision_recall_fscore_support,
    )

    labels = list(range(len(classes)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
        out = {
            "accuracy": float(accuracy_score(y_true, y_pred)),
            "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
            "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro",
                                       zero_division=0)),
            "log_loss": float(log_loss(y_true, np.clip(proba, 1e-12, 1), labels=labels))
            if proba is not None else None,
        }
    out["per_class"] = {c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
                            "support": int(s[i])} for i, c in enumerate(classes)}
    return out


# --- baselines -------------------------------------------------------------------------------
def _aeon_X(series: list[np.ndarray], length: int | None = None):
    """aeon's collection format: (N, C, T) when equal length (or padded to ``length``)."""
    if length is None and len({len(s) for s in series}) == 1:
        return np.stack([s.T for s in series]).astype(np.float64)
    if length is None:
        return [np.ascontiguousarray(s.T, dtype=np.float64) for s in series]
    X = np.zeros((len(series), series[0].shape[1], length))
    for i, s in enumerate(series):
        X[i, :, :len(s)] = s.T
    return X


def series_baselines(train: SeriesSet, test: SeriesSet, classes: list[str], seed: int,
                     echo=print) -> dict[str, np.ndarray]:
    """Test predictions (indices into classes) of 1-NN DTW and MiniRocket fitted on ``train``.
    MiniRocket needs equal lengths: unequal series are zero-padded at the end for it (only)."""
    from aeon.classification.convolution_based import MiniRocketClassifier
    from aeon.classification.distance_based import KNeighborsTimeSeriesClassifier

    idx = {c: i for i, c in enumerate(classes)}
    ytr = np.array([idx[v] for v in train.labels])
    out = {}
    t = time.perf_counter()
    knn = KNeighborsTimeSeriesClassifier(distance="dtw", n_neighbors=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's type-safety notes
        knn.fit(_aeon_X(train.series), ytr)
        out["1nn_dtw"] = np.asarray(knn.predict(_aeon_X(test.series))).astype(int)
    echo(f"  baseline 1nn_dtw: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    equal = len({len(s) for s in train.series + test.series}) == 1
    L = None if equal else max(len(s) for s in train.series + test.series)
    mr = MiniRocketClassifier(random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mr.fit(_aeon_X(train.series, L), ytr)
        out["minirocket"] = np.asarray(mr.predict(_aeon_X(test.series, L))).astype(int)
    echo(f"  baseline minirocket: {time.perf_counter() - t:.1f} s")
    return out


def text_baselines(train: TextSet, val: TextSet, test: TextSet, classes: list[str],
                   echo=print) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """TF-IDF (word 1-2 grams) + logistic regression; C chosen on the validation split, then
    refitted on train + validation. Returns {"tfidf_logreg": (pred, proba)}."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    idx = {c: i for i, c in enumerate(classes)}
    ytr, yva = (np.array([idx[v] for v in s.labels]) for s in (train, val))
    t = time.perf_counter()

    def fit(texts, y, C):
        pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                             LogisticRegression(C=C, max_iter=2000))
        return pipe.fit(texts, y)

    scores = {C: float((fit(train.texts, ytr, C).predict(val.texts) == yva).mean())
              for C in (1.0, 10.0)} if len(val) else {10.0: 0.0}
    C = max(scores, key=scores.get)
    pipe = fit(train.texts + val.texts, np.concatenate([ytr, yva]), C)
    proba = np.zeros((len(test), len(classes)))
    proba[:, pipe.classes_] = pipe.predict_proba(test.texts)
    echo(f"  baseline tfidf_logreg (C={C} chosen on validation, {scores}): "
         f"{time.perf_counter() - t:.1f} s")
    return {"tfidf_logreg": (proba.argmax(1), proba)}


# --- the job ---------------------------------------------------------------------------------
def candidates(cfg: ClassifyConfig, kind: str) -> dict[str, dict]:
    presets = SERIES_PRESETS if kind == "series" else TEXT_PRESETS
    if cfg.model != "auto" and cfg.model not in presets:
        raise ValueError(f"model: expected 'auto' or one of {sorted(presets)} for {kind} data, "
                         f"got {cfg.model!r}")
    chosen = presets if cfg.model == "auto" else {cfg.model: presets[cfg.model]}
    over = {k: getattr(cfg, k) for k in ("cell", "hidden_size", "pooling", "bidirectional", "fcn")
            if getattr(cfg, k) is not None}
    return {name: {**kw, **over} for name, kw in chosen.items()}


def _fit_one(name, model_kw, enc_x, tr_idx, va_idx, y, base: dict, cfg: ClassifyConfig,
             tcfg: TrainConfig, out_dir: str):
    x, lengths = enc_x
    torch.manual_seed(tcfg.seed)
    model = SequenceClassifier(ClassifierConfig(**base, **model_kw))
    bs = cfg.batch_size
    tl = _loader(x[tr_idx], lengths[tr_idx], y[tr_idx], bs, True, tcfg.seed)
    vl = _loader(x[va_idx], lengths[va_idx], y[va_idx], 512, False, 0) if len(va_idx) else None
    trainer = Trainer(model, classify_loss, tcfg, out_dir)
    trainer.fit(tl, vl)
    trainer.load_best()
    row = dict(name=name, seed=tcfg.seed, epochs=trainer.epoch, val_loss=trainer.best_val)
    if len(va_idx):
        p = predict_proba(model, x[va_idx], lengths[va_idx])
        row["val_accuracy"] = float((p.argmax(1) == y[va_idx].numpy()).mean())
    return model, row


def select_model(cands: dict[str, dict], enc_x, y, tr_idx, va_idx, base: dict,
                 cfg: ClassifyConfig, work: str, echo=print):
    """Train each candidate on the training part, score it on the validation part (both drawn
    from the training data only); returns (name, model, rows)."""
    rows, models = [], {}
    for name, kw in cands.items():
        tcfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, patience=cfg.patience, seed=cfg.seed,
                           progress=cfg.progress, resume=False, weight_decay=1e-2,
                           autocast=autocast_for(cfg.precision))
        t = time.perf_counter()
        models[name], row = _fit_one(name, kw, enc_x, tr_idx, va_idx, y, base, cfg, tcfg,
                                     os.path.join(work, "train", name))
        row["seconds"] = round(time.perf_counter() - t, 1)
        rows.append(row)
        echo(f"  candidate {name}: val accuracy {row.get('val_accuracy', float('nan')):.4f}, "
             f"val loss {row['val_loss']:.4f}, {row['epochs']} epochs, {row['seconds']} s")
    best = max(rows, key=lambda r: (r.get("val_accuracy", 0.0), -r["val_loss"]))
    return best["name"], models, rows


def train(cfg: ClassifyConfig, echo=print) -> Result:
    """Run the whole job (module docstring) on ``cfg.threads`` threads."""
    with limited_threads(cfg.threads):
        return _train(cfg, echo)


def _train(cfg: ClassifyConfig, echo) -> Result:
    t0 = time.perf_counter()
    trn, test, about = load_data(cfg)
    kind = "text" if isinstance(trn, TextSet) else "series"
    cfg = replace(cfg, **{k: getattr(cfg, k) or v for k, v in KIND_DEFAULTS[kind].items()})
    classes = sorted(set(trn.labels.tolist()))
    if len(classes) < 2:
        raise ValueError(f"labels: expected at least 2 classes in the training data, got {classes}")
    unseen = sorted(set(test.labels.tolist()) - set(classes))
    if unseen:
        raise ValueError(f"test labels: {unseen} never occur in the training data "
                         f"(expected labels among {classes})")
    idx = {c: i for i, c in enumerate(classes)}
    y = torch.tensor([idx[v] for v in trn.labels])
    y_test = np.array([idx[v] for v in test.labels])
    tr_idx, va_idx = stratified_split(trn.labels, cfg.val_size, cfg.seed, "val_size")
    singles = sorted(c for c in classes if (trn.labels == c).sum() == 1)
    if kind == "series":
        check_series(trn.series, "train")
        check_series(test.series, "test")
        enc = SeriesEncoder.fit(trn.subset(tr_idx))
        enc_x, test_x = enc.encode(trn.series), enc.encode(test.series)
        base = dict(input_size=trn.series[0].shape[1], num_classes=len(classes))
    else:
        enc = TextEncoder.fit(trn.subset(tr_idx), cfg.max_len)
        enc_x, test_x = enc.encode(trn.texts), enc.encode(test.texts)
        base = dict(input_size=1, num_classes=len(classes), vocab_size=len(enc.vocab.itos))
    cands = candidates(cfg, kind)
    os.makedirs(cfg.out, exist_ok=True)
    echo(f"classify: {about}: {kind}, {len(classes)} classes, train {len(tr_idx)} + validation "
         f"{len(va_idx)} (from the training data), test {len(test)}")
    name, models, rows = select_model(cands, enc_x, y, tr_idx, va_idx, base, cfg, cfg.out, echo)
    chosen = dict(model=name, **cands[name], kind=kind, classes=classes, train=int(len(tr_idx)),
                  val=int(len(va_idx)), test=len(test), epochs=cfg.epochs, patience=cfg.patience,
                  batch_size=cfg.batch_size, singleton_classes=singles, data=about)
    if kind == "text":
        n_long = sum(len(words(t)) > cfg.max_len for t in trn.texts + test.texts)
        chosen.update(vocab=len(enc.vocab.itos), truncated_texts=n_long)
    echo(f"  chosen on validation: {name}")
    model = models[name]
    members = [model]
    for s in range(1, cfg.seeds):
        tcfg = TrainConfig(epochs=cfg.epochs, lr=cfg.lr, patience=cfg.patience, seed=cfg.seed + s,
                           progress=cfg.progress, resume=False, autocast=autocast_for(cfg.precision))
        m, row = _fit_one(name, cands[name], enc_x, tr_idx, va_idx, y, base, cfg, tcfg,
                          os.path.join(cfg.out, "train", f"{name}-seed{cfg.seed + s}"))
        members.append(m)
        rows.append(row)
    # --- only now is the test split scored
    proba, attn = predict_proba(model, *test_x, attention=True)
    metrics = {"lstmkit": classification_metrics(y_test, proba.argmax(1), classes, proba)}
    if cfg.seeds > 1:
        member_p = np.stack([proba] + [predict_proba(m, *test_x) for m in members[1:]])
        sp = soft_vote(torch.from_numpy(member_p)).numpy()
        metrics["lstmkit_soft_vote"] = classification_metrics(y_test, sp.argmax(1), classes, sp)
        hv = hard_vote(torch.from_numpy(member_p)).numpy()
        metrics["lstmkit_hard_vote"] = classification_metrics(y_test, hv, classes)
        accs = [float((p.argmax(1) == y_test).mean()) for p in member_p]
        chosen["member_accuracy"] = accs
        chosen["soft_vote_gain"] = metrics["lstmkit_soft_vote"]["accuracy"] - float(np.mean(accs))
    if cfg.baselines:
        if kind == "series":
            for k, pred in series_baselines(trn, test, classes, cfg.seed, echo).items():
                metrics[k] = classification_metrics(y_test, pred, classes)
        else:
            bl = text_baselines(trn.subset(tr_idx), trn.subset(va_idx), test, classes, echo)
            for k, (pred, p) in bl.items():
                metrics[k] = classification_metrics(y_test, pred, classes, p)
    cfg = replace(cfg, chosen=chosen)
    mcfg = ClassifierConfig(**base, **cands[name])
    save_checkpoint(os.path.join(cfg.out, "model.pt"), model=model.state_dict(), model_config=mcfg,
                    encoder=enc.state(), kind="sequence_classifier", data_kind=kind, classes=classes,
                    job_config=asdict(cfg))
    secs = time.perf_counter() - t0
    report = {**metrics, "setup": dict(chosen, selection=rows, seconds=round(secs, 1))}
    atomic_write_text(os.path.join(cfg.out, "metrics.json"), json.dumps(report, indent=2) + "\n")
    atomic_write_text(os.path.join(cfg.out, "config.json"), json.dumps(asdict(cfg), indent=2) + "\n")
    plot_confusion(os.path.join(cfg.out, "confusion.png"), y_test, proba.argmax(1), classes,
                   f"lstmkit {name} on {about}: test accuracy {metrics['lstmkit']['accuracy']:.3f}")
    attn_model = name
    if attn is None and "bilstm-attention" in models:  # plot the attention candidate's weights
        attn_model = "bilstm-attention"
        attn = predict_proba(models[attn_model], *test_x, attention=True)[1]
    if attn is not None:
        show = test.series if kind == "series" else [words(t)[:cfg.max_len] for t in test.texts]
        plot_attention(os.path.join(cfg.out, "attention.png"), show, attn, test.labels, kind,
                       attn_model)
    echo(format_table(metrics, f"test split of {about}: {len(test)} examples"))
    return Result(metrics, chosen, rows, secs, cfg.out, attn)


def format_table(metrics: dict, title: str = "") -> str:
    lines = [title] if title else []
    lines.append(f"{'model':<20}{'accuracy':>10}{'bal.acc':>10}{'macroF1':>10}{'logloss':>10}")
    for name, m in metrics.items():
        ll = "-" if m["log_loss"] is None else f"{m['log_loss']:.4f}"
        lines.append(f"{name:<20}{m['accuracy']:>10.4f}{m['balanced_accuracy']:>10.4f}"
                     f"{m['macro_f1']:>10.4f}{ll:>10}")
    return "\n".join(lines)


# --- plots -----------------------------------------------------------------------------------
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(path: str, y_true, y_pred, classes: list[str], title: str) -> None:
    from sklearn.metrics import confusion_matrix

    plt = _plt()
    cm = confusion_matrix(y_true, y_pred, labels=list(range(len(classes))))
    k = len(classes)
    fig, ax = plt.subplots(figsize=(min(14, max(5.5, 3 + 0.35 * k)), min(13, max(4.5, 2.5 + 0.33 * k))))
    ax.imshow(cm, cmap="Blues")
    tilt = k > 8 or max(len(c) for c in classes) * k > 40
    ax.set_xticks(range(k), classes, rotation=90 if tilt else 0, fontsize=7 if k > 15 else 9)
    ax.set_yticks(range(k), classes, fontsize=7 if k > 15 else 9)
    if k <= 15:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    import textwrap

    ax.set_title("\n".join(textwrap.wrap(title, 60)), fontsize=9)
    fig.tight_layout()
    from .._io import atomic_write

    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)


def plot_attention(path: str, items, attn: np.ndarray, labels, kind: str, model: str,
                   n: int = 4) -> None:
    plt = _plt()
    n = min(n, len(items))
    fig, axes = plt.subplots(n, 1, figsize=(10, 2.0 * n), squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        if kind == "series":
            s = items[i]
            ax.plot(s[:, 0], color="black", lw=1)
            ax2 = ax.twinx()
            ax2.fill_between(range(len(s)), attn[i, :len(s)], color="tab:red", alpha=0.35)
            ax2.set_ylabel("attention", color="tab:red", fontsize=8)
            ax.set_title(f"test example {i} (label {labels[i]}): series and the attention weights "
                         f"of {model}", fontsize=9)
        else:
            toks = items[i][:40]
            ax.bar(range(len(toks)), attn[i, :len(toks)], color="tab:red")
            ax.set_xticks(range(len(toks)), toks, rotation=90, fontsize=7)
            ax.set_title(f"test text {i} (label {labels[i]}): {model} attention over its first "
                         "words", fontsize=9)
    fig.tight_layout()
    from .._io import atomic_write

    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)


# --- predict ---------------------------------------------------------------------------------
def load_model(checkpoint: str):
    path = os.path.join(checkpoint, "model.pt") if os.path.isdir(checkpoint) else checkpoint
    ck = load_checkpoint(path)
    for key in ("model", "model_config", "encoder", "data_kind", "classes"):
        if key not in ck:
            raise ValueError(f"checkpoint {path!r}: expected a classify checkpoint with {key!r}")
    model = SequenceClassifier(ClassifierConfig(**ck["model_config"]))
    model.load_state_dict(ck["model"])
    data_kind = ck["data_kind"]
    enc = SeriesEncoder(**ck["encoder"]) if data_kind == "series" else TextEncoder(**ck["encoder"])
    return model.eval(), enc, data_kind, list(ck["classes"])


def predict(checkpoint: str, csv: str | None = None, dataset: str | None = None,
            out: str | None = None, echo=print, threads: int = 1) -> dict:
    """Label ``csv`` (same format as in training; labels may be empty) or the test split of a
    catalogue ``dataset``; writes ``out``/predictions.csv. Returns predictions and, when labels
    are present, accuracy."""
    with limited_threads(threads):
        return _predict(checkpoint, csv, dataset, out, echo)


def _predict(checkpoint, csv, dataset, out, echo) -> dict:
    if (csv is None) == (dataset is None):
        raise ValueError("predict: expected exactly one of csv or dataset")
    model, enc, kind, classes = load_model(checkpoint)
    if csv is not None:
        data = read_csv_set(csv)
    else:
        got = datasets.load(dataset)
        data = got["test"] if isinstance(got, dict) else got
    if (kind == "text") != isinstance(data, TextSet):
        raise ValueError(f"data: the model classifies {kind}, got a {type(data).__name__}")
    x, lengths = enc.encode(data.texts if kind == "text" else data.series)
    proba = predict_proba(model, x, lengths)
    pred = [classes[i] for i in proba.argmax(1)]
    given = [v for v in data.labels.tolist() if v != ""]
    result = {"pred": pred, "proba": proba}
    if given:
        unseen = sorted(set(given) - set(classes))
        if unseen:
            raise ValueError(f"labels: {unseen} were never seen in training (expected labels "
                             f"among {classes}); cannot score them")
        ok = [p == t for p, t in zip(pred, data.labels.tolist()) if t != ""]
        result["accuracy"] = float(np.mean(ok))
    lines = ["index,pred,prob," + ",".join(f"p_{c}" for c in classes)]
    for i, (p, row) in enumerate(zip(pred, proba)):
        lines.append(f"{i},{p},{row.max():.4f}," + ",".join(f"{v:.4f}" for v in row))
    if out:
        os.makedirs(out, exist_ok=True)
        atomic_write_text(os.path.join(out, "predictions.csv"), "\n".join(lines) + "\n")
    echo(f"predicted {len(pred)} examples" + (f", accuracy {result['accuracy']:.4f}"
                                              if "accuracy" in result else ""))
    return result
