"""Labelled sequences for classification and tagging: sources, CSV/CoNLL readers, batching.

Symbols: N examples, B batch, T time steps or tokens (padded), C channels, W characters per
token (padded).

Containers:
- ``SeriesSet(series, labels)``: ``series`` a list of float32 arrays (T_i, C) (unequal lengths
  kept as they are), ``labels`` an array of strings.
- ``TextSet(texts, labels)`` and ``TagSet(sentences, tags, groups)``: lists of strings, of token
  lists and of tag lists; ``groups`` names where each sentence came from (a file) so splits can
  keep whole groups apart.

Sources (all offline): aeon's shipped UCR/UEA problems (official train/test splits), Debian's
``fortunes`` (category = label), the Python standard library's own source labelled by
:mod:`tokenize`, and your CSV/CoNLL files.

Bad input: an empty series or text, NaN/Inf in a series, a CSV row with the wrong number of
fields, a CoNLL line without a tag raise ``ValueError`` naming the file and line.

>>> s = read_series_rows(["a,1,2,3", "b,4,5"], "demo.csv")
>>> [x.shape for x in s.series], s.labels.tolist()
([(3, 1), (2, 1)], ['a', 'b'])
"""

from __future__ import annotations

import csv
import io
import keyword
import math
import os
import re
import sysconfig
import tokenize
import zlib
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

PAD, UNK = 0, 1


@dataclass
class SeriesSet:
    series: list[np.ndarray]  # N arrays (T_i, C)
    labels: np.ndarray  # (N,) str

    def __len__(self) -> int:
        return len(self.series)

    def subset(self, idx) -> SeriesSet:
        return SeriesSet([self.series[i] for i in idx], self.labels[np.asarray(idx, dtype=int)])


@dataclass
class TextSet:
    texts: list[str]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx) -> TextSet:
        return TextSet([self.texts[i] for i in idx], self.labels[np.asarray(idx, dtype=int)])


@dataclass
class TagSet:
    sentences: list[list[str]]
    tags: list[list[str]]
    groups: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sentences)

    def subset(self, idx) -> TagSet:
        g = [self.groups[i] for i in idx] if self.groups else []
        return TagSet([self.sentences[i] for i in idx], [self.tags[i] for i in idx], g)


def check_series(series: list[np.ndarray], where: str = "series") -> None:
    """Every series (T_i, C) non-empty, finite, with the same C."""
    if not series:
        raise ValueError(f"{where}: expected at least one series, got none")
    C = series[0].shape[1]
    for i, s in enumerate(series):
        if s.ndim != 2 or s.shape[0] == 0:
            raise ValueError(f"{where}: series {i} is empty (expected >= 1 time step)")
        if s.shape[1] != C:
            raise ValueError(f"{where}: series {i} has {s.shape[1]} channels, expected {C}")
        if not np.isfinite(s).all():
            t = int(np.argwhere(~np.isfinite(s))[0, 0])
            raise ValueError(f"{where}: series {i} has NaN/Inf at step {t}; expected finite values "
                             "(impute or drop them first)")


# --- aeon UCR/UEA ----------------------------------------------------------------------------
def aeon_problem(name: str, split: str) -> SeriesSet:
    """One of aeon's shipped problems, its official ``split`` ("train" or "test")."""
    from aeon.datasets import load_classification

    X, y = load_classification(name, split=split)
    # equal length: (N, C, T) array; unequal: a list of (C, T_i) arrays
    series = [np.ascontiguousarray(np.asarray(x, dtype=np.float32).T) for x in X]  # (T_i, C)
    return SeriesSet(series, np.asarray(y).astype(str))


# --- Debian fortunes -------------------------------------------------------------------------
FORTUNES_DIR = "/usr/share/games/fortunes"


