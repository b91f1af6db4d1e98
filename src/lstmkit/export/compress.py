"""Compression of lstmkit layers and task models: int8, float16/bfloat16, magnitude pruning,
structured hidden-unit pruning, low-rank factorisation.

Symbols: B batch, T time, I input, H hidden, H' kept hidden units, G gate rows, r rank,
D directions.

Every method works on any ``nn.Module`` whose recurrent part is an lstmkit layer (variants
included), through the public parameters only:

- :func:`quantize_int8`: every weight matrix stored as int8 with one float scale per row
  (symmetric, ``scale = max|row| / 127``), dequantised when the model runs
  (:class:`Reparametrized`); 4x smaller weights. For lower latency export to ONNX and use
  :func:`quantize_onnx` (onnxruntime's dynamic quantisation: int8 GEMMs).
- :func:`cast_weights`: weights stored as float16 or bfloat16, computed in float32.
- :func:`magnitude_prune`: the smallest ``amount`` of each weight matrix set to 0 (an ordinary
  model; :func:`fine_tune` keeps the zeros with ``masks=``).
- :func:`prune_hidden`: keeps the ``keep`` most important hidden units of every layer (the
  L2 norm of the weights that read each unit: ``W_hh`` columns, the next layer's ``W_ih``
  columns, the head's columns) and returns an ordinary smaller layer/model: a plain
  ``lk.LSTM`` result loads into ``torch.nn.LSTM``.
- :func:`low_rank`: each recurrent weight matrix ``W (G, n)`` replaced by ``U (G, r) @ V (r, n)``
  from its truncated SVD (trainable factors; at full rank ``U @ V == W``).
- :func:`fine_tune`: a few epochs through :class:`lstmkit.train.trainer.Trainer`.
- :func:`distill`: a small student trained on a teacher's soft targets (temperature ``T``)
  plus the labels, through the Trainer.
- :func:`quantize_onnx`: onnxruntime's ``quantize_dynamic`` (int8 weights) on an exported file.

>>> import torch, lstmkit as lk
>>> m = lk.LSTM(4, 8)
>>> q = quantize_int8(m)
>>> y, _ = q(torch.randn(5, 2, 4))
>>> small = prune_hidden(m, 4)
>>> small.hidden_size, tuple(small(torch.randn(5, 2, 4))[0].shape)
(4, (5, 2, 4))
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os

import torch
from torch import Tensor, nn

from ..models.checkpoints import build_layer, layer_config

# what ``lstmkit compress --method`` (export.checkpoints.compress_checkpoint) offers
METHODS = ("int8", "onnx-int8", "float16", "bfloat16", "magnitude", "prune", "low-rank")

INT8_TOL = 5e-2  # documented: int8 outputs vs float, max abs, for unit-scale inputs (tests)


# -- helpers --------------------------------------------------------------------------------------
def _recurrent_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    from ..nn.cells import CellBase
    from ..nn.recurrent import RecurrentBase

    return [(n, m) for n, m in model.named_modules() if isinstance(m, (RecurrentBase, CellBase))]


def _weight_names(model: nn.Module, recurrent_only: bool = False) -> list[str]:
    """Names of the 2-D weight matrices (the recurrent layers' weight_ih/hh/hr, and unless
    ``recurrent_only``, every Linear/Embedding weight), each shared tensor once."""
    rec = {n + ("." if n else "") for n, _ in _recurrent_layers(model)}
    out = []
    for name, p in model.named_parameters():
        if p.dim() != 2:
            continue
        in_rec = any(name.startswith(r) for r in rec) if rec else False
        if recurrent_only and not in_rec:
            continue
        out.append(name)
    return out


def _distinct_tensors(model: nn.Module):
    """The state_dict's tensors, each shared storage view counted once (tied weights)."""
    seen = set()
    for t in model.state_dict().values():
        key = (t.untyped_storage().data_ptr(), t.dtype, tuple(t.shape))
        if key not in seen:
            seen.add(key)
            yield t


def model_bytes(model: nn.Module) -> int:
    """Bytes of the distinct tensors in the state_dict (what a checkpoint stores)."""
    return sum(t.numel() * t.element_size() for t in _distinct_tensors(model))


def count_params(model: nn.Module, nonzero: bool = False) -> int:
    """Stored scalars in the state_dict (distinct tensors, no integer or bool buffers);
    ``nonzero``: only the non-zero ones."""
    return sum(int((t != 0).sum()) if nonzero else t.numel() for t in _distinct_tensors(model)
               if t.dtype not in (torch.long, torch.bool))


