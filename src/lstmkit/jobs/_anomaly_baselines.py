"""The detectors a practitioner tries before an LSTM (Wu & Keogh 2021 and the field's libraries).

Symbols: N points, F features, T window length.

Each takes the series to score (N, F) and returns one score per point (N,), high = anomalous;
points a detector cannot score yet (the first T - 1 of a window method) get its lowest score.

- ``abs_diff``: ``|x_t - x_{t-1}|`` (summed over features), Wu & Keogh's one-liner;
- ``moving_zscore``: ``|x_t - mean| / std`` of the T points before t (causal);
- ``isolation_forest``: scikit-learn's IsolationForest fitted on the training windows, scoring
  the window that ends at each point;
- ``discord``: stumpy's matrix profile (self-join, subsequence length T); a point's score is the
  largest nearest-neighbour distance among the subsequences that contain it.

>>> x = np.r_[np.zeros(10), 5.0, np.zeros(9)][:, None]
>>> int(np.argmax(abs_diff(x))), int(np.argmax(moving_zscore(x, 4)))
(10, 10)
"""

from __future__ import annotations

import numpy as np

NAMES = ("abs_diff", "moving_zscore", "isolation_forest", "discord")


def _fill(s: np.ndarray) -> np.ndarray:
    ok = np.isfinite(s)
    return np.where(ok, s, s[ok].min() if ok.any() else 0.0)


def abs_diff(x: np.ndarray) -> np.ndarray:
    d = np.abs(np.diff(x, axis=0)).sum(axis=1)
    return np.concatenate([[0.0], d])


def moving_zscore(x: np.ndarray, window: int) -> np.ndarray:
    import pandas as pd

    df = pd.DataFrame(x)
    past = df.shift(1).rolling(window, min_periods=window)
    sd = past.std(ddof=0).to_numpy()
    z = np.abs(x - past.mean().to_numpy()) / np.where(sd > 1e-12, sd, 1e-12)
    return _fill(z.max(axis=1))


def _windows(x: np.ndarray, window: int) -> np.ndarray:
    """(N, F) -> (N - T + 1, T * F): the window ending at each point from T - 1 on."""
    w = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)  # (W, F, T)
    return w.reshape(w.shape[0], -1)


class IsolationForestBaseline:
    def __init__(self, window: int, seed: int = 0, max_train: int = 5000) -> None:
        self.window, self.seed, self.max_train = window, seed, max_train

    def fit(self, train: np.ndarray) -> IsolationForestBaseline:
        from sklearn.ensemble import IsolationForest

        w = _windows(train, self.window)
        if len(w) > self.max_train:
            w = w[np.random.default_rng(self.seed).choice(len(w), self.max_train, replace=False)]
        self.model = IsolationForest(random_state=self.seed, n_jobs=1).fit(w)
        return self

    def score(self, x: np.ndarray) -> np.ndarray:
        s = np.full(len(x), np.nan)
        s[self.window - 1:] = -self.model.score_samples(_windows(x, self.window))
        return _fill(s)


def discord(x: np.ndarray, window: int) -> np.ndarray:
    import stumpy

    if x.shape[1] == 1:
        mp = stumpy.stump(np.ascontiguousarray(x[:, 0]), window)[:, 0].astype(np.float64)
    else:  # multivariate: the mean of the per-dimension profiles
        mp = np.mean([stumpy.stump(np.ascontiguousarray(x[:, f]), window)[:, 0].astype(np.float64)
                      for f in range(x.shape[1])], axis=0)
    mp = np.where(np.isfinite(mp), mp, np.nan)
    # a point's score: the largest profile value among the subsequences covering it
    import pandas as pd

    padded = np.concatenate([mp, np.full(window - 1, np.nan)])
    s = pd.Series(padded).rolling(window, min_periods=1).max().to_numpy()
    return _fill(s)
