"""One-step cells: drop-in ``torch.nn.LSTMCell/GRUCell/RNNCell`` plus the LSTM variant flags.

Symbols: B batch, I input, H hidden. A cell maps ``(x_t, state) -> new state`` and knows
nothing of sequences; it runs the same equations as the layers (a sequence of one step).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ..functional._common import Masks
from . import _params
from ._checks import check_input, check_state
from .recurrent import run_sequence

_VENDOR_STEP = {"LSTM": torch.lstm_cell, "GRU": torch.gru_cell,
                "RNN_TANH": torch.rnn_tanh_cell, "RNN_RELU": torch.rnn_relu_cell}


class CellBase(nn.Module):
    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True,
                 device=None, dtype=None, *, peephole: bool = False, coupled: bool = False,
                 layer_norm: bool = False, reset_after: bool = True, init: str = "torch",
                 forget_bias: float = 0.0, engine: str = "auto") -> None:
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}: expected a positive int, got {value!r}")
        self.v = _params.Variant.make(mode, peephole=peephole, coupled=coupled,
                                      layer_norm=layer_norm, reset_after=reset_after)
        self.mode = mode
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.engine = _params.check_engine(engine)
        self.init = _params.check_init(init)
        self.forget_bias = _params.check_forget_bias(self.v, forget_bias, bias)
        factory = {"device": device, "dtype": dtype}
        _params.register(self, self.v, input_size, hidden_size, hidden_size, bias, "", factory)
        _params.register_extras(self, self.v, hidden_size, "", factory)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialise every parameter as ``init`` and ``forget_bias`` say."""
        _params.init_params(self, self.v, self.hidden_size, self.init, self.forget_bias, [""])

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.engine != "auto":
            s += f", engine={self.engine!r}"
        return s

    def _step(self, input: Tensor, hx):
        ref = self.weight_ih
        check_input(input, "input", self.input_size, ref, (1, 2))
        batched = input.dim() == 2
        x = input if batched else input.unsqueeze(0)  # (B, I)
        B, H = x.shape[0], self.hidden_size
        n_state = 2 if self.mode == "LSTM" else 1
        if hx is None:
            state = [x.new_zeros(B, H) for _ in range(n_state)]
        else:
            if n_state == 2 and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
                raise TypeError(f"hx: expected a tuple (h, c), got {type(hx).__name__}")
            parts = list(hx) if n_state == 2 else [hx]
            names = ("hx[0] (h)", "hx[1] (c)") if n_state == 2 else ("hx",)
            state = []
            for h, name in zip(parts, names):
                check_state(h, name, (B, H) if batched else (H,), ref)
                state.append(h if batched else h.unsqueeze(0))
        engine = self.engine
        if engine == "vendor" and not self.v.plain:
            raise ValueError("engine: 'vendor' cannot serve a variant cell; use 'auto' or 'reference'")
        if self._streaming(engine, x, state):
            # inference: one C++ call per step (the fused streaming path)
            from .. import kernels

            new = list(kernels.lstm_step(x, state[0], state[1], _params.gather(self, self.v, "")))
        elif engine in ("vendor", "auto") and self.v.plain:
            args = (self.weight_ih, self.weight_hh, getattr(self, "bias_ih", None),
                    getattr(self, "bias_hh", None))
            st = tuple(state) if n_state == 2 else state[0]
            new = _VENDOR_STEP[self.mode](x, st, *args)
            new = list(new) if n_state == 2 else [new]
        else:
            p = _params.gather(self, self.v, "")
            engine = "fused_or_reference" if engine == "auto" else engine
            _, *new = run_sequence(self.v, engine, x.unsqueeze(0), state, p, Masks())
        if not batched:
            new = [s.squeeze(0) for s in new]
        return tuple(new) if n_state == 2 else new[0]

    def _streaming(self, engine: str, x: Tensor, state: list[Tensor]) -> bool:
        """The fused single-step kernel serves variant LSTM cells when no gradient is needed (a
        plain cell under "auto" goes to torch's own step, measured as fast with less overhead)."""
        if self.mode != "LSTM" or engine not in ("auto", "fused") or (
                engine == "auto" and self.v.plain):
            return False
        if torch.is_grad_enabled() and (
                x.requires_grad or any(s.requires_grad for s in state)
                or any(p.requires_grad for p in self._parameters.values())):
            return False
        from .. import kernels

        # the input was checked to have the module's dtype and device: that is all supports()
        # would look at for a cell (no masks), so skip it on this per-step path
        return x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64) and (
            kernels.available())

    def forward(self, input: Tensor, hx=None):
        return self._step(input, hx)


class LSTMCell(CellBase):
    """Drop-in ``torch.nn.LSTMCell``; keyword-only ``peephole``, ``coupled``, ``layer_norm``.

    >>> import torch
    >>> cell = LSTMCell(3, 4, peephole=True)
    >>> h, c = cell(torch.randn(2, 3))
    >>> tuple(h.shape), tuple(c.shape)
    ((2, 4), (2, 4))
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, **extras) -> None:
        super().__init__("LSTM", input_size, hidden_size, bias, device, dtype, **extras)


class GRUCell(CellBase):
    """Drop-in ``torch.nn.GRUCell``; keyword-only ``reset_after``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, device=None,
                 dtype=None, **extras) -> None:
        super().__init__("GRU", input_size, hidden_size, bias, device, dtype, **extras)


class RNNCell(CellBase):
    """Drop-in ``torch.nn.RNNCell`` (tanh or relu)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", device=None, dtype=None, **extras) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity: expected 'tanh' or 'relu', got {nonlinearity!r}")
        super().__init__(f"RNN_{nonlinearity.upper()}", input_size, hidden_size, bias, device,
                         dtype, **extras)
        self.nonlinearity = nonlinearity
