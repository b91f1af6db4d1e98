"""One reader and writer for the model checkpoints that lstmkit's tools open (export, compress,
serve): a ``model.pt`` (or the job folder holding it) -> the model, whatever wrote it.

Layouts (all through ``train.checkpoint``, so loaded with ``weights_only=True``):

- a language model: ``kind="language_model"``, ``config`` + ``model`` (``models.language_model``);
- a forecaster: ``model_config`` + ``model`` (one network), or ``models`` (a list of state_dicts:
  the seed ensemble of ``lstmkit forecast``, see :class:`ForecasterEnsemble`);
- an LSTM autoencoder (``lstmkit anomaly``): ``kind="lstm_autoencoder"``, ``config`` + ``model``
  (``models.autoencoder``);
- a speech recogniser: ``kind="speech_recognizer"``, ``config`` + ``model``
  (``models.speech``; ``lstmkit speech train`` adds the alphabet, features and LM beside);
- a bare layer: ``kind="layer"``, ``layer_config`` (the class and its constructor arguments) +
  ``model``, written by :func:`save_model`.

>>> import os, tempfile, torch, lstmkit as lk
>>> path = os.path.join(tempfile.mkdtemp(), "model.pt")
>>> layer = lk.GRU(3, 4, num_layers=2, bidirectional=True, reset_after=False)
>>> save_model(path, layer)
>>> back, parts = load_model(path)
>>> x = torch.randn(5, 2, 3)
>>> torch.equal(back(x)[0], layer.eval()(x)[0]), parts["kind"]
(True, 'layer')
"""

from __future__ import annotations

import os
from dataclasses import asdict, fields

import torch
from torch import nn

from ..train.checkpoint import load_checkpoint, save_checkpoint
from .autoencoder import CHECKPOINT_KIND as AE_KIND
from .autoencoder import AutoencoderConfig, LSTMAutoencoder
from .forecaster import Forecaster, ForecasterConfig
from .language_model import CHECKPOINT_KIND as LM_KIND
from .language_model import LanguageModel, LanguageModelConfig
from .speech import CHECKPOINT_KIND as SPEECH_KIND
from .speech import SpeechRecognizer, recognizer_from_dict, recognizer_parts

LAYER_KIND = "layer"
# parts that describe the model itself; anything else passed to save_model is kept beside it
RESERVED = frozenset({"kind", "config", "model_config", "layer_config", "model", "models"})


def resolve(path: str | os.PathLike) -> str:
    """A job's ``--out`` folder means its ``model.pt``."""
    path = os.fspath(path)
    return os.path.join(path, "model.pt") if os.path.isdir(path) else path


def layer_config(m: nn.Module) -> dict:
    """``{"class": "LSTM" | "GRU" | "RNN", **constructor kwargs}``: enough to rebuild the layer."""
    kind = type(m).__name__
    if kind not in ("LSTM", "GRU", "RNN") or not hasattr(m, "mode"):
        raise TypeError(f"model: expected an lstmkit LSTM, GRU or RNN layer, got {type(m).__name__}")
    kw = dict(input_size=m.input_size, hidden_size=m.hidden_size, num_layers=m.num_layers,
              bias=m.bias, batch_first=m.batch_first, dropout=m.dropout,
              bidirectional=m.bidirectional, input_dropout=m.input_dropout,
              recurrent_dropout=m.recurrent_dropout, zoneout=list(m.zoneout),
              weight_drop=m.weight_drop, init=m.init, residual=m.residual, stateful=m.stateful,
              engine=m.engine)
    if m.mode == "LSTM":
        kw.update(proj_size=m.proj_size, peephole=m.peephole, coupled=m.coupled,
                  layer_norm=m.layer_norm, forget_bias=m.forget_bias)
    else:
        kw["zoneout"] = m.zoneout[1]  # GRU/RNN: p_h (no cell)
        if m.mode == "GRU":
            kw["reset_after"] = m.reset_after
        else:
            kw["nonlinearity"] = m.nonlinearity
    return {"class": kind, **kw}


def build_layer(config: dict) -> nn.Module:
    """The inverse of :func:`layer_config` (fresh weights)."""
    import lstmkit as lk

    if not isinstance(config, dict) or config.get("class") not in ("LSTM", "GRU", "RNN"):
        got = config.get("class") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"layer_config: expected class LSTM, GRU or RNN, got {got!r}")
    kw = dict(config)
    cls = kw.pop("class")
    if isinstance(kw.get("zoneout"), list):
        kw["zoneout"] = tuple(kw["zoneout"])
    return getattr(lk, cls)(**kw)


def _dataclass(cls, d, path: str):
    if not isinstance(d, dict):
        raise ValueError(f"checkpoint {path!r}: expected a {cls.__name__} dict, got {type(d).__name__}")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in d.items() if k in names})


