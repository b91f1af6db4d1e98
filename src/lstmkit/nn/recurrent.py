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

from ..cpu import probe
from ..functional import registry
from ..functional._common import Masks, lengths_to_mask
from ..kernels import mixed
from . import _docs, _params
from ._checks import check_input, check_lengths, check_prob, check_state

_VENDOR_SEQUENCE = {"LSTM": _VF.lstm, "GRU": _VF.gru, "RNN_TANH": _VF.rnn_tanh, "RNN_RELU": _VF.rnn_relu}


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of x (T, B, ...) within its own length; padding stays in place."""
    if lengths is None:
        return x.flip(0)
    T, B = x.shape[0], x.shape[1]
    t = torch.arange(T).unsqueeze(1)  # (T, 1)
    lens = lengths.unsqueeze(0)  # (1, B)
    idx = torch.where(t < lens, lens - 1 - t, t).to(x.device)  # (T, B), an involution
    return x[idx, torch.arange(B, device=x.device)]


def resolve_engine(v: _params.Variant, engine: str, x: Tensor, p, masks: Masks) -> str:
    """"reference" or "fused" for one layer-direction's call (x, p, masks).

    engine: "reference", "fused" (raises if it cannot serve) or "fused_or_reference"."""
    fam = v.family
    if engine == "fused_or_reference":
        return "fused" if fam.fused_ok(x, p, masks, v.opts) else "reference"
    if engine == "fused" and not fam.fused_ok(x, p, masks, v.opts):
        raise ValueError("engine: 'fused' kernels are not available or cannot serve this "
                         "configuration; use engine='auto' or 'reference'")
    return engine


def run_sequence(v: _params.Variant, engine: str, x: Tensor, state, p, masks: Masks):
    """One layer-direction on our engines: x (T, B, I) -> (y, *state_n), as the registry says.

    engine: "reference", "fused" (raises if it cannot serve) or "fused_or_reference"."""
    return v.family.run(resolve_engine(v, engine, x, p, masks), x, state, p, masks, v.opts)


def run_layers(v: _params.Variant, engine: str, x: Tensor, states: list, lengths: Tensor | None,
               num_layers: int, directions: int, layer, enter=None, leave=None):
    """The common runner: time, lengths, direction and stacking for every family (the dense
    layers and ConvLSTM alike).

    x: (T, B, F, ...) time first, features from dim 2 (F features, or channels then the frame);
    ``states``: one tuple of state tensors per layer-direction (index k*D + d), each (B, ...);
    ``lengths``: (B,) int64 on the CPU (checked), or None. ``layer(k, d, out_mask)`` gives one
    layer-direction's (params, Masks); ``out_mask`` is (T, B, 1, ...) with 1 at valid steps, or
    None when every sequence is full (the masks must then keep the state at padded steps).
    ``enter(k, layer_in)`` gives layer k's input, ``leave(k, layer_in, out)`` its output
    (dropout, residual). The reverse direction runs each sequence from its own last valid step;
    the directions' outputs are concatenated on dim 2.

    Returns (every layer's output (T, B, D*F', ...), the final states per layer-direction).
    """
    T = x.shape[0]
    out_mask = None
    if lengths is not None and bool((lengths < T).any()):
        out_mask = lengths_to_mask(lengths, T, x, trailing=x.dim() - 2)  # (T, B, 1, ...)
    else:
        lengths = None  # every sequence is full: no masking needed
    layer_in, outputs, finals = x, [], []
    # The engine is resolved once, on the first layer-direction: what decides it (the family's
    # options, dtype and device of the input, parameters and masks, the masks present) is shared
    # by every layer-direction of one call (a later layer's input is the previous output, in the
    # same dtype on both engines), so asking again (a scan of every tensor, ~8 us) would give the
    # same answer. A module whose layers were moved to different dtypes or devices by hand would
    # be refused later by either engine alike.
    resolved = None
    for k in range(num_layers):
        inp = layer_in if enter is None else enter(k, layer_in)
        outs = []
        for d in range(directions):
            p, masks = layer(k, d, out_mask)
            xin = inp if d == 0 else reverse_padded(inp, lengths)
            if resolved is None:
                resolved = resolve_engine(v, engine, xin, p, masks)
            y, *state = v.family.run(resolved, xin, states[k * directions + d], p, masks, v.opts)
            outs.append(y if d == 0 else reverse_padded(y, lengths))
            finals.append(tuple(state))
        out = outs[0] if directions == 1 else torch.cat(outs, dim=2)
        if leave is not None:
            out = leave(k, layer_in, out)
        outputs.append(out)
        layer_in = out
    return outputs, finals


class RecurrentBase(nn.Module):
    """Shared by every sequence layer (LSTM, GRU, RNN and each registered family). Subclasses
    fix the family and torch's positional signature; the family's options arrive as keywords."""

    def __init__(
        self, family: str, input_size: int, hidden_size: int, num_layers: int = 1,
        bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
        bidirectional: bool = False, proj_size: int = 0, device=None, dtype=None, *,
        input_dropout: float = 0.0, recurrent_dropout: float = 0.0,
        zoneout: float | tuple[float, float] = 0.0, weight_drop: float = 0.0,
        init: str = "torch", forget_bias: float = 0.0, residual: bool = False,
        stateful: bool = False, engine: str = "auto", **options,
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
        self.v = _params.Variant.make(family, **options)
        fam = self.v.family
        if proj_size and not fam.proj:
            owners = [f.title for f in registry.families() if f.proj]
            raise ValueError(f"proj_size: only applies to {', '.join(owners)}, not to {fam.title}")
        self.mode = self.v.mode
        for name, value in self.v.opts.items():
            setattr(self, name, value)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.bidirectional = bias, batch_first, bidirectional
        self.proj_size = proj_size
        self.dropout = check_prob("dropout", dropout)
        self.input_dropout = check_prob("input_dropout", input_dropout)
        self.recurrent_dropout = check_prob("recurrent_dropout", recurrent_dropout)
        self.weight_drop = check_prob("weight_drop", weight_drop)
        self.zoneout = _params.check_zoneout(zoneout, self.v)
        self.init = _params.check_init(init)
        self.forget_bias = _params.check_forget_bias(self.v, forget_bias, bias)
        self.residual, self.stateful = bool(residual), bool(stateful)
        self.engine = _params.check_engine(engine, self.v)

        H, P = hidden_size, proj_size or hidden_size
        D = 2 if bidirectional else 1
        factory = {"device": device, "dtype": dtype}
        self._suffixes = [f"_l{k}{'_reverse' if d else ''}" for k in range(num_layers) for d in range(D)]
        specs = [self.v.specs(input_size if k == 0 else D * P, H, P, bias)
                 for k in range(num_layers) for d in range(D)]
        self._flat_weights_names: list[str] = []
        for s, sp in zip(self._suffixes, specs):  # torch's flat weights first, in torch's order
            self._flat_weights_names += _params.register(self, sp, s, factory, flat=True)
        for s, sp in zip(self._suffixes, specs):  # then the option extras
            _params.register(self, sp, s, factory, flat=False)
        self.reset_parameters()
        self._state = None  # stateful: the last final state, detached
        # each state's width (h: P, the others H) and its name in messages, read on every call
        self._state_layout = (tuple(P if n == "h" else H for n in fam.state),
                              tuple(f"hx[{j}] ({n}_0)" for j, n in enumerate(fam.state))
                              if len(fam.state) > 1 else ("hx",))

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
        """Positional sizes, then every argument that differs from its default."""
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = [("num_layers", 1), ("bias", True), ("batch_first", False), ("dropout", 0.0),
                    ("bidirectional", False), ("proj_size", 0)]
        defaults += [(o.name, o.default) for o in self.v.family.options]
        defaults += [(name, default) for name, default, _ in _docs.EXTRAS if name != "zoneout"]
        defaults += [("step_weights", "full")]
        for name, default in defaults:
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)!r}"
        if self.zoneout != (0.0, 0.0):
            s += f", zoneout={self.zoneout}"
        return s

    # -- state ------------------------------------------------------------------------------
    @property
    def _has_cell(self) -> bool:
        return "c" in self.v.family.state

    @property
    def _n_state(self) -> int:
        return len(self.v.family.state)

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
        return (self.v.vendor_mode is not None and not self._uses_extras() and lengths is None
                and x.dtype in (torch.float32, torch.float64, torch.bfloat16, torch.float16))

    @staticmethod
    def _bf16_without_onednn(x: Tensor) -> str | None:
        """'autocast' or 'bfloat16' when this call would run torch's kernels in bfloat16 (the
        kernels' own ``mixed`` plan) on a CPU where oneDNN has no bfloat16 (``lstmkit.cpu``: AVX2
        machines); None otherwise. torch's LSTM under bfloat16 autocast then fails; a bfloat16
        module runs its slow generic loop."""
        mix = mixed(x)
        if mix is None or x.device.type != "cpu" or probe().onednn_bf16:
            return None
        return "autocast" if mix.orig == torch.float32 else "bfloat16"

    def _pick_engine(self, x: Tensor, lengths, packed: bool) -> str:
        e = self.engine
        vendor_ok = self._vendor_ok(x, lengths)
        no_bf16 = self._bf16_without_onednn(x) if vendor_ok else None
        if e == "vendor" and no_bf16 == "autocast":
            cpu = probe()
            raise ValueError(
                "engine: 'vendor' runs torch's oneDNN kernels, which have no bfloat16 autocast on this "
                f"CPU (oneDNN's bfloat16 needs AVX-512, AVX-NE-CONVERT or AMX; lstmkit.cpu reads level "
                f"{cpu.level!r}); use engine='auto' or 'fused' (float32 GEMMs on the bfloat16 values)")
        if no_bf16 is not None and e != "vendor":  # auto keeps bfloat16 off torch's slow or failing path
            vendor_ok = False
        if e == "vendor" and not vendor_ok:
            raise ValueError(
                "engine: 'vendor' (torch's own kernels) cannot serve this configuration "
                "(variant flags, lengths=, input/recurrent dropout, zoneout or residual); "
                "use engine='auto' or 'reference'"
            )
        if e == "auto":
            # vendor first where the family prefers it (torch's oneDNN LSTM is as fast as it
            # gets where its math is ours; it has no projection path: torch then warns and runs
            # a slow default) and for packed input; else our fused kernels when they can serve,
            # else the reference.
            if vendor_ok and ((self.v.family.prefer_vendor and not self.proj_size) or packed):
                return "vendor"
            return "fused_or_reference"
        return e

    # -- forward ----------------------------------------------------------------------------
    def forward(self, input, hx=None, *, lengths=None):
        """Run the layers over ``input`` (see the class docstring: Inputs and Outputs)."""
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
        if not packed and T == 1 and self._streams(x, hx, lengths):
            out, h_n = self._forward_step(x, hx)
        elif engine == "vendor":
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
        if self.stateful:  # kept in the input's dtype (autocast may hand the state back in its own)
            self._state = tuple(s.detach().to(ref.dtype) for s in h_n)
        if not packed:
            if not batched:
                out = out.squeeze(1)
                h_n = tuple(s.squeeze(1) for s in h_n)
            elif self.batch_first:
                out = out.transpose(0, 1)
        return out, (h_n if self._n_state > 1 else h_n[0])

    step_weights = "full"  # the packed step's weight precision (LSTM layers choose)

    def _streams(self, x: Tensor, hx: tuple[Tensor, ...], lengths: Tensor | None) -> bool:
        """A single step (T = 1) in eval mode without gradients, of a unidirectional layer the
        family's packed step kernel serves (no projection, layer norm or zoneout): stateful inference
        and generation, token by token. It runs one packed step per layer (``_forward_step``),
        measured 2-4x faster than a one-step sequence call at B=1, H=256."""
        fam = self.v.family
        if (fam.fused_step is None or self.training or self.bidirectional or self.proj_size
                or self.engine not in ("auto", "fused") or self.v.opts.get("layer_norm")
                or self.zoneout != (0.0, 0.0)  # eval zoneout blends in the expectation
                or not fam.fused_serves(self.v.opts)):
            return False
        if lengths is not None and not bool((lengths == 1).all()):
            return False
        if torch.is_grad_enabled() and (x.requires_grad or any(h.requires_grad for h in hx) or any(
                p.requires_grad for p in self._parameters.values())):
            return False
        return (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
                and not torch.is_autocast_enabled("cpu") and fam.fused_module().available())

    def _forward_step(self, x: Tensor, hx: tuple[Tensor, ...]):
        """One step per layer through the packed step kernel: x (1, B, I) -> (y (1, B, H), h_n)."""
        step = getattr(self.v.family.fused_module(), self.v.family.fused_step)
        inp, finals = x[0], []
        for k in range(self.num_layers):
            p = _params.gather(self, self.v, f"_l{k}")
            new = step(inp, *(s[k] for s in hx), p, self.step_weights)
            inp = new[0] + inp if self.residual and k else new[0]
            finals.append(new)
        return inp.unsqueeze(0), tuple(torch.stack(s) for s in zip(*finals))

    def _initial_state(self, hx, B: int, batched: bool, ref: Tensor) -> tuple[Tensor, ...]:
        """hx as a tuple of (L*D, B, width) tensors, one per state the family declares (h has
        width P, every other state H)."""
        D = 2 if self.bidirectional else 1
        state = self.v.family.state
        widths, names = self._state_layout
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
        if len(state) > 1:
            if not isinstance(hx, (tuple, list)) or len(hx) != len(state):
                want = ", ".join(f"{n}_0" for n in state)
                raise TypeError(f"hx: expected a tuple ({want}), got {type(hx).__name__}")
        else:
            hx = (hx,)
        out = []
        for h, w, name in zip(hx, widths, names):
            if batched:
                out.append(check_state(h, name, (self.num_layers * D, B, w), ref))
            else:
                out.append(check_state(h, name, (self.num_layers * D, w), ref).unsqueeze(1))
        return tuple(out)

    def _forward_vendor(self, x, hx, packed: bool):
        weights = self._flat_weights
        dropped = self._dropped_weight_hh()
        if dropped:
            weights = [dropped[n[len("weight_hh"):]] if n.startswith("weight_hh") else w
                       for n, w in zip(self._flat_weights_names, weights)]
        args = (weights, self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        fn = _VENDOR_SEQUENCE[self.v.vendor_mode]
        state = hx if self._n_state > 1 else hx[0]
        if packed:
            if x.sorted_indices is not None:
                state = tuple(s.index_select(1, x.sorted_indices) for s in hx)
                state = state if self._n_state > 1 else state[0]
            res = fn(x.data, x.batch_sizes, state, *args)
            out = PackedSequence(res[0], x.batch_sizes, x.sorted_indices, x.unsorted_indices)
        else:
            res = fn(x, state, *args, False)
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
        """Our engines: the common runner over layers x directions, with this layer's dropout
        family (input dropout on entering a layer, residual and dropout on leaving it)."""
        D = 2 if self.bidirectional else 1
        dropped = self._dropped_weight_hh()
        T, B = x.shape[0], x.shape[1]

        def layer(k: int, d: int, out_mask: Tensor | None):
            s = self._suffixes[k * D + d]
            return _params.gather(self, self.v, s, dropped.get(s)), self._masks(T, B, out_mask, x)

        states = [tuple(h[j] for h in hx) for j in range(self.num_layers * D)]
        outputs, finals = run_layers(self.v, engine, x, states, lengths, self.num_layers, D, layer,
                                     enter=self._enter_layer, leave=self._leave_layer)
        h_n = tuple(torch.stack([f[j] for f in finals]) for j in range(len(hx)))
        return outputs[-1], h_n

    def _enter_layer(self, k: int, layer_in: Tensor) -> Tensor:
        if self.training and self.input_dropout:
            q = 1.0 - self.input_dropout
            drop = torch.bernoulli(layer_in.new_full((layer_in.shape[1], layer_in.shape[-1]), q)) / q
            return layer_in * drop  # the same mask at every step
        return layer_in

    def _leave_layer(self, k: int, layer_in: Tensor, out: Tensor) -> Tensor:
        if self.residual and k > 0:
            out = out + layer_in
        if self.training and self.dropout and k < self.num_layers - 1:
            out = F.dropout(out, self.dropout, True)
        return out


class LSTM(RecurrentBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, *, step_weights: str = "full",
                 **extras) -> None:
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype, **extras)
        self.set_step_weights(step_weights)

    def set_step_weights(self, step_weights: str) -> LSTM:
        """The weight precision of one-step calls in eval without gradients ('full', 'bfloat16'
        or 'int8'; see the class docstring); returns the module."""
        why = ", ".join(w for w, bad in (("bidirectional", self.bidirectional),
                                         ("a projection", self.proj_size),
                                         ("zoneout", self.zoneout != (0.0, 0.0))) if bad)
        self.step_weights = _params.check_step_weights(
            step_weights, self.v, self.weight_ih_l0.dtype, self.engine,
            f"not {why}" if why else "")
        return self


LSTM.__doc__ = _docs.layer_doc(registry.get("lstm"), """\
Drop-in ``torch.nn.LSTM`` (same arguments, parameter names, shapes, gate order i, f, g, o and
outputs; a torch state_dict loads and gives the same numbers) with the extras of DESIGN §2.
A one-step call in eval mode without gradients (generation, stateful inference) runs the
packed streaming kernel, one call per layer.

    step_weights: that kernel's weight precision: 'full' (the parameters' dtype), 'bfloat16' or
        'int8' (as ``LSTMCell``'s; float32, unidirectional, no projection, layer norm or
        zoneout). Every other call uses the parameters as they are. Default: 'full'""",
"""\
    >>> import torch
    >>> m = LSTM(3, 5, proj_size=2, peephole=True, batch_first=True)
    >>> y, (h, c) = m(torch.randn(4, 7, 3), lengths=[7, 3, 0, 5])
    >>> tuple(y.shape), tuple(h.shape), tuple(c.shape), bool((y[1, 3:] == 0).all())
    ((4, 7, 2), (1, 4, 2), (1, 4, 5), True)
