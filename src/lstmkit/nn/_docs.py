"""torch-style docstrings (Args / Inputs / Outputs / Attributes) for the layers and cells, built
from the family registry so that every option of every family is documented where ``help()``
looks, and a new family's classes are documented without writing anything here.

Symbols: T time, B batch, I input, H hidden, P output width (proj_size or H), D directions,
L layers, G gate rows.
"""

from __future__ import annotations

from ..functional.registry import Family

# the keyword-only extras every sequence layer takes: (name, default, meaning)
EXTRAS = [
    ("input_dropout", 0.0, "variational dropout on each layer's input: one mask per sequence, the "
                           "same at every step (training only)"),
    ("recurrent_dropout", 0.0, "Gal & Ghahramani: one mask per sequence on h_{t-1} where it "
                               "enters W_hh; the carried state is not masked (training only)"),
    ("zoneout", 0.0, "float or (p_c, p_h): in training each unit keeps its previous value with "
                     "probability p; eval uses the expectation (p_c needs a cell state)"),
    ("weight_drop", 0.0, "DropConnect on every weight_hh (AWD-LSTM), one mask per forward call "
                         "(training only)"),
    ("init", "torch", "'torch' (torch's U(-1/sqrt(H), 1/sqrt(H)), needed for parity) or "
                      "'orthogonal' (Xavier input weights, orthogonal recurrent blocks, zero "
                      "biases)"),
    ("forget_bias", 0.0, "added to the forget-gate slice of bias_ih at init (1.0 is the classic "
                         "trick); needs a forget gate and bias=True"),
    ("residual", False, "add each layer's input to its output from the second layer on"),
    ("stateful", False, "keep the final state (detached) and start the next call from it when "
                        "hx is None; reset_state(mask=None) clears all rows or those where mask "
                        "is True"),
    ("engine", "auto", "'auto' (the fastest engine that serves the call, silently falling back), "
                       "'reference' (the hand BPTT in PyTorch), 'fused' (compiled kernels) or "
                       "'vendor' (torch's own kernels, only where the math is the same); a "
                       "forced engine that cannot serve raises ValueError"),
]
CELL_EXTRAS = [e for e in EXTRAS if e[0] in ("init", "forget_bias", "engine")]

_POSITIONAL = {
    "input_size": "I, the features of each step of ``input``",
    "hidden_size": "H, the features of the hidden state",
    "num_layers": "L, stacked layers (layer k > 0 reads layer k-1's output). Default: 1",
    "nonlinearity": "'tanh' or 'relu'. Default: 'tanh'",
    "bias": "False drops ``bias_ih`` and ``bias_hh``. Default: True",
    "batch_first": "input and output are (B, T, *) instead of (T, B, *); states are not "
                   "affected. Default: False",
    "dropout": "dropout on each layer's output except the last's (training only). Default: 0.0",
    "bidirectional": "D = 2: each layer also runs right to left (each sequence from its own last "
                     "valid step), outputs concatenated. Default: False",
    "proj_size": "P > 0 projects h to P features through ``weight_hr_l{k}`` (P < H). Default: 0",
    "device": "factory argument of the parameters. Default: None",
    "dtype": "factory argument of the parameters. Default: None",
}

_ROLE = {"input": "input weights", "recurrent": "recurrent weights",
         "diagonal": "diagonal recurrent weights (one per unit)", "bias": "bias",
         "proj": "projection", "peephole": "peephole weights", "ln_weight": "layer-norm gain",
         "ln_bias": "layer-norm shift", "conv": "convolution kernel"}

# sentinel sizes turned back into symbols in the Attributes section
_I, _H, _P = 1009, 1013, 1019


def _sym(n: int) -> str:
    for k in range(1, 9):
        if n == k * _H:
            return "H" if k == 1 else f"{k}H"
    return {_I: "I", _P: "P"}.get(n, str(n))


def _attributes(family: Family, suffix: str, proj: bool) -> list[str]:
    """One line per parameter the family can have, its shapes across every option combination."""
    shapes: dict[str, list[str]] = {}
    roles: dict[str, str] = {}
    when: dict[str, set] = {}
    grid = family.option_grid()
    for opts in grid:
        P = _P if proj else _H
        for s in family.param_specs(opts, _I, _H, P, True):
            shape = "(" + ", ".join(_sym(n) for n in s.shape) + ("," if len(s.shape) == 1 else "") + ")"
            shapes.setdefault(s.name, [])
            if shape not in shapes[s.name]:
                shapes[s.name].append(shape)
            roles[s.name] = _ROLE.get(s.role, s.role)
            on = {k for k, v in opts.items() if v is True}
            when[s.name] = on if s.name not in when else when[s.name] & on
    lines = []
    for name, sh in shapes.items():
        extra = ""
        if name.startswith("weight_hr"):
            extra = ", with proj_size"
        elif when[name]:
            extra = ", with " + " and ".join(f"{k}=True" for k in sorted(when[name]))
        elif name.startswith("bias"):
            extra = ", with bias=True"
        lines.append(f"    {name}{suffix}: {roles[name]} {' or '.join(sh)}{extra}")
    return lines