class Reparametrized(nn.Module):
    """Runs ``base`` with some of its parameters computed by this module (dequantised int8,
    upcast half precision, low-rank products), swapped into ``base`` for each call.

    The replaced parameters of ``base`` are emptied (0 elements) so they cost no storage."""

    def __init__(self, base: nn.Module, names: list[str], method: str) -> None:
        super().__init__()
        self.base = base
        self.method = method
        self._names = list(names)
        self._shapes = {}
        for n in names:
            mod_name, _, pname = n.rpartition(".")
            mod = base.get_submodule(mod_name) if mod_name else base
            p = mod._parameters[pname]
            self._shapes[n] = tuple(p.shape)
            mod._parameters[pname] = nn.Parameter(p.new_empty(0), requires_grad=False)

    def key(self, name: str) -> str:
        return "w__" + name.replace(".", "__")

    def weight(self, name: str) -> Tensor:  # overridden
        raise NotImplementedError

    def weights(self) -> dict[str, Tensor]:
        return {n: self.weight(n) for n in self._names}

    @contextlib.contextmanager
    def swapped(self):
        """Inside: ``base`` holds the computed weights (in its ``_parameters``, where lstmkit's
        layers read them), gradients flowing to this module's factors/buffers."""
        base = self._modules["base"]
        saved = []
        for n, w in self.weights().items():
            mod_name, _, pname = n.rpartition(".")
            mod = base.get_submodule(mod_name) if mod_name else base
            saved.append((mod, pname, mod._parameters[pname]))
            mod._parameters[pname] = w
        try:
            yield base
        finally:
            for mod, pname, p in reversed(saved):
                mod._parameters[pname] = p

    def forward(self, *args, **kwargs):
        with self.swapped() as base:
            return base(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            pass
        base = self._modules["base"]
        attr = getattr(base, name)
        fn = getattr(type(base), name, None)
        if callable(fn) and not isinstance(attr, nn.Module):  # e.g. LanguageModel.step

            def run(*args, **kwargs):
                with self.swapped() as b:
                    return fn(b, *args, **kwargs)

            return run
        return attr  # e.g. .config


class Int8Weights(Reparametrized):
    """int8 weights with one float32 scale per row, dequantised at run time."""

    def __init__(self, base: nn.Module, names: list[str]) -> None:
        originals = {n: base.get_parameter(n).detach().clone() for n in names}
        super().__init__(base, names, "int8")
        for n, w in originals.items():
            scale = w.abs().amax(dim=1, keepdim=True).clamp_min(1e-12) / 127.0  # (rows, 1)
            q = torch.clamp(torch.round(w / scale), -127, 127).to(torch.int8)
            self.register_buffer(self.key(n) + "__q", q)
            self.register_buffer(self.key(n) + "__scale", scale.float())

    def weight(self, name: str) -> Tensor:
        k = self.key(name)
        return getattr(self, k + "__q").float() * getattr(self, k + "__scale")


class HalfWeights(Reparametrized):
    """Weights stored in float16 or bfloat16, upcast to float32 when the model runs."""

    def __init__(self, base: nn.Module, names: list[str], dtype: torch.dtype) -> None:
        originals = {n: base.get_parameter(n).detach().clone() for n in names}
        super().__init__(base, names, str(dtype).replace("torch.", ""))
        for n, w in originals.items():
            self.register_buffer(self.key(n), w.to(dtype))

    def weight(self, name: str) -> Tensor:
        return getattr(self, self.key(name)).float()


class LowRank(Reparametrized):
    """Each listed matrix W (G, n) as U (G, r) @ V (r, n), trainable."""

    def __init__(self, base: nn.Module, names: list[str], rank: int | float | dict[str, int]) -> None:
        originals = {n: base.get_parameter(n).detach().clone() for n in names}
        super().__init__(base, names, "low_rank")
        self.ranks = {}
        for n, w in originals.items():
            U, S, Vh = torch.linalg.svd(w.double(), full_matrices=False)
            r = min(int(rank[n]), S.numel()) if isinstance(rank, dict) else _rank(rank, S)
            self.ranks[n] = r
            self.register_parameter(self.key(n) + "__U", nn.Parameter((U[:, :r] * S[:r]).to(w.dtype)))
            self.register_parameter(self.key(n) + "__V", nn.Parameter(Vh[:r].to(w.dtype).contiguous()))

    def weight(self, name: str) -> Tensor:
        k = self.key(name)
        return getattr(self, k + "__U") @ getattr(self, k + "__V")


def _rank(rank: int | float, S: Tensor) -> int:
    """int: that rank (capped at full); float in (0, 1]: the fraction of the full rank."""
    full = S.numel()
    if isinstance(rank, bool) or not isinstance(rank, (int, float)):
        raise TypeError(f"rank: expected an int or a fraction, got {type(rank).__name__}")
    if isinstance(rank, float):
        if not 0 < rank <= 1:
            raise ValueError(f"rank: a fraction must be in (0, 1], got {rank}")
        return max(1, round(rank * full))
    if rank < 1:
        raise ValueError(f"rank: expected >= 1, got {rank}")
    return min(rank, full)


# -- methods ----------------------------------------------------------------------------------------
def _check_model(model) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model: expected an nn.Module, got {type(model).__name__}")
    if isinstance(model, Reparametrized):
        raise ValueError(f"model: already compressed ({model.method}); compress the original model")
    if not _recurrent_layers(model):
        raise ValueError(f"model: expected a module holding an lstmkit layer, got {type(model).__name__}")
    m = copy.deepcopy(model).cpu().float()
    return m


def quantize_int8(model: nn.Module, *, recurrent_only: bool = False) -> Int8Weights:
    """int8 weights (per-row scales) for every weight matrix; outputs agree with float within
    ``INT8_TOL`` on unit-scale inputs (tested)."""
    m = _check_model(model)
    return Int8Weights(m, _weight_names(m, recurrent_only)).eval()


def cast_weights(model: nn.Module, dtype: torch.dtype | str) -> HalfWeights:
    """Weights (every parameter of 2 or more dims) stored as float16 or bfloat16."""
    dtype = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
             "bf16": torch.bfloat16}.get(dtype, dtype) if isinstance(dtype, str) else dtype
    if dtype not in (torch.float16, torch.bfloat16):
        raise ValueError(f"dtype: expected float16 or bfloat16, got {dtype!r}")
    m = _check_model(model)
    return HalfWeights(m, _weight_names(m), dtype).eval()


