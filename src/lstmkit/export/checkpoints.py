"""Checkpoints for export and compress: every model checkpoint ``models.checkpoints`` reads
(language model, forecaster, bare layer), plus compressed models (``kind="compressed"``: the
method, the wrapped names and the base model's parts, written by :func:`save_model` for int8 /
half / low-rank wrappers). A folder means its ``model.pt``.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..models.checkpoints import RESERVED, model_from_parts, model_parts, resolve  # noqa: F401
from ..models.checkpoints import load_model as models_load
from ..models.checkpoints import save_model as models_save
from ..train.checkpoint import load_checkpoint, save_checkpoint
from . import compress as C


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """(model in eval mode, the checkpoint's other parts) from an lstmkit checkpoint, compressed
    ones included."""
    path = resolve(path)
    ck = load_checkpoint(path)
    if ck.get("kind") != "compressed":
        return models_load(path)
    base, _ = model_from_parts(ck["base"], path)
    names, method = ck["names"], ck["method"]
    if method == "int8":
        m = C.Int8Weights(base, names)
    elif method in ("float16", "bfloat16"):
        m = C.HalfWeights(base, names, getattr(torch, method))
    elif method == "low_rank":
        m = C.LowRank(base, names, {n: int(r) for n, r in ck["ranks"].items()})
    else:
        raise ValueError(f"checkpoint {path!r}: unknown compression method {method!r}")
    m.load_state_dict(ck["model"])
    return m.eval(), {k: v for k, v in ck.items() if k != "model"}


def save_model(path: str | os.PathLike, model: nn.Module, **extra) -> None:
    """Write ``model`` (atomically) so that :func:`load_model` reads it back; a compressed
    wrapper is stored with its method and its base model's parts, anything else as
    ``models.checkpoints.save_model`` stores it. ``extra`` parts are kept beside it."""
    if not isinstance(model, C.Reparametrized):
        models_save(path, model, **extra)
        return
    parts = {"kind": "compressed", "method": model.method, "names": list(model._names),
             "base": model_parts(model.base)}
    if isinstance(model, C.LowRank):
        parts["ranks"] = dict(model.ranks)
    reserved = RESERVED | {"method", "names", "base", "ranks"}
    parts.update({k: v for k, v in extra.items() if k not in reserved})
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    save_checkpoint(path, model=state, **parts)


def example_inputs(model: nn.Module, *, batch: int = 4, T: int = 16, seed: int = 0) -> tuple:
    """Random inputs of the right kind for ``model`` (tokens for an LM, windows otherwise)."""
    from ..models.forecaster import Forecaster
    from ..models.language_model import LanguageModel

    g = torch.Generator().manual_seed(seed)
    base = model.base if isinstance(model, C.Reparametrized) else model
    if isinstance(base, LanguageModel):
        return (torch.randint(0, base.config.vocab_size, (batch, T), generator=g),)
    if isinstance(base, Forecaster):
        return (torch.randn(batch, T, base.config.input_size, generator=g),)
    x = torch.randn(T, batch, base.input_size, generator=g)
    return (x.transpose(0, 1) if base.batch_first else x,)


def first_output(out):
    """The main output of a model call (logits / forecast / sequence output)."""
    return out[0] if isinstance(out, tuple) else out