def _options(family: Family, skip=()) -> list[str]:
    return [f"    {o.name}: {o.doc}. Default: {o.default!r}" for o in family.options
            if o.name not in skip]


def _head(family: Family, head: str, pos: list[str], titles: tuple[str, str], extras: list,
          positional: tuple[str, ...]) -> list[str]:
    """The summary, Args, the family's options (``titles``: with options, without) and the
    extras."""
    return [
        head, "",
        "Args:",
        *[f"    {n}: {_POSITIONAL[n]}" for n in pos],
        "",
        titles[0] if family.options else titles[1],
        *_options(family, skip=positional),
        "",
        "Keyword-only extras:",
        *[f"    {n}: {doc}. Default: {d!r}" for n, d, doc in extras],
        "",
    ]


def _tail(attributes: list[str], example: str) -> list[str]:
    return ["Attributes:", *attributes, "", "Example::", "", example]


def generated_class(name: str, base: type, init, doc: str, module: str) -> type:
    """A public class made from the registry (``{title}``, ``{title}Cell``): ``init`` calls the
    base with the family's name; help() and pickling see a normal class of ``module``."""
    cls = type(name, (base,), {"__init__": init, "__module__": module, "__doc__": doc})
    cls.__init__.__qualname__ = f"{name}.__init__"
    return cls


def layer_doc(family: Family, head: str, example: str, positional: tuple[str, ...] = ()) -> str:
    """The docstring of a sequence layer of ``family``."""
    state = family.state
    pos = ["input_size", "hidden_size", "num_layers", *positional, "bias", "batch_first",
           "dropout", "bidirectional"] + (["proj_size"] if family.proj else []) + ["device", "dtype"]
    hx = ("a tuple (" + ", ".join(f"{n}_0" for n in state) + ")") if len(state) > 1 else "h_0"
    out_state = ("(" + ", ".join(f"{n}_n" for n in state) + ")") if len(state) > 1 else "h_n"
    widths = ", ".join(f"{n}: (D*L, B, {'P' if n == 'h' and family.proj else 'H'})" for n in state)
    titles = ("Keyword-only options of the family (``lstmkit.functional.registry``):",
              "The family has no options of its own.")
    parts = _head(family, head, pos, titles, EXTRAS, positional) + [
        "Inputs: input, hx=None, *, lengths=None",
        "    input: (T, B, I), (B, T, I) with batch_first, (T, I) unbatched, or a PackedSequence",
        f"    hx: {hx}, each (D*L, B, width) ((D*L, width) unbatched): {widths}. None: zeros (or "
        "the carried state when stateful)",
        "    lengths: (B,) ints (tensor or list, any device), right padding; 0 allowed. Padded "
        "steps output 0, final states are each sequence's state after its own last valid step",
        "",
        f"Outputs: output, {out_state}",
        f"    output: (T, B, D*{'P' if family.proj else 'H'}) (batch first with batch_first), "
        "or a PackedSequence for packed input",
        f"    {out_state}: the final states, shaped as hx",
        "",
    ] + _tail([*_attributes(family, "_l{k}", family.proj),
               "    (k the layer; directions D = 2 add the suffix ``_reverse``. Layer k > 0 reads "
               "D*P features instead of I.)"], example)
    return "\n".join(parts)


def cell_doc(family: Family, head: str, example: str, positional: tuple[str, ...] = ()) -> str:
    """The docstring of a one-step cell of ``family``."""
    state = family.state
    pos = ["input_size", "hidden_size", "bias", *positional, "device", "dtype"]
    hx = ("a tuple (" + ", ".join(state) + ")") if len(state) > 1 else "h"
    titles = ("Keyword-only options of the family:", "The family has no options.")
    parts = _head(family, head, pos, titles, CELL_EXTRAS, positional) + [
        "Inputs: input, hx=None",
        "    input: (B, I) or (I,) unbatched",
        f"    hx: {hx}, each (B, H) ((H,) unbatched). None: zeros",
        "",
        f"Outputs: {hx.replace('a tuple ', '')}",
        "    the new state, shaped as hx",
        "",
    ] + _tail(_attributes(family, "", False), example)
    return "\n".join(parts)
