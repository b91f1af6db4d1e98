"""ONNX graphs for lstmkit's recurrent layers, written with ``onnx.helper``.

Symbols: T time, B batch, I input, H hidden, P output width (proj_size or H), G gate rows,
D directions, L layers.

Two lowerings of one layer-direction:

- **native**: ONNX's own ``LSTM`` / ``GRU`` / ``RNN`` operator (one node per layer, both
  directions in it). Serves plain and peephole LSTM (input ``P``), both GRU forms
  (``linear_before_reset``) and RNN tanh/relu. Gate rows are reordered from torch's
  (LSTM i, f, g, o -> ONNX i, o, f, c; GRU r, z, n -> z, r, h; peepholes -> i, o, f).
- **scan**: an ONNX ``Scan`` whose body is the step in primitive operators (MatMul, Sigmoid,
  Tanh, ReduceMean, ...). Serves everything the operators cannot express: coupled
  (CIFG), layer_norm, proj_size, eval-mode zoneout; it is also used for any layer when asked.

Why ``onnx.helper`` and not ``torch.onnx``: the graph is small and fully determined by the
equations, the lowering stays independent of torch's exporters (the TorchScript one is
deprecated, the dynamo one does not trace a data-dependent time loop around lstmkit's
``autograd.Function``), and the exact operator set (native RNN ops with ``sequence_lens``) is
chosen by us instead of recovered from a trace.

Both lowerings follow lstmkit's ``lengths`` contract: outputs at padded steps are 0, final
states are each sequence's state after its own last valid step (the initial state when its
length is 0), the reverse direction starts at each sequence's own last step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # readable by onnxruntime 1.14+


@dataclass
class LayerSpec:
    """What a layer (or a cell, as one layer) computes, read from its public attributes."""

    mode: str  # LSTM | GRU | RNN_TANH | RNN_RELU
    input_size: int
    hidden_size: int
    proj_size: int = 0
    num_layers: int = 1
    bidirectional: bool = False
    bias: bool = True
    batch_first: bool = False
    peephole: bool = False
    coupled: bool = False
    layer_norm: bool = False
    reset_after: bool = True
    residual: bool = False
    zoneout: tuple[float, float] = (0.0, 0.0)
    params: dict[str, np.ndarray] = field(default_factory=dict)  # name -> float32 array
    cell: bool = False  # parameter names without the _l{k} suffix

    @property
    def D(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def P(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def has_cell(self) -> bool:
        return self.mode == "LSTM"

    def suffix(self, k: int, d: int) -> str:
        return "" if self.cell else f"_l{k}{'_reverse' if d else ''}"

    def native_ok(self) -> bool:
        """True when ONNX's own LSTM/GRU/RNN operator computes exactly this layer."""
        return not self.why_not_native()

    def why_not_native(self) -> str:
        reasons = []
        if self.zoneout != (0.0, 0.0):
            reasons.append("eval-mode zoneout (a keep blend the operators lack)")
        if self.coupled:
            reasons.append("coupled (CIFG: no forget gate)")
        if self.layer_norm:
            reasons.append("layer_norm")
        if self.proj_size:
            reasons.append("proj_size (ONNX LSTM has no projection)")
        return ", ".join(reasons)


class Graph:
    """A growing ONNX graph: nodes, initializers, fresh names."""

    def __init__(self, prefix: str = "") -> None:
        self.nodes: list = []
        self.inits: list = []
        self.prefix = prefix
        self._count = 0

    def fresh(self, base: str) -> str:
        self._count += 1
        return f"{self.prefix}{base}_{self._count}"

    def const(self, value, base: str = "c", dtype=np.float32) -> str:
        name = self.fresh(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def i64(self, value, base: str = "i") -> str:
        return self.const(value, base, np.int64)

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, base: str | None = None, **attrs):
        outs = [self.fresh(base or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, **attrs))
        return outs[0] if n_out == 1 else outs


