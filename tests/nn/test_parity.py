"""Parity with torch.nn: a state_dict from torch loads into lstmkit and gives the same
outputs, final states and every gradient (input, states, each parameter)."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit as lk

DT = torch.float64
FAMILIES = {
    "LSTM": (torch.nn.LSTM, lk.LSTM, {}),
    "GRU": (torch.nn.GRU, lk.GRU, {}),
    "RNN_TANH": (torch.nn.RNN, lk.RNN, {"nonlinearity": "tanh"}),
    "RNN_RELU": (torch.nn.RNN, lk.RNN, {"nonlinearity": "relu"}),
}
CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=3, batch_first=True),
    dict(num_layers=2, bias=False, bidirectional=True, batch_first=True),
]
LSTM_ONLY = [dict(num_layers=2, proj_size=3, bidirectional=True), dict(proj_size=2, bias=False)]
ENGINES = ["reference", "vendor"]


def pair(family, engine, **cfg):
    torch_cls, lk_cls, extra = FAMILIES[family]
    torch.manual_seed(0)
    theirs = torch_cls(5, 6, **extra, **cfg).to(DT)
    ours = lk_cls(5, 6, **extra, **cfg, engine=engine).to(DT)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def states(out, family):
    return list(out[1]) if family == "LSTM" else [out[1]]


def run_and_grad(module, x, hx, family, seed=7):
    out = module(x, hx)
    y = out[0].data if isinstance(out[0], torch.nn.utils.rnn.PackedSequence) else out[0]
    tensors = [y, *states(out, family)]
    g = torch.Generator().manual_seed(seed)
    loss = sum((t * torch.randn(t.shape, generator=g, dtype=DT)).sum() for t in tensors)
    leaves = [x.data if isinstance(x, torch.nn.utils.rnn.PackedSequence) else x]
    leaves += list(hx) if isinstance(hx, tuple) else [hx]
    grads = torch.autograd.grad(loss, leaves + list(module.parameters()))
    return tensors, grads


def make_inputs(theirs, family, batched=True, seed=1):
    g = torch.Generator().manual_seed(seed)
    D = 2 if theirs.bidirectional else 1
    L, B, T = theirs.num_layers, 4, 7
    P = getattr(theirs, "proj_size", 0) or theirs.hidden_size
    shape = ((B, T, 5) if theirs.batch_first else (T, B, 5)) if batched else (T, 5)
    x = torch.randn(*shape, generator=g, dtype=DT, requires_grad=True)
    lead = (L * D, B) if batched else (L * D,)
    h0 = torch.randn(*lead, P, generator=g, dtype=DT, requires_grad=True)
    if family == "LSTM":
        c0 = torch.randn(*lead, theirs.hidden_size, generator=g, dtype=DT, requires_grad=True)
        return x, (h0, c0)
    return x, h0


def assert_same(a, b):
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v)


LAYER_CASES = [(family, cfg) for family in FAMILIES
               for cfg in CONFIGS + (LSTM_ONLY if family == "LSTM" else [])]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("family,cfg", LAYER_CASES,
                         ids=[f + ":" + ",".join(f"{k}={v}" for k, v in c.items()) for f, c in LAYER_CASES])
def test_layer_matches_torch_outputs_states_and_gradients(family, cfg, engine):
    theirs, ours = pair(family, engine, **cfg)
    x, hx = make_inputs(theirs, family)
    t_out, t_grads = run_and_grad(theirs, x, hx, family)
    o_out, o_grads = run_and_grad(ours, x, hx, family)
    assert_same(o_out, t_out)
    assert_same(o_grads, t_grads)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_unbatched_input_matches_torch(family, engine):
    theirs, ours = pair(family, engine, num_layers=2, bidirectional=True)
    x, hx = make_inputs(theirs, family, batched=False)
    t_out, t_grads = run_and_grad(theirs, x, hx, family)
    o_out, o_grads = run_and_grad(ours, x, hx, family)
    assert o_out[0].shape == t_out[0].shape
    assert_same(o_out, t_out)
    assert_same(o_grads, t_grads)


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("family", list(FAMILIES))
def test_packed_sequence_in_and_out_matches_torch(family, engine, enforce_sorted):
    theirs, ours = pair(family, engine, num_layers=2, bidirectional=True)
    _, hx = make_inputs(theirs, family)
    lengths = [7, 5, 5, 2] if enforce_sorted else [5, 7, 2, 5]
    g = torch.Generator().manual_seed(3)
    padded = torch.randn(7, 4, 5, generator=g, dtype=DT, requires_grad=True)
    packed = pack_padded_sequence(padded, lengths, enforce_sorted=enforce_sorted)
    t_out, t_grads = run_and_grad(theirs, packed, hx, family)
    o_out, o_grads = run_and_grad(ours, packed, hx, family)
    out = ours(packed, hx)[0]
    assert isinstance(out, torch.nn.utils.rnn.PackedSequence)
    torch.testing.assert_close(out.batch_sizes, packed.batch_sizes)
    assert_same(o_out, t_out)
    assert_same(o_grads, t_grads)
    unpacked, lens = pad_packed_sequence(out)
    assert lens.tolist() == lengths


CELLS = {
    "LSTM": (torch.nn.LSTMCell, lk.LSTMCell, {}),
    "GRU": (torch.nn.GRUCell, lk.GRUCell, {}),
    "RNN_TANH": (torch.nn.RNNCell, lk.RNNCell, {"nonlinearity": "tanh"}),
    "RNN_RELU": (torch.nn.RNNCell, lk.RNNCell, {"nonlinearity": "relu"}),
}


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("engine", ["reference", "auto"])
@pytest.mark.parametrize("family", list(CELLS))
def test_cell_matches_torch_cell(family, engine, bias, batched):
    torch_cls, lk_cls, extra = CELLS[family]
    torch.manual_seed(0)
    theirs = torch_cls(5, 6, bias=bias, **extra).to(DT)
    ours = lk_cls(5, 6, bias=bias, **extra, engine=engine).to(DT)
    ours.load_state_dict(theirs.state_dict())
    g = torch.Generator().manual_seed(1)
    lead = (3,) if batched else ()
    x = torch.randn(*lead, 5, generator=g, dtype=DT, requires_grad=True)
    hs = [torch.randn(*lead, 6, generator=g, dtype=DT, requires_grad=True)
          for _ in range(2 if family == "LSTM" else 1)]
    hx = tuple(hs) if family == "LSTM" else hs[0]
    results = []
    for m in (theirs, ours):
        out = m(x, hx)
        outs = list(out) if family == "LSTM" else [out]
        loss = sum((o * (k + 1.5)).sin().sum() for k, o in enumerate(outs))
        results.append((outs, torch.autograd.grad(loss, [x, *hs, *m.parameters()])))
    assert_same(results[1][0], results[0][0])
    assert_same(results[1][1], results[0][1])


def test_default_seed_gives_torch_initial_weights():
    torch.manual_seed(123)
    theirs = torch.nn.LSTM(4, 8, num_layers=2, bidirectional=True)
    torch.manual_seed(123)
    ours = lk.LSTM(4, 8, num_layers=2, bidirectional=True)
    for (n1, p1), (n2, p2) in zip(theirs.named_parameters(), ours.named_parameters()):
        assert n1 == n2
        torch.testing.assert_close(p1, p2)
