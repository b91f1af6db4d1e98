"""Greff et al.'s LSTM ablations (options of the LSTM family): each one off is the standard LSTM,
a removed gate is the standard LSTM with that gate pinned open, and the engines refuse what they
cannot serve. Gradcheck, hand BPTT == autograd and padding come from the registry-wide tests
(tests/functional/test_families.py: every option combination)."""

import pytest
import torch

import lstmkit as lk
from lstmkit.functional.lstm import ABLATIONS

DT = torch.float64


def pair(**opts):
    torch.manual_seed(0)
    return lk.LSTM(3, 4, num_layers=2, engine="reference", **opts).to(DT)


@pytest.mark.parametrize("name", ABLATIONS)
def test_each_ablation_switched_off_is_the_standard_lstm_and_on_is_not(name):
    off, plain, on = pair(**{name: False}), pair(), pair(**{name: True})
    assert [(n, p.shape) for n, p in off.named_parameters()] == [
        (n, p.shape) for n, p in plain.named_parameters()]
    x = torch.randn(6, 2, 3, dtype=DT)
    assert torch.equal(off(x)[0], plain(x)[0])
    assert not torch.allclose(on(x)[0], plain(x)[0])  # the option reaches the equations


@pytest.mark.parametrize("name,gate", [("no_input_gate", 0), ("no_forget_gate", 1),
                                       ("no_output_gate", 3)])
@pytest.mark.parametrize("peephole", [False, True])
def test_a_removed_gate_is_the_standard_lstm_with_that_gate_pinned_open(name, gate, peephole):
    torch.manual_seed(1)
    ab = lk.LSTM(3, 4, engine="reference", peephole=peephole, **{name: True}).to(DT)
    std = lk.LSTM(3, 4, engine="reference", peephole=peephole).to(DT)
    H = 4
    keep = [b for b in range(4) if b != gate]
    with torch.no_grad():
        for w in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            full, rows = getattr(std, w), getattr(ab, w)
            full.zero_()
            for j, b in enumerate(keep):
                full[b * H : (b + 1) * H] = rows[j * H : (j + 1) * H]
        std.bias_ih_l0[gate * H : (gate + 1) * H] = 60.0  # sigmoid(60) == 1 in float64
        if peephole:
            for k in ("ci", "cf", "co"):
                if hasattr(ab, f"weight_{k}_l0"):
                    getattr(std, f"weight_{k}_l0").copy_(getattr(ab, f"weight_{k}_l0"))
                else:
                    getattr(std, f"weight_{k}_l0").zero_()
    x = torch.randn(5, 2, 3, dtype=DT)
    torch.testing.assert_close(ab(x)[0], std(x)[0], rtol=1e-12, atol=1e-12)


def test_activation_ablations_drop_exactly_their_tanh():
    torch.manual_seed(2)
    x, h0, c0 = torch.randn(1, 2, 3, dtype=DT), torch.randn(1, 2, 4, dtype=DT), torch.randn(1, 2, 4, dtype=DT)
    for name in ("no_input_activation", "no_output_activation"):
        m = lk.LSTM(3, 4, engine="reference", **{name: True}).to(DT)
        a = x[0] @ m.weight_ih_l0.t() + h0[0] @ m.weight_hh_l0.t() + m.bias_ih_l0 + m.bias_hh_l0
        i, f, g, o = a.chunk(4, 1)
        g = g if name == "no_input_activation" else torch.tanh(g)
        c = torch.sigmoid(f) * c0[0] + torch.sigmoid(i) * g
        h = torch.sigmoid(o) * (c if name == "no_output_activation" else torch.tanh(c))
        y, (h_n, c_n) = m(x, (h0, c0))
        torch.testing.assert_close(y[0], h)
        torch.testing.assert_close(c_n[0], c)


def test_full_gate_recurrence_adds_nine_blocks_and_starts_from_zero_gates():
    torch.manual_seed(3)
    fgr = lk.LSTM(3, 4, engine="reference", full_gate_recurrence=True).to(DT)
    assert fgr.weight_gr_l0.shape == (12, 12)
    std = lk.LSTM(3, 4, engine="reference").to(DT)
    std.load_state_dict({k: v for k, v in fgr.state_dict().items() if "gr" not in k})
    x = torch.randn(4, 2, 3, dtype=DT)
    y_f, y_s = fgr(x)[0], std(x)[0]
    torch.testing.assert_close(y_f[0], y_s[0])  # no previous gates at the first step
    assert not torch.allclose(y_f[1:], y_s[1:])
    with torch.no_grad():
        fgr.weight_gr_l0.zero_()
    torch.testing.assert_close(fgr(x)[0], y_s)


def test_engines_refuse_ablations_by_name_and_auto_falls_back():
    with pytest.raises(ValueError, match="engine"):
        lk.LSTM(3, 4, no_forget_gate=True, engine="fused")
    with pytest.raises(ValueError, match="engine"):
        lk.LSTM(3, 4, no_forget_gate=True, engine="vendor")
    torch.manual_seed(4)
    auto = lk.LSTM(3, 4, no_forget_gate=True)
    ref = lk.LSTM(3, 4, no_forget_gate=True, engine="reference")
    ref.load_state_dict(auto.state_dict())
    x = torch.randn(5, 2, 3)
    assert torch.equal(auto(x)[0], ref(x)[0])
    cell = lk.LSTMCell(3, 4, no_output_activation=True)  # the streaming kernel must not serve it
    with torch.no_grad():
        h, c = cell(x[0])
    torch.testing.assert_close(h, torch.sigmoid(
        (x[0] @ cell.weight_ih.t() + cell.bias_ih + cell.bias_hh).chunk(4, 1)[3]) * c)


def test_bad_combinations_are_named():
    with pytest.raises(ValueError, match="one at a time"):
        lk.LSTM(3, 4, no_input_gate=True, no_output_gate=True)
    with pytest.raises(ValueError, match="coupled"):
        lk.LSTM(3, 4, no_forget_gate=True, coupled=True)
    with pytest.raises(ValueError, match="forget_bias"):
        lk.LSTM(3, 4, no_forget_gate=True, forget_bias=1.0)
