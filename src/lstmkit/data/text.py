"""Text for language modelling: tokenizers, vocabulary, corpora and stream batching.

Symbols: N tokens in a stream, B parallel streams (batch), T chunk length (bptt).

- ``Vocabulary``: id <-> token with the specials ``<pad> <bos> <eos> <unk>`` at ids 0..3,
  then the 256 byte tokens ``<0x00> .. <0xFF>`` (the byte-level fallback), then the
  tokens learnt from the training text.
- ``CharTokenizer`` / ``WordTokenizer``: ``encode(text) -> list[int]``, ``decode(ids) -> str``.
  A character (or word) never seen in training is written as its UTF-8 bytes, so
  ``decode(encode(s)) == s`` for every string; ``byte_fallback=False`` maps it to ``<unk>``.
- ``save(path)`` / ``load_tokenizer(path)``: JSON, written atomically.
- ``stream_batches(tokens, batch_size, bptt)``: the token stream cut into B contiguous
  streams, yielding ``(x, y)`` chunks of shape (B, T) with ``y`` the next tokens — row b of
  chunk k+1 continues row b of chunk k, so a stateful model carries its state across chunks.
  ``StreamLoader`` is the same as a sized, re-iterable loader for ``train.Trainer``.

>>> tok = CharTokenizer.fit(["hello world"])
>>> tok.decode(tok.encode("hello ∑"))
'hello ∑'
>>> tok.unknown("hello ∑")
['∑']
"""

from __future__ import annotations

import json
import os
import re
import sysconfig
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import torch
from torch import Tensor

from .._io import atomic_write_text  # noqa: F401  (re-exported for the CLI)

SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
BYTE_OFFSET = len(SPECIALS)  # byte b has id BYTE_OFFSET + b
_BYTE_TOKENS = tuple(f"<0x{b:02X}>" for b in range(256))
_WORD_RE = re.compile(r"\s+|\w+|[^\w\s]")  # whitespace runs, words, single punctuation


class Vocabulary:
    """Specials, then the 256 byte tokens, then learnt tokens (in the order given)."""

    pad_id, bos_id, eos_id, unk_id = PAD_ID, BOS_ID, EOS_ID, UNK_ID

    def __init__(self, tokens: Iterable[str] = ()) -> None:
        self.itos: list[str] = list(SPECIALS) + list(_BYTE_TOKENS)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}
        for t in tokens:
            if not isinstance(t, str):
                raise TypeError(f"tokens: expected str items, got {type(t).__name__}")
            if t not in self.stoi:
                self.stoi[t] = len(self.itos)
                self.itos.append(t)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: str) -> bool:
        return token in self.stoi

    @property
    def learnt(self) -> list[str]:
        """The tokens after the specials and bytes."""
        return self.itos[BYTE_OFFSET + 256:]

    def is_special(self, i: int) -> bool:
        return 0 <= i < BYTE_OFFSET


class _Tokenizer:
    level = ""

    def __init__(self, vocab: Vocabulary, byte_fallback: bool = True) -> None:
        self.vocab = vocab
        self.byte_fallback = bool(byte_fallback)

    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def _pieces(self, text: str) -> list[str]:
        raise NotImplementedError

    def unknown(self, text: str) -> list[str]:
        """Pieces (chars or words) of ``text`` not in the vocabulary, in order of appearance."""
        _check_text(text)
        seen: dict[str, None] = {}
        for p in self._pieces(text):
            if p not in self.vocab.stoi:
                seen.setdefault(p, None)
        return list(seen)

    def encode(self, text: str, *, add_bos: bool = False, add_eos: bool = False) -> list[int]:
        _check_text(text)
        ids = [BOS_ID] if add_bos else []
        stoi = self.vocab.stoi
        for p in self._pieces(text):
            i = stoi.get(p)
            if i is not None:
                ids.append(i)
            elif self.byte_fallback:
                ids.extend(BYTE_OFFSET + b for b in p.encode("utf-8"))
            else:
                ids.append(UNK_ID)
        if add_eos:
            ids.append(EOS_ID)
        return ids

    def decode(self, ids: Iterable[int] | Tensor, *, skip_special: bool = True) -> str:
        """Ids -> text. Runs of byte tokens are joined and decoded as UTF-8 (invalid -> U+FFFD)."""
        if isinstance(ids, Tensor):
            ids = ids.reshape(-1).tolist()
        out: list[str] = []
        pending = bytearray()
        n = len(self.vocab)
        for i in ids:
            i = int(i)
            if not 0 <= i < n:
                raise ValueError(f"ids: expected ids in [0, {n}), got {i}")
            if BYTE_OFFSET <= i < BYTE_OFFSET + 256:
                pending.append(i - BYTE_OFFSET)
                continue
            if pending:
                out.append(pending.decode("utf-8", errors="replace"))
                pending.clear()
            if i < BYTE_OFFSET:
                if not skip_special:
                    out.append(SPECIALS[i])
            else:
                out.append(self.vocab.itos[i])
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)

    # -- persistence ----------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"format": "lstmkit.tokenizer/1", "level": self.level,
                "byte_fallback": self.byte_fallback, "tokens": self.vocab.learnt}

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=0))


