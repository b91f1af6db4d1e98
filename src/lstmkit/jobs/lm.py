"""The language-model job: train a character/word LSTM LM on your text, score it beside n-gram
baselines, generate with it.

Symbols: N tokens, B parallel streams (batch), T chunk length (bptt), V vocabulary.

- ``LMConfig``: every flag of ``lstmkit lm train`` is a field with the same name and default.
  Automatic choices (``val_every``, ``warmup_steps``, the validation batch) are resolved from the
  data into the saved config and reported on stderr, so ``config.json`` reproduces the run.
- ``train(config) -> LMResult``: splits the text into train / validation / test (contiguous,
  in this order), fits the tokenizer on the train part, trains through ``train.Trainer``
  (stateful truncated BPTT, AdamW with weight decay, warm-up + cosine LR, validation every
  ``val_every`` steps, early stopping, best-on-validation weights restored at the end), then
  scores the LSTM, an interpolated Kneser-Ney character n-gram and a unigram model on the same
  validation and test text, prints one table and writes the artefacts. The test text is scored
  once, at the end; nothing is chosen on it.
- ``evaluate(model, tokenizer, text) -> dict``: loss, perplexity and bits per character.
- ``predict(out_dir, prompt, ...) -> str`` (alias ``generate``): continue a prompt with greedy
  decoding, sampling (temperature, top-k, top-p) or beam search.

Artefacts in ``--out``: ``config.json`` (this config), ``metrics.json`` (one entry per model:
``val_bpc``, ``test_bpc``, ``val_loss`` ...; the ``history`` of validations with training and
validation loss; ``setup``), ``model.pt`` (``models.language_model.save_language_model``: kind
``language_model``, ``config``, ``model`` state_dict, ``extra`` with level, bptt, max_context,
the job config and the LSTM's metrics; ``weights_only``-loadable), ``tokenizer.json``,
``loss.png`` (training and validation bits per token against steps, baselines as lines) and
``train/`` (the Trainer's ``last.pt``, ``best.pt``, ``metrics.csv``). Running ``train`` again
with the same config and ``--out`` resumes an interrupted run from ``train/last.pt`` and ends
where the uninterrupted run ends (without ``--max-time``, which follows the clock).

>>> LMConfig(out="runs/x").level
'char'
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
import torch.nn.functional as F

from .._io import atomic_write_text
from ..data.text import (
    EOS_ID,
    StreamLoader,
    load_tokenizer,
    make_tokenizer,
    read_corpus,
    stdlib_corpus,
)
from ..decoding import beam_search, greedy, sample
from ..models.language_model import (
    LanguageModel,
    LanguageModelConfig,
    evaluate_language_model,
    lm_metrics,
    load_language_model,
    save_language_model,
)
from ..train.checkpoint import load_checkpoint
from ..train.trainer import TrainConfig, Trainer, autocast_for
from ._config import merge_config_file

__all__ = ["LMConfig", "LMResult", "train", "evaluate", "predict", "generate", "load",
           "KneserNeyCharModel", "unigram_bpc", "format_table"]


def _err(msg: str) -> None:
    print(msg, file=sys.stderr)


@dataclass
class LMConfig:
    out: str
    text: list[str] | None = None  # UTF-8 files; None: the Python standard library's sources
    level: str = "char"
    max_steps: int = 10_000
    max_time: float | None = 90.0  # seconds of training; None: no limit
    seed: int = 0
    batch_size: int = 8
    bptt: int = 64
    embedding_dim: int = 192  # == hidden_size: the decoder shares the embedding (tie_weights)
    hidden_size: int = 192
    num_layers: int = 1
    dropout: float = 0.2  # between LSTM layers
    embedding_dropout: float = 0.2
    output_dropout: float = 0.5
    tie_weights: bool = True
    lr: float = 6e-3
    weight_decay: float = 0.1
    warmup_steps: int | None = None  # None: 5% of max_steps, at most 30
    val_every: int | None = None  # None: from the data (about 4 times an epoch, 25..200 steps)
    patience: int = 6  # validations without improvement (twice the LR is dropped 4x first)
    lr_drops: int = 2
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    max_chars: int = 300_000  # cap on the default stdlib corpus
    ngram_order: int = 5
    progress: bool = True
    resume: bool = True
    precision: str = "float32"  # "bfloat16": train under torch.autocast (scored in float32)

    def __post_init__(self) -> None:
        if not isinstance(self.out, (str, os.PathLike)) or not str(self.out):
            raise TypeError(f"out: expected a folder path, got {self.out!r}")
        self.out = os.fspath(self.out)
        if isinstance(self.text, (str, os.PathLike)):
            self.text = [os.fspath(self.text)]
        if self.level not in ("char", "word"):
            raise ValueError(f"level: expected 'char' or 'word', got {self.level!r}")
        autocast_for(self.precision)
        for name in ("max_steps", "batch_size", "bptt", "embedding_dim", "hidden_size",
                     "num_layers", "patience", "ngram_order", "max_chars"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name.replace('_', '-')}: expected an int >= 1, got {v!r}")
        if not isinstance(self.lr_drops, int) or self.lr_drops < 0:
            raise ValueError(f"lr-drops: expected an int >= 0, got {self.lr_drops!r}")
        for name in ("val_every", "warmup_steps"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < (1 if name == "val_every" else 0)):
                raise ValueError(f"{name.replace('_', '-')}: expected a non-negative int or None, got {v!r}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val-fraction: expected a number in (0, 1), got {self.val_fraction}")
        if not 0 <= self.test_fraction < 1 or self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(f"test-fraction: expected a number in [0, 1) with val-fraction + "
                             f"test-fraction < 0.9, got {self.test_fraction} (+ {self.val_fraction})")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"max-time: expected seconds > 0 or None, got {self.max_time!r}")
        if self.tie_weights and self.embedding_dim != self.hidden_size:
            raise ValueError(f"embedding-dim: with tied weights it must equal hidden-size, got "
                             f"{self.embedding_dim} vs {self.hidden_size} (or pass --no-tie-weights)")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")


@dataclass
class LMResult:
    config: LMConfig
    metrics: dict  # {"lstm": {...}, "kn5": {...}, "unigram": {...}, "history": [...], "setup": {...}}
    model: LanguageModel
    tokenizer: object
    history: list[dict] = field(default_factory=list)

    @property
    def out(self) -> str:
        return self.config.out


# --- baselines ---------------------------------------------------------------------------------
def unigram_bpc(text: str) -> float:
    """Entropy (bits per character) of the text's own character frequencies: the unigram
    entropy, a reference no model fitted elsewhere can beat on average."""
    counts = Counter(text)
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) if n else 0.0


class KneserNeyCharModel:
    """Interpolated modified Kneser-Ney character n-gram (Chen & Goodman 1998, three discounts
    per order from the count-of-counts), backing off to a uniform distribution over the training
    characters plus one "unseen" symbol.

    No installed library provides a character n-gram LM (nltk is not in the environment), so
    this is the textbook estimator, kept small and tested against normalisation.

    >>> kn = KneserNeyCharModel(3).fit("abracadabra " * 20)
    >>> round(sum(kn.prob("ab", c) for c in kn.vocab + ["\\x00"]), 6)  # + the unseen symbol
    1.0
    """

    def __init__(self, order: int = 5) -> None:
        if not isinstance(order, int) or order < 1:
            raise ValueError(f"order: expected an int >= 1, got {order!r}")
        self.order = order

    def fit(self, text: str) -> KneserNeyCharModel:
        if not isinstance(text, str) or not text:
            raise ValueError("text: expected a non-empty str to fit the n-gram model")
        n = self.order
        self.vocab = sorted(set(text))
        self.V = len(self.vocab) + 1  # + one symbol for characters never seen in training
        # counts[k][(h, c)]: raw counts for the highest order, continuation counts below it
        raw = Counter(text[i - n + 1: i + 1] for i in range(n - 1, len(text)))
        counts: list[Counter] = [Counter() for _ in range(n + 1)]
        counts[n] = raw
        for k in range(n, 1, -1):  # continuation count of a (k-1)-gram: distinct left extensions
            for g in counts[k]:
                counts[k - 1][g[1:]] += 1
        if n == 1:
            counts[1] = Counter(text)
        self.counts = counts
        # per order: context totals, number of continuations with count 1, 2, >= 3, and D1..D3+
        self.ctx_total, self.ctx_n = [None] * (n + 1), [None] * (n + 1)
        self.D = [None] * (n + 1)
        for k in range(1, n + 1):
            tot: dict[str, int] = defaultdict(int)
            nk: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
            coc = Counter(min(c, 4) for c in counts[k].values())
            for g, c in counts[k].items():
                tot[g[:-1]] += c
                nk[g[:-1]][min(c, 3) - 1] += 1
            n1, n2, n3, n4 = (coc.get(i, 0) for i in (1, 2, 3, 4))
            y = n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5
            d = [1 - 2 * y * n2 / n1 if n1 else 0.5, 2 - 3 * y * n3 / n2 if n2 else 1.0,
                 3 - 4 * y * n4 / n3 if n3 else 1.5]
            self.D[k] = [min(max(x, 0.05), i + 1.0) for i, x in enumerate(d)]  # > 0: mass for backing off
            self.ctx_total[k], self.ctx_n[k] = dict(tot), dict(nk)
        return self

    def prob(self, history: str, c: str) -> float:
        """P(c | the last order-1 characters of history)."""
        p = 1.0 / self.V  # uniform over the training characters + "unseen"
        h_all = history[-(self.order - 1):] if self.order > 1 else ""
        for k in range(1, self.order + 1):
            h = h_all[len(h_all) - (k - 1):] if k > 1 else ""
            if k > 1 and len(h) < k - 1:
                break
            tot = self.ctx_total[k].get(h)
            if not tot:
                continue
            cnt = self.counts[k].get(h + c, 0)
            D = self.D[k]
            disc = D[min(cnt, 3) - 1] if cnt else 0.0
            n1, n2, n3 = self.ctx_n[k][h]
            gamma = (D[0] * n1 + D[1] * n2 + D[2] * n3) / tot
            p = max(cnt - disc, 0.0) / tot + gamma * p
        return p

    def bits_per_char(self, text: str, context: str = "") -> float:
        """Mean -log2 P over every character of ``text`` (``context`` conditions the first)."""
        if not text:
            raise ValueError("text: expected a non-empty str to score")
        k = self.order - 1
        full = (context[-k:] if k else "") + text
        off = len(full) - len(text)
        return -sum(math.log2(self.prob(full[max(0, i - k): i], full[i]))
                    for i in range(off, len(full))) / len(text)


def unigram_model_bpc(train_text: str, text: str) -> float:
    """A unigram model fitted on the training text (add-one over its characters + one unseen
    symbol), scored on ``text``."""
    counts = Counter(train_text)
    total, V = len(train_text), len(counts) + 1
    return -sum(math.log2((counts.get(ch, 0) + 1) / (total + V)) for ch in text) / len(text)


# --- the job -------------------------------------------------------------------------------------
def _read_text(config: LMConfig) -> tuple[str, str]:
    if config.text:
        texts = read_corpus(config.text, echo=_err)
        return "\n".join(texts), f"{len(texts)} file(s)"
    texts = stdlib_corpus(config.max_chars)
    return "\n".join(texts), f"the Python standard library ({len(texts)} files)"


def split_text(text: str, val_fraction: float, test_fraction: float) -> tuple[str, str, str]:
    """Contiguous train / validation / test parts, in this order (test last)."""
    n = len(text)
    n_test = int(n * test_fraction)
    n_val = max(1, int(n * val_fraction))
    return text[: n - n_val - n_test], text[n - n_val - n_test: n - n_test], text[n - n_test:]


def _eval_batch(n_tokens: int) -> int:
    """Validation streams: rows of >= 2000 tokens (each row starts from a zero state), at most 16."""
    return max(1, min(16, n_tokens // 2000))


def evaluate(model: LanguageModel, tokenizer, text: str, *, bptt: int = 256,
             batch_size: int | None = None) -> dict:
    """``{loss (nats/token), ppl (per token), bpc (bits/char), tokens, chars}`` on ``text``."""
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    if len(ids) < 2:
        raise ValueError(f"text: expected at least 2 tokens to score, got {len(ids)}")
    b = batch_size or _eval_batch(len(ids))
    b = min(b, len(ids) // 2)
    return _text_metrics(evaluate_language_model(model, ids, batch_size=b, bptt=bptt), len(ids), len(text), b)


def _text_metrics(loss: float, n_ids: int, n_text_chars: int, b: int) -> dict:
    """:func:`evaluate`'s dict from the mean loss over a text of ``n_ids`` tokens in ``b`` rows."""
    n_eval = (n_ids // b - 1) * b  # batchify drops the tail; each row's first token is given
    n_chars = n_text_chars * n_eval / n_ids
    m = lm_metrics(loss, n_eval, n_chars)
    return {"loss": m["val_loss"], "ppl": m["val_ppl"], "bpc": m["val_bpc"], "tokens": n_eval,
            "chars": round(n_chars, 1)}


def _resolve(config: LMConfig, steps_per_epoch: int) -> LMConfig:
    """Fill the automatic choices into a copy of the config."""
    c = LMConfig(**asdict(config))
    if c.val_every is None:
        c.val_every = int(min(200, max(25, steps_per_epoch // 4)))
    if c.warmup_steps is None:
        c.warmup_steps = int(min(30, c.max_steps // 20))
    return c


def _stateful_loss(model, batch, hx):
    x, y = batch  # (B, T), (B, T)
    logits, hx = model(x, hx)  # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1)), hx


def _same_run(path: Path, config: LMConfig) -> bool:
    """Does out/train/last.pt belong to a run of this config (so that resuming continues it)?"""
    try:
        ck = load_checkpoint(path)
    except (ValueError, FileNotFoundError):
        return False
    saved = dict(ck.get("job_config") or {})
    now = asdict(config)
    skip = ("progress", "resume", "out")
    return {k: v for k, v in saved.items() if k not in skip} == {
        k: v for k, v in now.items() if k not in skip}


def train(config: LMConfig, *, callbacks=(), echo: Callable[[str], None] = print) -> LMResult:
    """Train, score beside the baselines, print the table, write the artefacts (module doc)."""
    if not isinstance(config, LMConfig):
        raise TypeError(f"config: expected LMConfig, got {type(config).__name__}")
    text, source = _read_text(config)
    train_text, val_text, test_text = split_text(text, config.val_fraction, config.test_fraction)
    tok = make_tokenizer(config.level, [train_text], **({"min_freq": 1} if config.level == "word" else {}))
    train_ids = torch.tensor(tok.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tok.encode(val_text), dtype=torch.long)
    if len(train_ids) < 2 * config.batch_size:
        raise ValueError(f"text: the training part has {len(train_ids)} tokens, --batch-size "
                         f"{config.batch_size} needs at least {2 * config.batch_size}; give more "
                         f"text or a smaller --batch-size")
    if len(val_ids) < 2:
        raise ValueError(f"text: the validation part has {len(val_ids)} tokens, need at least 2; "
                         f"give more text or a larger --val-fraction")
    loader = StreamLoader(train_ids, config.batch_size, config.bptt)
    cfg = _resolve(config, len(loader))
    vb = min(_eval_batch(len(val_ids)), len(val_ids) // 2)
    _err(f"lm train: {source}, {len(train_text):,} train / {len(val_text):,} val / "
         f"{len(test_text):,} test chars, {cfg.level} vocabulary {len(tok):,} (incl. 4 specials + "
         f"256 bytes); {len(loader)} steps per epoch, validating every {cfg.val_every} steps"
         f"{' (chosen: ~4 per epoch)' if config.val_every is None else ''} on {vb} stream(s)")

    out = Path(cfg.out)
    work = out / "train"
    last = work / "last.pt"
    if last.exists() and not (cfg.resume and _same_run(last, cfg)):
        if cfg.resume:
            _err(f"note: {work} holds a run of another config; starting afresh")
        shutil.rmtree(work)
    elif last.exists():
        _err(f"resuming from {last}")

    torch.manual_seed(cfg.seed)
    mcfg = LanguageModelConfig(vocab_size=len(tok), embedding_dim=cfg.embedding_dim,
                               hidden_size=cfg.hidden_size, num_layers=cfg.num_layers,
                               dropout=cfg.dropout, embedding_dropout=cfg.embedding_dropout,
                               output_dropout=cfg.output_dropout, tie_weights=cfg.tie_weights)
    model = LanguageModel(mcfg)
    tcfg = TrainConfig(max_steps=cfg.max_steps, val_every=cfg.val_every, lr=cfg.lr,
                       weight_decay=cfg.weight_decay, warmup_steps=cfg.warmup_steps,
                       patience=cfg.patience, seed=cfg.seed, max_time=cfg.max_time,
                       progress=cfg.progress and None, restore_best=True, min_lr_ratio=0.05,
                       clip_grad_norm=1.0, resume=cfg.resume, lr_drops=cfg.lr_drops,
                       autocast=autocast_for(cfg.precision))

    def eval_fn(m, ids):
        return evaluate_language_model(m, ids, batch_size=vb, bptt=256)

    trainer = Trainer(model, _stateful_loss, tcfg, work, extra=dict(job_config=cfg),
                      callbacks=callbacks, stateful=True, eval_fn=eval_fn)
    history = trainer.fit(loader, val_ids)  # ends with the best validated weights in the model
    model.eval()

    # --- score the LSTM and the baselines on the same text
    ln2 = math.log(2)
    best = min((r for r in history if r.get("val_loss") is not None), key=lambda r: r["val_loss"],
               default=None)
    # the restored weights are the best validation's: its loss (same batches, same bptt) is the score
    lstm_val = (_text_metrics(best["val_loss"], len(val_ids), len(val_text), vb) if best is not None
                else evaluate(model, tok, val_text, batch_size=vb))
    metrics: dict = {"lstm": {"val_loss": lstm_val["loss"], "val_ppl": lstm_val["ppl"],
                              "val_bpc": lstm_val["bpc"]}}
    kn = KneserNeyCharModel(cfg.ngram_order).fit(train_text)
    kname = f"kn{cfg.ngram_order}"
    metrics[kname] = {"val_bpc": kn.bits_per_char(val_text, context=train_text)}
    metrics["unigram"] = {"val_bpc": unigram_model_bpc(train_text, val_text)}
    if test_text:
        metrics["lstm"]["test_bpc"] = evaluate(model, tok, test_text)["bpc"]
        metrics[kname]["test_bpc"] = kn.bits_per_char(test_text, context=train_text + val_text)
        metrics["unigram"]["test_bpc"] = unigram_model_bpc(train_text, test_text)
    entropy = unigram_bpc(val_text)
    setup = dict(source=source, level=cfg.level, vocab_size=len(tok), train_chars=len(train_text),
                 val_chars=len(val_text), test_chars=len(test_text), steps=trainer.step,
                 best_step=best["step"] if best else None, epochs=round(trainer.step / len(loader), 2),
                 stopped=trainer.stop_reason or "max_steps",
                 train_seconds=round(sum(r["seconds"] for r in history), 1),
                 parameters=sum(p.numel() for p in model.parameters()),
                 val_unigram_entropy=entropy, ratio_to_unigram_entropy=lstm_val["bpc"] / entropy,
                 val_batch=vb)
    hist = [{**r, "train_bits": r["train_loss"] / ln2,
             "val_bits": r["val_loss"] / ln2 if r.get("val_loss") is not None else None}
            for r in history]
    report = {**metrics, "history": hist, "setup": setup,
              # the flat summary of earlier versions, kept for scripts that read it
              "val_loss": lstm_val["loss"], "val_ppl": lstm_val["ppl"], "val_bpc": lstm_val["bpc"],
              "unigram_bpc": entropy, "steps": trainer.step}

    save_language_model(model, out / "model.pt", level=cfg.level, bptt=cfg.bptt,
                        max_context=16 * cfg.bptt, job_config=asdict(cfg), metrics=metrics["lstm"])
    tok.save(out / "tokenizer.json")
    atomic_write_text(out / "config.json", json.dumps(asdict(cfg), indent=2) + "\n")
    atomic_write_text(out / "metrics.json", json.dumps(report, indent=2) + "\n")
    _plot(out / "loss.png", hist, metrics, kname, cfg.level)
    echo(format_table(metrics, setup))
    echo(f"wrote {out}/config.json, metrics.json, model.pt, tokenizer.json, loss.png")
    return LMResult(cfg, report, model, tok, history)


def format_table(metrics: dict, setup: dict) -> str:
    names = {"lstm": "LSTM (lstmkit)", "unigram": "unigram (train freq.)"}
    lines = [f"{setup['source']}, {setup['level']} level: {setup['steps']} steps "
             f"({setup['epochs']} epochs, best at step {setup['best_step']}, stopped: "
             f"{setup['stopped']}) in {setup['train_seconds']} s",
             f"{'model':<24}{'val bits/char':>14}{'test bits/char':>15}"]
    for k, m in metrics.items():
        if not isinstance(m, dict) or "val_bpc" not in m:
            continue
        name = names.get(k, f"Kneser-Ney {k[2:]}-gram" if k.startswith("kn") else k)
        test = f"{m['test_bpc']:>15.3f}" if "test_bpc" in m else f"{'-':>15}"
        lines.append(f"{name:<24}{m['val_bpc']:>14.3f}{test}")
    lines.append(f"unigram entropy of the validation text {setup['val_unigram_entropy']:.3f} "
                 f"bits/char; LSTM / entropy = {setup['ratio_to_unigram_entropy']:.2f}")
    return "\n".join(lines)


def _plot(path: Path, hist: list[dict], metrics: dict, kname: str, level: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in hist]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(steps, [r["train_bits"] for r in hist], "o-", ms=3, label="training (mean since last validation)")
    ax.plot(steps, [r["val_bits"] for r in hist], "o-", ms=3, label="validation")
    best = min((r for r in hist if r["val_bits"] is not None), key=lambda r: r["val_bits"], default=None)
    if best is not None:
        ax.plot([best["step"]], [best["val_bits"]], "k*", ms=12,
                label=f"best (step {best['step']}, restored)")
    if level == "char":
        ax.axhline(metrics[kname]["val_bpc"], color="grey", ls="--",
                   label=f"Kneser-Ney {kname[2:]}-gram (val)")
        ax.axhline(metrics["unigram"]["val_bpc"], color="grey", ls=":", label="unigram (val)")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"bits per {level}" if level == "char" else "bits per token")
    ax.set_title("lstmkit lm train: training and validation loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from .._io import atomic_write

    atomic_write(path, lambda p: fig.savefig(p, dpi=110, format="png"))
    plt.close(fig)


# --- loading and generation -----------------------------------------------------------------------
def load(checkpoint: str | os.PathLike) -> tuple[LanguageModel, object, dict]:
    """``(model in eval mode, tokenizer, extra)`` from an ``--out`` folder or its ``model.pt``."""
    ckpt = Path(checkpoint)
    model_path = ckpt / "model.pt" if ckpt.is_dir() else ckpt
    tok_path = model_path.parent / "tokenizer.json"
    for p in (model_path, tok_path):
        if not p.exists():
            raise FileNotFoundError(f"checkpoint: {p} not found (expected the --out folder of `lm train`)")
    model, extra = load_language_model(model_path)
    tok = load_tokenizer(tok_path)
    if len(tok) != model.config.vocab_size:
        raise ValueError(f"checkpoint: tokenizer has {len(tok)} tokens but the model expects "
                         f"{model.config.vocab_size}")
    return model, tok, extra


def predict(checkpoint: str | os.PathLike, prompt: str, *, strategy: str = "sample",
            temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
            beam_width: int = 4, max_new_tokens: int = 200, max_context: int | None = None,
            seed: int = 0, step_weights: str = "full", echo: Callable[[str], None] = _err) -> str:
    """The prompt followed by its continuation (notes on unseen characters and long prompts
    go to ``echo``); each generated token runs the LSTM's packed step with weights in
    ``step_weights`` precision ('full', 'bfloat16' or 'int8')."""
    if strategy not in ("greedy", "sample", "beam"):
        raise ValueError(f"strategy: expected 'greedy', 'sample' or 'beam', got {strategy!r}")
    model, tok, extra = load(checkpoint)
    model.lstm.set_step_weights(step_weights)
    if max_new_tokens < 0:
        raise ValueError(f"max-new-tokens: expected >= 0, got {max_new_tokens}")
    if not isinstance(prompt, str) or not prompt:
        raise ValueError("prompt: expected at least one character, got an empty prompt")
    unknown = tok.unknown(prompt)
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
        how = "encoded as UTF-8 byte tokens" if tok.byte_fallback else "mapped to <unk>"
        echo(f"note: the prompt has {len(unknown)} {tok.level}(s) not seen in training ({shown}); "
             f"{how}, so the model knows little about them")
    ids = tok.encode(prompt)
    max_context = max_context or int(extra.get("max_context", 1024))
    if max_context < 1:
        raise ValueError(f"max-context: expected >= 1, got {max_context}")
    if len(ids) > max_context:
        echo(f"note: the prompt is {len(ids)} tokens, longer than the context of {max_context}; "
             f"only its last {max_context} tokens condition the generation (--max-context to change)")
        ids = ids[-max_context:]
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    with torch.no_grad():
        last, state = model.prime(ids)
        if strategy == "greedy":
            new = greedy(model.step, last, state, max_new_tokens=max_new_tokens, eos_id=EOS_ID)[0]
        elif strategy == "sample":
            new = sample(model.step, last, state, max_new_tokens=max_new_tokens,
                         temperature=temperature, top_k=top_k, top_p=top_p, generator=g, eos_id=EOS_ID)[0]
        else:
            hyps = beam_search(model.step, last, state, beam_width=beam_width,
                               max_new_tokens=max_new_tokens, eos_id=EOS_ID)
            for i, h in enumerate(hyps):
                echo(f"beam {i}: score {h.score:.4f}, log-prob {h.log_prob:.3f}, {len(h.tokens)} tokens")
            new = torch.tensor(hyps[0].tokens, dtype=torch.long)
    return prompt + tok.decode(new)


generate = predict


def config_fields() -> list[str]:
    """The flag names (the CLI checks it covers them all)."""
    return [f.name for f in fields(LMConfig)]


def config_from_flags(flags: dict, toml_path: str | None = None) -> LMConfig:
    """The config of ``lstmkit lm train``: ``flags`` (every field, ``out`` None when not given)
    over the fields of a TOML file (:mod:`lstmkit.jobs._config`); ``max_time <= 0`` means no
    time limit."""
    kw = merge_config_file(LMConfig, flags, toml_path)
    if not kw.get("out"):
        raise ValueError("--out: expected an output folder (flag or --config field), got none")
    if kw.get("max_time") is not None and kw["max_time"] <= 0:
        kw["max_time"] = None
    return LMConfig(**kw)