def fortunes(folder: str = FORTUNES_DIR, min_count: int = 2) -> TextSet:
    """Every fortune of every category file (the label); categories with fewer than
    ``min_count`` fortunes are left out. Texts are whitespace-normalised, duplicates dropped."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"fortunes: no folder {folder!r}; install Debian's 'fortunes' "
                                "package (apt-get install fortunes)")
    texts, labels, seen = [], [], set()
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if "." in name or not os.path.isfile(path):
            continue
        u8 = path + ".u8"
        with open(u8 if os.path.isfile(u8) else path, encoding="utf-8", errors="replace") as f:
            raw = f.read()
        items = []
        for block in re.split(r"^%\s*$", raw, flags=re.M):
            text = re.sub(r"\s+", " ", block.replace("\b", "")).strip()
            if text and text not in seen:
                seen.add(text)
                items.append(text)
        if len(items) >= min_count:
            texts += items
            labels += [name] * len(items)
    return TextSet(texts, np.asarray(labels))


# --- Python standard library tokens ----------------------------------------------------------
def _token_tag(tok: tokenize.TokenInfo) -> str | None:
    name = tokenize.tok_name[tok.type]
    if name in ("ENCODING", "INDENT", "DEDENT", "ENDMARKER"):
        return None
    if name == "NAME" and keyword.iskeyword(tok.string):
        return "KEYWORD"
    return name


def tokenize_source(text: str, group: str, max_len: int = 200, target: int = 60) -> TagSet:
    """Token strings and their :mod:`tokenize` types (NAME, KEYWORD, OP, NUMBER, STRING, COMMENT,
    NEWLINE, NL, ...), cut into sequences of whole logical lines (about ``target`` tokens, at
    most ``max_len``). Line breaks are written ``\\n``."""
    out = TagSet([], [], [])
    toks, tags = [], []
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        tag = _token_tag(tok)
        if tag is None:
            continue
        s = "\\n" if tag in ("NEWLINE", "NL") else tok.string
        toks.append(s)
        tags.append(tag)
        if (tag == "NEWLINE" and len(toks) >= target) or len(toks) >= max_len:
            out.sentences.append(toks)
            out.tags.append(tags)
            out.groups.append(group)
            toks, tags = [], []
    if toks:
        out.sentences.append(toks)
        out.tags.append(tags)
        out.groups.append(group)
    return out


def stdlib_files() -> list[str]:
    """The standard library's top-level ``*.py`` files, in a fixed pseudo-random order."""
    root = sysconfig.get_paths()["stdlib"]
    names = [n for n in os.listdir(root) if n.endswith(".py")]
    return [os.path.join(root, n) for n in sorted(names, key=lambda n: (zlib.crc32(n.encode()), n))]


def stdlib_tokens(split: str, train_tokens: int = 120_000, test_tokens: int = 40_000) -> TagSet:
    """Token tagging on the standard library's source, split by file: the first files of
    :func:`stdlib_files` until ``test_tokens`` form the test split, the next ones until
    ``train_tokens`` the train split, so no test file is ever seen in training."""
    if split not in ("train", "test"):
        raise ValueError(f"split: expected 'train' or 'test', got {split!r}")
    return stdlib_token_splits(train_tokens, test_tokens)[split]


def stdlib_token_splits(train_tokens: int = 120_000, test_tokens: int = 40_000) -> dict[str, TagSet]:
    """Both splits of :func:`stdlib_tokens` from one pass over the files."""
    parts = {"test": TagSet([], [], []), "train": TagSet([], [], [])}
    budget = {"test": test_tokens, "train": train_tokens}
    for path in stdlib_files():
        cur = "test" if budget["test"] > 0 else "train"
        if budget[cur] <= 0:
            break
        try:
            with open(path, encoding="utf-8") as f:
                ts = tokenize_source(f.read(), os.path.basename(path))
        except (SyntaxError, UnicodeDecodeError, tokenize.TokenError):
            continue
        n = sum(len(s) for s in ts.sentences)
        if n > budget[cur] + 20_000:  # keep one huge file from taking a whole split
            continue
        budget[cur] -= n
        p = parts[cur]
        p.sentences += ts.sentences
        p.tags += ts.tags
        p.groups += ts.groups
        if cur == "train" and budget["train"] <= 0:
            break
    return parts


