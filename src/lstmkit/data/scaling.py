"""Per-feature standard scaling, fitted on the training split only, and its exact inverse.

Symbols: N time points, F features.

>>> import numpy as np
>>> x = np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]])
>>> s = StandardScaler().fit(x)
>>> np.allclose(s.inverse_transform(s.transform(x)), x)
True
"""

from __future__ import annotations

import numpy as np


class StandardScaler:
    """``(x - mean) / scale`` per column; a constant column gets scale 1 (no division by 0)."""

    def __init__(self) -> None:
        self.mean_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> StandardScaler:
        x = np.asarray(x, dtype=np.float64)  # (N, F)
        if x.ndim != 2 or x.shape[0] == 0:
            raise ValueError(f"x: expected a non-empty (N, F) array, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise ValueError("x: expected finite values to fit the scaler on (impute missing first)")
        self.mean_ = x.mean(axis=0)  # (F,)
        std = x.std(axis=0)
        self.scale_ = np.where(std > 1e-12, std, 1.0)
        return self

    def _check(self, x: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise ValueError("StandardScaler: call fit() (or load_state_dict()) first")
        x = np.asarray(x, dtype=np.float64)
        if x.shape[-1] != self.mean_.shape[0]:
            raise ValueError(f"x: expected {self.mean_.shape[0]} features in the last dim, got {x.shape}")
        return x

    def transform(self, x: np.ndarray) -> np.ndarray:
        return (self._check(x) - self.mean_) / self.scale_

    def inverse_transform(self, x: np.ndarray) -> np.ndarray:
        return self._check(x) * self.scale_ + self.mean_

    def state_dict(self) -> dict:
        """Plain lists, so it is saved in a ``weights_only=True`` checkpoint."""
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    def load_state_dict(self, state: dict) -> StandardScaler:
        self.mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.scale_ = np.asarray(state["scale"], dtype=np.float64)
        return self