class ForecasterEnsemble(nn.Module):
    """The median of K forecasters (``lstmkit forecast``'s seed ensemble) as one module."""

    def __init__(self, members: list[Forecaster]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, x, *args, **kwargs):
        outs = [m(x, *args, **kwargs) for m in self.members]
        return outs[0] if len(outs) == 1 else torch.stack(outs).median(0).values


# checkpoints of other jobs, named so that a tool says what it cannot open rather than guess
OTHER_KINDS = {"sequence_classifier": "lstmkit classify predict",
               "sequence_tagger": "lstmkit tag predict"}


def model_from_parts(ck: dict, path: str = "<checkpoint>") -> tuple[nn.Module, str]:
    """(a model with fresh weights, its kind) from a checkpoint's parts; weights not loaded."""
    kind = ck.get("kind")
    if kind in OTHER_KINDS:
        raise ValueError(f"checkpoint {path!r}: a {kind} checkpoint; export and serve read language "
                         f"models, forecasters and layers (use {OTHER_KINDS[kind]})")
    if kind == LM_KIND:
        return LanguageModel(_dataclass(LanguageModelConfig, ck.get("config"), path)), LM_KIND
    if kind == AE_KIND:
        return LSTMAutoencoder(_dataclass(AutoencoderConfig, ck.get("config"), path)), AE_KIND
    if "model_config" in ck and kind in (None, "forecaster"):
        cfg = _dataclass(ForecasterConfig, ck["model_config"], path)
        if "models" in ck and len(ck["models"]) != 1:
            return ForecasterEnsemble([Forecaster(cfg) for _ in ck["models"]]), "forecaster"
        return Forecaster(cfg), "forecaster"
    if kind == LAYER_KIND:
        return build_layer(ck.get("layer_config")), LAYER_KIND
    if kind == SPEECH_KIND:  # lstmkit speech train: config + model, alphabet/features/LM beside
        return recognizer_from_dict(ck.get("config")), SPEECH_KIND
    raise ValueError(f"checkpoint {path!r}: expected a language model, forecaster or layer "
                     f"checkpoint, got kind={kind!r} with parts {sorted(ck)[:10]}")


def load_state(model: nn.Module, ck: dict) -> None:
    """Load the weights of ``ck`` into the model :func:`model_from_parts` built from it."""
    if isinstance(model, ForecasterEnsemble):
        for m, sd in zip(model.members, ck["models"]):
            m.load_state_dict(sd)
    elif "model" not in ck and len(ck.get("models", ())) == 1:  # a job's one-member list
        model.load_state_dict(ck["models"][0])
    else:
        model.load_state_dict(ck["model"])


def model_parts(model: nn.Module) -> dict:
    """What :func:`model_from_parts` needs to rebuild ``model`` (weights not included)."""
    if isinstance(model, LanguageModel):
        return {"kind": LM_KIND, "config": asdict(model.config)}
    if isinstance(model, LSTMAutoencoder):
        return {"kind": AE_KIND, "config": asdict(model.config)}
    if isinstance(model, (Forecaster, ForecasterEnsemble)):
        return {"kind": "forecaster", "model_config": asdict(model.config)}
    if isinstance(model, SpeechRecognizer):
        return recognizer_parts(model)
    return {"kind": LAYER_KIND, "layer_config": layer_config(model)}


def _state(model: nn.Module) -> dict:
    if isinstance(model, ForecasterEnsemble):
        return {"models": [{k: v.detach().cpu() for k, v in m.state_dict().items()}
                           for m in model.members]}
    return {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}}


def save_model(path: str | os.PathLike, model: nn.Module, **extra) -> None:
    """Write ``model`` (a LanguageModel, Forecaster or lstmkit layer) atomically so that
    :func:`load_model` reads it back; ``extra`` parts (a scaler, a series spec...) ride along."""
    os.makedirs(os.path.dirname(os.path.abspath(os.fspath(path))), exist_ok=True)
    parts = {**{k: v for k, v in extra.items() if k not in RESERVED}, **model_parts(model)}
    save_checkpoint(path, **parts, **_state(model))


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """(model in eval mode, the checkpoint's parts other than the weights) from ``path`` (a file,
    or a job folder holding ``model.pt``)."""
    path = resolve(path)
    return model_from_checkpoint(load_checkpoint(path), path)


def model_from_checkpoint(ck: dict, path: str = "<checkpoint>") -> tuple[nn.Module, dict]:
    """:func:`load_model` for a checkpoint dict already read."""
    model, kind = model_from_parts(ck, path)
    load_state(model, ck)
    parts = {k: v for k, v in ck.items() if k not in ("model", "models")}
    parts.setdefault("kind", kind)
    return model.eval(), parts
