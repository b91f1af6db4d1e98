"""Checkpoints for export and compress: every model checkpoint ``models.checkpoints`` reads
(language model, forecaster, bare layer), plus compressed models (``kind="compressed"``: the
method, the wrapped names and the base model's parts, written by :func:`save_model` for int8 /
half / low-rank wrappers). A folder means its ``model.pt``.
"""

from __future__ import annotations

import os

import torch
from torch import nn

from ..models.checkpoints import RESERVED, model_from_checkpoint, model_from_parts, model_parts, resolve  # noqa: F401
from ..models.checkpoints import save_model as models_save
from ..train.checkpoint import load_checkpoint, save_checkpoint
from . import compress as C


def load_model(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """(model in eval mode, the checkpoint's other parts) from an lstmkit checkpoint, compressed
    ones included."""
    path = resolve(path)
    ck = load_checkpoint(path)
    if ck.get("kind") != "compressed":
        return model_from_checkpoint(ck, path)
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


def compress_checkpoint(checkpoint, out: str, method: str, *, amount: float = 0.5,
                        keep: float = 0.5, rank: float = 0.25) -> dict:
    """Compress the model in ``checkpoint`` with ``method`` (one of ``compress.METHODS``) into
    the folder ``out``; returns (and writes as ``compress.json``) bytes, parameters and the max
    abs difference of the outputs from the original on random inputs. An LM folder's
    ``tokenizer.json`` is copied so the result still runs with ``lstmkit lm generate``.

    amount: magnitude, the fraction of weights zeroed; keep: prune, hidden units kept (a
    fraction < 1 or a count); rank: low-rank, a fraction <= 1 of full rank or a count."""
    import json
    import shutil

    from .._io import atomic_write_text

    if method not in C.METHODS:
        raise ValueError(f"method: expected one of {C.METHODS}, got {method!r}")
    model, extra = load_model(checkpoint)
    src = resolve(checkpoint)
    os.makedirs(out, exist_ok=True)
    x = example_inputs(model)
    with torch.no_grad():
        ref = C.first_output(model(*x))
    info = {"method": method, "source": src, "params_before": C.count_params(model),
            "weight_bytes_before": C.model_bytes(model)}
    extra = {k: v for k, v in extra.items() if k not in ("format", "version")}  # scalers, job config...
    tok = os.path.join(os.path.dirname(src), "tokenizer.json")
    if os.path.isfile(tok):  # an LM folder: keep it usable by `lstmkit lm generate`
        shutil.copyfile(tok, os.path.join(out, "tokenizer.json"))
    if method == "onnx-int8":
        from .onnx_export import to_onnx

        f32 = os.path.join(out, "model.onnx")
        rep = to_onnx(model, f32)
        dst = os.path.join(out, "model.int8.onnx")
        info["quantiser"] = C.quantize_onnx(f32, dst)
        info.update(file=dst, file_bytes=os.path.getsize(dst), float_onnx_bytes=rep.bytes,
                    float_onnx_parity=rep.max_abs_error)
    else:
        keep = int(keep) if keep >= 1 else keep
        rank = int(rank) if rank > 1 else rank
        small = {
            "int8": lambda: C.quantize_int8(model),
            "float16": lambda: C.cast_weights(model, torch.float16),
            "bfloat16": lambda: C.cast_weights(model, torch.bfloat16),
            "magnitude": lambda: C.magnitude_prune(model, amount)[0],
            "prune": lambda: C.prune_hidden(model, keep),
            "low-rank": lambda: C.low_rank(model, rank),
        }[method]().eval()
        dst = os.path.join(out, "model.pt")
        save_model(dst, small, **extra)
        with torch.no_grad():
            got = C.first_output(small(*x))
        info.update(file=dst, file_bytes=os.path.getsize(dst), params_after=C.count_params(small),
                    nonzero_params_after=C.count_params(small, nonzero=True),
                    weight_bytes_after=C.model_bytes(small))
        if got.shape == ref.shape:
            info["max_abs_diff_vs_original"] = float((got - ref).abs().max())
    info["source_file_bytes"] = os.path.getsize(src)
    atomic_write_text(os.path.join(out, "compress.json"), json.dumps(info, indent=2) + "\n")
    return info
