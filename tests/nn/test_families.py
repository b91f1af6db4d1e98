"""Every registered family is fully wired through the public layers and cells: every engine it
claims serves every option combination (against the reference), repr shows every non-default
option, a state_dict round-trips, lengths work, help() documents every argument, and an unknown
family, option or unwired engine is an error, never a fallback."""

import inspect

import pytest
import torch

import lstmkit as lk
from lstmkit import kernels
from lstmkit.functional import registry
from lstmkit.nn.cells import CellBase
from lstmkit.nn.recurrent import RecurrentBase

DT = torch.float64
LAYER_FAMILIES = [f for f in registry.families() if f.layer]
CASES = [(f, o) for f in LAYER_FAMILIES for o in f.option_grid()]
IDS = [f.name + "".join(f"-{k}={v}" for k, v in o.items()
                        if v != next(x.default for x in f.options if x.name == k))
       for f, o in CASES]


def layer(family, opts, **kw):
    return getattr(lk, family.title)(3, 4, **opts, **kw)


def run(m, x, lengths=None):
    out = m(x, lengths=lengths)
    states = list(out[1]) if isinstance(out[1], tuple) else [out[1]]
    g = torch.Generator().manual_seed(4)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=t.dtype)).sum() for t in [out[0], *states])
    return [out[0], *states, *torch.autograd.grad(loss, [x, *m.parameters()])]


@pytest.mark.parametrize("family,opts", CASES, ids=IDS)
def test_every_claimed_engine_serves_every_option_combination(family, opts):
    torch.manual_seed(0)
    kw = dict(num_layers=2, bidirectional=True)
    if family.proj:
        kw["proj_size"] = 2
    ref = layer(family, opts, engine="reference", **kw).to(DT)
    x = torch.randn(5, 3, 3, dtype=DT, requires_grad=True)
    want = run(ref, x, [5, 2, 0])
    for engine in family.engines(opts):
        if engine == "reference" or (engine == "fused" and not kernels.available()):
            continue
        m = layer(family, opts, engine=engine, **kw).to(DT)
        m.load_state_dict(ref.state_dict())
        lengths = None if engine == "vendor" else [5, 2, 0]  # torch's kernels take no lengths
        got, exp = run(m, x, lengths), (want if lengths else run(ref, x))
        for a, b in zip(got, exp):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("family,opts", CASES, ids=IDS)
def test_repr_shows_every_non_default_option_and_state_dict_round_trips(family, opts):
    torch.manual_seed(0)
    m = layer(family, opts, batch_first=True, zoneout=0.1, engine="reference")
    text = repr(m)
    for o in family.options:
        assert (f"{o.name}={opts[o.name]!r}" in text) == (opts[o.name] != o.default), text
    assert "batch_first=True" in text and "zoneout=(0.1, 0.1)" in text
    cell = getattr(lk, family.title + "Cell")(3, 4, **opts)
    for o in family.options:
        assert (f"{o.name}={opts[o.name]!r}" in repr(cell)) == (opts[o.name] != o.default)
    twin = layer(family, opts, batch_first=True, zoneout=0.1, engine="reference")
    twin.load_state_dict(m.state_dict())
    m.eval(), twin.eval()
    x = torch.randn(2, 4, 3)
    torch.testing.assert_close(twin(x, lengths=[4, 1])[0], m(x, lengths=[4, 1])[0])


@pytest.mark.parametrize("family", LAYER_FAMILIES, ids=lambda f: f.name)
def test_cell_is_one_step_of_the_layer(family):
    torch.manual_seed(0)
    opts = family.configure()
    cell = getattr(lk, family.title + "Cell")(3, 4, engine="reference", **opts).to(DT)
    seq = layer(family, opts, engine="reference").to(DT)
    seq.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = torch.randn(2, 3, dtype=DT)
    new = cell(x)
    _, final = seq(x.unsqueeze(0))
    final = final if isinstance(final, tuple) else (final,)
    for a, b in zip(new if isinstance(new, tuple) else (new,), final):
        torch.testing.assert_close(a, b[0])


