"""The cell-family registry: one ``Family`` object per family of equations.

A family declares everything the rest of the package needs to know about it: its options (with
their defaults, allowed values and documentation), its parameters and their shapes, its state
tensors, its reference implementation (the hand BPTT in ``functional/``), its eager-autograd
oracle, its fused implementation (``kernels/``) if any, whether torch's own kernels compute the
same math (the ``vendor`` engine), and how its options are validated. The layers, cells, engine
dispatch, parameter gathering and ``repr`` read this object; none of them compares family names.

Adding a family = one new module in ``functional/`` that defines ``FAMILY`` (plus one in
``kernels/`` if fused) and one line in ``_MODULES`` below. The layer and cell classes
(``lstmkit.nn``), the registry-wide tests (gradcheck, hand == autograd, engines, lengths, repr,
state_dict) and the docs then come from the registry. An unknown family or an unwired engine is
an error, never a fallback.

Symbols: I input (or input channels), H hidden (or hidden channels), P output width (proj_size
or H), G gate rows.

    >>> from lstmkit.functional import registry
    >>> [f.name for f in registry.families()]
    ['lstm', 'gru', 'rnn', 'conv_lstm', 'indrnn']
    >>> lstm = registry.get("lstm")
    >>> lstm.state, [o.name for o in lstm.options][:3], len(lstm.options)
    (('h', 'c'), ['peephole', 'coupled', 'layer_norm'], 9)
    >>> [(s.name, s.shape) for s in lstm.param_specs(lstm.configure(coupled=True), 2, 3, 3, False)]
    [('weight_ih', (9, 2)), ('weight_hh', (9, 3))]
    >>> registry.get("qrnn")
    Traceback (most recent call last):
    ...
    KeyError: "family: expected one of ['conv_lstm', 'gru', 'indrnn', 'lstm', 'rnn'], got 'qrnn'"
"""

from __future__ import annotations

import functools
import importlib
import itertools
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

# the modules that define a FAMILY, in registration order: one line per family
_MODULES = (
    "lstmkit.functional.lstm",
    "lstmkit.functional.gru",
    "lstmkit.functional.rnn",
    "lstmkit.functional.conv_lstm",
    "lstmkit.functional.indrnn",
)

ENGINES = ("reference", "fused", "vendor")


@dataclass(frozen=True)
class Option:
    """One option of a family (a keyword-only argument of its layers and cells)."""

    name: str
    default: Any
    choices: tuple  # the allowed values
    doc: str  # one line for the layer docstrings and help()
    call: bool = False  # passed as a keyword to the sequence functions (else read off the params)
    omit_default: bool = False  # a call option passed only when not at its default (engines that
    #                             lack it, e.g. the fused kernels, then see unchanged calls)

    def check(self, value) -> Any:
        if all(isinstance(c, bool) for c in self.choices):
            if not isinstance(value, bool):
                raise TypeError(f"{self.name}: expected a bool, got {type(value).__name__}")
        elif value not in self.choices:
            raise ValueError(f"{self.name}: expected one of {self.choices}, got {value!r}")
        return value


class ParamSpec(NamedTuple):
    """One parameter of one layer-direction."""

    field: str  # its name in the family's *Params NamedTuple (``w_ih``)
    name: str  # the module attribute, before the layer suffix (``weight_ih``)
    shape: tuple[int, ...]
    role: str  # how it is initialised: input | recurrent | diagonal | bias | proj | peephole |
    #            ln_weight | ln_bias | conv
    flat: bool = True  # one of torch's flat weights (registered first, in torch's order)


def dense_specs(G: int, I: int, P: int, bias: bool, recurrent: tuple[int, ...] | None = None,
                recurrent_role: str = "recurrent") -> list[ParamSpec]:
    """torch's four flat weights of a dense family: weight_ih (G, I), weight_hh (G, P) (or
    ``recurrent``), and with ``bias`` bias_ih, bias_hh (G,)."""
    specs = [ParamSpec("w_ih", "weight_ih", (G, I), "input"),
             ParamSpec("w_hh", "weight_hh", recurrent or (G, P), recurrent_role)]
    if bias:
        specs += [ParamSpec("b_ih", "bias_ih", (G,), "bias"), ParamSpec("b_hh", "bias_hh", (G,), "bias")]
    return specs


