"""analysis.record: what it records equals the equations and the layer's own engines, the
gradients equal autograd of a plain loop, and leaving the block leaves the layer untouched."""

import pytest
import torch
import torch.nn.functional as F

import lstmkit as lk
from lstmkit import kernels
from lstmkit.analysis import record
from lstmkit.functional import registry
from lstmkit.functional.lstm import ABLATIONS
from lstmkit.nn.recurrent import RecurrentBase

DT = torch.float64
LSTM_OPTS = [{}, {"peephole": True}, {"coupled": True}, {"layer_norm": True},
             {"peephole": True, "coupled": True}] + [{a: True} for a in ABLATIONS]
CASES = ([("lstm", o) for o in LSTM_OPTS] + [("gru", {}), ("gru", {"reset_after": False}),
                                              ("rnn", {}), ("indrnn", {})])


def make(family, opts, engine="auto", **kw):
    torch.manual_seed(0)
    fam = registry.get(family)
    if fam.proj and not opts.get("coupled"):
        kw.setdefault("proj_size", 3)
    return getattr(lk, fam.title)(3, 4, num_layers=2, bidirectional=True, engine=engine,
                                  **opts, **kw).to(DT).eval()


def plain_gates(family, opts, m, x_t, h_prev, c_prev, suffix="_l0"):
    """The gates from the equations written out (DESIGN section 2), nothing shared with lstmkit."""
    w = {n: getattr(m, n + suffix) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    if family == "gru":
        xr, xz, xn = (x_t @ w["weight_ih"].t() + w["bias_ih"]).chunk(3, 1)
        hr, hz, hn = (h_prev @ w["weight_hh"].t() + w["bias_hh"]).chunk(3, 1)
        r, z = torch.sigmoid(xr + hr), torch.sigmoid(xz + hz)
        if opts.get("reset_after", True):
            n = torch.tanh(xn + r * hn)
        else:
            w_hn = w["weight_hh"].chunk(3, 0)[2]
            n = torch.tanh(xn + (r * h_prev) @ w_hn.t() + w["bias_hh"].chunk(3)[2])
        return {"r": r, "z": z, "n": n}
    xp, hp = x_t @ w["weight_ih"].t(), h_prev @ w["weight_hh"].t()
    if opts.get("layer_norm"):
        ln = {k: getattr(m, k + suffix) for k in ("ln_ih_weight", "ln_ih_bias", "ln_hh_weight",
                                                 "ln_hh_bias")}
        xp = F.layer_norm(xp, xp.shape[-1:], ln["ln_ih_weight"], ln["ln_ih_bias"])
        hp = F.layer_norm(hp, hp.shape[-1:], ln["ln_hh_weight"], ln["ln_hh_bias"])
    a = xp + hp + w["bias_ih"] + w["bias_hh"]
    if opts.get("coupled"):
        a_i, a_g, a_o = a.chunk(3, 1)
        a_f = None
    else:
        a_i, a_f, a_g, a_o = a.chunk(4, 1)
    if opts.get("peephole"):
        a_i = a_i + getattr(m, "weight_ci" + suffix) * c_prev
        if a_f is not None:
            a_f = a_f + getattr(m, "weight_cf" + suffix) * c_prev
    i, g = torch.sigmoid(a_i), torch.tanh(a_g)
    f = 1 - i if a_f is None else torch.sigmoid(a_f)
    c = f * c_prev + i * g
    if opts.get("peephole"):
        a_o = a_o + getattr(m, "weight_co" + suffix) * c
    return {"i": i, "f": f, "g": g, "o": torch.sigmoid(a_o)}


@pytest.mark.parametrize("family,opts", CASES, ids=[f + "".join(f"-{k}" for k in o) for f, o in CASES])
def test_recorded_run_equals_every_engine_and_records_the_equations_gates(family, opts):
    fam = registry.get(family)
    x = torch.randn(5, 3, 3, dtype=DT, generator=torch.Generator().manual_seed(1))
    for engine in fam.engines(fam.configure(**opts)):
        if engine == "fused" and not kernels.available():
            continue
        m = make(family, opts, engine)
        lengths = None if engine == "vendor" else [5, 2, 4]
        with torch.no_grad():
            want_y, want_h = m(x, lengths=lengths)
            with record(m) as rec:
                got_y, got_h = m(x, lengths=lengths)
        torch.testing.assert_close(got_y, want_y, rtol=1e-9, atol=1e-10)
        for a, b in zip(got_h if isinstance(got_h, tuple) else (got_h,),
                        want_h if isinstance(want_h, tuple) else (want_h,)):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
        r = rec[""]
        assert r.h.shape[:3] == (4, 5, 3)  # (L*D, T, B)
        if family not in ("lstm", "gru"):
            assert r.gates == {}
            continue
        assert tuple(r.gates) == (("i", "f", "g", "o") if family == "lstm" else ("r", "z", "n"))
        if any(opts.get(a) for a in ABLATIONS):
            removed = {"no_input_gate": "i", "no_forget_gate": "f", "no_output_gate": "o"}
            for a, gate in removed.items():
                if opts.get(a):
                    valid = r.gates[gate][0, :, 0]  # sequence 0 has every step
                    torch.testing.assert_close(valid, torch.ones_like(valid))
            continue
        # layer 0, forward direction: gates from the recorded previous state and the equations
        P = r.h.shape[-1]
        for t in range(5):
            h_prev = r.h[0, t - 1] if t else torch.zeros(3, P, dtype=DT)
            c_prev = (r.c[0, t - 1] if t else torch.zeros(3, 4, dtype=DT)) if r.c is not None else None
            want = plain_gates(family, opts, m, x[t], h_prev, c_prev)
            live = torch.tensor([t < n for n in (lengths or [5, 5, 5])], dtype=DT).unsqueeze(1)
            for name, g in want.items():
                torch.testing.assert_close(r.gates[name][0, t], g * live, rtol=1e-9, atol=1e-10)


def test_grad_gives_autograd_of_a_plain_loop_for_every_step():
    torch.manual_seed(0)
    m = lk.LSTM(3, 4, peephole=False).to(DT).eval()
    x = torch.randn(6, 2, 3, dtype=DT)
    with record(m, grads=True) as rec:
        y, _ = m(x)
        rec.grad((y[-1] * torch.arange(1.0, 5.0, dtype=DT)).sum() + y[2].pow(2).sum())
    # the same equations by autograd, keeping each h_t and c_t
    h = torch.zeros(2, 4, dtype=DT, requires_grad=True)
    c = torch.zeros(2, 4, dtype=DT, requires_grad=True)
    hs, cs = [], []
    for t in range(6):
        a = x[t] @ m.weight_ih_l0.t() + h @ m.weight_hh_l0.t() + m.bias_ih_l0 + m.bias_hh_l0
        i, f, g, o = a.chunk(4, 1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c_new)
        c = c_new.clone()  # the carried cell: its gradient is the cell path's alone
        hs.append(h), cs.append(c)
    loss = (hs[-1] * torch.arange(1.0, 5.0, dtype=DT)).sum() + hs[2].pow(2).sum()
    dh = [torch.zeros(2, 4, dtype=DT) if g is None else g
          for g in torch.autograd.grad(loss, hs + cs, allow_unused=True)]  # c_T feeds nothing
    r = rec[""]
    torch.testing.assert_close(r.dh[0], torch.stack(dh[:6]))
    torch.testing.assert_close(r.dc[0], torch.stack(dh[6:]))
    assert r.dh[0, 4].abs().sum() > 0  # step 4 reaches the loss only through the state


def test_full_gate_recurrence_grads_reach_earlier_steps_through_the_gates():
    m = make("lstm", {"full_gate_recurrence": True})
    x = torch.randn(4, 2, 3, dtype=DT)
    with record(m, grads=True) as rec:
        y, _ = m(x)
        rec.grad(y[-1].sum())
    torch.testing.assert_close(y, m(x)[0])
    assert rec[""].dh.shape == (4, 4, 2, 3) and rec[""].dh[0, 0].abs().sum() > 0


def test_recording_off_leaves_the_layer_untouched():
    m = make("lstm", {"peephole": True})
    x = torch.randn(5, 2, 3, dtype=DT)
    before = m(x)[0]
    with record(m):
        assert "forward" in vars(m)
        m(x)
    assert "forward" not in vars(m) and type(m).forward is RecurrentBase.forward
    assert torch.equal(m(x)[0], before)  # same engine, bit for bit


def test_records_layers_inside_a_model_by_name_and_every_call():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), lk.GRU(3, 4, batch_first=True))
    model.eval()
    with record(model) as rec:
        model(torch.randn(2, 7, 2))
        model(torch.randn(2, 3, 2))
    assert rec.names() == ["1"] and len(rec.calls["1"]) == 2 and rec["1"].h.shape == (1, 3, 2, 4)
    with pytest.raises(KeyError, match="recorded layers"):
        rec["0"]


def test_bad_use_is_a_clear_error():
    with pytest.raises(ValueError, match="no lstmkit sequence layer"):
        with record(torch.nn.Linear(2, 2)):
            pass
    m = lk.LSTM(3, 4, zoneout=0.1)  # training mode with zoneout: eval equations would differ
    with pytest.raises(ValueError, match="eval"):
        with record(m):
            m(torch.randn(2, 1, 3))
    with record(m.eval()) as rec:
        m(torch.randn(2, 1, 3))
    with pytest.raises(ValueError, match="grads=True"):
        rec.grad(torch.tensor(1.0))