class CharTokenizer(_Tokenizer):
    """One token per Unicode character seen in training (most frequent first, ties by char)."""

    level = "char"

    def _pieces(self, text: str) -> list[str]:
        return list(text)

    @classmethod
    def fit(cls, texts: Iterable[str], *, max_size: int | None = None, min_freq: int = 1,
            byte_fallback: bool = True) -> CharTokenizer:
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(_check_text(t))
        return cls(_vocab_from_counts(counts, max_size, min_freq), byte_fallback)


class WordTokenizer(_Tokenizer):
    """Words, single punctuation marks and whitespace runs; ``decode(encode(s)) == s``."""

    level = "word"

    def _pieces(self, text: str) -> list[str]:
        return _WORD_RE.findall(text)

    @classmethod
    def fit(cls, texts: Iterable[str], *, max_size: int | None = 20000, min_freq: int = 2,
            byte_fallback: bool = True) -> WordTokenizer:
        counts: Counter[str] = Counter()
        for t in texts:
            counts.update(_WORD_RE.findall(_check_text(t)))
        return cls(_vocab_from_counts(counts, max_size, min_freq), byte_fallback)


def _check_text(text) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    return text


def _vocab_from_counts(counts: Counter, max_size: int | None, min_freq: int) -> Vocabulary:
    if max_size is not None and max_size < 0:
        raise ValueError(f"max_size: expected >= 0 or None, got {max_size}")
    if min_freq < 1:
        raise ValueError(f"min_freq: expected >= 1, got {min_freq}")
    items = sorted(((c, t) for t, c in counts.items() if c >= min_freq and t not in SPECIALS
                    and t not in _BYTE_TOKENS), key=lambda ct: (-ct[0], ct[1]))
    if max_size is not None:
        items = items[:max_size]
    return Vocabulary(t for _, t in items)


def make_tokenizer(level: str, texts: Iterable[str], **kw) -> CharTokenizer | WordTokenizer:
    """Fit a tokenizer of the given level ("char" or "word")."""
    if level == "char":
        return CharTokenizer.fit(texts, **kw)
    if level == "word":
        return WordTokenizer.fit(texts, **kw)
    raise ValueError(f"level: expected 'char' or 'word', got {level!r}")


def load_tokenizer(path: str | os.PathLike) -> CharTokenizer | WordTokenizer:
    """Load a tokenizer written by ``save``."""
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    if not isinstance(d, dict) or d.get("format") != "lstmkit.tokenizer/1":
        raise ValueError(f"path: expected an lstmkit tokenizer JSON file, got {path}")
    cls = {"char": CharTokenizer, "word": WordTokenizer}.get(d.get("level"))
    if cls is None:
        raise ValueError(f"path: unknown tokenizer level {d.get('level')!r} in {path}")
    return cls(Vocabulary(d["tokens"]), d.get("byte_fallback", True))