def low_rank(model: nn.Module, rank: int | float, *, recurrent_only: bool = True) -> LowRank:
    """Truncated-SVD factors of the recurrent weight matrices (and of every other weight matrix
    when ``recurrent_only=False``). rank: an int, or a float fraction of each matrix's full rank."""
    m = _check_model(model)
    return LowRank(m, _weight_names(m, recurrent_only), rank)


def magnitude_prune(model: nn.Module, amount: float) -> tuple[nn.Module, dict[str, Tensor]]:
    """Zero the ``amount`` fraction of smallest-magnitude entries of each weight matrix.
    Returns (pruned copy, {name: mask}) for :func:`fine_tune`."""
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < 1:
        raise ValueError(f"amount: expected a fraction in [0, 1), got {amount!r}")
    m = _check_model(model)
    masks = {}
    with torch.no_grad():
        for n in _weight_names(m):
            w = m.get_parameter(n)
            k = int(amount * w.numel())
            if k == 0:
                continue
            thresh = w.abs().flatten().kthvalue(k).values
            mask = (w.abs() > thresh).to(w.dtype)
            w.mul_(mask)
            masks[n] = mask
    return m, masks


def _unit_index(layer, keep: int, consumer_cols: list[Tensor | None]) -> list[Tensor]:
    """Kept unit indices per layer-direction (sorted), by the L2 norm of the weights that read
    each unit: its W_hh column and the consumer's columns (next layer's W_ih, or the head)."""
    D = 2 if layer.bidirectional else 1
    H = layer.hidden_size
    out = []
    for k in range(layer.num_layers):
        for d in range(D):
            s = f"_l{k}{'_reverse' if d else ''}"
            score = getattr(layer, "weight_hh" + s).detach().pow(2).sum(0)  # (H,)
            cons = consumer_cols[k]
            if cons is not None:
                score = score + cons[:, d * H:(d + 1) * H].detach().pow(2).sum(0)
            out.append(torch.sort(torch.topk(score, keep).indices).values)
    return out