def _fvi(name: str, shape) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _layer_norm(g: Graph, b: Graph, x: str, w: np.ndarray, bias: np.ndarray) -> str:
    """LayerNorm over the last axis in two passes (mean, then the mean of squared deviations),
    as lstmkit computes it; onnxruntime's LayerNormalization uses E[x^2] - E[x]^2, which loses
    float32 digits when the variance is small. Nodes go to ``b``, constants to ``g``."""
    mean = b.op("ReduceMean", [x], axes=[-1], keepdims=1)
    dev = b.op("Sub", [x, mean])
    var = b.op("ReduceMean", [b.op("Mul", [dev, dev])], axes=[-1], keepdims=1)
    rstd = b.op("Reciprocal", [b.op("Sqrt", [b.op("Add", [var, g.const(1e-5)])])])
    return b.op("Add", [b.op("Mul", [b.op("Mul", [dev, rstd]), g.const(w, "ln_w")]), g.const(bias, "ln_b")])


def _split_rows(w: np.ndarray, n: int) -> list[np.ndarray]:
    return np.split(w, n, axis=0)


# -- native operators -------------------------------------------------------------------------
def _native_layer(g: Graph, s: LayerSpec, k: int, x: str, lens32: str | None, h0: str,
                  c0: str | None, lens_zero: str | None):
    """One layer (both directions) as ONNX's own operator. x (T, B, I) -> y (T, B, D*H),
    h_n (D, B, H)[, c_n]."""
    H, D = s.hidden_size, s.D
    p = s.params
    Ws, Rs, Bs, Ps = [], [], [], []
    for d in range(D):
        sfx = s.suffix(k, d)
        w_ih, w_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
        b_ih = p.get("bias_ih" + sfx)
        b_hh = p.get("bias_hh" + sfx)
        if s.mode == "LSTM":
            order = [0, 3, 1, 2]  # torch i, f, g, o -> ONNX i, o, f, c
        elif s.mode == "GRU":
            order = [1, 0, 2]  # torch r, z, n -> ONNX z, r, h
        else:
            order = [0]
        re = lambda w, order=order: np.concatenate([_split_rows(w, len(order))[j] for j in order])  # noqa: E731
        Ws.append(re(w_ih))
        Rs.append(re(w_hh))
        if b_ih is not None:
            Bs.append(np.concatenate([re(b_ih), re(b_hh)]))
        if s.peephole:
            Ps.append(np.concatenate([p["weight_ci" + sfx], p["weight_co" + sfx], p["weight_cf" + sfx]]))
    W = g.const(np.stack(Ws), "W")
    R = g.const(np.stack(Rs), "R")
    Bn = g.const(np.stack(Bs), "B") if Bs else ""
    direction = "bidirectional" if D == 2 else "forward"
    attrs = {"hidden_size": H, "direction": direction}
    if s.mode == "LSTM":
        Pn = g.const(np.stack(Ps), "P") if Ps else ""
        inputs = [x, W, R, Bn, lens32 or "", h0, c0, Pn]
        y, yh, yc = g.op("LSTM", inputs, 3, base="lstm", **attrs)
    elif s.mode == "GRU":
        inputs = [x, W, R, Bn, lens32 or "", h0]
        y, yh = g.op("GRU", inputs, 2, base="gru", linear_before_reset=int(s.reset_after), **attrs)
        yc = None
    else:
        act = "Tanh" if s.mode == "RNN_TANH" else "Relu"
        inputs = [x, W, R, Bn, lens32 or "", h0]
        y, yh = g.op("RNN", inputs, 2, base="rnn", activations=[act] * D, **attrs)
        yc = None
    # (T, D, B, H) -> (T, B, D*H)
    y = g.op("Transpose", [y], perm=[0, 2, 1, 3])
    y = g.op("Reshape", [y, g.i64([0, 0, -1])])
    if lens_zero is not None:
        # onnxruntime returns zeros as the final state of a length-0 sequence; lstmkit returns
        # its initial state
        yh = g.op("Where", [lens_zero, h0, yh])
        if yc is not None:
            yc = g.op("Where", [lens_zero, c0, yc])
    return y, yh, yc


