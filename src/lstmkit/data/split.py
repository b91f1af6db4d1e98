"""Chronological train / validation / test split.

Symbols: N number of time points.

A size is either a count of points (int >= 1) or a fraction of N (float in (0, 1)). The test
split is the last ``test_size`` points, validation the ``val_size`` points before it, train the
rest: no point of a later split is ever seen while fitting an earlier one.

>>> chronological_split(100, test_size=0.2, val_size=10)
(slice(0, 70, None), slice(70, 80, None), slice(80, 100, None))
"""

from __future__ import annotations

from numbers import Integral, Real


def resolve_size(size: int | float, n: int, name: str) -> int:
    """A count (int >= 0) or a fraction in (0, 1) of ``n`` -> a count of points."""
    if isinstance(size, bool) or not isinstance(size, Real):
        raise TypeError(f"{name}: expected an int count or a float fraction, got {type(size).__name__}")
    if isinstance(size, Integral) or float(size).is_integer() and size >= 1:
        count = int(size)
        if count < 0:
            raise ValueError(f"{name}: expected a count >= 0, got {size}")
        return count
    if not 0.0 < size < 1.0:
        raise ValueError(f"{name}: expected a fraction in (0, 1) or an integer count, got {size}")
    return max(1, round(size * n))


def chronological_split(n: int, test_size: int | float, val_size: int | float = 0,
                        min_train: int = 1) -> tuple[slice, slice, slice]:
    """Slices (train, val, test) over ``range(n)`` in time order."""
    n_test = resolve_size(test_size, n, "test_size")
    n_val = resolve_size(val_size, n, "val_size")
    n_train = n - n_test - n_val
    if n_train < min_train:
        raise ValueError(f"test_size/val_size: {n_test} test + {n_val} validation points leave "
                         f"{n_train} of {n} for training; expected at least {min_train}")
    return slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)
