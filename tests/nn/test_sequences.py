"""Sequences beyond torch.nn: lengths, the dropout family, zoneout, state (DESIGN §2)."""

import pytest
import torch
import torch.nn.functional as F

import lstmkit as lk
import lstmkit.nn  # noqa: F401  (lk.nn.Bidirectional)

DT = torch.float64
LENGTHS = [6, 3, 0, 5]

LAYERS = {
    "lstm": lambda **kw: lk.LSTM(3, 4, **kw),
    "lstm-peephole": lambda **kw: lk.LSTM(3, 4, peephole=True, **kw),
    "lstm-coupled": lambda **kw: lk.LSTM(3, 4, coupled=True, **kw),
    "lstm-layer_norm": lambda **kw: lk.LSTM(3, 4, layer_norm=True, **kw),
    "lstm-proj": lambda **kw: lk.LSTM(3, 4, proj_size=2, **kw),
    "lstm-all": lambda **kw: lk.LSTM(3, 4, peephole=True, coupled=True, layer_norm=True,
                                     proj_size=2, residual=True, **kw),
    "gru": lambda **kw: lk.GRU(3, 4, **kw),
    "gru-cho": lambda **kw: lk.GRU(3, 4, reset_after=False, **kw),
    "rnn-tanh": lambda **kw: lk.RNN(3, 4, **kw),
    "rnn-relu": lambda **kw: lk.RNN(3, 4, nonlinearity="relu", **kw),
}


def final_states(out):
    return list(out[1]) if isinstance(out[1], tuple) else [out[1]]


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("name", list(LAYERS))
def test_padded_batch_with_lengths_equals_each_sequence_alone(name, bidirectional):
    torch.manual_seed(0)
    m = LAYERS[name](num_layers=2, bidirectional=bidirectional, batch_first=True,
                     engine="reference").to(DT)
    x = torch.randn(4, 6, 3, dtype=DT)
    out = m(x, lengths=LENGTHS)
    y, states = out[0], final_states(out)
    for b, n in enumerate(LENGTHS):
        if n == 0:
            assert y[b].abs().sum() == 0
            for s in states:
                assert s[:, b].abs().sum() == 0  # the zero initial state is kept
            continue
        alone = m(x[b : b + 1, :n])
        torch.testing.assert_close(y[b : b + 1, :n], alone[0])
        assert y[b, n:].abs().sum() == 0  # outputs at padded steps are 0
        for s, s_alone in zip(states, final_states(alone)):
            torch.testing.assert_close(s[:, b : b + 1], s_alone)


@pytest.mark.parametrize("name", ["lstm-all", "gru", "rnn-tanh"])
def test_garbage_in_padding_changes_nothing(name):
    torch.manual_seed(0)
    m = LAYERS[name](bidirectional=True, engine="reference").to(DT)
    x = torch.randn(6, 4, 3, dtype=DT, requires_grad=True)
    noisy = x.detach().clone()
    for b, n in enumerate(LENGTHS):
        noisy[n:, b] = 1e3 * torch.randn(6 - n, 3, dtype=DT)
    noisy.requires_grad_()
    a, b_ = m(x, lengths=LENGTHS), m(noisy, lengths=torch.tensor(LENGTHS))
    torch.testing.assert_close(a[0], b_[0])
    for s, t in zip(final_states(a), final_states(b_)):
        torch.testing.assert_close(s, t)
    (g,) = torch.autograd.grad(b_[0].sum(), noisy)
    for b, n in enumerate(LENGTHS):
        assert g[n:, b].abs().sum() == 0  # no gradient flows into padding


def test_zero_length_row_keeps_its_given_initial_state():
    torch.manual_seed(0)
    m = lk.LSTM(3, 4, num_layers=2, engine="reference").to(DT)
    h0, c0 = torch.randn(2, 4, 4, dtype=DT), torch.randn(2, 4, 4, dtype=DT)
    _, (h, c) = m(torch.randn(6, 4, 3, dtype=DT), (h0, c0), lengths=LENGTHS)
    torch.testing.assert_close(h[:, 2], h0[:, 2])
    torch.testing.assert_close(c[:, 2], c0[:, 2])