# -- scan of primitive operators --------------------------------------------------------------
def _scan_direction(g: Graph, s: LayerSpec, k: int, d: int, x: str, h0: str, c0: str | None,
                    keep_h: str | None, keep_c: str | None):
    """One layer-direction as a Scan over time. x (T, B, In) already in processing order.
    Returns y (T, B, P) (blended states, unmasked), h_n (B, P)[, c_n (B, H)]."""
    H, P = s.hidden_size, s.P
    sfx = s.suffix(k, d)
    p = s.params
    w_ih, w_hh = p["weight_ih" + sfx], p["weight_hh" + sfx]
    b_ih, b_hh = p.get("bias_ih" + sfx), p.get("bias_hh" + sfx)
    G = w_ih.shape[0]
    # input projection for all steps: one MatMul (T, B, In) @ (In, G)
    xg = g.op("MatMul", [x, g.const(w_ih.T, "w_ih_t")])
    if s.layer_norm:
        xg = _layer_norm(g, g, xg, p["ln_ih_weight" + sfx], p["ln_ih_bias" + sfx])
    b_hn = None
    if b_ih is not None:
        if s.mode == "GRU" and s.reset_after:
            bias = np.concatenate([b_ih[: 2 * H] + b_hh[: 2 * H], b_ih[2 * H:]])
            b_hn = b_hh[2 * H:]
        else:
            bias = b_ih + b_hh
        xg = g.op("Add", [xg, g.const(bias, "bias")])

    # the body: states first, then the per-step slices
    b = Graph(prefix=g.fresh("body") + "/")
    b.inits = g.inits  # constants live in the main graph (outer scope)
    h_prev, c_prev = b.fresh("h_prev"), b.fresh("c_prev") if s.has_cell else None
    xg_t = b.fresh("xg_t")
    kh_t = b.fresh("kh_t") if keep_h else None
    kc_t = b.fresh("kc_t") if keep_c else None
    whh_t = g.const(w_hh.T, "w_hh_t")
    if s.mode == "LSTM":
        hh = b.op("MatMul", [h_prev, whh_t])
        if s.layer_norm:
            hh = _layer_norm(g, b, hh, p["ln_hh_weight" + sfx], p["ln_hh_bias" + sfx])
        a = b.op("Add", [xg_t, hh])  # (B, G)
        n_g = 3 if s.coupled else 4
        parts = b.op("Split", [a, g.i64([H] * n_g)], n_g, axis=1)
        if s.coupled:
            a_i, a_g, a_o = parts
        else:
            a_i, a_f, a_g, a_o = parts
        if s.peephole:
            a_i = b.op("Add", [a_i, b.op("Mul", [c_prev, g.const(p["weight_ci" + sfx])])])
            if not s.coupled:
                a_f = b.op("Add", [a_f, b.op("Mul", [c_prev, g.const(p["weight_cf" + sfx])])])
        i = b.op("Sigmoid", [a_i])
        f = b.op("Sub", [g.const(1.0), i]) if s.coupled else b.op("Sigmoid", [a_f])
        gg = b.op("Tanh", [a_g])
        c_new = b.op("Add", [b.op("Mul", [f, c_prev]), b.op("Mul", [i, gg])])
        if s.peephole:
            a_o = b.op("Add", [a_o, b.op("Mul", [c_new, g.const(p["weight_co" + sfx])])])
        o = b.op("Sigmoid", [a_o])
        cn = c_new
        if s.layer_norm:
            cn = _layer_norm(g, b, c_new, p["ln_c_weight" + sfx], p["ln_c_bias" + sfx])
        h_new = b.op("Mul", [o, b.op("Tanh", [cn])])
        if s.proj_size:
            h_new = b.op("MatMul", [h_new, g.const(p["weight_hr" + sfx].T, "w_hr_t")])
    elif s.mode == "GRU":
        a_r, a_z, a_n = b.op("Split", [xg_t, g.i64([H] * 3)], 3, axis=1)
        if s.reset_after:
            hh = b.op("MatMul", [h_prev, whh_t])
            h_r, h_z, h_n = b.op("Split", [hh, g.i64([H] * 3)], 3, axis=1)
            if b_hn is not None:
                h_n = b.op("Add", [h_n, g.const(b_hn, "b_hn")])
            r = b.op("Sigmoid", [b.op("Add", [a_r, h_r])])
            z = b.op("Sigmoid", [b.op("Add", [a_z, h_z])])
            n = b.op("Tanh", [b.op("Add", [a_n, b.op("Mul", [r, h_n])])])
        else:
            hh = b.op("MatMul", [h_prev, g.const(w_hh[: 2 * H].T, "w_hrz_t")])
            h_r, h_z = b.op("Split", [hh, g.i64([H] * 2)], 2, axis=1)
            r = b.op("Sigmoid", [b.op("Add", [a_r, h_r])])
            z = b.op("Sigmoid", [b.op("Add", [a_z, h_z])])
            q = b.op("MatMul", [b.op("Mul", [r, h_prev]), g.const(w_hh[2 * H:].T, "w_hn_t")])
            n = b.op("Tanh", [b.op("Add", [a_n, q])])
        # h = (1 - z) * n + z * h_prev = n + z * (h_prev - n)
        h_new = b.op("Add", [n, b.op("Mul", [z, b.op("Sub", [h_prev, n])])])
        c_new = None
    else:
        a = b.op("Add", [xg_t, b.op("MatMul", [h_prev, whh_t])])
        h_new = b.op("Tanh" if s.mode == "RNN_TANH" else "Relu", [a])
        c_new = None

    def blend(new, prev, keep):  # keep * prev + (1 - keep) * new, as torch.lerp
        return b.op("Add", [new, b.op("Mul", [keep, b.op("Sub", [prev, new])])])

    if kh_t is not None:
        h_new = blend(h_new, h_prev, kh_t)
    if kc_t is not None:
        c_new = blend(c_new, c_prev, kc_t)
    h_out = b.op("Identity", [h_new], base="h_out")
    y_out = b.op("Identity", [h_new], base="y_out")
    body_in = [_fvi(h_prev, ["B", P])] + ([_fvi(c_prev, ["B", H])] if c_prev else [])
    body_in += [_fvi(xg_t, ["B", G])]
    body_in += [_fvi(kh_t, ["B", 1])] if kh_t else []
    body_in += [_fvi(kc_t, ["B", 1])] if kc_t else []
    body_out = [_fvi(h_out, ["B", P])]
    if c_new is not None:
        c_out = b.op("Identity", [c_new], base="c_out")
        body_out.append(_fvi(c_out, ["B", H]))
    body_out.append(_fvi(y_out, ["B", P]))
    body = helper.make_graph(b.nodes, b.prefix.rstrip("/"), body_in, body_out)
    states = [h0] + ([c0] if s.has_cell else [])
    scans = [xg] + ([keep_h] if keep_h else []) + ([keep_c] if keep_c else [])
    outs = g.op("Scan", states + scans, len(states) + 1, base="scan", body=body,
                num_scan_inputs=len(scans))
    if s.has_cell:
        hn, cn_, y = outs
        return y, hn, cn_
    hn, y = outs
    return y, hn, None


