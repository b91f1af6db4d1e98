"""One-step cells: drop-in ``torch.nn.LSTMCell/GRUCell/RNNCell`` plus the LSTM variant flags.

Symbols: B batch, I input, H hidden. A cell maps ``(x_t, state) -> new state`` and knows
nothing of sequences; it runs the same equations as the layers (a sequence of one step).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional import registry
from ..functional._common import Masks
from . import _docs, _params
from ._checks import check_input, check_state
from .recurrent import run_sequence

_VENDOR_STEP = {"LSTM": torch.lstm_cell, "GRU": torch.gru_cell,
                "RNN_TANH": torch.rnn_tanh_cell, "RNN_RELU": torch.rnn_relu_cell}


class CellBase(nn.Module):
    """Shared by every one-step cell; subclasses fix the family and torch's signature."""

    def __init__(self, family: str, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None, *, init: str = "torch", forget_bias: float = 0.0,
                 engine: str = "auto", **options) -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        self.v = _params.Variant.make(family, **options)
        self.mode = self.v.mode
        self._vendor_mode = self.v.vendor_mode  # read on every step
        for name, value in self.v.opts.items():
            setattr(self, name, value)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.engine = _params.check_engine(engine, self.v)
        self.init = _params.check_init(init)
        self.forget_bias = _params.check_forget_bias(self.v, forget_bias, bias)
        factory = {"device": device, "dtype": dtype}
        specs = self.v.specs(input_size, hidden_size, hidden_size, bias)
        _params.register(self, specs, "", factory, flat=True)
        _params.register(self, specs, "", factory, flat=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every parameter as ``init`` and ``forget_bias`` say."""
        _params.init_params(self, self.v, self.hidden_size, self.init, self.forget_bias, [""])

    def extra_repr(self) -> str:
        """Positional sizes, then every argument that differs from its default."""
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = [("bias", True)] + [(o.name, o.default) for o in self.v.family.options]
        defaults += [(name, default) for name, default, _ in _docs.CELL_EXTRAS]
        defaults += [("step_weights", "full")]
        for name, default in defaults:
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        return s

    def _step(self, input: Tensor, hx):
        ref = self.weight_ih
        check_input(input, "input", self.input_size, ref, (1, 2))
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        B, H = x.shape[0], self.hidden_size
        names = self.v.family.state
        n_state = len(names)
        if hx is None:
            state = [x.new_zeros(B, H) for _ in range(n_state)]
        else:
            if n_state > 1 and (not isinstance(hx, (tuple, list)) or len(hx) != n_state):
                raise TypeError(f"hx: expected a tuple ({', '.join(names)}), got {type(hx).__name__}")
            parts = list(hx) if n_state > 1 else [hx]
            labels = [f"hx[{j}] ({n})" for j, n in enumerate(names)] if n_state > 1 else ["hx"]
            state = []
            for h, name in zip(parts, labels):
                h = check_state(h, name, (B, H) if batched else (H,), ref)
                state.append(h if batched else h.unsqueeze(0))
        engine = self.engine
        vendor = self._vendor_mode
        if self._streaming(engine, x, state):
            # inference: one C++ call per step (the fused streaming path)
            fam = self.v.family
            step = getattr(fam.fused_module(), fam.fused_step)
            p = _params.gather(self, self.v, "")
            new = list(step(x, *state, p, self.step_weights))
        elif engine in ("vendor", "auto") and vendor is not None:
            args = (self.weight_ih, self.weight_hh, getattr(self, "bias_ih", None),
                    getattr(self, "bias_hh", None))
            st = tuple(state) if n_state > 1 else state[0]
            new = _VENDOR_STEP[vendor](x, st, *args)
            new = list(new) if n_state > 1 else [new]
        else:
            p = _params.gather(self, self.v, "")
            engine = "fused_or_reference" if engine == "auto" else engine
            _, *new = run_sequence(self.v, engine, x.unsqueeze(0), state, p, Masks())
        if not batched:
            new = [s.squeeze(0) for s in new]
        return tuple(new) if n_state > 1 else new[0]

    step_weights = "full"  # the streaming step's weight precision (LSTM cells choose)

    def _streaming(self, engine: str, x: Tensor, state: list[Tensor]) -> bool:
        """The family's packed single-step kernel (LSTM: plain and variants) serves the cell when
        no gradient is needed: measured 0.4-0.6x the time of torch's own step at B=1-256, H=256
        (benchmarks/README.md, "Streaming step in three precisions")."""
        fam = self.v.family
        if fam.fused_step is None or engine not in ("auto", "fused") or (
                not fam.fused_serves(self.v.opts)):  # options the kernels lack (ablations)
            return False
        if torch.is_grad_enabled() and (
                x.requires_grad or any(s.requires_grad for s in state)
                or any(p.requires_grad for p in self._parameters.values())):
            return False
        # the input was checked to have the module's dtype and device: that is all supports()
        # would look at for a cell (no masks), so skip it on this per-step path
        return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and (
            fam.fused_module().available())

    @classmethod
    def from_layer(cls, layer: nn.Module, index: int = 0, reverse: bool = False, **extras):
        """A cell of the same family, options, dtype, device and engine holding a copy of layer
        ``index``'s weights of a sequence ``layer`` (``reverse``: its right-to-left direction);
        ``extras`` are the cell's own keywords (``engine``, ``step_weights``). A stack of these
        cells, each fed the one below (plus its input from the second layer on for a
        ``residual`` layer), steps the layer one input at a time. A layer with zoneout has no
        cell: in eval its steps blend in zoneout's expectation, which a cell does not.

        >>> import torch, lstmkit as lk
        >>> lstm = lk.LSTM(3, 4, num_layers=2, peephole=True)
        >>> cell = lk.LSTMCell.from_layer(lstm, 1)
        >>> cell
        LSTMCell(4, 4, peephole=True)
        >>> torch.equal(cell.weight_hh, lstm.weight_hh_l1)
        True
        """
        if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < layer.num_layers:
            raise ValueError(f"index: expected a layer in [0, {layer.num_layers}), got {index!r}")
        if reverse and not layer.bidirectional:
            raise ValueError("reverse: the layer is not bidirectional")
        if getattr(layer, "proj_size", 0):
            raise ValueError(f"layer: a projected layer (proj_size={layer.proj_size}) has no cell")
        if getattr(layer, "zoneout", (0.0, 0.0)) != (0.0, 0.0):
            raise ValueError(f"layer: a layer with zoneout={layer.zoneout} has no cell (in eval its "
                             "steps blend in zoneout's expectation)")
        extras.setdefault("engine", layer.engine)
        ref = layer.weight_ih_l0
        in_size = layer.input_size if index == 0 else layer.hidden_size * (2 if layer.bidirectional else 1)
        cell = cls(in_size, layer.hidden_size, layer.bias, ref.device, ref.dtype, **layer.v.opts, **extras)
        if cell.v.family is not layer.v.family:
            raise ValueError(f"layer: expected a {cell.v.family.title} layer for {cls.__name__}, got "
                             f"{layer.v.family.title}")
        suffix = f"_l{index}" + ("_reverse" if reverse else "")
        with torch.no_grad():
            for name, param in cell.named_parameters():
                param.copy_(getattr(layer, name + suffix))
        return cell.train(layer.training)

    def forward(self, input: Tensor, hx=None):
        """One step from ``hx`` (see the class docstring: Inputs and Outputs)."""
        if not torch.is_grad_enabled():  # streaming: a well-formed step goes straight to the kernel
            out = self._packed_step(input, hx)
            if out is not None:
                return out
        return self._step(input, hx)

    def _packed_step(self, x, hx):
        """The packed step kernel's answer for an input that needs no checking beyond a glance
        (batched, the cell's dtype and sizes, a (h, c) tuple of matching tensors, no autocast), or
        None: then ``_step`` serves the call, with its checks and errors. Measured at B=1, H=256:
        it skips ~7 us of the ~12 us Python a cell call costs there."""
        ref = self.weight_ih
        key = (self.engine, ref.device, ref.dtype)
        cached = self.__dict__.get("_packed")
        if cached is None or cached[0] != key:  # decided per engine, device, dtype (lazy kernels)
            fam = self.v.family
            ok = self._streaming(self.engine, ref.new_empty(0), [])
            self._packed = cached = (key, getattr(fam.fused_module(), fam.fused_step) if ok else None)
        step = cached[1]
        if step is None or type(hx) is not tuple or len(hx) != 2 or type(x) is not Tensor:
            return None
        h, c = hx
        if (type(h) is not Tensor or type(c) is not Tensor or x.dim() != 2 or x.dtype != ref.dtype
                or x.device != ref.device
                or x.shape[1] != self.input_size or h.shape != (x.shape[0], self.hidden_size)
                or c.shape != h.shape or h.dtype != ref.dtype or c.dtype != ref.dtype
                or h.device != ref.device or c.device != ref.device or torch.is_autocast_enabled("cpu")):
            return None
        return tuple(step(x, h, c, _params.gather(self, self.v, ""), self.step_weights))


class LSTMCell(CellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, *, step_weights: str = "full", **extras) -> None:
        super().__init__("lstm", input_size, hidden_size, bias, device, dtype, **extras)
        self.step_weights = _params.check_step_weights(step_weights, self.v, self.weight_ih.dtype,
                                                       self.engine)


LSTMCell.__doc__ = _docs.cell_doc(registry.get("lstm"), """\
Drop-in ``torch.nn.LSTMCell`` plus the LSTM family's options; one step of the same equations
as ``LSTM``. Without gradients (``torch.no_grad``/``inference_mode``) the step runs the packed
streaming kernel, which reads each weight once per step.

    step_weights: that kernel's weight precision (float32 cells, no layer norm): 'full' (the
        parameters' dtype), 'bfloat16' (half the bytes, ~2e-3 off in h at H=64) or 'int8'
        (per-row scales, 8-bit dynamic activations, ~7e-3 off). Training and steps that need
        gradients always use the parameters as they are. Default: 'full'""",
"""\
    >>> import torch
    >>> cell = LSTMCell(3, 4, peephole=True)
    >>> cell
    LSTMCell(3, 4, peephole=True)
    >>> h, c = cell(torch.randn(2, 3))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 4), (2, 4))