def test_lengths_accepts_list_and_int_tensor_and_gives_the_same():
    torch.manual_seed(0)
    m = lk.GRU(3, 4, engine="reference")
    x = torch.randn(6, 4, 3)
    a = m(x, lengths=LENGTHS)[0]
    b = m(x, lengths=torch.tensor(LENGTHS, dtype=torch.int32))[0]
    torch.testing.assert_close(a, b)


def _identity_relu_rnn(**kw):
    """h_t = relu(x_t * m_in + (h_{t-1} * m_rec)): masks are visible in the output."""
    m = lk.RNN(4, 4, nonlinearity="relu", bias=False, engine="reference", **kw).to(DT)
    with torch.no_grad():
        m.weight_ih_l0.copy_(torch.eye(4))
        m.weight_hh_l0.copy_(torch.eye(4))
    return m


def test_recurrent_dropout_mask_is_the_same_at_every_step_and_absent_at_eval():
    torch.manual_seed(0)
    m = _identity_relu_rnn(recurrent_dropout=0.5)
    x = torch.ones(5, 8, 4, dtype=DT)
    y, _ = m(x)  # a dropped unit never sees h_{t-1}: it stays 1; a kept one grows
    dropped = y[1] == 1.0  # (B, H)
    assert dropped.any() and (~dropped).any()
    for t in range(1, 5):
        assert torch.equal(y[t] == 1.0, dropped)
    m.eval()
    y, _ = m(x)
    assert (y[1:] > 1.0).all()


def test_input_dropout_mask_is_the_same_at_every_step_and_absent_at_eval():
    torch.manual_seed(0)
    m = _identity_relu_rnn(input_dropout=0.5)
    with torch.no_grad():
        m.weight_hh_l0.zero_()
    x = torch.ones(5, 8, 4, dtype=DT)
    y, _ = m(x)
    assert set(y.unique().tolist()) == {0.0, 2.0}  # dropped, or kept and scaled by 1/(1-p)
    for t in range(5):
        assert torch.equal(y[t], y[0])
    m.eval()
    assert (m(x)[0] == 1.0).all()


def test_dropout_family_is_reproducible_under_a_seed():
    m = lk.LSTM(3, 4, num_layers=2, dropout=0.3, input_dropout=0.2, recurrent_dropout=0.2,
                zoneout=0.1, weight_drop=0.2, engine="reference")
    x = torch.randn(5, 2, 3)
    torch.manual_seed(5)
    a = m(x)[0]
    torch.manual_seed(5)
    b = m(x)[0]
    torch.manual_seed(6)
    c = m(x)[0]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, c)


@pytest.mark.parametrize("zoneout", [0.3, (0.2, 0.4)])
def test_zoneout_at_eval_is_the_expectation(zoneout):
    torch.manual_seed(0)
    m = lk.LSTM(3, 4, zoneout=zoneout, engine="reference").to(DT).eval()
    cell = lk.LSTMCell(3, 4).to(DT)
    cell.load_state_dict({k[:-3]: v for k, v in m.state_dict().items()})
    pc, ph = (zoneout, zoneout) if isinstance(zoneout, float) else zoneout
    x = torch.randn(5, 2, 3, dtype=DT)
    y, (h_n, c_n) = m(x)
    h, c = torch.zeros(2, 4, dtype=DT), torch.zeros(2, 4, dtype=DT)
    for t in range(5):
        h_new, c_new = cell(x[t], (h, c))
        h, c = ph * h + (1 - ph) * h_new, pc * c + (1 - pc) * c_new
        torch.testing.assert_close(y[t], h)
    torch.testing.assert_close(c_n[0], c)


def test_zoneout_in_training_keeps_some_units_exactly():
    torch.manual_seed(0)
    m = lk.GRU(3, 16, zoneout=0.5, engine="reference")
    y, _ = m(torch.randn(6, 4, 3))
    kept = (y[1:] == y[:-1]).float().mean()
    assert 0.3 < kept < 0.7


