"""Parameter layout shared by cells and layers, read off the family registry: names, shapes and
init (exactly torch's for the plain parameters) plus the option extras of DESIGN §2.

Symbols: I input, H hidden, P output width (proj_size or H), G gate rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ..functional import registry
from ..functional.lstm import STEP_WEIGHTS
from ..functional.registry import Family, ParamSpec
from ._checks import check_prob

ENGINES = ("auto", "reference", "fused", "vendor")
INITS = ("torch", "orthogonal")


@dataclass(frozen=True)
class Variant:
    """Which equations a module runs: its family and that family's validated options."""

    family: Family
    opts: dict

    @staticmethod
    def make(family: str, **options) -> Variant:
        fam = registry.get(family)
        return Variant(fam, fam.configure(**options))

    @property
    def mode(self) -> str:
        """torch's ``mode`` name ("LSTM", "GRU", "RNN_TANH", ...)."""
        return self.family.torch_mode(self.opts)

    @property
    def vendor_mode(self) -> str | None:
        """torch's mode when torch's own kernels compute exactly these equations, else None."""
        return self.family.vendor_mode(self.opts)

    @property
    def gates(self) -> int:
        return self.family.gates(self.opts)

    def specs(self, in_size: int, H: int, P: int, bias: bool) -> list[ParamSpec]:
        return self.family.param_specs(self.opts, in_size, H, P, bias)


def check_step_weights(step_weights: str, v: Variant, dtype: torch.dtype, engine: str,
                       why_not: str = "") -> str:
    """``step_weights`` for a module whose no-grad single steps run the packed step kernel:
    'full' always; 'bfloat16'/'int8' only where that kernel serves every such step (float32,
    no layer norm or ablation, engine 'auto'/'fused'; ``why_not`` names what else rules it out)."""
    if step_weights not in STEP_WEIGHTS:
        raise ValueError(f"step_weights: expected one of {STEP_WEIGHTS}, got {step_weights!r}")
    packed = (v.family.fused_step is not None and not v.opts.get("layer_norm")
              and v.family.fused_serves(v.opts) and dtype == torch.float32
              and engine in ("auto", "fused") and not why_not)
    if step_weights != "full" and not packed:
        raise ValueError(f"step_weights: {step_weights!r} serves float32 LSTMs without layer norm or "
                         f"ablations on engine 'auto' or 'fused'{', ' + why_not if why_not else ''}; "
                         f"got {({k: o for k, o in v.opts.items() if o}) or 'a plain LSTM'} in {dtype} "
                         f"on {engine!r}")
    if step_weights != "full" and not v.family.fused_module().available():
        raise ValueError(f"step_weights: {step_weights!r} runs the compiled step kernel, which is not "
                         "available here (`python -m lstmkit.kernels build --strict` says why); "
                         "use step_weights='full'")
    return step_weights


def check_engine(engine: str, v: Variant | None = None) -> str:
    """One of ENGINES, and (given the variant) one its family claims for these options."""
    if engine not in ENGINES:
        raise ValueError(f"engine: expected one of {ENGINES}, got {engine!r}")
    if v is not None and engine != "auto" and engine not in v.family.engines(v.opts):
        why = {"vendor": "torch has no kernel computing these equations",
               "fused": "no compiled kernel is registered for it"}[engine]
        raise ValueError(f"engine: {engine!r} cannot serve {v.family.title} with {v.opts} ({why}); "
                         f"use one of {('auto',) + v.family.engines(v.opts)}")
    return engine


def check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"init: expected one of {INITS}, got {init!r}")
    return init


def register(module: nn.Module, specs: list[ParamSpec], suffix: str, factory: dict,
             flat: bool) -> list[str]:
    """Create one layer-direction's parameters on ``module``: torch's flat weights (``flat=True``,
    in torch's order) or the option extras. Records each one's role (for init) and field (for
    ``gather``). Returns the registered names."""
    roles = module.__dict__.setdefault("_param_roles", {})
    fields = module.__dict__.setdefault("_param_fields", {}).setdefault(suffix, [])
    names = []
    for s in specs:
        if s.flat != flat:
            continue
        name = s.name + suffix
        module.register_parameter(name, nn.Parameter(torch.empty(*s.shape, **factory)))
        roles[name] = s.role
        fields.append((s.field, name))
        names.append(name)
    return names


def gather(module: nn.Module, v: Variant, suffix: str, w_hh_override=None):
    """The family's params NamedTuple for one layer-direction (absent options are None)."""
    params = module._parameters  # a dict lookup: Module.__getattr__ is slow on the step path
    kw = {field: params[name] for field, name in module._param_fields[suffix]}
    if w_hh_override is not None:
        kw["w_hh"] = w_hh_override
    return v.family.params(**kw)


def init_params(module: nn.Module, v: Variant, H: int, init: str, forget_bias: float,
                suffixes: list[str]) -> None:
    """torch: every parameter U(-1/sqrt(H), 1/sqrt(H)) in registration order (so a seed gives
    torch.nn's weights); layer-norm gains 1 and shifts 0. orthogonal: Xavier input and
    projection weights, orthogonal recurrent blocks (H rows each), U(0, 1) diagonal recurrent
    weights, zero biases and peepholes. Then forget_bias on the forget-gate slice of bias_ih."""
    k = 1.0 / math.sqrt(H)
    roles = module._param_roles
    with torch.no_grad():
        for name, p in module.named_parameters(recurse=False):
            role = roles[name]
            if role in ("ln_weight", "ln_bias"):
                p.fill_(1.0 if role == "ln_weight" else 0.0)
            elif init == "torch":
                p.uniform_(-k, k)
            elif role in ("bias", "peephole"):
                p.zero_()
            elif role == "recurrent":
                for block in p.split(H, dim=0):
                    nn.init.orthogonal_(block)
            elif role == "diagonal":
                p.uniform_(0.0, 1.0)
            else:
                nn.init.xavier_uniform_(p)
        if forget_bias:
            f = v.family.forget_gate(v.opts)
            for s in suffixes:
                getattr(module, f"bias_ih{s}")[f * H : (f + 1) * H] += forget_bias


def check_forget_bias(v: Variant, forget_bias: float, bias: bool) -> float:
    if not isinstance(forget_bias, (int, float)) or isinstance(forget_bias, bool):
        raise TypeError(f"forget_bias: expected a float, got {type(forget_bias).__name__}")
    if forget_bias:
        if v.family.forget_gate(v.opts) is None:
            raise ValueError(f"forget_bias: needs a forget gate, which {v.family.title} with "
                             f"{v.opts} has not (an LSTM without coupled=True has one)")
        if not bias:
            raise ValueError("forget_bias: needs bias=True")
    return float(forget_bias)


def check_zoneout(zoneout, v: Variant) -> tuple[float, float]:
    """float or (p_c, p_h) -> (p_c, p_h)."""
    if isinstance(zoneout, (tuple, list)):
        if len(zoneout) != 2:
            raise ValueError(f"zoneout: expected a float or a pair (p_c, p_h), got {zoneout!r}")
        pc, ph = (check_prob("zoneout", z) for z in zoneout)
        if pc and "c" not in v.family.state:
            raise ValueError(f"zoneout: p_c applies to a cell state only, got {zoneout!r} for "
                             f"{v.family.title}")
        return pc, ph
    p = check_prob("zoneout", zoneout)
    return p, p