PUBLIC = [lk.LSTM, lk.GRU, lk.RNN, lk.LSTMCell, lk.GRUCell, lk.RNNCell] + [
    getattr(lk, f.title + s) for f in LAYER_FAMILIES if f.title not in ("LSTM", "GRU", "RNN")
    for s in ("", "Cell")]


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda c: c.__name__)
def test_help_documents_every_argument(cls):
    base = RecurrentBase if issubclass(cls, RecurrentBase) else CellBase
    names = set(inspect.signature(cls.__init__).parameters) | set(
        n for n, p in inspect.signature(base.__init__).parameters.items()
        if p.kind is p.KEYWORD_ONLY)
    names |= {o.name for o in cls(3, 4).v.family.options}
    names -= {"self", "extras", "options", "family"}
    doc = inspect.getdoc(cls)
    for section in ("Args:", "Inputs:", "Outputs:", "Attributes:"):
        assert section in doc
    missing = [n for n in names if f"    {n}:" not in doc]
    assert not missing, f"{cls.__name__} does not document {missing}"


# the public modules of the families that have no generic layer (their own signatures)
OWN_MODULES = {"conv_lstm": [lambda: lk.ConvLSTM(2, [3, 2], 3, num_layers=2, bidirectional=True),
                             lambda: lk.ConvLSTMCell(2, 3, 3)]}


@pytest.mark.parametrize("cls", [lk.ConvLSTM, lk.ConvLSTMCell, lk.Bidirectional],
                         ids=lambda c: c.__name__)
def test_help_documents_every_argument_of_the_other_public_modules(cls):
    names = set(inspect.signature(cls.__init__).parameters) - {"self"}
    doc = inspect.getdoc(cls)
    for section in ("Args:", "Inputs:", "Outputs:"):
        assert section in doc
    missing = [n for n in names if f"    {n}:" not in doc]
    assert not missing, f"{cls.__name__} does not document {missing}"


def test_families_without_a_generic_layer_have_their_own_modules_on_the_registry():
    for f in registry.families():
        if f.layer:
            continue
        assert f.name in OWN_MODULES, f"{f.title}: no public module runs this family"
        for make in OWN_MODULES[f.name]:
            m = make()
            assert m.v.family is f and m.v.opts == f.configure()
            # every parameter is one the family's specs declare
            fields = {field for s in m._param_fields.values() for field, _ in s}
            assert fields <= set(f.params._fields)


def test_unknown_family_option_or_unwired_engine_is_an_error_not_a_fallback():
    with pytest.raises(KeyError, match="family"):
        registry.get("qrnn")
    with pytest.raises(KeyError, match="family"):
        RecurrentBase("qrnn", 3, 4)
    with pytest.raises(TypeError, match="peepholes"):
        lk.LSTM(3, 4, peepholes=True)
    with pytest.raises(ValueError, match="only applies to LSTM"):
        lk.IndRNN(3, 4, peephole=True)
    with pytest.raises(ValueError, match="engine"):
        lk.IndRNN(3, 4, engine="fused")  # IndRNN registers no kernel
    with pytest.raises(ValueError, match="engine"):
        lk.IndRNNCell(3, 4, engine="vendor")  # and torch has no twin
    with pytest.raises(ValueError, match="engine"):
        lk.GRU(3, 4, reset_after=False, engine="vendor")


def test_every_registered_family_is_fully_wired():
    for f in registry.families():
        assert registry.get(f.name) is f
        opts = f.configure()
        assert f.state[0] == "h" and f.option_grid()
        assert f.params._fields[:2] == tuple(s.field for s in f.param_specs(opts, 3, 4, 4, True)[:2])
        assert set(f.engines(opts)) <= set(registry.ENGINES)
        if f.fused is not None:
            k = f.fused_module()
            assert callable(getattr(k, f.name)) and callable(k.supports)
        if f.layer:
            for name in (f.title, f.title + "Cell"):
                assert name in lk.nn.__all__ and getattr(lk, name) is getattr(lk.nn, name)