def test_weight_drop_touches_weight_hh_only_and_only_in_training():
    torch.manual_seed(0)
    m = lk.LSTM(3, 4, weight_drop=0.5, engine="reference").to(DT)
    ref = torch.nn.LSTM(3, 4).to(DT)
    ref.load_state_dict(m.state_dict())
    x = torch.randn(5, 2, 3, dtype=DT)
    torch.manual_seed(1)
    y = m(x)[0]
    torch.manual_seed(1)
    dropped = F.dropout(m.weight_hh_l0, 0.5, True)
    with torch.no_grad():
        ref.weight_hh_l0.copy_(dropped)
    torch.testing.assert_close(y, ref(x)[0])
    m.eval()
    ref.load_state_dict(m.state_dict())
    torch.testing.assert_close(m(x)[0], ref(x)[0])


@pytest.mark.parametrize("engine", ["reference", "auto"])
def test_stateful_chunks_equal_one_pass(engine):
    torch.manual_seed(0)
    m = lk.LSTM(3, 4, num_layers=2, batch_first=True, stateful=True, engine=engine).to(DT)
    x = torch.randn(2, 9, 3, dtype=DT)
    whole, (h_w, _) = m(x)
    m.reset_state()
    parts = [m(x[:, i : i + 3])[0] for i in range(0, 9, 3)]
    torch.testing.assert_close(torch.cat(parts, dim=1), whole)
    torch.testing.assert_close(m._state[0], h_w)


def test_reset_state_mask_clears_only_the_masked_rows():
    torch.manual_seed(0)
    m = lk.GRU(3, 4, stateful=True)
    m(torch.randn(5, 3, 3))
    before = m._state[0].clone()
    m.reset_state(torch.tensor([True, False, True]))
    after = m._state[0]
    assert after[:, [0, 2]].abs().sum() == 0
    torch.testing.assert_close(after[:, 1], before[:, 1])


def test_stateful_module_fed_another_batch_size_says_so():
    m = lk.LSTM(3, 4, stateful=True)
    m(torch.randn(5, 3, 3))
    with pytest.raises(ValueError, match="reset_state"):
        m(torch.randn(5, 2, 3))
    m.reset_state()
    m(torch.randn(5, 2, 3))


def test_orthogonal_init_and_forget_bias():
    m = lk.LSTM(3, 8, init="orthogonal", forget_bias=1.0)
    for block in m.weight_hh_l0.split(8):
        torch.testing.assert_close(block @ block.t(), torch.eye(8), atol=1e-5, rtol=0)
    torch.testing.assert_close(m.bias_ih_l0[8:16], torch.ones(8))
    assert m.bias_ih_l0[:8].abs().sum() == 0 and m.bias_hh_l0.abs().sum() == 0


def test_residual_adds_each_layers_input_from_the_second_layer_on():
    torch.manual_seed(0)
    m = lk.LSTM(4, 4, num_layers=2, residual=True, engine="reference").to(DT)
    plain = lk.LSTM(4, 4, num_layers=2, engine="reference").to(DT)
    plain.load_state_dict(m.state_dict())
    x = torch.randn(5, 2, 4, dtype=DT)
    first = lk.LSTM(4, 4, engine="reference").to(DT)
    first.load_state_dict({k: v for k, v in m.state_dict().items() if k.endswith("_l0")})
    y1 = first(x)[0]
    torch.testing.assert_close(m(x)[0], plain(x)[0] + y1)


BAD = [
    (lambda: lk.LSTM(3, 4)(torch.randn(2, 3, 4, 3)), ValueError, "input: expected a 2-D or 3-D"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 7)), ValueError, "input_size=3"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3, dtype=DT)), TypeError, "dtype"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3, device="meta")), ValueError, "device"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3), (torch.zeros(1, 2, 4),)), TypeError, "hx"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 2, 4))),
     ValueError, r"h_0.*\(1, 2, 4\)"),
    (lambda: lk.GRU(3, 4)(torch.randn(5, 2, 3), torch.zeros(1, 2, 4, dtype=DT)), TypeError, "hx"),
    (lambda: lk.LSTM(3, 4, proj_size=4), ValueError, "proj_size"),
    (lambda: lk.GRU(3, 4, coupled=True), ValueError, "coupled"),
    (lambda: lk.RNN(3, 4, peephole=True), ValueError, "peephole"),
    (lambda: lk.LSTM(3, 4, reset_after=False), ValueError, "reset_after"),
    (lambda: lk.LSTM(3, 4, engine="cuda"), ValueError, "engine"),
    (lambda: lk.LSTM(3, 4, peephole=True, engine="vendor")(torch.randn(2, 1, 3)), ValueError,
     "vendor"),
    (lambda: lk.LSTM(3, 4, dropout=1.0), ValueError, "dropout"),
    (lambda: lk.LSTM(3, 4, recurrent_dropout=-0.1), ValueError, "recurrent_dropout"),
    (lambda: lk.LSTM(3, 4, zoneout=(0.1, 1.5)), ValueError, "zoneout"),
    (lambda: lk.LSTM(3, 4, coupled=True, forget_bias=1.0), ValueError, "forget_bias"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3), lengths=[5]), ValueError, r"lengths.*\(2,\)"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3), lengths=[5, -1]), ValueError, "lengths"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3), lengths=[5, 6]), ValueError, r"\[0, 5\]"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3), lengths=torch.tensor([5.0, 2.0])), TypeError,
     "integer"),
    (lambda: lk.LSTM(3, 4)(torch.randn(5, 2, 3), lengths=[5, 2.5]), TypeError, "lengths"),
    (lambda: lk.LSTMCell(3, 4)(torch.randn(2, 3), (torch.zeros(2, 4), torch.zeros(3, 4))),
     ValueError, "hx"),
]