# -- the layer ----------------------------------------------------------------------------------
def build_layer(g: Graph, s: LayerSpec, x: str, lens: str | None, h0: str, c0: str | None,
                T: str | None, native: bool):
    """The whole layer (L layers x D directions) on x (T, B, I) with lengths ``lens`` (B,)
    int64 or None (every sequence full). h0 (L*D, B, P), c0 (L*D, B, H).
    Returns y (T, B, D*P), h_n (L*D, B, P), c_n (L*D, B, H) or None."""
    D, L = s.D, s.num_layers
    valid = lens32 = lens_zero = lens_rev = None
    if lens is not None:
        steps = g.op("Range", [g.i64(0), T, g.i64(1)])  # (T,)
        valid_b = g.op("Less", [g.op("Unsqueeze", [steps, g.i64([1])]),
                                g.op("Unsqueeze", [lens, g.i64([0])])])  # (T, B)
        valid = g.op("Unsqueeze", [g.op("Cast", [valid_b], to=TensorProto.FLOAT), g.i64([2])])  # (T, B, 1)
        lens32 = g.op("Cast", [lens], to=TensorProto.INT32)
        lens_zero = g.op("Unsqueeze", [g.op("Equal", [lens, g.i64(0)]), g.i64([0, 2])])  # (1, B, 1)
        lens_rev = g.op("Max", [lens, g.i64(1)])  # ReverseSequence on >= 1 step (same result)
    keep = {}
    for j, pz in ((0, s.zoneout[1]), (1, s.zoneout[0])):  # j=0: h, j=1: c
        if valid is not None:  # 1 - valid * (1 - p)
            keep[j] = g.op("Sub", [g.const(1.0), g.op("Mul", [valid, g.const(1.0 - pz)])])
        elif pz:
            shape = g.op("Shape", [x], start=0, end=2)  # (T, B)
            ones = g.op("ConstantOfShape", [g.op("Concat", [shape, g.i64([1])], axis=0)],
                        value=numpy_helper.from_array(np.array([pz], np.float32)))
            keep[j] = ones
        else:
            keep[j] = None
    layer_in, finals_h, finals_c = x, [], []
    for k in range(L):
        sl = lambda t, k=k: g.op("Slice", [t, g.i64([k * D]), g.i64([(k + 1) * D]), g.i64([0])])  # noqa: E731
        h0k, c0k = sl(h0), sl(c0) if c0 else None
        if native:
            out, hk, ck = _native_layer(g, s, k, layer_in, lens32, h0k, c0k, lens_zero)
            finals_h.append(hk)
            if ck:
                finals_c.append(ck)
        else:
            outs = []
            for d in range(D):
                pick = lambda t, d=d: g.op("Squeeze", [g.op("Slice", [t, g.i64([d]), g.i64([d + 1]),  # noqa: E731
                                                              g.i64([0])]), g.i64([0])])
                xin = layer_in
                if d == 1:
                    xin = (g.op("ReverseSequence", [layer_in, lens_rev], batch_axis=1, time_axis=0)
                           if lens is not None else g.op("ReverseSequence", [layer_in, _full_lens(g, x)],
                                                         batch_axis=1, time_axis=0))
                y, hn, cn = _scan_direction(g, s, k, d, xin, pick(h0k), pick(c0k) if c0k else None,
                                            keep[0], keep[1] if s.has_cell else None)
                if valid is not None:
                    y = g.op("Mul", [y, valid])
                if d == 1:
                    y = g.op("ReverseSequence", [y, lens_rev if lens is not None else _full_lens(g, x)],
                             batch_axis=1, time_axis=0)
                outs.append(y)
                finals_h.append(g.op("Unsqueeze", [hn, g.i64([0])]))
                if cn:
                    finals_c.append(g.op("Unsqueeze", [cn, g.i64([0])]))
            out = outs[0] if D == 1 else g.op("Concat", outs, axis=-1)
        if s.residual and k > 0:
            out = g.op("Add", [out, layer_in])
        layer_in = out
    cat = lambda xs: xs[0] if len(xs) == 1 else g.op("Concat", xs, axis=0)  # noqa: E731
    return layer_in, cat(finals_h), (cat(finals_c) if finals_c else None)


def _full_lens(g: Graph, x: str) -> str:
    """(B,) int64 filled with T, for ReverseSequence without lengths."""
    shape = g.op("Shape", [x])
    T = g.op("Slice", [shape, g.i64([0]), g.i64([1])])
    B = g.op("Slice", [shape, g.i64([1]), g.i64([2])])
    return g.op("Expand", [T, B])


def make_model(g: Graph, inputs: list, outputs: list, name: str) -> onnx.ModelProto:
    graph = helper.make_graph(g.nodes, name, inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="lstmkit")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