""")


class GRU(RecurrentBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **extras) -> None:
        super().__init__("gru", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, **extras)


GRU.__doc__ = _docs.layer_doc(registry.get("gru"), """\
Drop-in ``torch.nn.GRU`` (gate order r, z, n); ``reset_after=False`` gives Cho et al. 2014.""",
"""\
    >>> import torch
    >>> m = GRU(3, 4, num_layers=2, reset_after=False)
    >>> y, h = m(torch.randn(6, 2, 3), lengths=[6, 2])
    >>> tuple(y.shape), tuple(h.shape)
    ((6, 2, 4), (2, 2, 4))
""")


class RNN(RecurrentBase):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, device=None, dtype=None,
                 **extras) -> None:
        super().__init__("rnn", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype, nonlinearity=nonlinearity, **extras)


RNN.__doc__ = _docs.layer_doc(registry.get("rnn"), """\
Drop-in ``torch.nn.RNN`` (Elman; ``nonlinearity`` 'tanh' or 'relu', positional as in torch).""",
"""\
    >>> import torch
    >>> m = RNN(3, 4, nonlinearity="relu", bidirectional=True)
    >>> y, h = m(torch.randn(5, 2, 3))
    >>> tuple(y.shape), tuple(h.shape)
    ((5, 2, 8), (2, 2, 4))
""", positional=("nonlinearity",))


def layer_class(family: registry.Family) -> type:
    """The sequence layer of a registered family that has no hand-written class (torch's LSTM
    signature without ``proj_size`` unless the family supports it; the options keyword-only)."""
    name = family.name

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, **extras) -> None:
        RecurrentBase.__init__(self, name, input_size, hidden_size, num_layers, bias, batch_first,
                               dropout, bidirectional, extras.pop("proj_size", 0), device, dtype,
                               **extras)

    example = f"""\
    >>> import torch, lstmkit as lk
    >>> m = lk.{family.title}(3, 4, num_layers=2, batch_first=True)
    >>> y, _ = m(torch.randn(2, 6, 3), lengths=[6, 4])
    >>> tuple(y.shape), bool((y[1, 4:] == 0).all())
    ((2, 6, 4), True)
"""
    doc = _docs.layer_doc(family, f"{family.title} layer. {family.doc}", example)
    return _docs.generated_class(family.title, RecurrentBase, __init__, doc, __name__)


# every other registered family gets its layer from the registry
GENERATED = [layer_class(f) for f in registry.families()
             if f.layer and f.title not in globals()]
globals().update({c.__name__: c for c in GENERATED})