# --- CSV / CoNLL -----------------------------------------------------------------------------
def read_series_rows(lines, where: str) -> SeriesSet:
    """Rows ``label,x_1,...,x_T`` (one univariate series per row; rows may differ in length,
    trailing empty cells are ignored, an empty cell inside a row is a missing value and an error;
    a first row whose values are not numbers is a header)."""
    series, labels = [], []
    for i, row in enumerate(csv.reader(lines), start=1):
        if not row or all(not c.strip() for c in row):
            continue
        cells = [c.strip() for c in row]
        while cells and cells[-1] == "":
            cells.pop()
        label, vals = cells[0], cells[1:]
        try:
            x = np.array([float(v) if v else np.nan for v in vals], dtype=np.float32)
        except ValueError:
            if i == 1 and not series:
                continue  # header
            bad = next(v for v in vals if not _is_float(v))
            raise ValueError(f"{where}: line {i}: expected numbers after the label, got {bad!r}") from None
        if x.size == 0:
            raise ValueError(f"{where}: line {i}: empty series (expected label,x_1,...,x_T)")
        if not np.isfinite(x).all():
            raise ValueError(f"{where}: line {i}: NaN/Inf/missing value at step "
                             f"{int(np.argmin(np.isfinite(x)))}; "
                             "expected finite values (impute or drop them first)")
        series.append(x[:, None])
        labels.append(label)
    if not series:
        raise ValueError(f"{where}: no rows (expected label,x_1,...,x_T per line)")
    return SeriesSet(series, np.asarray(labels))


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def read_text_rows(lines, where: str) -> TextSet:
    """A CSV with a header holding ``text`` and ``label`` columns (``label`` may be empty when
    predicting). A row with a different number of fields than the header is an error."""
    reader = csv.reader(lines)
    header = next(reader, None)
    if not header or "text" not in header:
        raise ValueError(f"{where}: expected a header with a 'text' column (and 'label'), got {header}")
    ti, li = header.index("text"), header.index("label") if "label" in header else None
    texts, labels = [], []
    for i, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise ValueError(f"{where}: line {i}: expected {len(header)} fields like the header, "
                             f"got {len(row)} (quote texts that hold commas)")
        text = row[ti].strip()
        if not text:
            raise ValueError(f"{where}: line {i}: empty text")
        texts.append(text)
        labels.append(row[li].strip() if li is not None else "")
    if not texts:
        raise ValueError(f"{where}: no rows after the header")
    return TextSet(texts, np.asarray(labels))


def is_text_csv(path: str) -> bool:
    with open(path, encoding="utf-8", newline="") as f:
        first = next(csv.reader(f), [])
    return "text" in [c.strip() for c in first]


def read_csv_set(path: str) -> SeriesSet | TextSet:
    """A text CSV (header with ``text``) or a series CSV (``label,x_1..x_T`` rows)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--csv: no such file {path!r}")
    with open(path, encoding="utf-8", newline="") as f:
        lines = f.read().splitlines()
    return read_text_rows(lines, path) if is_text_csv(path) else read_series_rows(lines, path)


def read_conll(path: str, *, require_tags: bool = True) -> TagSet:
    """CoNLL-style ``token tag`` lines (whitespace-separated; first field the token, last the
    tag), a blank line between sentences. With ``require_tags=False`` (data to predict on) a
    line may hold the token alone, and its tag is ``""``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--conll: no such file {path!r}")
    out = TagSet([], [], [])
    toks, tags = [], []

    def close():
        if toks:
            out.sentences.append(toks)
            out.tags.append(tags)
            out.groups.append(path)

    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            parts = line.split()
            if not parts or parts[0] == "-DOCSTART-":
                close()
                toks, tags = [], []
                continue
            if len(parts) < 2 and require_tags:
                raise ValueError(f"{path}: line {i}: expected 'token tag', got {line.strip()!r}")
            toks.append(parts[0])
            tags.append(parts[-1] if len(parts) > 1 else "")
    close()
    if not out.sentences:
        raise ValueError(f"{path}: no sentences (expected 'token tag' lines)")
    return out