# -- corpora ----------------------------------------------------------------------------
def read_text_file(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file; a binary file (NUL bytes or invalid UTF-8) raises ValueError."""
    data = Path(path).read_bytes()
    if b"\x00" in data[:65536]:
        raise ValueError(f"text: {path} looks like a binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"text: {path} is not UTF-8 text ({e.reason} at byte {e.start})") from None


def read_corpus(paths: Iterable[str | os.PathLike], *, echo: Callable[[str], None] = print) -> list[str]:
    """Read text files, skipping binary ones with a message; raises ValueError if nothing is left."""
    texts, skipped = [], []
    for p in paths:
        try:
            t = read_text_file(p)
        except ValueError as e:
            skipped.append(str(p))
            echo(f"skipping {p}: {str(e).removeprefix('text: ')}")
            continue
        if t:
            texts.append(t)
    if not texts or not any(t.strip() for t in texts):
        extra = f" ({len(skipped)} binary file(s) skipped)" if skipped else ""
        raise ValueError(f"text: the corpus is empty{extra}; give text files with some content")
    return texts


def stdlib_corpus(max_chars: int = 2_000_000, *, skip: int = 0) -> list[str]:
    """A real corpus every machine has: the Python standard library's top-level .py files.

    Files are taken in sorted name order (deterministic for a given Python), skipping the
    first ``skip`` files, until ``max_chars`` characters are collected."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(root.glob("*.py"))
    if not files:
        raise ValueError(f"text: no .py files found in the standard library at {root}")
    texts, total = [], 0
    for f in files[skip:]:
        try:
            t = read_text_file(f)
        except (ValueError, OSError):
            continue
        t = t[: max_chars - total]
        texts.append(t)
        total += len(t)
        if total >= max_chars:
            break
    return texts


# -- batching ---------------------------------------------------------------------------
def batchify(tokens: Tensor | list[int], batch_size: int) -> Tensor:
    """Cut a stream (N,) into ``batch_size`` contiguous rows (B, N // B); the tail is dropped."""
    tokens = torch.as_tensor(tokens, dtype=torch.long)
    if tokens.dim() != 1:
        raise ValueError(f"tokens: expected a 1-D stream, got shape {tuple(tokens.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    n = tokens.numel() // batch_size
    if n < 2:
        raise ValueError(f"tokens: expected at least {2 * batch_size} tokens for batch_size="
                         f"{batch_size}, got {tokens.numel()}")
    return tokens[: n * batch_size].view(batch_size, n)  # (B, N // B)


def stream_batches(tokens: Tensor | list[int], batch_size: int, bptt: int) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield ``(x, y)`` chunks, each (B, T) (the last may be shorter), ``y[:, t] = x[:, t+1]``.

    >>> [x.tolist() for x, _ in stream_batches(list(range(10)), 2, 2)]
    [[[0, 1], [5, 6]], [[2, 3], [7, 8]]]
    """
    return iter(StreamLoader(tokens, batch_size, bptt))


class StreamLoader:
    """A re-iterable, sized loader of ``stream_batches`` chunks (what ``train.Trainer`` walks).

    Every pass yields the same chunks in the same order (rows are contiguous streams, so a
    stateful model carries its state from one chunk to the next); ``len`` is chunks per pass.

    >>> loader = StreamLoader(list(range(10)), batch_size=2, bptt=2)
    >>> len(loader), [x.tolist() for x, _ in loader][0]
    (2, [[0, 1], [5, 6]])
    """

    def __init__(self, tokens: Tensor | list[int], batch_size: int, bptt: int) -> None:
        if not isinstance(bptt, int) or bptt < 1:
            raise ValueError(f"bptt: expected an int >= 1, got {bptt!r}")
        self.rows = batchify(tokens, batch_size)  # (B, N // B)
        self.batch_size, self.bptt = batch_size, bptt

    def __len__(self) -> int:
        return -(-(self.rows.shape[1] - 1) // self.bptt)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = self.rows.shape[1] - 1
        for t0 in range(0, n, self.bptt):
            t1 = min(t0 + self.bptt, n)
            yield self.rows[:, t0:t1], self.rows[:, t0 + 1: t1 + 1]  # (B, T), (B, T)