def prune_hidden(model: nn.Module, keep: int | float) -> nn.Module:
    """Structured pruning: a copy of ``model`` whose lstmkit layer has ``keep`` hidden units
    (an int, or a float fraction of hidden_size) in every layer, as an ordinary smaller layer.

    model: an lstmkit LSTM/GRU/RNN, or a module with one (``.lstm``) read by a Linear (``.head``
    or ``.decoder``), e.g. Forecaster (single/direct) and LanguageModel (untied)."""
    from ..nn.recurrent import RecurrentBase

    src = _check_model(model)
    if isinstance(src, RecurrentBase):
        layer, head = src, None
    else:
        layer = getattr(src, "lstm", None)
        if not isinstance(layer, RecurrentBase):
            raise ValueError("model: expected an lstmkit layer or a model with one at .lstm")
        if getattr(src, "decoder", None) is not None and isinstance(src.decoder, RecurrentBase):
            raise ValueError("model: a seq2seq Forecaster (a second LSTM) is not supported")
        head = getattr(src, "decoder", None) if hasattr(src, "embedding") else getattr(src, "head", None)
        if hasattr(src, "embedding") and head is not None and head.weight is src.embedding.weight:
            raise ValueError("model: tied decoder and embedding weights fix the LSTM output width; "
                             "prune a model trained with tie_weights=False")
    H = layer.hidden_size
    keep = max(1, round(keep * H)) if isinstance(keep, float) else keep
    if isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= H:
        raise ValueError(f"keep: expected 1 <= keep <= hidden_size={H} (or a fraction), got {keep!r}")
    for flag in ("proj_size", "residual", "layer_norm"):
        if getattr(layer, flag, False):
            raise ValueError(f"model: structured pruning does not support {flag} (it would change "
                             f"the math of the kept units, not only their number)")
    D = 2 if layer.bidirectional else 1
    cons = [getattr(layer, f"weight_ih_l{k + 1}") for k in range(layer.num_layers - 1)]
    cons.append(head.weight if head is not None else None)
    idx = _unit_index(layer, keep, cons)
    G = {"LSTM": 3 if layer.mode == "LSTM" and layer.coupled else 4, "GRU": 3}.get(layer.mode, 1)
    kw = layer_config(layer)
    kw["hidden_size"] = keep
    new = build_layer(kw).train(layer.training)
    with torch.no_grad():
        for k in range(layer.num_layers):
            prev_cols = None
            if k > 0:  # the previous layer's kept outputs, directions concatenated
                prev_cols = torch.cat([idx[(k - 1) * D + d] + d * H for d in range(D)])
            for d in range(D):
                s = f"_l{k}{'_reverse' if d else ''}"
                j = idx[k * D + d]
                rows = torch.cat([j + g * H for g in range(G)])
                for base in ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_ci",
                             "weight_cf", "weight_co"):
                    name = base + s
                    if name not in new._parameters:
                        continue
                    p = new._parameters[name]
                    old = getattr(layer, name)
                    if base == "weight_ih":
                        w = old[rows]
                        p.copy_(w[:, prev_cols] if prev_cols is not None else w)
                    elif base == "weight_hh":
                        p.copy_(old[rows][:, j])
                    elif base in ("bias_ih", "bias_hh"):
                        p.copy_(old[rows])
                    elif base in ("weight_ci", "weight_cf", "weight_co"):
                        p.copy_(old[j])
    if head is None:
        return new
    last = torch.cat([idx[(layer.num_layers - 1) * D + d] + d * H for d in range(D)])
    new_head = nn.Linear(keep * D, head.out_features, bias=head.bias is not None)
    with torch.no_grad():
        new_head.weight.copy_(head.weight[:, last])
        if head.bias is not None:
            new_head.bias.copy_(head.bias)
    src.lstm = new
    if hasattr(src, "embedding"):
        src.decoder = new_head
        cfg = copy.copy(src.config)
        cfg.hidden_size = keep
        src.config = cfg
    else:
        src.head = new_head
        cfg = copy.copy(src.config)
        cfg.hidden_size = keep
        src.config = cfg
    return src


