"""LSTM, GRU and RNN layers: drop-in ``torch.nn`` twins plus the extras of DESIGN §2.

Symbols: T time, B batch, I input, H hidden, P output width (proj_size or H), D directions,
L layers.

One generic runner owns time, lengths, direction, stacking and the dropout family; the
equations live in ``lstmkit.functional`` (reference engine) and ``lstmkit.kernels`` (fused);
``vendor`` is torch's own ``_VF`` path, used only where the math is exactly the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import _VF, Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from ..functional._common import Masks
from . import _params
from ._checks import check_input, check_lengths, check_prob, check_state


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (T, B, ...) within its own length; padding stays in place."""
    if lengths is None:
        return x.flip(0)
    T, B = x.shape[0], x.shape[1]
    t = torch.arange(T).unsqueeze(1)  # (T, 1)
    lens = lengths.unsqueeze(0)  # (1, B)
    idx = torch.where(t < lens, lens - 1 - t, t).to(x.device)  # (T, B), an involution
    return x[idx, torch.arange(B, device=x.device)]


def _kernels():
    from .. import kernels  # imported lazily: building the extension is costly

    return kernels


def _fused_ok(v: _params.Variant, x: Tensor, p, masks: Masks) -> bool:
    k = _kernels()
    family = {"LSTM": "lstm", "GRU": "gru"}.get(v.mode, "rnn")
    return k.supports(family, p, masks, x, reset_after=v.reset_after) and k.available()


def run_sequence(v: _params.Variant, engine: str, x: Tensor, state, p, masks: Masks):
    """One layer-direction on our engines: x (T, B, I) -> (y, h_n[, c_n]).

    engine: "reference", "fused" (raises if it cannot serve) or "fused_or_reference"."""
    if engine == "fused_or_reference":
        engine = "fused" if _fused_ok(v, x, p, masks) else "reference"
    elif engine == "fused" and not _fused_ok(v, x, p, masks):
        raise ValueError("engine: 'fused' kernels are not available or cannot serve this "
                         "configuration; use engine='auto' or 'reference'")
    if engine == "fused":
        impl = _kernels()
    elif v.mode == "LSTM":
        from ..functional import lstm as impl
    elif v.mode == "GRU":
        from ..functional import gru as impl
    else:
        from ..functional import rnn as impl
    if v.mode == "LSTM":
        return impl.lstm(x, state[0], state[1], p, masks)
    if v.mode == "GRU":
        return impl.gru(x, state[0], p, masks, reset_after=v.reset_after)
    return impl.rnn(x, state[0], p, masks, nonlinearity="tanh" if v.mode == "RNN_TANH" else "relu")