""")


class GRUCell(CellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, **extras) -> None:
        super().__init__("gru", input_size, hidden_size, bias, device, dtype, **extras)


GRUCell.__doc__ = _docs.cell_doc(registry.get("gru"), """\
Drop-in ``torch.nn.GRUCell``; ``reset_after=False`` gives Cho et al. 2014.""", """\
    >>> import torch
    >>> h = GRUCell(3, 4)(torch.randn(2, 3))
    >>> tuple(h.shape)
    (2, 4)
""")


class RNNCell(CellBase):
    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None, **extras) -> None:
        super().__init__("rnn", input_size, hidden_size, bias, device, dtype,
                         nonlinearity=nonlinearity, **extras)


RNNCell.__doc__ = _docs.cell_doc(registry.get("rnn"), """\
Drop-in ``torch.nn.RNNCell`` (tanh or relu).""", """\
    >>> import torch
    >>> cell = RNNCell(3, 4, nonlinearity="relu")
    >>> cell
    RNNCell(3, 4, nonlinearity='relu')
    >>> bool((cell(torch.randn(2, 3)) >= 0).all())
    True
""", positional=("nonlinearity",))


def cell_class(family: registry.Family) -> type:
    """The one-step cell of a registered family that has no hand-written class."""
    name = family.name

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, **extras) -> None:
        CellBase.__init__(self, name, input_size, hidden_size, bias, device, dtype, **extras)

    example = f"""\
    >>> import torch, lstmkit as lk
    >>> state = lk.{family.title}Cell(3, 4)(torch.randn(2, 3))
"""
    doc = _docs.cell_doc(family, f"One step of {family.title}. {family.doc}", example)
    return _docs.generated_class(f"{family.title}Cell", CellBase, __init__, doc, __name__)


# every other registered family gets its cell from the registry
GENERATED = [cell_class(f) for f in registry.families()
             if f.layer and f"{f.title}Cell" not in globals()]
globals().update({c.__name__: c for c in GENERATED})
