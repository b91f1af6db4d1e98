"""ConvLSTM (Shi et al. 2015) as modules: ``ConvLSTMCell`` (one step) and ``ConvLSTM`` (sequences).

Symbols: B batch, T time, C input channels, K hidden channels, G = 4K gate channels (i, f, g, o),
(Hs, Ws) the frame size, which every layer keeps ("same" padding; kernel sizes must be odd).

The parameters are the registry's ``conv_lstm`` family's, and ``ConvLSTM`` runs on the same
runner as the LSTM layers (``recurrent.run_layers``: stacking, ``lengths``, ``bidirectional``).

Parameters (suffix ``_l{k}`` per layer in ``ConvLSTM``, ``_l{k}_reverse`` for the reverse
direction, none in the cell), named as torch names the LSTM's: ``weight_ih`` (G, C, kh, kw),
``weight_hh`` (G, K, kh, kw), ``bias_ih`` (G,) (one bias: a second one on the hidden
convolution would be redundant), and with ``peephole=True`` ``weight_ci``, ``weight_cf``,
``weight_co``. Peepholes are per channel, ``(K, 1, 1)``, by
default, so a module runs at any frame size; pass ``frame_size=(Hs, Ws)`` to get Shi et al.'s
full spatial Hadamard weights ``(K, Hs, Ws)`` (the module then accepts only that frame size).

>>> import torch
>>> m = ConvLSTM(1, [8, 4], kernel_size=3, num_layers=2)
>>> y, states = m(torch.randn(2, 5, 1, 12, 12))  # (B, T, C, Hs, Ws), batch_first
>>> tuple(y.shape), [tuple(h.shape) for h, c in states]
((2, 5, 4, 12, 12), [(2, 8, 12, 12), (2, 4, 12, 12)])
>>> cell = ConvLSTMCell(1, 8, 3)
>>> h, c = cell(torch.randn(2, 1, 12, 12))
>>> tuple(h.shape)
(2, 8, 12, 12)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..functional._common import Masks
from ..functional.conv_lstm import same_padding
from . import _params
from ._checks import check_lengths, check_like, check_state
from .recurrent import run_layers, run_sequence


def _check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return value


def _kernel_pair(name: str, value) -> tuple[int, int]:
    """An int or a pair of ints, both odd -> (kh, kw)."""
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    elif isinstance(value, tuple) and len(value) == 2:
        pair = value
    else:
        raise TypeError(f"{name}: expected an odd int or a tuple (kh, kw) of odd ints, got {value!r}")
    for v in pair:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name}: expected positive odd ints, got {value!r}")
    try:
        same_padding(pair)
    except ValueError:
        raise ValueError(
            f"{name}: expected odd sizes (same padding keeps the frame size), got {value!r}"
        ) from None
    return pair


def _frame_pair(value) -> tuple[int, int] | None:
    if value is None:
        return None
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, int) or v <= 0 for v in value)):
        raise ValueError(f"frame_size: expected None or a pair (Hs, Ws) of positive ints, got {value!r}")
    return int(value[0]), int(value[1])


def _check_tensor(x, name: str, ndim: int, layout: str, channels: int, ref: Tensor,
                  frame: tuple[int, int] | None) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if x.dim() != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor {layout}, got {x.dim()}-D of shape "
                         f"{tuple(x.shape)}")
    if x.shape[-3] != channels:
        raise ValueError(f"{name}: expected {channels} channels (dim {ndim - 3} of {layout}), "
                         f"got shape {tuple(x.shape)}")
    if frame is not None and tuple(x.shape[-2:]) != frame:
        raise ValueError(f"{name}: expected frame size {frame} (frame_size, for the spatial "
                         f"peepholes), got {tuple(x.shape[-2:])}")
    check_like(x, name, ref, " (the module's)")


def _pair_state(hx, name: str) -> tuple:
    if not isinstance(hx, (tuple, list)) or len(hx) != 2:
        raise TypeError(f"{name}: expected a tuple (h, c), got {type(hx).__name__}"
                        + (f" of length {len(hx)}" if isinstance(hx, (tuple, list)) else ""))
    return tuple(hx)


class _ConvLSTMParamsMixin:
    """Registers (as the registry's ``conv_lstm`` family declares them) and initialises one
    layer-direction's parameters under ``suffix``."""

    def _register_layer(self, suffix: str, in_ch: int, hid: int, kernel: tuple[int, int], bias: bool,
                        frame: tuple[int, int] | None, factory: dict) -> None:
        specs = self.v.family.param_specs(self.v.opts, in_ch, hid, hid, bias, kernel, frame)
        _params.register(self, specs, suffix, factory, flat=True)

    def _init_layer(self, suffix: str) -> None:
        """Conv2d's default bound 1/sqrt(fan_in) for each kernel; bias and peepholes use the
        bound of the recurrent kernel."""
        w_ih, w_hh = getattr(self, "weight_ih" + suffix), getattr(self, "weight_hh" + suffix)
        with torch.no_grad():
            for w in (w_ih, w_hh):
                bound = 1.0 / math.sqrt(w[0].numel())
                w.uniform_(-bound, bound)
            bound = 1.0 / math.sqrt(w_hh[0].numel())
            for n in ("bias_ih", "weight_ci", "weight_cf", "weight_co"):
                p = getattr(self, n + suffix, None)
                if p is not None:
                    p.uniform_(-bound, bound)


class ConvLSTMCell(_ConvLSTMParamsMixin, nn.Module):
    """One ConvLSTM step; runs the same equations (and hand backward) as ``ConvLSTM``.

    Args:
        in_channels: C, channels of each input frame
        hidden_channels: K, channels of h and c
        kernel_size: odd int or (kh, kw) of odd ints ("same" padding keeps the frame size)
        bias: False drops ``bias_ih``. Default: True
        peephole: Shi et al.'s peepholes. Default: False
        device: factory argument of the parameters. Default: None
        dtype: factory argument of the parameters. Default: None
        frame_size: keyword-only; (Hs, Ws) makes the peepholes spatial (K, Hs, Ws) and fixes the
            frame size; None (default) gives per-channel peepholes (K, 1, 1)

    Inputs: input, hx=None
        input: (B, C, Hs, Ws)
        hx: a tuple (h, c), each (B, K, Hs, Ws); None: zeros

    Outputs: (h, c)
        the new state, each (B, K, Hs, Ws)

    Attributes:
        weight_ih: (4K, C, kh, kw), weight_hh: (4K, K, kh, kw), bias_ih: (4K,) with bias;
        weight_ci, weight_cf, weight_co: (K, 1, 1) or (K, Hs, Ws) with peephole
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size, bias: bool = True,
                 peephole: bool = False, device=None, dtype=None, *, frame_size=None) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.hidden_channels = _check_positive_int("hidden_channels", hidden_channels)
        self.kernel_size = _kernel_pair("kernel_size", kernel_size)
        self.bias, self.peephole = bool(bias), bool(peephole)
        self.v = _params.Variant.make("conv_lstm", peephole=self.peephole)
        self.frame_size = _frame_pair(frame_size) if peephole else None
        factory = {"device": device, "dtype": dtype}
        self._register_layer("", in_channels, hidden_channels, self.kernel_size, self.bias,
                             self.frame_size, factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        self._init_layer("")

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}"
        if not self.bias:
            s += ", bias=False"
        if self.peephole:
            s += f", peephole=True, frame_size={self.frame_size}"
        return s

    def forward(self, input: Tensor, hx=None) -> tuple[Tensor, Tensor]:
        ref = self.weight_ih
        _check_tensor(input, "input", 4, "(B, C, Hs, Ws)", self.in_channels, ref, self.frame_size)
        B, _, Hs, Ws = input.shape
        shape = (B, self.hidden_channels, Hs, Ws)
        if hx is None:
            h0 = c0 = input.new_zeros(shape)
        else:
            h0, c0 = _pair_state(hx, "hx")
            check_state(h0, "hx[0] (h)", shape, ref)
            check_state(c0, "hx[1] (c)", shape, ref)
        p = _params.gather(self, self.v, "")
        _, h, c = run_sequence(self.v, "reference", input.unsqueeze(0), (h0, c0), p, Masks())
        return h, c  # a sequence of one step


def _per_layer(name: str, value, num_layers: int, convert) -> list:
    """A list gives one value per layer (its length must be num_layers); anything else is shared."""
    if isinstance(value, list):
        if len(value) != num_layers:
            raise ValueError(f"{name}: expected a list of num_layers={num_layers} entries, "
                             f"got {len(value)}")
        return [convert(f"{name}[{k}]", v) for k, v in enumerate(value)]
    return [convert(name, value)] * num_layers


class ConvLSTM(_ConvLSTMParamsMixin, nn.Module):
    """Stacked ConvLSTM layers over a sequence of frames, run by the runner of the LSTM layers
    (``lstmkit.nn.recurrent.run_layers``: lengths, directions, stacking, state).

    ``hidden_channels`` is an int or a list (one per layer); ``kernel_size`` is an int, a tuple
    ``(kh, kw)``, or a list of those (one per layer). Input ``(B, T, C, Hs, Ws)`` when
    ``batch_first`` (the default, as in most ConvLSTM code) else ``(T, B, C, Hs, Ws)``.

    ``forward(input, hx=None, *, lengths=None) -> (output, states)``: ``output`` is the last
    layer's ``(B, T, D*K_last, Hs, Ws)`` (time first when not batch_first), or the list of every
    layer's output with ``return_all_layers=True``; ``states`` is a list of ``(h_n, c_n)`` per
    layer (per layer-direction, ``k*D + d``, when bidirectional), each ``(B, K_k, Hs, Ws)``.
    ``hx`` is None or a list of ``(h_0, c_0)`` in that order. ``lengths`` (B,) as in the LSTM
    layers: padded steps output 0 and keep the state, so each ``(h_n, c_n)`` is the state after
    that sequence's own last valid step, and the reverse direction starts there.

    Args:
        in_channels: C, channels of each input frame
        hidden_channels: K_k, an int or a list with one per layer
        kernel_size: odd int, (kh, kw) of odd ints, or a list of those (one per layer)
        num_layers: L. Default: 1
        bias: False drops every ``bias_ih_l{k}``. Default: True
        batch_first: input and output are (B, T, ...) (the default) instead of (T, B, ...)
        peephole: Shi et al.'s peepholes. Default: False
        return_all_layers: output is the list of every layer's output. Default: False
        device: factory argument of the parameters. Default: None
        dtype: factory argument of the parameters. Default: None
        frame_size: keyword-only; (Hs, Ws) gives spatial peepholes (K, Hs, Ws) and fixes the frame
            size; None (default) per-channel ones (K, 1, 1)
        bidirectional: keyword-only; D = 2: each layer also runs right to left (each sequence
            from its own last valid step), the directions' channels concatenated. Default: False

    Inputs: input, hx=None, *, lengths=None
        input: (B, T, C, Hs, Ws) ((T, B, C, Hs, Ws) when not batch_first)
        hx: None or a list of (h_0, c_0) per layer-direction, each (B, K_k, Hs, Ws)
        lengths: (B,) ints, right padding (padded steps output 0 and keep the state)

    Outputs: output, states
        output: (B, T, D*K_last, Hs, Ws), or the list of every layer's with return_all_layers
        states: a list of (h_n, c_n) per layer-direction, each (B, K_k, Hs, Ws)

    Attributes:
        weight_ih_l{k}: (4K_k, C_k, kh, kw), weight_hh_l{k}: (4K_k, K_k, kh, kw),
        bias_ih_l{k}: (4K_k,) with bias; weight_ci_l{k}, weight_cf_l{k}, weight_co_l{k} with
        peephole (C_k: C for k = 0, else D*K_{k-1}); the reverse direction's add ``_reverse``
    """

    def __init__(self, in_channels: int, hidden_channels, kernel_size, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = True, peephole: bool = False,
                 return_all_layers: bool = False, device=None, dtype=None, *, frame_size=None,
                 bidirectional: bool = False) -> None:
        super().__init__()
        self.in_channels = _check_positive_int("in_channels", in_channels)
        self.num_layers = _check_positive_int("num_layers", num_layers)
        self.hidden_channels = _per_layer("hidden_channels", hidden_channels, num_layers,
                                          _check_positive_int)
        self.kernel_size = _per_layer("kernel_size", kernel_size, num_layers, _kernel_pair)
        self.bias, self.batch_first, self.peephole = bool(bias), bool(batch_first), bool(peephole)
        self.return_all_layers = bool(return_all_layers)
        if not isinstance(bidirectional, bool):
            raise TypeError(f"bidirectional: expected a bool, got {type(bidirectional).__name__}")
        self.bidirectional = bidirectional
        self.v = _params.Variant.make("conv_lstm", peephole=self.peephole)
        self.frame_size = _frame_pair(frame_size) if peephole else None
        factory = {"device": device, "dtype": dtype}
        D = 2 if bidirectional else 1
        self._suffixes = [f"_l{k}{'_reverse' if d else ''}" for k in range(num_layers) for d in range(D)]
        in_ch = in_channels
        for k in range(num_layers):
            for d in range(D):
                self._register_layer(self._suffixes[k * D + d], in_ch, self.hidden_channels[k],
                                     self.kernel_size[k], self.bias, self.frame_size, factory)
            in_ch = D * self.hidden_channels[k]
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for s in self._suffixes:
            self._init_layer(s)

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.hidden_channels}, kernel_size={self.kernel_size}, "
             f"num_layers={self.num_layers}")
        if not self.bias:
            s += ", bias=False"
        if not self.batch_first:
            s += ", batch_first=False"
        if self.peephole:
            s += f", peephole=True, frame_size={self.frame_size}"
        if self.bidirectional:
            s += ", bidirectional=True"
        return s

    def _initial_state(self, hx, B: int, Hs: int, Ws: int, ref: Tensor) -> list[tuple[Tensor, Tensor]]:
        D = 2 if self.bidirectional else 1
        shapes = [(B, K, Hs, Ws) for K in self.hidden_channels for _ in range(D)]
        if hx is None:
            return [(ref.new_zeros(s), ref.new_zeros(s)) for s in shapes]
        if not isinstance(hx, (tuple, list)) or len(hx) != len(shapes):
            got = f"{type(hx).__name__} of length {len(hx)}" if isinstance(hx, (tuple, list)) \
                else type(hx).__name__
            want = f"num_layers={self.num_layers}" if D == 1 else \
                f"num_layers*2={len(shapes)} (one per layer-direction)"
            raise TypeError(f"hx: expected a list of {want} (h, c) tuples, got {got}")
        states = []
        for k, (s, shape) in enumerate(zip(hx, shapes)):
            h, c = _pair_state(s, f"hx[{k}]")
            check_state(h, f"hx[{k}][0] (h)", shape, ref)
            check_state(c, f"hx[{k}][1] (c)", shape, ref)
            states.append((h, c))
        return states

    def forward(self, input: Tensor, hx=None, *, lengths: Tensor | Sequence[int] | None = None):
        """Run the layers over ``input`` (see the class docstring: Inputs and Outputs)."""
        ref = self.weight_ih_l0
        layout = "(B, T, C, Hs, Ws)" if self.batch_first else "(T, B, C, Hs, Ws)"
        _check_tensor(input, "input", 5, layout, self.in_channels, ref, self.frame_size)
        x = input.transpose(0, 1) if self.batch_first else input  # (T, B, C, Hs, Ws)
        T, B, _, Hs, Ws = x.shape
        states = self._initial_state(hx, B, Hs, Ws, ref)
        if lengths is not None:
            lengths = check_lengths(lengths, B, T)
        D = 2 if self.bidirectional else 1
        pad: dict = {}

        def layer(k: int, d: int, out_mask: Tensor | None):
            if out_mask is not None and not pad:  # padded steps keep the state, output 0
                pad["masks"] = Masks(keep_c=1.0 - out_mask, keep_h=1.0 - out_mask, out=out_mask)
            return _params.gather(self, self.v, self._suffixes[k * D + d]), pad.get("masks", Masks())

        outputs, finals = run_layers(self.v, "reference", x.contiguous(), states, lengths,
                                     self.num_layers, D, layer)
        if self.batch_first:
            outputs = [y.transpose(0, 1) for y in outputs]
        return (outputs if self.return_all_layers else outputs[-1]), finals