class RecurrentBase(nn.Module):
    """Shared by LSTM, GRU and RNN. Subclasses fix ``mode`` and the torch signature."""

    def __init__(
        self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1,
        bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
        bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None, *,
        peephole: bool = False, coupled: bool = False, layer_norm: bool = False,
        reset_after: bool = True, input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0, weight_drop: float = 0.0,
        init: str = "torch", forget_bias: float = 0.0, residual: bool = False,
        stateful: bool = False, engine: str = "auto",
    ) -> None:
        super().__init__()
        for name, value in (("bias", bias), ("batch_first", batch_first)):
            if not isinstance(value, bool):  # torch rejects 0/1 here too
                raise TypeError(f"{name}: expected a bool, got {type(value).__name__} {value!r}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers), ("proj_size", proj_size)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
        if input_size <= 0 or hidden_size <= 0 or num_layers <= 0:
            raise ValueError(
                "input_size, hidden_size, num_layers: expected positive ints, got "
                f"{input_size}, {hidden_size}, {num_layers}"
            )
        if proj_size < 0 or proj_size >= hidden_size:
            if proj_size != 0:
                raise ValueError(f"proj_size: expected 0 <= proj_size < hidden_size={hidden_size}, "
                                 f"got {proj_size}")
        if proj_size and mode != "LSTM":
            raise ValueError(f"proj_size: only applies to LSTM, not to {mode}")
        self.v = _params.Variant.make(mode, peephole=peephole, coupled=coupled,
                                      layer_norm=layer_norm, reset_after=reset_after)
        self.mode = mode
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.proj_size = proj_size
        self.dropout = check_prob("dropout", dropout)
        self.input_dropout = check_prob("input_dropout", input_dropout)
        self.recurrent_dropout = check_prob("recurrent_dropout", recurrent_dropout)
        self.weight_drop = check_prob("weight_drop", weight_drop)
        self.zoneout = _params.check_zoneout(zoneout, mode)
        self.init = _params.check_init(init)
        self.forget_bias = _params.check_forget_bias(self.v, forget_bias, bias)
        self.residual, self.stateful = bool(residual), bool(stateful)
        self.engine = _params.check_engine(engine)
        self.peephole, self.coupled, self.layer_norm = peephole, coupled, layer_norm
        self.reset_after = reset_after

        H, P = hidden_size, proj_size or hidden_size
        D = 2 if bidirectional else 1
        factory = {"device": device, "dtype": dtype}
        self._suffixes = [f"_l{k}{'_reverse' if d else ''}" for k in range(num_layers) for d in range(D)]
        self._flat_weights_names: list[str] = []
        for k in range(num_layers):
            for d in range(D):
                in_size = input_size if k == 0 else D * P
                self._flat_weights_names += _params.register(
                    self, self.v, in_size, H, P, bias, self._suffixes[k * D + d], factory)
        for s in self._suffixes:
            _params.register_extras(self, self.v, H, s, factory)
        self.reset_parameters()
        self._state = None  # stateful: the last final state, detached

    def reset_parameters(self) -> None:
        """Initialise every parameter as ``init`` and ``forget_bias`` say."""
        _params.init_params(self, self.v, self.hidden_size, self.init, self.forget_bias,
                            self._suffixes)

    # -- torch compatibility ---------------------------------------------------------------
    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, n) for n in self._flat_weights_names]

    @property
    def all_weights(self) -> list[list[nn.Parameter]]:
        """Parameters per layer-direction in torch's layout (``w_ih, w_hh[, b_ih, b_hh][, w_hr]``),
        followed by that layer-direction's variant parameters (peepholes, layer norm) if any."""
        n = len(self._flat_weights_names) // len(self._suffixes)
        out = []
        for j, s in enumerate(self._suffixes):
            names = self._flat_weights_names[j * n:(j + 1) * n]
            names += [k for k in self._parameters if k.endswith(s) and k not in names]
            out.append([self._parameters[k] for k in names])
        return out

    def flatten_parameters(self) -> None:  # torch API; nothing to do on CPU
        return None

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        for name, default in (("bias", True), ("batch_first", False), ("dropout", 0.0),
                              ("bidirectional", False), ("proj_size", 0), ("peephole", False),
                              ("coupled", False), ("layer_norm", False), ("reset_after", True),
                              ("input_dropout", 0.0), ("recurrent_dropout", 0.0),
                              ("weight_drop", 0.0), ("residual", False), ("stateful", False),
                              ("engine", "auto")):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        if self.zoneout != (0.0, 0.0):
            s += f", zoneout={self.zoneout}"
        return s

    # -- state ------------------------------------------------------------------------------
    @property
    def _has_cell(self) -> bool:
        return self.mode == "LSTM"

    def reset_state(self, mask: Tensor | None = None) -> None:
        """Stateful use: forget the carried state (all rows, or the rows where mask is True)."""
        if mask is None or self._state is None:
            self._state = None
            return
        h = self._state[0]  # (L*D, B, P)
        B = h.shape[1]
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != (B,):
            got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
            raise ValueError(f"mask: expected a bool tensor of shape ({B},), got {got}")
        keep = (~mask).to(h.dtype).to(h.device).unsqueeze(-1)  # (B, 1)
        self._state = tuple(s * keep for s in self._state)

    # -- engine choice ----------------------------------------------------------------------
    def _uses_extras(self) -> bool:
        return bool(self.input_dropout or self.recurrent_dropout or self.residual
                    or self.zoneout != (0.0, 0.0))

    def _vendor_ok(self, x: Tensor, lengths) -> bool:
        return self.v.plain and not self._uses_extras() and lengths is None and x.dtype in (
            torch.float32, torch.float64, torch.bfloat16, torch.float16)

    def _pick_engine(self, x: Tensor, lengths, packed: bool) -> str:
        e = self.engine
        vendor_ok = self._vendor_ok(x, lengths)
        if e == "vendor" and not vendor_ok:
            raise ValueError(
                "engine: 'vendor' (torch's own kernels) cannot serve this configuration "
                "(variant flags, lengths=, input/recurrent dropout, zoneout or residual); "
                "use engine='auto' or 'reference'"
            )
        if e == "auto":
            # torch's oneDNN LSTM is as fast as it gets where its math is ours (it has no
            # projection path: torch then warns and runs a slow default); GRU/RNN and
            # everything else go to our fused kernels when they can serve, else the reference.
            if vendor_ok and ((self.mode == "LSTM" and not self.proj_size) or packed):
                return "vendor"
            return "fused_or_reference"
        return e

    # -- forward ----------------------------------------------------------------------------
    def forward(self, input, hx=None, *, lengths=None):
        ref = self.weight_ih_l0
        packed = isinstance(input, PackedSequence)
        if packed:
            if lengths is not None:
                raise ValueError("lengths: not accepted with a PackedSequence input (it has its own)")
            check_input(input.data, "input", self.input_size, ref, (2,))
            sorted_idx = input.sorted_indices
            batched = True
            B = int(input.batch_sizes[0])
        else:
            check_input(input, "input", self.input_size, ref, (2, 3))
            batched = input.dim() == 3
            if not batched:
                if lengths is not None:
                    raise ValueError("lengths: not accepted with unbatched (2-D) input")
                x = input.unsqueeze(1)  # (T, 1, I)
            else:
                x = input.transpose(0, 1) if self.batch_first else input  # (T, B, I)
            T, B = x.shape[0], x.shape[1]
            if T == 0:
                raise ValueError(f"input: expected at least one time step, got shape "
                                 f"{tuple(input.shape)} (a zero-length time dimension); pass "
                                 f"lengths= with 0 for empty sequences in a batch instead")
            if lengths is not None:
                lengths = check_lengths(lengths, B, T)
        hx = self._initial_state(hx, B, batched, ref)

        engine = self._pick_engine(input.data if packed else input, lengths, packed)
        if engine == "vendor":
            out, h_n = self._forward_vendor(input if packed else x, hx, packed)
        else:
            if packed:
                x, lengths = pad_packed_sequence(input)  # (T, B, I), original batch order
                if sorted_idx is None:
                    sorted_idx = torch.arange(B)
            out, h_n = self._forward_runner(x, hx, lengths, engine)
            if packed:
                lens_sorted = lengths[sorted_idx.cpu()]
                data = pack_padded_sequence(out.index_select(1, sorted_idx.to(out.device)),
                                            lens_sorted, enforce_sorted=True).data
                out = PackedSequence(data, input.batch_sizes, input.sorted_indices,
                                     input.unsorted_indices)
        if self.stateful:
            self._state = tuple(s.detach() for s in h_n)
        if not packed:
            if not batched:
                out = out.squeeze(1)
                h_n = tuple(s.squeeze(1) for s in h_n)
            elif self.batch_first:
                out = out.transpose(0, 1)
        return out, (h_n if self._has_cell else h_n[0])

    def _initial_state(self, hx, B: int, batched: bool, ref: Tensor) -> tuple[Tensor, ...]:
        """hx as a tuple of (L*D, B, width) tensors (h, or h and c)."""
        D = 2 if self.bidirectional else 1
        P, H = self.proj_size or self.hidden_size, self.hidden_size
        widths = (P, H) if self._has_cell else (P,)
        names = ("hx[0] (h_0)", "hx[1] (c_0)") if self._has_cell else ("hx",)
        if hx is None and self.stateful and self._state is not None:
            hx = self._state
            hb = hx[0].shape[1]
            if hb != B:
                raise ValueError(
                    f"input: stateful {self.mode} carries a state for batch size {hb}, "
                    f"got batch size {B}; call reset_state() first"
                )
            return tuple(hx)
        if hx is None:
            return tuple(ref.new_zeros(self.num_layers * D, B, w) for w in widths)
        if self._has_cell:
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"hx: expected a tuple (h_0, c_0), got {type(hx).__name__}")
        else:
            hx = (hx,)
        out = []
        for h, w, name in zip(hx, widths, names):
            if batched:
                check_state(h, name, (self.num_layers * D, B, w), ref)
                out.append(h)
            else:
                check_state(h, name, (self.num_layers * D, w), ref)
                out.append(h.unsqueeze(1))
        return tuple(out)

    def _forward_vendor(self, x, hx, packed: bool):
        weights = self._flat_weights
        dropped = self._dropped_weight_hh()
        if dropped:
            weights = [dropped[n[len("weight_hh"):]] if n.startswith("weight_hh") else w
                       for n, w in zip(self._flat_weights_names, weights)]
        args = (weights, self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        fn = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}
        state = hx if self._has_cell else hx[0]
        if packed:
            if x.sorted_indices is not None:
                state = tuple(s.index_select(1, x.sorted_indices) for s in hx)
                state = state if self._has_cell else state[0]
            res = fn[self.mode](x.data, x.batch_sizes, state, *args)
            out = PackedSequence(res[0], x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        else:
            res = fn[self.mode](x, state, *args, False)
            out = res[0]
        h_n = tuple(res[1:])
        if packed and x.unsorted_indices is not None:
            h_n = tuple(s.index_select(1, x.unsorted_indices) for s in h_n)
        return out, h_n

    def _dropped_weight_hh(self) -> dict[str, Tensor]:
        """DropConnect on every weight_hh, one mask per forward call, keyed by suffix (e.g.
        "_l0_reverse"); empty outside training or without weight_drop."""
        if not (self.training and self.weight_drop):
            return {}
        return {s: F.dropout(getattr(self, "weight_hh" + s), self.weight_drop, True)
                for s in self._suffixes}

    def _masks(self, T: int, B: int, out_mask: Tensor | None, ref: Tensor) -> Masks:
        """One layer-direction's masks: recurrent dropout, zoneout and lengths (DESIGN §2)."""
        H, P = self.hidden_size, self.proj_size or self.hidden_size
        rec = None
        if self.training and self.recurrent_dropout:
            q = 1.0 - self.recurrent_dropout
            rec = torch.bernoulli(ref.new_full((B, P), q)) / q  # one mask per sequence
        keeps = [None, None]
        for j, (p, width) in enumerate(zip(self.zoneout, (H, P))):
            if j == 0 and not self._has_cell:
                continue
            if not p:
                keep = None
            elif self.training:
                keep = torch.bernoulli(ref.new_full((T, B, width), p))  # a new mask every step
            else:
                keep = ref.new_full((), p).expand(T, B, width)  # the expectation
            if out_mask is not None:  # padded steps keep the state
                keep = 1.0 - out_mask if keep is None else 1.0 - out_mask * (1.0 - keep)
            keeps[j] = keep
        return Masks(rec, keeps[0], keeps[1], out_mask)

    def _forward_runner(self, x: Tensor, hx: tuple[Tensor, ...], lengths: Tensor | None,
                        engine: str):
        """Our engines: layers x directions of the functional (or fused) sequence call."""
        T, B = x.shape[0], x.shape[1]
        D = 2 if self.bidirectional else 1
        out_mask = None
        if lengths is not None and bool((lengths < T).any()):
            out_mask = (torch.arange(T).unsqueeze(1) < lengths.unsqueeze(0)).to(x)  # (T, B)
            out_mask = out_mask.unsqueeze(-1)  # (T, B, 1)
        else:
            lengths = None  # every sequence is full: no masking needed
        dropped = self._dropped_weight_hh()
        layer_in, finals = x, []
        for k in range(self.num_layers):
            if self.training and self.input_dropout:
                q = 1.0 - self.input_dropout
                drop = torch.bernoulli(layer_in.new_full((B, layer_in.shape[-1]), q)) / q
                inp = layer_in * drop  # the same mask at every step
            else:
                inp = layer_in
            outs = []
            for d in range(D):
                s = self._suffixes[k * D + d]
                p = _params.gather(self, self.v, s, dropped.get(s))
                masks = self._masks(T, B, out_mask, x)
                xin = inp if d == 0 else reverse_padded(inp, lengths)
                y, *state = run_sequence(self.v, engine, xin, [h[k * D + d] for h in hx], p, masks)
                outs.append(y if d == 0 else reverse_padded(y, lengths))
                finals.append(state)
            out = outs[0] if D == 1 else torch.cat(outs, dim=-1)  # (T, B, D*P)
            if self.residual and k > 0:
                out = out + layer_in
            if self.training and self.dropout and k < self.num_layers - 1:
                out = F.dropout(out, self.dropout, True)
            layer_in = out
        h_n = tuple(torch.stack([f[j] for f in finals]) for j in range(len(hx)))
        return layer_in, h_n

class LSTM(RecurrentBase):
    """Drop-in ``torch.nn.LSTM`` with the extras of DESIGN §2.

    >>> import torch
    >>> m = LSTM(3, 5, proj_size=2, peephole=True, batch_first=True)
    >>> y, (h, c) = m(torch.randn(4, 7, 3), lengths=[7, 3, 0, 5])
    >>> tuple(y.shape), tuple(h.shape), tuple(c.shape), bool((y[1, 3:] == 0).all())
    ((4, 7, 2), (1, 4, 2), (1, 4, 5), True)
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, **extras) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, **extras)


class GRU(RecurrentBase):
    """Drop-in ``torch.nn.GRU``; ``reset_after=False`` gives Cho et al. 2014."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **extras) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, **extras)


class RNN(RecurrentBase):
    """Drop-in ``torch.nn.RNN`` (tanh or relu)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None,
                 **extras) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, num_layers, bias,
                         batch_first, dropout, bidirectional, 0, device, dtype, **extras)
        self.nonlinearity = nonlinearity