@dataclass(frozen=True)
class Family:
    """Everything the package knows about one family of cells (see the module docstring)."""

    name: str  # "lstm": also the name of the sequence function in functional/ and kernels/
    title: str  # "LSTM": the class names (``{title}``, ``{title}Cell``) and messages
    params: type  # the *Params NamedTuple
    state: tuple[str, ...]  # names of the state tensors; ``h`` first (width P), the rest width H
    options: tuple[Option, ...]
    param_specs: Callable[..., list[ParamSpec]]  # (opts, I, H, P, bias) -> specs
    reference: Callable  # fn(x, *state, p, masks, **call_opts) -> (y, *state_n)
    eager: Callable | str  # the same equations by autograd (the oracle); "module:function" is lazy
    doc: str  # one paragraph: the equations' name and reference
    fused: str | None = None  # module holding fn ``name`` and ``supports(name, p, masks, x, ...)``
    fused_serves: Callable[[dict], bool] = lambda opts: True  # options the kernels implement
    fused_step: str | None = None  # streaming single-step function in ``fused`` (no autograd)
    vendor: Callable[[dict], str | None] | None = None  # opts -> torch's mode when same math
    prefer_vendor: bool = False  # engine="auto" picks vendor first (else fused, then reference)
    gates: Callable[[dict], int] = lambda opts: 1  # gate blocks (G = gates * H)
    forget_gate: Callable[[dict], int | None] = lambda opts: None  # block of the forget gate
    proj: bool = False  # supports proj_size
    layer: bool = True  # has generic sequence layers/cells in lstmkit.nn (ConvLSTM: own modules)
    frame: tuple[int, ...] = ()  # trailing feature dims after the channel (conv: frame size)
    check: Callable[[dict], None] = lambda opts: None  # cross-option validation
    mode: Callable[[dict], str] | None = None  # torch's ``mode`` attribute; default title.upper()
    test_sizes: dict = field(default_factory=dict)  # small sizes for the registry-wide tests

    def __reduce__(self):
        # a module holding its family pickles (and deep-copies) it as a registry lookup by name:
        # the entry's callables are lambdas, and the registry holds one entry per family anyway
        return (get, (self.name,))

    def configure(self, **options) -> dict:
        """Validated options (defaults filled in). An option of another family is a ValueError
        naming the option and the families it applies to; an unknown one a TypeError."""
        mine = {o.name: o for o in self.options}
        for name in options:
            if name not in mine:
                owners = [f.title for f in families() if any(o.name == name for o in f.options)]
                if not owners:
                    raise TypeError(f"{name}: not an option of any cell family")
                if options[name] == _default_of(name):
                    continue  # another family's option at its default: harmless
                raise ValueError(f"{name}: only applies to {', '.join(owners)}, not to {self.title}")
        opts = {o.name: o.check(options.get(o.name, o.default)) for o in self.options}
        self.check(opts)
        return opts

    def oracle(self) -> Callable:
        """The eager-autograd oracle (resolved on first use when given as "module:function")."""
        if isinstance(self.eager, str):
            module, fn = self.eager.split(":")
            return getattr(importlib.import_module(module), fn)
        return self.eager

    @functools.cached_property
    def _call_names(self) -> tuple[tuple[str, bool, Any], ...]:
        return tuple((o.name, o.omit_default, o.default) for o in self.options if o.call)

    def call_options(self, opts: dict) -> dict:
        """The options passed as keywords to the sequence functions (an ``omit_default`` option
        only when it is not at its default)."""
        return {n: opts[n] for n, omit, d in self._call_names if not (omit and opts[n] == d)}

    def torch_mode(self, opts: dict) -> str:
        return self.mode(opts) if self.mode is not None else self.title.upper()

    def vendor_mode(self, opts: dict) -> str | None:
        """torch's mode name when torch's kernels compute exactly these equations, else None."""
        return None if self.vendor is None else self.vendor(opts)

    def engines(self, opts: dict) -> tuple[str, ...]:
        """The engines this family claims for these options (``auto`` picks among them)."""
        out = ["reference"]
        if self.fused is not None and self.fused_serves(opts):
            out.append("fused")
        if self.vendor_mode(opts) is not None:
            out.append("vendor")
        return tuple(out)

    def option_grid(self) -> list[dict]:
        """Every combination of option values that ``configure`` accepts."""
        grid = []
        for values in itertools.product(*(o.choices for o in self.options)):
            try:
                grid.append(self.configure(**dict(zip((o.name for o in self.options), values))))
            except ValueError:
                continue
        return grid

    def run(self, engine: str, x, state, p, masks, opts: dict):
        """One layer-direction on ``reference`` or ``fused``: (x, state, p, masks) -> (y, *state_n)."""
        kw = self.call_options(opts)
        if engine == "reference":
            return self.reference(x, *state, p, masks, **kw)
        if engine == "fused":
            return getattr(self.fused_module(), self.name)(x, *state, p, masks, **kw)
        raise ValueError(f"engine: expected 'reference' or 'fused' for {self.title}, got {engine!r}")

    def fused_module(self):
        if self.fused is None:
            raise ValueError(f"engine: {self.title} has no fused implementation")
        mod = sys.modules.get(self.fused)  # the per-step path: skip importlib once loaded
        return mod if mod is not None else importlib.import_module(self.fused)

    def fused_ok(self, x, p, masks, opts: dict) -> bool:
        """Whether the fused engine is built and can serve this call."""
        if self.fused is None or not self.fused_serves(opts):  # options the kernels lack: no scan
            return False
        k = self.fused_module()
        return k.supports(self.name, p, masks, x, **self.call_options(opts)) and k.available()


def _default_of(name: str):
    for f in families():
        for o in f.options:
            if o.name == name:
                return o.default
    return None


_REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family (called by the module that defines it). A name is registered once."""
    if family.name in _REGISTRY and _REGISTRY[family.name] is not family:
        raise ValueError(f"family: {family.name!r} is already registered")
    _REGISTRY[family.name] = family
    return family


def _load() -> None:
    if len(_REGISTRY) < len(_MODULES):
        for m in _MODULES:
            importlib.import_module(m)


def families() -> list[Family]:
    """Every registered family, in registration order."""
    _load()
    return [_REGISTRY[n] for n in sorted(_REGISTRY, key=lambda n: _order(n))]


def _order(name: str) -> int:
    names = [m.rsplit(".", 1)[-1] for m in _MODULES]
    return names.index(name) if name in names else len(names)


def get(name: str) -> Family:
    """The family called ``name``; KeyError naming the registered ones otherwise."""
    _load()
    if name not in _REGISTRY:
        raise KeyError(f"family: expected one of {sorted(_REGISTRY)}, got {name!r}")
    return _REGISTRY[name]
