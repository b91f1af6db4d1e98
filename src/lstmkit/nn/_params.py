"""Parameter layout shared by cells and layers: names, shapes and init, exactly torch's for
the plain parameters, plus the variant extras of DESIGN §2.

Symbols: I input, H hidden, P output width (proj_size or H), G gate rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..functional.lstm import LSTMParams
from ._checks import check_prob

ENGINES = ("auto", "reference", "fused", "vendor")
INITS = ("torch", "orthogonal")


@dataclass(frozen=True)
class Variant:
    """Which equations a module runs: its family and the flags of that family."""

    mode: str  # "LSTM" | "GRU" | "RNN_TANH" | "RNN_RELU"
    peephole: bool = False
    coupled: bool = False
    layer_norm: bool = False
    reset_after: bool = True

    @property
    def gates(self) -> int:
        if self.mode == "LSTM":
            return 3 if self.coupled else 4
        return 3 if self.mode == "GRU" else 1

    @property
    def plain(self) -> bool:
        """True when the math is exactly torch's (the vendor engine may serve it)."""
        return not (self.peephole or self.coupled or self.layer_norm or not self.reset_after)

    @staticmethod
    def make(mode: str, *, peephole=False, coupled=False, layer_norm=False, reset_after=True):
        family = "LSTM" if mode == "LSTM" else ("GRU" if mode == "GRU" else "RNN")
        for flag, value, allowed in (
            ("peephole", peephole, ("LSTM",)),
            ("coupled", coupled, ("LSTM",)),
            ("layer_norm", layer_norm, ("LSTM",)),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{flag}: expected a bool, got {type(value).__name__}")
            if value and family not in allowed:
                raise ValueError(f"{flag}: only applies to {', '.join(allowed)}, not to {family}")
        if not isinstance(reset_after, bool):
            raise TypeError(f"reset_after: expected a bool, got {type(reset_after).__name__}")
        if not reset_after and family != "GRU":
            raise ValueError(f"reset_after: only applies to GRU, not to {family}")
        return Variant(mode, peephole, coupled, layer_norm, reset_after)


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {ENGINES}, got {engine!r}")
    return engine


def check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"init: expected one of {INITS}, got {init!r}")
    return init


def register(module: nn.Module, v: Variant, in_size: int, H: int, P: int, bias: bool,
             suffix: str, factory: dict) -> list[str]:
    """Create one layer-direction's parameters on ``module``; returns torch's flat-weight names
    (w_ih, w_hh, b_ih, b_hh, w_hr) in torch's order. Extras are registered but not listed."""
    G = v.gates * H
    e = lambda *shape: nn.Parameter(torch.empty(*shape, **factory))  # noqa: E731
    names = [f"weight_ih{suffix}", f"weight_hh{suffix}"]
    module.register_parameter(names[0], e(G, in_size))
    module.register_parameter(names[1], e(G, P))
    if bias:
        names += [f"bias_ih{suffix}", f"bias_hh{suffix}"]
        module.register_parameter(names[2], e(G))
        module.register_parameter(names[3], e(G))
    if P != H:
        names.append(f"weight_hr{suffix}")
        module.register_parameter(names[-1], e(P, H))
    return names


def register_extras(module: nn.Module, v: Variant, H: int, suffix: str, factory: dict) -> None:
    e = lambda *shape: nn.Parameter(torch.empty(*shape, **factory))  # noqa: E731
    if v.peephole:
        module.register_parameter(f"weight_ci{suffix}", e(H))
        if not v.coupled:
            module.register_parameter(f"weight_cf{suffix}", e(H))
        module.register_parameter(f"weight_co{suffix}", e(H))
    if v.layer_norm:
        G = v.gates * H
        for part, width in (("ih", G), ("hh", G), ("c", H)):
            module.register_parameter(f"ln_{part}_weight{suffix}", e(width))
            module.register_parameter(f"ln_{part}_bias{suffix}", e(width))


def gather(module: nn.Module, v: Variant, suffix: str, w_hh_override=None):
    """The functional params tuple for one layer-direction (names per DESIGN §2)."""
    params = module._parameters  # a dict lookup: Module.__getattr__ is slow on the step path
    g = lambda name: params.get(name + suffix)  # noqa: E731
    w_hh = g("weight_hh") if w_hh_override is None else w_hh_override
    if v.mode == "LSTM":
        return LSTMParams(
            g("weight_ih"), w_hh, g("bias_ih"), g("bias_hh"), g("weight_hr"),
            g("weight_ci"), g("weight_cf"), g("weight_co"),
            g("ln_ih_weight"), g("ln_ih_bias"), g("ln_hh_weight"), g("ln_hh_bias"),
            g("ln_c_weight"), g("ln_c_bias"),
        )
    if v.mode == "GRU":
        from ..functional.gru import GRUParams as cls
    else:
        from ..functional.rnn import RNNParams as cls
    return cls(g("weight_ih"), w_hh, g("bias_ih"), g("bias_hh"))


def init_params(module: nn.Module, v: Variant, H: int, init: str, forget_bias: float,
                suffixes: list[str]) -> None:
    """torch: every parameter U(-1/sqrt(H), 1/sqrt(H)) in registration order (so a seed gives
    torch.nn's weights); layer-norm gains 1 and shifts 0. orthogonal: Xavier input weights,
    orthogonal recurrent blocks, zero biases. Then forget_bias on the forget slice of bias_ih."""
    k = 1.0 / math.sqrt(H)
    with torch.no_grad():
        for name, p in module.named_parameters(recurse=False):
            if name.startswith("ln_"):
                p.fill_(1.0 if "_weight" in name else 0.0)
            elif init == "torch":
                p.uniform_(-k, k)
            elif name.startswith("bias") or name.startswith("weight_c"):
                p.zero_()
            elif name.startswith("weight_hh"):
                for block in p.split(H, dim=0):
                    nn.init.orthogonal_(block)
            else:
                nn.init.xavier_uniform_(p)
        if forget_bias:
            for s in suffixes:
                getattr(module, f"bias_ih{s}")[H : 2 * H] += forget_bias


def check_forget_bias(v: Variant, forget_bias: float, bias: bool) -> float:
    if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool):
        raise TypeError(f"forget_bias: expected a float, got {type(forget_bias).__name__}")
    if forget_bias:
        if v.mode != "LSTM" or v.coupled:
            raise ValueError("forget_bias: needs a forget gate (an LSTM without coupled=True)")
        if not bias:
            raise ValueError("forget_bias: needs bias=True")
    return float(forget_bias)


def check_zoneout(zoneout, mode: str) -> tuple[float, float]:
    """float or (p_c, p_h) -> (p_c, p_h)."""
    if isinstance(zoneout, (tuple, list)):
        if len(zoneout) != 2:
            raise ValueError(f"zoneout: expected a float or a pair (p_c, p_h), got {zoneout!r}")
        pc, ph = (check_prob("zoneout", z) for z in zoneout)
        if pc and mode != "LSTM":
            raise ValueError(f"zoneout: p_c applies to the LSTM cell only, got {zoneout!r} for {mode}")
        return pc, ph
    p = check_prob("zoneout", zoneout)
    return p, p
