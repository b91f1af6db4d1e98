"""``to_onnx``: lstmkit layers, cells and task models to ONNX, checked in onnxruntime.

Symbols: T time, B batch, I input, H hidden, P output width (proj_size or H), D directions,
L layers, V vocabulary, E embedding.

What is exported (always the eval-mode function: dropout off, zoneout as its expectation):

- ``lk.LSTM/GRU/RNN``, sequence: ``input`` (T, B, I) or (B, T, I) as ``batch_first``,
  ``lengths`` (B,) int64, ``h0`` [``c0``] (L*D, B, P|H) -> ``output``, ``h_n`` [``c_n``];
  ``step=True``: ``input`` (B, I), ``h0`` [``c0``] (L, B, P|H) -> ``output`` (B, P), ``h_n`` [``c_n``].
- ``lk.LSTMCell/GRUCell/RNNCell`` (``step=True``): ``input`` (B, I), ``h0`` [``c0``] (B, H) ->
  ``h_n`` [``c_n``].
- ``LanguageModel``: ``tokens`` (B, T), ``h0``, ``c0`` -> ``logits`` (B, T, V), ``h_n``, ``c_n``;
  ``step=True``: ``tokens`` (B,) -> ``log_probs`` (B, V), ``h_n``, ``c_n`` (generation loops).
- ``Forecaster`` (modes single, direct): ``x`` (B, T, F) -> ``forecast`` (B, h).

Batch and time are dynamic. Every export is run in onnxruntime against the PyTorch model on
random inputs (random lengths including 0 and the full length, random initial states, two
sequence lengths) before anything is written; the file is written atomically only when the max
abs error is within ``atol`` (1e-5 in float32; for an output larger than 1 in magnitude, such as
a trained LM's logits, relative to its largest value), else :class:`ParityError` is raised.

>>> import os, tempfile, torch, lstmkit as lk
>>> rep = to_onnx(lk.LSTM(3, 4, peephole=True), os.path.join(tempfile.mkdtemp(), "m.onnx"))
>>> rep.lowering, rep.max_abs_error < 1e-5
('native', True)
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .._io import atomic_write
from . import _graph
from ._graph import Graph, LayerSpec, _fvi

ATOL = 1e-5


class ParityError(ValueError):
    """The exported model disagrees with PyTorch beyond the tolerance; nothing was written."""


@dataclass
class ExportReport:
    path: str
    model: str  # what was exported, e.g. "LSTM(3, 4, peephole=True)"
    kind: str  # "sequence" | "step"
    lowering: str  # "native" (ONNX LSTM/GRU/RNN operators) | "scan" (Scan of primitives)
    max_abs_error: float
    trials: int  # onnxruntime runs compared with PyTorch
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    bytes: int = 0


# -- reading a module through its public attributes ------------------------------------------
def _is_layer(m) -> bool:
    from ..nn.recurrent import RecurrentBase

    return isinstance(m, RecurrentBase)


def _is_cell(m) -> bool:
    from ..nn.cells import CellBase

    return isinstance(m, CellBase)


def layer_spec(m: nn.Module) -> LayerSpec:
    """The equations of an lstmkit layer or cell, with its parameters as float32 arrays."""
    params = {k: v.detach().cpu().float().numpy() for k, v in m.named_parameters()}
    # a family's options are attributes of its own modules only (an LSTM has no reset_after)
    opt = {name: getattr(m, name, default) for name, default in (
        ("peephole", False), ("coupled", False), ("layer_norm", False), ("reset_after", True))}
    if _is_cell(m):
        return LayerSpec(m.mode, m.input_size, m.hidden_size, bias=m.bias, **opt, params=params,
                         cell=True)
    return LayerSpec(
        m.mode, m.input_size, m.hidden_size, m.proj_size, m.num_layers, m.bidirectional, m.bias,
        m.batch_first, opt["peephole"], opt["coupled"], opt["layer_norm"], opt["reset_after"],
        m.residual, tuple(m.zoneout), params)


def _check_supported(m) -> None:
    from ..nn.conv_lstm import ConvLSTM, ConvLSTMCell

    if (_is_layer(m) or _is_cell(m)) and m.mode not in ("LSTM", "GRU", "RNN_TANH", "RNN_RELU"):
        raise ValueError(f"model: {type(m).__name__} export is not supported (lstmkit.export lowers "
                         "the LSTM, GRU and RNN families only)")
    if _is_layer(m) or _is_cell(m):
        lowered = ("peephole", "coupled", "layer_norm", "reset_after", "nonlinearity")
        other = [o.name for o in m.v.family.options
                 if o.name not in lowered and m.v.opts[o.name] != o.default]
        if other:
            raise ValueError(f"model: {type(m).__name__} with {other} export is not supported "
                             "(lstmkit.export lowers peephole, coupled and layer_norm variants)")
    if isinstance(m, (ConvLSTM, ConvLSTMCell)):
        raise ValueError("model: ConvLSTM export is not supported (its gates are convolutions; "
                         "lstmkit.export lowers the LSTM/GRU/RNN families only)")
    if isinstance(m, (nn.LSTM, nn.GRU, nn.RNN, nn.LSTMCell, nn.GRUCell, nn.RNNCell)):
        raise TypeError(f"model: expected an lstmkit module, got torch.nn.{type(m).__name__}; load "
                        f"its state_dict into lstmkit.{type(m).__name__} (same names and shapes)")


# -- graphs -------------------------------------------------------------------------------------
def _zeros(g: Graph, like_b: str, rows: int, width: int) -> str:
    """(rows, B, width) zeros, B read from dim 1 of ``like_b``."""
    B = g.op("Slice", [g.op("Shape", [like_b]), g.i64([1]), g.i64([2])])
    shape = g.op("Concat", [g.i64([rows]), B, g.i64([width])], axis=0)
    return g.op("ConstantOfShape", [shape], value=_graph.numpy_helper.from_array(np.zeros(1, np.float32)))


def _state_io(s: LayerSpec, rows, batch="B"):
    names = ["h0"] + (["c0"] if s.has_cell else [])
    widths = [s.P] + ([s.hidden_size] if s.has_cell else [])
    shape = lambda w: ([rows] if rows is not None else []) + [batch, w]  # noqa: E731
    return names, [_fvi(n, shape(w)) for n, w in zip(names, widths)], widths


def layer_sequence_model(s: LayerSpec, *, lengths: bool, native: bool):
    g = Graph()
    LD = s.num_layers * s.D
    x_name = "input"
    x = g.op("Transpose", [x_name], perm=[1, 0, 2]) if s.batch_first else x_name  # (T, B, I)
    T = g.op("Slice", [g.op("Shape", [x]), g.i64([0]), g.i64([1])])
    T = g.op("Squeeze", [T, g.i64([0])])
    names, st_in, widths = _state_io(s, LD)
    lens = "lengths" if lengths else None
    y, hn, cn = _graph.build_layer(g, s, x, lens, "h0", "c0" if s.has_cell else None, T, native)
    if s.batch_first:
        y = g.op("Transpose", [y], perm=[1, 0, 2])
    outs = [("output", y), ("h_n", hn)] + ([("c_n", cn)] if s.has_cell else [])
    for name, src in outs:
        g.nodes.append(_graph.helper.make_node("Identity", [src], [name]))
    xshape = ["B", "T", s.input_size] if s.batch_first else ["T", "B", s.input_size]
    inputs = [_fvi("input", xshape)]
    if lengths:
        inputs.append(_graph.helper.make_tensor_value_info("lengths", _graph.TensorProto.INT64, ["B"]))
    inputs += st_in
    yshape = ["B", "T", s.D * s.P] if s.batch_first else ["T", "B", s.D * s.P]
    outputs = [_fvi("output", yshape), _fvi("h_n", [LD, "B", s.P])]
    if s.has_cell:
        outputs.append(_fvi("c_n", [LD, "B", s.hidden_size]))
    return _graph.make_model(g, inputs, outputs, "lstmkit_sequence")


def _step_core(g: Graph, s: LayerSpec, x_bi: str, h0: str, c0: str | None, native: bool):
    """x (B, I), states (L, B, .) -> y (B, P), h_n, c_n: the layer over one step."""
    x = g.op("Unsqueeze", [x_bi, g.i64([0])])  # (1, B, I)
    y, hn, cn = _graph.build_layer(g, s, x, None, h0, c0, None, native)
    return g.op("Squeeze", [y, g.i64([0])]), hn, cn


def layer_step_model(s: LayerSpec, *, native: bool):
    if s.bidirectional:
        raise ValueError("step: a bidirectional layer cannot run one step at a time (its reverse "
                         "direction needs the whole sequence); export the sequence instead")
    g = Graph()
    names, _, widths = _state_io(s, None)
    if s.cell:  # (B, H) states: add and drop the layer axis
        h0 = g.op("Unsqueeze", ["h0", g.i64([0])])
        c0 = g.op("Unsqueeze", ["c0", g.i64([0])]) if s.has_cell else None
    else:
        h0, c0 = "h0", ("c0" if s.has_cell else None)
    y, hn, cn = _step_core(g, s, "input", h0, c0, native)
    rows = None if s.cell else s.num_layers
    if s.cell:
        hn = g.op("Squeeze", [hn, g.i64([0])])
        cn = g.op("Squeeze", [cn, g.i64([0])]) if cn else None
    outs = ([] if s.cell else [("output", y)]) + [("h_n", hn)] + ([("c_n", cn)] if cn else [])
    for name, src in outs:
        g.nodes.append(_graph.helper.make_node("Identity", [src], [name]))
    _, st_in, _ = _state_io(s, rows)
    inputs = [_fvi("input", ["B", s.input_size])] + st_in
    shp = lambda w: ([rows] if rows else []) + ["B", w]  # noqa: E731
    outputs = ([] if s.cell else [_fvi("output", ["B", s.P])]) + [_fvi("h_n", shp(s.P))]
    if s.has_cell:
        outputs.append(_fvi("c_n", shp(s.hidden_size)))
    return _graph.make_model(g, inputs, outputs, "lstmkit_step")


def _linear(g: Graph, x: str, lin: nn.Linear) -> str:
    w = lin.weight.detach().float().numpy()
    y = g.op("MatMul", [x, g.const(w.T, "w")])
    if lin.bias is not None:
        y = g.op("Add", [y, g.const(lin.bias.detach().float().numpy(), "b")])
    return y


def lm_model(lm, s: LayerSpec, *, step: bool, native: bool):
    g = Graph()
    emb = g.const(lm.embedding.weight.detach().float().numpy(), "embedding")
    L = s.num_layers
    _, st_in, _ = _state_io(s, L)
    if step:
        e = g.op("Gather", [emb, "tokens"], axis=0)  # (B, E)
        y, hn, cn = _step_core(g, s, e, "h0", "c0", native)
        out = g.op("LogSoftmax", [_linear(g, y, lm.decoder)], axis=-1)  # (B, V)
        head = ("log_probs", ["B", lm.config.vocab_size])
        tok = ["B"]
    else:
        e = g.op("Transpose", [g.op("Gather", [emb, "tokens"], axis=0)], perm=[1, 0, 2])  # (T, B, E)
        y, hn, cn = _graph.build_layer(g, s, e, None, "h0", "c0", None, native)
        out = _linear(g, g.op("Transpose", [y], perm=[1, 0, 2]), lm.decoder)  # (B, T, V)
        head = ("logits", ["B", "T", lm.config.vocab_size])
        tok = ["B", "T"]
    for name, src in ((head[0], out), ("h_n", hn), ("c_n", cn)):
        g.nodes.append(_graph.helper.make_node("Identity", [src], [name]))
    inputs = [_graph.helper.make_tensor_value_info("tokens", _graph.TensorProto.INT64, tok)] + st_in
    outputs = [_fvi(*head), _fvi("h_n", [L, "B", s.P]), _fvi("c_n", [L, "B", s.hidden_size])]
    return _graph.make_model(g, inputs, outputs, "lstmkit_lm_step" if step else "lstmkit_lm")


def forecaster_model(fc, s: LayerSpec, *, native: bool):
    if fc.config.mode not in ("single", "direct"):
        raise ValueError(f"model: Forecaster mode {fc.config.mode!r} is not exported (it loops over "
                         "the horizon feeding predictions back); export modes 'single' and 'direct', "
                         "or export its LSTM step with step=True and loop outside")
    g = Graph()
    x = g.op("Transpose", ["x"], perm=[1, 0, 2])  # (T, B, F)
    T = g.op("Squeeze", [g.op("Slice", [g.op("Shape", [x]), g.i64([0]), g.i64([1])]), g.i64([0])])
    h0 = _zeros(g, x, s.num_layers, s.P)
    c0 = _zeros(g, x, s.num_layers, s.hidden_size)
    y, _, _ = _graph.build_layer(g, s, x, None, h0, c0, T, native)
    last = g.op("Squeeze", [g.op("Slice", [y, g.i64([-1]), g.i64([np.iinfo(np.int64).max]), g.i64([0])]),
                            g.i64([0])])  # (B, H)
    raw = _linear(g, last, fc.head)  # (B, h * Q)
    c = fc.config
    out, shape = raw, ["B", c.horizon]
    if c.quantiles:
        out, shape = _monotone_quantiles(g, raw, c.n_outputs, c.median_index), ["B", c.horizon, c.n_outputs]
    g.nodes.append(_graph.helper.make_node("Identity", [out], ["forecast"]))
    return _graph.make_model(g, [_fvi("x", ["B", "T", c.input_size])], [_fvi("forecast", shape)],
                             "lstmkit_forecaster")


def _monotone_quantiles(g: Graph, raw: str, Q: int, mid: int) -> str:
    """``models.forecaster.monotone_quantiles`` in ONNX: raw (B, h * Q) -> (B, h, Q) ascending,
    the median level kept and the others reached by cumulative softplus steps out from it."""
    raw = g.op("Reshape", [raw, g.i64([0, -1, Q])])  # (B, h, Q)
    big = np.iinfo(np.int64).max
    centre = g.op("Slice", [raw, g.i64([mid]), g.i64([mid + 1]), g.i64([2])])  # (B, h, 1)
    parts = []
    if mid > 0:
        below = g.op("Softplus", [g.op("Slice", [raw, g.i64([0]), g.i64([mid]), g.i64([2])])])
        parts.append(g.op("Sub", [centre, g.op("CumSum", [below, g.i64(2)], reverse=1)]))
    parts.append(centre)
    if mid + 1 < Q:
        above = g.op("Softplus", [g.op("Slice", [raw, g.i64([mid + 1]), g.i64([big]), g.i64([2])])])
        parts.append(g.op("Add", [centre, g.op("CumSum", [above, g.i64(2)])]))
    return g.op("Concat", parts, axis=2) if len(parts) > 1 else centre


# -- onnxruntime --------------------------------------------------------------------------------
def session(model_or_path, threads: int = 1):
    """An onnxruntime CPU session (quiet, ``threads`` intra-op threads) from a ModelProto, its
    serialised bytes or a path."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    src = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else model_or_path
    return ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])