# --- vocabulary and batching -----------------------------------------------------------------
_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Lower-cased words and punctuation marks."""
    return _WORD.findall(text.lower())


class Vocab:
    """token <-> id with ``<pad>`` = 0 and ``<unk>`` = 1; built from training data only."""

    def __init__(self, itos: list[str]) -> None:
        self.itos = list(itos)
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    @classmethod
    def build(cls, sequences, min_freq: int = 1, max_size: int | None = None) -> Vocab:
        counts = Counter(t for seq in sequences for t in seq)
        keep = [t for t, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_freq]
        return cls(["<pad>", "<unk>"] + keep[:max_size])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, seq) -> list[int]:
        return [self.stoi.get(t, UNK) for t in seq]


def pad_series(series: list[np.ndarray]) -> tuple[Tensor, Tensor]:
    """N arrays (T_i, C) -> (N, T_max, C) zero-padded, lengths (N,)."""
    lengths = torch.tensor([len(s) for s in series], dtype=torch.long)
    x = torch.zeros(len(series), int(lengths.max()), series[0].shape[1])
    for i, s in enumerate(series):
        x[i, :len(s)] = torch.from_numpy(np.asarray(s, dtype=np.float32))
    return x, lengths


def pad_ids(seqs: list[list[int]], fill: int = PAD) -> tuple[Tensor, Tensor]:
    """Id lists -> (N, T_max) padded with ``fill``, lengths (N,)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), max(1, int(lengths.max()))), fill, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = torch.tensor(s, dtype=torch.long)
    return out, lengths


def clip_word(w: str, keep: int = 10) -> str:
    """A long token keeps its first and last ``keep`` characters (its quotes, prefix, suffix)."""
    return w if len(w) <= 2 * keep else w[:keep] + w[-keep:]


def unique_char_ids(sentences: list[list[str]], chars: Vocab,
                    keep: int = 10) -> tuple[Tensor, Tensor, Tensor]:
    """The batch's distinct words as (U, W_max) character ids and (U,) counts, and (N, T_max)
    indices into them; index 0 is the empty word used for padding tokens."""
    T = max(1, max(len(s) for s in sentences))
    distinct: dict[str, int] = {"": 0}
    index = torch.zeros(len(sentences), T, dtype=torch.long)
    for i, s in enumerate(sentences):
        for j, w in enumerate(s):
            index[i, j] = distinct.setdefault(clip_word(w, keep), len(distinct))
    enc = [chars.encode(w) for w in distinct]
    lens = torch.tensor([len(e) for e in enc], dtype=torch.long)
    ids = torch.zeros(len(enc), max(1, int(lens.max())), dtype=torch.long)
    for u, e in enumerate(enc):
        ids[u, :len(e)] = torch.tensor(e, dtype=torch.long)
    return ids, lens, index


def stratified_split(labels: np.ndarray, size: float | int, seed: int,
                     name: str = "val_size") -> tuple[np.ndarray, np.ndarray]:
    """Indices (keep, held out) with ``size`` (a fraction or a count) held out, stratified by
    label. A class with a single example stays in the kept part (it cannot be in both)."""
    n = len(labels)
    k = int(round(size * n)) if isinstance(size, float) and size < 1 else int(size)
    if not 0 < k < n:
        raise ValueError(f"{name}: expected a fraction in (0, 1) or a count in [1, {n - 1}], got {size}")
    rng = np.random.default_rng(seed)
    counts = Counter(labels.tolist())
    keep, held = [], []
    for label in sorted(counts):
        idx = np.flatnonzero(labels == label)
        rng.shuffle(idx)
        m = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, int(math.floor(len(idx) * k / n + 0.5))))
        held += idx[:m].tolist()
        keep += idx[m:].tolist()
    return np.sort(np.array(keep, dtype=int)), np.sort(np.array(held, dtype=int))
