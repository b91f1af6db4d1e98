"""The one adapter between checkpoints on disk and the models export/compress work on.

Reads (``weights_only=True``, through ``train.checkpoint``) the checkpoints lstmkit writes:

- a language model (``kind="language_model"``: ``config`` + ``model``, ``models.language_model``);
- a forecaster (``model_config`` + ``model``: ``models.forecaster``);
- a bare layer (``kind="layer"``: ``layer_config`` + ``model``, written by :func:`save_model`);
- a compressed model (``kind="compressed"``, written by :func:`save_model` for int8 / half /
  low-rank wrappers).

A folder means its ``model.pt``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields

import torch
from torch import nn

from ..train.checkpoint import load_checkpoint, save_checkpoint
from . import compress as C


def _resolve(path) -> str:
    path = os.fspath(path)
    return os.path.join(path, "model.pt") if os.path.isdir(path) else path


def _base_from(ck: dict, path: str) -> tuple[nn.Module, str]:
    from ..models.forecaster import Forecaster, ForecasterConfig
    from ..models.language_model import LanguageModel, LanguageModelConfig

    kind = ck.get("kind")
    if kind == "language_model":
        names = {f.name for f in fields(LanguageModelConfig)}
        m = LanguageModel(LanguageModelConfig(**{k: v for k, v in ck["config"].items() if k in names}))
        return m, "language_model"
    if "model_config" in ck:
        return Forecaster(ForecasterConfig(**ck["model_config"])), "forecaster"
    if kind == "layer":
        return C.build_layer(ck["layer_config"]), "layer"
    raise ValueError(f"checkpoint {path!r}: expected a language model, forecaster or layer "
                     f"checkpoint, got kind={kind!r} with parts {sorted(ck)[:10]}")


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """(model in eval mode, the checkpoint's other parts) from an lstmkit checkpoint."""
    path = _resolve(path)
    ck = load_checkpoint(path)
    if ck.get("kind") == "compressed":
        base, _ = _base_from(ck["base"], path)
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
        return m.eval(), {k: v for k, v in ck.items() if k not in ("model",)}
    model, kind = _base_from(ck, path)
    model.load_state_dict(ck["model"])
    return model.eval(), {k: v for k, v in ck.items() if k != "model"}


def _base_parts(model: nn.Module) -> dict:
    from ..models.forecaster import Forecaster
    from ..models.language_model import LanguageModel

    if isinstance(model, LanguageModel):
        return {"kind": "language_model", "config": asdict(model.config)}
    if isinstance(model, Forecaster):
        return {"model_config": asdict(model.config)}
    if hasattr(model, "mode") and hasattr(model, "num_layers"):
        return {"kind": "layer", "layer_config": C.layer_config(model)}
    raise TypeError(f"model: expected a LanguageModel, Forecaster or lstmkit layer, got "
                    f"{type(model).__name__}")


def save_model(path: str | os.PathLike, model: nn.Module, **extra) -> None:
    """Write ``model`` (atomically) so that :func:`load_model` reads it back; ``extra`` parts
    (e.g. a forecaster's scaler and series spec) are kept beside it."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if isinstance(model, C.Reparametrized):
        parts = {"kind": "compressed", "method": model.method, "names": list(model._names),
                 "base": _base_parts(model.base)}
        if isinstance(model, C.LowRank):
            parts["ranks"] = dict(model.ranks)
    else:
        parts = _base_parts(model)
    reserved = {"kind", "config", "model_config", "layer_config", "model", "method", "names", "base", "ranks"}
    parts.update({k: v for k, v in extra.items() if k not in reserved})
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