def _err(a, b) -> float:
    """max |onnxruntime - PyTorch| over one output, divided by max(1, max |PyTorch|): the absolute
    error for outputs within [-1, 1] (states), relative to the scale of larger ones (logits,
    forecasts in the user's units), where float32 summation order alone moves the last digits."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ParityError(f"shape mismatch: onnxruntime {a.shape} vs PyTorch {b.shape}")
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max())) if a.size else 0.0


def _lengths_for(T: int, B: int, gen: torch.Generator) -> torch.Tensor:
    """Random lengths in [0, T] with a 0 and a T among them."""
    lens = torch.randint(0, T + 1, (B,), generator=gen)
    lens[0], lens[1 % B] = T, 0
    return lens


@torch.no_grad()
def check_layer_sequence(m, sess, s: LayerSpec, *, lengths: bool, seed: int = 0) -> tuple[float, int]:
    gen = torch.Generator().manual_seed(seed)
    err, trials = 0.0, 0
    LD = s.num_layers * s.D
    for T, B in ((1, 3), (7, 5), (12, 4)):
        x = torch.randn(T, B, s.input_size, generator=gen)
        hx = [torch.randn(LD, B, w, generator=gen) for w in ([s.P, s.hidden_size] if s.has_cell else [s.P])]
        lens = _lengths_for(T, B, gen) if lengths else None
        xin = x.transpose(0, 1).contiguous() if s.batch_first else x
        y, state = m(xin, tuple(hx) if s.has_cell else hx[0], lengths=lens)
        ref = [y] + (list(state) if s.has_cell else [state])
        feed = {"input": xin.numpy(), "h0": hx[0].numpy()}
        if s.has_cell:
            feed["c0"] = hx[1].numpy()
        if lengths:
            feed["lengths"] = lens.numpy().astype(np.int64)
        got = sess.run(None, feed)
        err = max(err, *(_err(a, b.numpy()) for a, b in zip(got, ref)))
        trials += 1
    return err, trials


@torch.no_grad()
def check_step(m, sess, s: LayerSpec, *, seed: int = 0, steps: int = 6) -> tuple[float, int]:
    """The PyTorch module fed step by step (a cell, or the layer on (1, B, I) slices) vs the
    exported step fed its own states back."""
    gen = torch.Generator().manual_seed(seed)
    B = 3
    rows = () if s.cell else (s.num_layers,)
    widths = [s.P, s.hidden_size] if s.has_cell else [s.P]
    st_t = [torch.randn(*rows, B, w, generator=gen) for w in widths]
    st_o = [t.numpy() for t in st_t]
    err = 0.0
    for _ in range(steps):
        x = torch.randn(B, s.input_size, generator=gen)
        hx = tuple(st_t) if s.has_cell else st_t[0]
        if s.cell:
            new = m(x, hx)
            st_t = list(new) if s.has_cell else [new]
            ref = list(st_t)
        else:
            xin = x.unsqueeze(1) if s.batch_first else x.unsqueeze(0)
            y, new = m(xin, hx)
            st_t = list(new) if s.has_cell else [new]
            ref = [y.reshape(B, -1)] + st_t
        feed = {"input": x.numpy(), "h0": st_o[0]}
        if s.has_cell:
            feed["c0"] = st_o[1]
        got = sess.run(None, feed)
        st_o = got[-len(widths):]
        err = max(err, *(_err(a, b.numpy()) for a, b in zip(got, ref)))
    return err, steps


@torch.no_grad()
def check_lm(lm, sess, *, step: bool, seed: int = 0) -> tuple[float, int]:
    gen = torch.Generator().manual_seed(seed)
    c = lm.config
    L, P, H = c.num_layers, c.proj_size or c.hidden_size, c.hidden_size
    err, trials = 0.0, 0
    B = 3
    hx = (torch.randn(L, B, P, generator=gen), torch.randn(L, B, H, generator=gen))
    st = [t.numpy() for t in hx]
    if step:
        for _ in range(5):
            tok = torch.randint(0, c.vocab_size, (B,), generator=gen)
            lp, hx = lm.step(tok, hx)
            got = sess.run(None, {"tokens": tok.numpy(), "h0": st[0], "c0": st[1]})
            st = got[1:]
            err = max(err, *(_err(a, b.numpy()) for a, b in zip(got, [lp, *hx])))
            trials += 1
        return err, trials
    for T in (1, 9):
        tok = torch.randint(0, c.vocab_size, (B, T), generator=gen)
        logits, new = lm(tok, hx)
        got = sess.run(None, {"tokens": tok.numpy(), "h0": hx[0].numpy(), "c0": hx[1].numpy()})
        err = max(err, *(_err(a, b.numpy()) for a, b in zip(got, [logits, *new])))
        trials += 1
    return err, trials


@torch.no_grad()
def check_forecaster(fc, sess, *, seed: int = 0) -> tuple[float, int]:
    gen = torch.Generator().manual_seed(seed)
    err = 0.0
    for T, B in ((1, 2), (16, 3), (30, 1)):
        x = torch.randn(B, T, fc.config.input_size, generator=gen)
        err = max(err, _err(sess.run(None, {"x": x.numpy()})[0], fc(x).numpy()))
    return err, 3


# -- the entry point ----------------------------------------------------------------------------
def build(model: nn.Module, *, step: bool = False, lengths: bool = True, lowering: str = "auto"):
    """The ONNX model and how to check it, without checking or writing: returns
    ``(onnx.ModelProto, lowering used, checker(session) -> (max_abs_error, trials), kind)``."""
    from ..models.forecaster import Forecaster
    from ..models.language_model import LanguageModel

    if lowering not in ("auto", "native", "scan"):
        raise ValueError(f"lowering: expected 'auto', 'native' or 'scan', got {lowering!r}")
    _check_supported(model)
    from .compress import Reparametrized

    if isinstance(model, Reparametrized):
        raise ValueError(f"model: a compressed ({model.method}) model is not exported: export the "
                         "float model, then quantise the ONNX file (lstmkit compress --method "
                         "onnx-int8, or lstmkit.export.compress.quantize_onnx)")
    m = copy.deepcopy(model).float().cpu().eval()
    if isinstance(m, LanguageModel):
        inner = m.lstm
    elif isinstance(m, Forecaster):
        inner = m.lstm
    elif _is_layer(m) or _is_cell(m):
        inner = m
    else:
        raise TypeError(f"model: expected an lstmkit LSTM/GRU/RNN layer or cell, a LanguageModel "
                        f"or a Forecaster, got {type(model).__name__}")
    if getattr(inner, "stateful", False):
        inner.stateful = False  # the exported graph takes its state explicitly
    s = layer_spec(inner)
    if lowering == "native" and not s.native_ok():
        raise ValueError(f"lowering: 'native' (ONNX's {s.mode.split('_')[0]} operator) cannot express "
                         f"{s.why_not_native()}; use lowering='auto' or 'scan'")
    native = s.native_ok() if lowering == "auto" else lowering == "native"
    used = "native" if native else "scan"
    if isinstance(m, LanguageModel):
        onx = lm_model(m, s, step=step, native=native)
        return onx, used, lambda sess: check_lm(m, sess, step=step), "step" if step else "sequence"
    if isinstance(m, Forecaster):
        if step:
            raise ValueError("step: a Forecaster maps a window to a forecast; export its LSTM "
                             "(model.lstm) with step=True for streaming")
        onx = forecaster_model(m, s, native=native)
        return onx, used, lambda sess: check_forecaster(m, sess), "sequence"
    if s.cell and not step:
        raise ValueError("step: a cell is one step; export it with step=True (or export a layer)")
    if step:
        onx = layer_step_model(s, native=native)
        return onx, used, lambda sess: check_step(m, sess, s), "step"
    onx = layer_sequence_model(s, lengths=lengths, native=native)
    return onx, used, lambda sess: check_layer_sequence(m, sess, s, lengths=lengths), "sequence"


def to_onnx(model: nn.Module, path: str | os.PathLike, *, step: bool = False, lengths: bool = True,
            lowering: str = "auto", atol: float = ATOL) -> ExportReport:
    """Export ``model`` to ``path`` after checking it in onnxruntime against PyTorch.

    step: export one step with explicit state (layers, cells, the LM) instead of a sequence.
    lengths: sequence export of a layer takes a ``lengths`` (B,) int64 input (right padding).
    lowering: "auto" (ONNX's own operator where it computes exactly the layer, else a Scan),
    "native" (raises if the operator cannot), or "scan".
    Raises :class:`ParityError` (nothing written) if the max abs error exceeds ``atol``."""
    onx, used, checker, kind = build(model, step=step, lengths=lengths, lowering=lowering)
    data = onx.SerializeToString()  # once: the session checked is built from the bytes written
    err, trials = checker(session(data))
    if not err <= atol:
        raise ParityError(f"parity: onnxruntime differs from PyTorch by {err:.3g} (> atol {atol:g}, "
                          "relative to outputs beyond [-1, 1]) "
                          f"over {trials} runs; {os.fspath(path)!r} was not written")

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)

    atomic_write(path, write)
    desc = f"{type(model).__name__}({model.extra_repr()})" if _is_layer(model) or _is_cell(model) \
        else type(model).__name__
    return ExportReport(os.fspath(path), desc, kind, used, err, trials,
                        [i.name for i in onx.graph.input], [o.name for o in onx.graph.output],
                        len(data))