@pytest.mark.parametrize("make,exc,match", BAD)
def test_bad_input_names_the_argument(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("batch_first", [False, True])
def test_bidirectional_wrapper_concat_matches_a_bidirectional_layer(batch_first):
    torch.manual_seed(0)
    bi = lk.LSTM(3, 4, bidirectional=True, batch_first=batch_first, engine="reference").to(DT)
    sd = bi.state_dict()
    f = lk.LSTM(3, 4, batch_first=batch_first, engine="reference").to(DT)
    b = lk.LSTM(3, 4, batch_first=batch_first, engine="reference").to(DT)
    f.load_state_dict({k: v for k, v in sd.items() if not k.endswith("_reverse")})
    b.load_state_dict({k[: -len("_reverse")]: v for k, v in sd.items() if k.endswith("_reverse")})
    wrapped = lk.nn.Bidirectional(f, b)
    x = torch.randn(4, 6, 3, dtype=DT) if batch_first else torch.randn(6, 4, 3, dtype=DT)
    y1, (h1, c1) = bi(x, lengths=LENGTHS)
    y2, (h2, c2) = wrapped(x, lengths=LENGTHS)
    torch.testing.assert_close(y2, y1)
    torch.testing.assert_close(h2, h1)
    torch.testing.assert_close(c2, c1)


@pytest.mark.parametrize("mode,op", [("sum", torch.add), ("mean", lambda a, b: (a + b) / 2),
                                     ("mul", torch.mul)])
def test_bidirectional_wrapper_merge_modes(mode, op):
    torch.manual_seed(0)
    f, b = lk.GRU(3, 4, engine="reference"), lk.GRU(3, 4, engine="reference")
    concat = lk.nn.Bidirectional(f, b)(torch.ones(5, 2, 3))[0]
    merged = lk.nn.Bidirectional(f, b, merge_mode=mode)(torch.ones(5, 2, 3))[0]
    torch.testing.assert_close(merged, op(concat[..., :4], concat[..., 4:]))


def test_bidirectional_wrapper_rejects_bad_merge_and_bidirectional_parts():
    with pytest.raises(ValueError, match="merge_mode"):
        lk.nn.Bidirectional(lk.GRU(3, 4), merge_mode="max")
    with pytest.raises(ValueError, match="forward_layer"):
        lk.nn.Bidirectional(lk.GRU(3, 4, bidirectional=True))


def test_weight_drop_on_the_vendor_engine_draws_the_same_mask_as_the_reference():
    torch.manual_seed(0)
    ref = lk.LSTM(3, 4, num_layers=2, bidirectional=True, weight_drop=0.5, engine="reference")
    ven = lk.LSTM(3, 4, num_layers=2, bidirectional=True, weight_drop=0.5, engine="vendor")
    ven.load_state_dict(ref.state_dict())
    x = torch.randn(5, 2, 3)
    torch.manual_seed(1)
    a = ref(x)[0]
    torch.manual_seed(1)
    b = ven(x)[0]
    torch.testing.assert_close(a, b)
    assert not torch.allclose(a, ref.eval()(x)[0])
