"""Numerical gradients by central differences, and a check against the analytic BPTT.

>>> import numpy as np
>>> w = np.array([1.0, -2.0, 3.0])
>>> g = numerical_gradient(lambda: float((w ** 2).sum()), w)
>>> bool(np.allclose(g, 2 * w))
True
>>> gradient_check(lambda: float((w ** 2).sum()), {"w": w}, {"w": 2 * w})["w"] < 1e-8
True
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(f: Callable[[], float], param: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    """dL/d param by central differences. ``f()`` recomputes the scalar loss from ``param``,
    which is nudged in place one entry at a time and restored exactly afterwards."""
    if not isinstance(param, np.ndarray) or not np.issubdtype(param.dtype, np.floating):
        raise TypeError(f"param: expected a floating numpy array, got {type(param).__name__}"
                        f"{'' if not isinstance(param, np.ndarray) else ' of ' + str(param.dtype)}")
    grad = np.zeros_like(param)
    flat, gflat = param.reshape(-1), grad.reshape(-1)  # views: nudging flat nudges param
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        f_plus = f()
        flat[k] = old - eps
        f_minus = f()
        flat[k] = old
        gflat[k] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """``|a - n| / (|a| + |n|)`` in the 2-norm over all entries (0 when both are 0)."""
    den = np.linalg.norm(analytic) + np.linalg.norm(numeric)
    return 0.0 if den == 0 else float(np.linalg.norm(analytic - numeric) / den)


def gradient_check(
    f: Callable[[], float], params: dict[str, np.ndarray], grads: dict[str, np.ndarray], eps: float = 1e-5
) -> dict[str, float]:
    """Relative error of each analytic gradient ``grads[name]`` against the numerical gradient of
    ``f`` wrt ``params[name]``. ``max(result.values())`` is the worst one."""
    missing = sorted(set(params) - set(grads))
    if missing:
        raise ValueError(f"grads: expected an entry for every param, missing {missing}")
    out = {}
    for name, p in params.items():
        if grads[name].shape != p.shape:
            raise ValueError(f"grads[{name!r}]: expected shape {p.shape}, got {grads[name].shape}")
        out[name] = relative_error(grads[name], numerical_gradient(f, p, eps))
    return out