def fine_tune(model: nn.Module, loss_fn, train_loader, val_loader=None, *, out_dir: str | os.PathLike,
              epochs: int = 2, lr: float = 1e-3, masks: dict[str, Tensor] | None = None,
              seed: int = 0) -> list[dict]:
    """A few epochs through :class:`~lstmkit.train.trainer.Trainer` (AdamW, clipping, early
    stopping, best weights restored). ``masks`` (from :func:`magnitude_prune`) keep pruned
    entries at zero: their gradients are masked (AdamW's update of a zero-gradient, zero-valued
    entry is zero; weight decay of a zero is zero)."""
    from ..train.trainer import TrainConfig, Trainer

    hooks = []
    for n, mask in (masks or {}).items():
        hooks.append(model.get_parameter(n).register_hook(lambda g, mask=mask: g * mask))
    try:
        cfg = TrainConfig(epochs=epochs, lr=lr, weight_decay=0.0, schedule="cosine", patience=None,
                          seed=seed, progress=False, resume=False)
        trainer = Trainer(model, loss_fn, cfg, out_dir)
        hist = trainer.fit(train_loader, val_loader)
        if val_loader is not None:
            trainer.load_best()
    finally:
        for h in hooks:
            h.remove()
    model.eval()
    return hist


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike, *, per_channel: bool | None = None,
                  reduce_range: bool | None = None) -> dict:
    """onnxruntime's dynamic quantisation (int8 weights, activations quantised per call) of an
    exported model, written atomically; returns the settings used, which are also recorded in
    the file's metadata (``lstmkit.int8``).

    Left as None, ``per_channel`` and ``reduce_range`` come from this CPU (``lstmkit.cpu``):
    onnxruntime's u8s8 kernels can saturate on x86 CPUs without VNNI (its quantization docs), so
    there the weights get 7 bits (reduce_range) and a scale per output channel."""
    import json

    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from .._io import atomic_write
    from ..cpu import probe

    cpu = probe()
    chosen = cpu.onnx_int8()
    given = {k: bool(v) for k, v in (("per_channel", per_channel), ("reduce_range", reduce_range))
             if v is not None}
    settings = {"per_channel": chosen["per_channel"], "reduce_range": chosen["reduce_range"], **given,
                "weight_type": "QInt8", "chosen_for": f"{cpu.model or cpu.arch} ({cpu.level})",
                "why": chosen["why"] + (f"; given: {', '.join(given)}" if given else "")}

    def write(tmp: str) -> None:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)  # the quantiser logs advice on the root logger
        try:
            quantize_dynamic(os.fspath(src), tmp, weight_type=QuantType.QInt8,
                             per_channel=settings["per_channel"], reduce_range=settings["reduce_range"],
                             extra_options={"EnableSubgraph": True})
        finally:
            root.setLevel(level)
        model = onnx.load(tmp)
        onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                            "lstmkit.int8": json.dumps(settings)})
        onnx.save(model, tmp)

    atomic_write(dst, write)
    return settings


class DistillLoss:
    """Knowledge distillation (Hinton et al. 2015) for a ``Trainer``: batches ``(x, y)``, models
    whose first output is logits (..., V)::

        loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
               + (1 - alpha) * CE(student, y)

    The teacher runs in eval mode without gradients."""

    def __init__(self, teacher: nn.Module, temperature: float = 2.0, alpha: float = 0.5) -> None:
        if not temperature > 0:
            raise ValueError(f"temperature: expected > 0, got {temperature!r}")
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha: expected a weight in [0, 1], got {alpha!r}")
        self.teacher = teacher.eval()
        self.T, self.alpha = float(temperature), float(alpha)

    def __call__(self, student: nn.Module, batch) -> Tensor:
        import torch.nn.functional as F

        x, y = batch
        s = first_output(student(x))
        V = s.shape[-1]
        hard = F.cross_entropy(s.reshape(-1, V), y.reshape(-1))
        if not self.alpha:
            return hard
        with torch.no_grad():
            t = first_output(self.teacher(x))
        log_s = F.log_softmax(s.reshape(-1, V) / self.T, -1)
        log_t = F.log_softmax(t.reshape(-1, V) / self.T, -1)
        soft = F.kl_div(log_s, log_t, log_target=True, reduction="batchmean") * self.T ** 2
        return self.alpha * soft + (1 - self.alpha) * hard


def first_output(out) -> Tensor:
    """The main output of a model call (logits / forecast / sequence output)."""
    return out[0] if isinstance(out, tuple) else out


def distill(teacher: nn.Module, student: nn.Module, train_loader, val_loader=None, *,
            out_dir: str | os.PathLike, temperature: float = 2.0, alpha: float = 0.5, epochs: int = 3,
            lr: float = 3e-3, seed: int = 0) -> list[dict]:
    """Train ``student`` on soft targets of ``teacher`` (plus the hard labels) through
    :class:`~lstmkit.train.trainer.Trainer`; returns the per-epoch history."""
    from ..train.trainer import TrainConfig, Trainer

    cfg = TrainConfig(epochs=epochs, lr=lr, weight_decay=0.0, patience=None, seed=seed,
                      progress=False, resume=False)
    trainer = Trainer(student, DistillLoss(teacher, temperature, alpha), cfg, out_dir)
    hist = trainer.fit(train_loader, val_loader)
    if val_loader is not None:
        trainer.load_best()
    student.eval()
    return hist
