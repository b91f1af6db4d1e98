"""Classification and tagging sets for the catalogue (data/datasets.py).

Each aeon problem returns ``{"train": SeriesSet, "test": SeriesSet}`` with the official split;
``fortunes`` returns a ``TextSet`` (no official split: the job holds out a stratified part);
``stdlib_tokens`` returns ``{"train": TagSet, "test": TagSet}`` split by file.
"""

from __future__ import annotations

from .datasets import register

_UCR = "UCR/UEA archive (timeseriesclassification.com), shipped inside aeon 1.6.0"
_LIC = "UCR/UEA archive terms (free for research), via aeon (BSD-3)"

# catalogue name -> (aeon name, one line about it)
AEON_PROBLEMS = {
    "gunpoint": ("GunPoint", "50/150, length 150, 2 classes, univariate"),
    "italypowerdemand": ("ItalyPowerDemand", "67/1029, length 24, 2 classes, univariate"),
    "arrowhead": ("ArrowHead", "36/175, length 251, 3 classes, univariate"),
    "osuleaf": ("OSULeaf", "200/242, length 427, 6 classes, univariate"),
    "acsf1": ("ACSF1", "100/100, length 1460, 10 classes, univariate"),
    "basicmotions": ("BasicMotions", "40/40, 6 channels x 100, 4 classes, multivariate"),
    "japanesevowels": ("JapaneseVowels", "270/370, 12 channels x 7..29, 9 classes, "
                                         "multivariate, unequal length"),
    "pickupgesturewiimotez": ("PickupGestureWiimoteZ", "50/50, length 29..361, 10 classes, "
                                                       "univariate, unequal length"),
}


def _aeon_loader(aeon_name: str):
    def load():
        from .labelled import aeon_problem

        return {"train": aeon_problem(aeon_name, "train"), "test": aeon_problem(aeon_name, "test")}

    load.__doc__ = f"aeon's {aeon_name}: official train/test split as SeriesSets."
    return load


for _name, (_aeon, _about) in AEON_PROBLEMS.items():
    register(_name, task="classify", provenance=f"{_UCR}: {_aeon}, {_about}", licence=_LIC,
             needs="aeon (extra 'classify')")(_aeon_loader(_aeon))


@register("fortunes", task="classify", needs="Debian package 'fortunes'",
          licence="BSD (Debian fortunes-min/fortunes)",
          provenance="/usr/share/games/fortunes: ~15k short texts, the category file is the label")
def fortunes():
    from .labelled import fortunes as load

    return load()


@register("stdlib_tokens", task="tag", licence="PSF licence (the Python standard library)",
          provenance="the running Python's standard library *.py, labelled by the tokenize module; "
                     "split by file")
def stdlib_tokens(train_tokens: int = 120_000, test_tokens: int = 40_000):
    from .labelled import stdlib_token_splits

    return stdlib_token_splits(train_tokens, test_tokens)
