"""Which input steps and features a forecast or a class score rests on: saliency and integrated
gradients (Sundararajan et al. 2017), through captum where it runs and through autograd
otherwise. lstmkit's layers have their own backward on every engine and in eval mode, so the
cuDNN eval-mode failure of captum's LSTM recipes (captum#564) does not arise.

Symbols: W windows (batch), T time, F features.

Completeness: integrated-gradient attributions sum to f(x) - f(baseline) up to the integral's
quadrature error, reported as ``delta`` (the tests hold it under 1% of |f(x) - f(baseline)|).

    >>> import torch
    >>> f = lambda x: (x ** 2).sum((1, 2))
    >>> x = torch.ones(1, 3, 2)
    >>> a = integrated_gradients(f, x, torch.zeros_like(x), steps=64, backend="autograd")
    >>> round(float(a.attributions.sum()), 4), round(float(a.delta.abs().max()), 4)
    (6.0, 0.0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass
class Attribution:
    attributions: Tensor  # like x
    delta: Tensor  # (W,) sum of attributions - (f(x) - f(baseline))
    backend: str  # "captum" or "autograd"


def saliency(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """|d f / d x| per window (f returns (W,)): the gradient's magnitude at x."""
    x = x.detach().clone().requires_grad_()
    (g,) = torch.autograd.grad(fn(x).sum(), [x])
    return g.abs()


def _ig_autograd(fn, x: Tensor, baseline: Tensor, steps: int) -> Tensor:
    """Gauss-Legendre quadrature of the path integral (what captum uses by default)."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    alphas, w = (nodes + 1) / 2, weights / 2  # on [0, 1]
    total = torch.zeros_like(x)
    for a, wt in zip(alphas, w):
        z = (baseline + float(a) * (x - baseline)).detach().requires_grad_()
        (g,) = torch.autograd.grad(fn(z).sum(), [z])
        total += float(wt) * g
    return total * (x - baseline)


def integrated_gradients(fn: Callable[[Tensor], Tensor], x: Tensor, baseline: Tensor, *,
                         steps: int = 64, backend: str = "auto") -> Attribution:
    """Integrated gradients of ``fn`` ((W, ...) -> (W,)) from ``baseline`` to ``x``.
    ``backend``: "captum", "autograd", or "auto" (captum if it imports and runs, else autograd)."""
    if backend not in ("auto", "captum", "autograd"):
        raise ValueError(f"backend: expected 'auto', 'captum' or 'autograd', got {backend!r}")
    if x.shape != baseline.shape:
        raise ValueError(f"baseline: expected the shape of x {tuple(x.shape)}, got "
                         f"{tuple(baseline.shape)}")
    used = "autograd"
    attr = None
    if backend in ("auto", "captum"):
        try:
            from captum.attr import IntegratedGradients

            attr = IntegratedGradients(fn).attribute(x, baselines=baseline, n_steps=steps,
                                                     method="gausslegendre",
                                                     internal_batch_size=x.shape[0])
            used = "captum"
        except ImportError:
            if backend == "captum":
                raise
    if attr is None:
        attr = _ig_autograd(fn, x, baseline, steps)
    with torch.no_grad():
        gap = fn(x) - fn(baseline)
    delta = attr.detach().reshape(x.shape[0], -1).sum(1) - gap
    return Attribution(attr.detach(), delta, used)


def plot_attributions(x: Tensor, ig: Tensor, sal: Tensor, path: str, *, feature_names=None,
                      title: str = "", example: int = 0, last: str = "the forecast origin") -> str:
    """Top: one window's input (target feature) with its attribution per step; bottom: the mean
    |attribution| per step over all windows (integrated gradients and saliency, each scaled
    to its maximum)."""
    from ._plot import pyplot, save_png

    plt = pyplot()
    W, T, F = x.shape
    fig, axes = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True)
    ax = axes[0]
    ax.plot(range(T), x[example, :, 0].numpy(), color="0.3", label=(feature_names or ["x0"])[0])
    ax.set_ylabel("input (scaled)")
    ax2 = ax.twinx()
    ax2.bar(range(T), ig[example].sum(-1).numpy(), color="tab:red", alpha=0.5,
            label="integrated gradients")
    ax2.set_ylabel("attribution (sum over features)")
    ax.set_title(title or "attribution to the input steps", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax2.legend(loc="upper right", fontsize=8)
    ax = axes[1]
    for a, name in ((ig.abs().sum(-1).mean(0), "integrated gradients |a|"),
                    (sal.sum(-1).mean(0), "saliency |df/dx|")):
        ax.plot(range(T), (a / a.max().clamp_min(1e-12)).numpy(), label=name)
    ax.set_xlabel(f"input step (0 = oldest, {T - 1} = {last})")
    ax.set_ylabel(f"mean over {W} inputs (scaled)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return save_png(fig, path)
