"""Labelled series for anomaly detection, your own CSV, and the checks every detector needs.

Symbols: N time points, F features, T window length.

An :class:`AnomalySeries` holds normal training data (``train``; the detectors assume it is
clean) and a labelled test part (``test``, ``test_labels`` 0/1 per point). ``continues`` says
whether ``test`` follows ``train`` in time (then scoring may read ``train`` as the past of
``test``). ``labelled_val`` is a further labelled series (never the test) on which a threshold
may be tuned; most sources have none.

>>> import numpy as np
>>> s = one_class_stream([np.zeros((1, 4))] * 3, np.array(["a", "a", "b"]), normal="a")
>>> s[0][:, 0].tolist(), s[1].tolist()
([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .split import resolve_size


@dataclass
class AnomalySeries:
    name: str
    train: np.ndarray  # (N_tr, F) normal training data
    test: np.ndarray  # (N_te, F)
    test_labels: np.ndarray | None  # (N_te,) 0/1; None when unknown
    continues: bool = True  # test[0] follows train[-1] in time
    train_labels: np.ndarray | None = None  # (N_tr,) if the source labels its training part
    labelled_val: tuple[np.ndarray, np.ndarray] | None = None  # (values (N_v, F), labels (N_v,))
    offset: int = 0  # index of test[0] in the source's own numbering (the UCR protocol uses it)
    about: str = ""
    columns: list[str] = field(default_factory=lambda: ["value"])

    def __post_init__(self) -> None:
        self.train = _as_2d(self.train, "train")
        self.test = _as_2d(self.test, "test")
        if self.train.shape[1] != self.test.shape[1]:
            raise ValueError(f"test: expected {self.train.shape[1]} features like train, got "
                             f"{self.test.shape[1]}")
        for name, n in (("test_labels", len(self.test)), ("train_labels", len(self.train))):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v).astype(np.int64).ravel()
                if len(v) != n or not np.isin(v, (0, 1)).all():
                    raise ValueError(f"{name}: expected {n} labels in {{0, 1}}, got {len(v)} "
                                     f"with values {sorted(set(v.tolist()))[:5]}")
                setattr(self, name, v)


def _as_2d(x, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name}: expected a non-empty (N,) or (N, F) series, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: expected finite values, got {int((~np.isfinite(x)).sum())} "
                         f"NaN/Inf (impute them first)")
    return x


def segments(labels: np.ndarray) -> list[tuple[int, int]]:
    """Runs of 1 in a 0/1 array as half-open ``(start, end)`` pairs.

    >>> segments(np.array([0, 1, 1, 0, 1]))
    [(1, 3), (4, 5)]
    """
    y = np.asarray(labels).astype(np.int8).ravel()
    d = np.diff(np.concatenate([[0], y, [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def check_training_data(s: AnomalySeries, window: int, warn=True) -> int:
    """The errors and warnings every detector shares; returns the labelled anomalies in ``train``.

    Raises for a constant training series (nothing to model) and for a window longer than the
    training data; warns (with the count) when the clean-data assumption is broken by labels."""
    n = len(s.train)
    if window > n // 2:
        raise ValueError(f"window: expected at most half the training data ({n // 2} of {n} "
                         f"points, to leave validation windows), got {window}")
    if window > len(s.test) and not s.continues:
        raise ValueError(f"window: expected at most the test length {len(s.test)}, got {window}")
    spread = s.train.std(axis=0)
    if (spread < 1e-12).all():
        raise ValueError(f"train: the series is constant ({s.train[0].tolist()}): there is nothing "
                         f"to learn what normal looks like from")
    bad = int(s.train_labels.sum()) if s.train_labels is not None else 0
    if bad and warn:
        warnings.warn(f"train: {bad} of {n} training points are labelled anomalous, but the "
                      f"detectors assume clean training data; they are kept (drop them or move "
                      f"the split with train_size)", UserWarning, stacklevel=2)
    return bad


def read_csv(path: str | os.PathLike, value: list[str] | None = None, label: str | None = None,
             train_size: int | float = 0.3, name: str | None = None) -> AnomalySeries:
    """A CSV with numeric value column(s) and an optional 0/1 ``label`` column; the first
    ``train_size`` points (count or fraction) are the training part, the rest the test."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"csv: no such file {path!r}")
    df = pd.read_csv(path)
    if label is not None and label not in df.columns:
        raise ValueError(f"label: expected a column of {list(df.columns)}, got {label!r}")
    if value:
        missing = [c for c in value if c not in df.columns]
        if missing:
            raise ValueError(f"value: expected columns of {list(df.columns)}, got {missing}")
        cols = list(value)
    else:
        cols = [c for c in df.columns if c != label and pd.api.types.is_numeric_dtype(df[c])]
        if not cols:
            raise ValueError(f"csv {path!r}: expected at least one numeric value column, got "
                             f"{list(df.columns)}")
    x = df[cols].to_numpy(dtype=np.float64)
    y = None
    if label is not None:
        y = pd.to_numeric(df[label], errors="coerce").to_numpy()
        if np.isnan(y).any() or not np.isin(y, (0, 1)).all():
            raise ValueError(f"label: expected 0/1 values in column {label!r}, got "
                             f"{sorted(set(df[label].astype(str)))[:5]}")
        y = y.astype(np.int64)
    n_tr = resolve_size(train_size, len(x), "train_size")
    if not 0 < n_tr < len(x):
        raise ValueError(f"train_size: expected between 1 and {len(x) - 1} points, got {n_tr}")
    return AnomalySeries(name or os.path.basename(path), x[:n_tr], x[n_tr:],
                         None if y is None else y[n_tr:], continues=True,
                         train_labels=None if y is None else y[:n_tr], offset=n_tr,
                         about=f"{path}: first {n_tr} points train", columns=cols)


def one_class_stream(series: list[np.ndarray], labels: np.ndarray, normal,
                     anomaly_share: float | None = None, seed: int = 0):
    """The "one class is normal" protocol: concatenate a collection's instances (each (C, L) as
    aeon stores them) into one stream, in a seeded order; points of other classes are labelled 1.
    With ``anomaly_share`` only that share of the stream's instances are drawn from the other
    classes (all normal instances are kept). Returns ``(values (N, C), labels (N,))``."""
    labels = np.asarray(labels)
    normal_idx = np.flatnonzero(labels == normal)
    other = np.flatnonzero(labels != normal)
    if len(normal_idx) == 0:
        raise ValueError(f"normal: expected one of the classes {sorted(set(labels.tolist()))}, "
                         f"got {normal!r}")
    rng = np.random.default_rng(seed)
    if anomaly_share is not None:
        k = int(round(anomaly_share / (1 - anomaly_share) * len(normal_idx)))
        other = rng.choice(other, size=min(k, len(other)), replace=False)
        order = rng.permutation(np.concatenate([normal_idx, other]))
    else:
        order = np.arange(len(labels))
    xs = [np.asarray(series[i], dtype=np.float64).T for i in order]  # each (L, C)
    ys = [np.full(len(x), int(labels[i] != normal)) for i, x in zip(order, xs)]
    return np.concatenate(xs), np.concatenate(ys)
