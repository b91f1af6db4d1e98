"""Missing values: fill by forward fill or linear interpolation, and say which were filled.

Symbols: N time points, F features.

The returned mask is the missing-indicator channel (one per feature): 1 exactly where the value
was imputed, so a model can learn to trust those points less.

>>> import numpy as np
>>> filled, mask = impute(np.array([[1.0], [np.nan], [3.0]]), "interpolate")
>>> filled.ravel().tolist(), mask.ravel().tolist()
([1.0, 2.0, 3.0], [0.0, 1.0, 0.0])
"""

from __future__ import annotations

import numpy as np

METHODS = ("interpolate", "ffill")


def impute(values: np.ndarray, method: str = "interpolate",
           names: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """values (N, F) with NaNs -> (filled (N, F), indicator (N, F) of 0/1 floats).

    ``interpolate``: linear in the index between the neighbours; ``ffill``: last seen value.
    Leading gaps (nothing before them) take the first observed value in both methods.
    An all-NaN column raises ``ValueError`` naming it."""
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values: expected a (N, F) array, got shape {values.shape}")
    missing = ~np.isfinite(values)  # (N, F)
    filled = values.copy()
    idx = np.arange(values.shape[0])
    for j in range(values.shape[1]):
        ok = ~missing[:, j]
        if not ok.any():
            name = names[j] if names else f"column {j}"
            raise ValueError(f"{name}: every value is missing (NaN); expected at least one number")
        if method == "interpolate":
            filled[:, j] = np.interp(idx, idx[ok], values[ok, j])
        else:
            last = np.maximum.accumulate(np.where(ok, idx, -1))  # index of last observed value
            last = np.where(last < 0, idx[ok][0], last)
            filled[:, j] = values[last, j]
    return filled, missing.astype(np.float64)
