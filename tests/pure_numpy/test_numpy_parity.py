"""NumPy inference and BPTT against torch.nn: a torch state_dict saved as .npz loads into
NumpyLSTM/NumpyGRU and gives torch's outputs and final states; single-layer gradients from
the NumPy backward equal torch autograd's."""

import numpy as np
import pytest
import torch

import lstmkit as lk
import lstmkit.numpy as ln

pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported:UserWarning")

CONFIGS = [
    dict(num_layers=1),
    dict(num_layers=2, bidirectional=True),
    dict(num_layers=2, bidirectional=True, batch_first=True, bias=False),
]
LSTM_ONLY = [dict(num_layers=2, bidirectional=True, proj_size=3), dict(proj_size=2, batch_first=True)]


def torch_module(cls, **cfg):
    torch.manual_seed(0)
    m = cls(5, 6, **cfg)
    with torch.no_grad():  # seeded random weights, wider than the default init
        for p in m.parameters():
            p.uniform_(-0.6, 0.6)
    return m


def loaded(torch_mod, np_cls, tmp_path, batch_first):
    path = tmp_path / "weights.npz"
    ln.save_npz(torch_mod, path)
    return np_cls.from_npz(path, batch_first=batch_first)


def run_both(family, cfg, tmp_path, with_hx):
    torch_cls, np_cls = (torch.nn.LSTM, ln.NumpyLSTM) if family == "LSTM" else (torch.nn.GRU, ln.NumpyGRU)
    theirs = torch_module(torch_cls, **cfg)
    ours = loaded(theirs, np_cls, tmp_path, cfg.get("batch_first", False))
    g = torch.Generator().manual_seed(1)
    T, B = 7, 3
    shape = (B, T, 5) if cfg.get("batch_first") else (T, B, 5)
    x = torch.randn(shape, generator=g)
    LD = cfg.get("num_layers", 1) * (2 if cfg.get("bidirectional") else 1)
    P = cfg.get("proj_size", 0) or 6
    hx = None
    if with_hx:
        h0, c0 = torch.randn(LD, B, P, generator=g), torch.randn(LD, B, 6, generator=g)
        hx = (h0, c0) if family == "LSTM" else h0
    with torch.no_grad():
        y_t, s_t = theirs(x, hx)
    np_hx = None if hx is None else (tuple(h.numpy() for h in hx) if family == "LSTM" else hx.numpy())
    y_n, s_n = ours(x.numpy(), np_hx)
    return y_t, s_t, y_n, s_n


def check(y_t, s_t, y_n, s_n, family):
    assert y_n.dtype == np.float32
    torch.testing.assert_close(torch.from_numpy(y_n), y_t, rtol=1e-5, atol=1e-5)
    pairs = zip(s_n, s_t) if family == "LSTM" else [(s_n, s_t)]
    for a, b in pairs:
        torch.testing.assert_close(torch.from_numpy(a), b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("with_hx", [False, True])
@pytest.mark.parametrize(
    "family,cfg", [("LSTM", c) for c in CONFIGS + LSTM_ONLY] + [("GRU", c) for c in CONFIGS]
)
def test_outputs_and_final_states_match_torch(family, cfg, with_hx, tmp_path):
    check(*run_both(family, cfg, tmp_path, with_hx), family)


@pytest.mark.parametrize("family", ["LSTM", "GRU"])
def test_unbatched_input_matches_torch(family, tmp_path):
    torch_cls, np_cls = (torch.nn.LSTM, ln.NumpyLSTM) if family == "LSTM" else (torch.nn.GRU, ln.NumpyGRU)
    theirs = torch_module(torch_cls, num_layers=2, bidirectional=True)
    ours = loaded(theirs, np_cls, tmp_path, False)
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(2))  # (T, I)
    with torch.no_grad():
        y_t, s_t = theirs(x)
    y_n, s_n = ours(x.numpy())
    check(y_t, s_t, y_n, s_n, family)


def test_structure_is_read_off_the_state_dict(tmp_path):
    ours = loaded(torch_module(torch.nn.LSTM, num_layers=2, bidirectional=True, proj_size=3), ln.NumpyLSTM,
                  tmp_path, False)
    assert (ours.input_size, ours.hidden_size, ours.num_layers) == (5, 6, 2)
    assert ours.bidirectional and ours.bias and ours.proj_size == 3


def test_lstmkit_lstm_state_dict_loads(tmp_path):
    torch.manual_seed(0)
    theirs = lk.LSTM(5, 6, num_layers=2, bidirectional=True)
    ours = loaded(theirs, ln.NumpyLSTM, tmp_path, False)
    x = torch.randn(7, 3, 5, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y_t, s_t = theirs.eval()(x)
    y_n, s_n = ours(x.numpy())
    check(y_t, s_t, y_n, s_n, "LSTM")


# ---- gradients: NumPy BPTT == torch autograd (single layer, float64) --------------------------


def torch_grads(module, x, hx, wy, ws):
    x = x.clone().requires_grad_(True)
    hx = tuple(h.clone().requires_grad_(True) for h in hx)
    y, s = module(x, hx if len(hx) == 2 else hx[0])
    s = s if isinstance(s, tuple) else (s,)
    loss = (y * wy).sum() + sum((a * w).sum() for a, w in zip(s, ws))
    loss.backward()
    out = {"dx": x.grad, "dh0": hx[0].grad[0]}
    if len(hx) == 2:
        out["dc0"] = hx[1].grad[0]
    names = {"weight_ih_l0": "dW_ih", "weight_hh_l0": "dW_hh", "bias_ih_l0": "db_ih",
             "bias_hh_l0": "db_hh", "weight_hr_l0": "dW_hr"}
    out.update({names[n]: p.grad for n, p in module.named_parameters()})
    return out


@pytest.mark.parametrize("proj_size", [0, 4])
def test_lstm_backward_matches_torch_autograd(proj_size):
    m = torch_module(torch.nn.LSTM, proj_size=proj_size).double()
    g = torch.Generator().manual_seed(4)
    T, B, P = 5, 3, proj_size or 6
    r = lambda *shape: torch.randn(*shape, generator=g, dtype=torch.float64)
    x = r(T, B, 5)
    hx = (r(1, B, P), r(1, B, 6))
    wy = r(T, B, P)
    ws = (r(1, B, P), r(1, B, 6))
    expected = torch_grads(m, x, hx, wy, ws)
    sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    _, _, _, cache = ln.lstm_forward(
        x.numpy(), hx[0][0].numpy(), hx[1][0].numpy(), sd["weight_ih_l0"], sd["weight_hh_l0"],
        sd["bias_ih_l0"], sd["bias_hh_l0"], sd.get("weight_hr_l0"),
    )
    ours = ln.lstm_backward(wy.numpy(), ws[0][0].numpy(), ws[1][0].numpy(), cache)
    assert set(ours) == set(expected)
    for k, v in expected.items():
        torch.testing.assert_close(torch.from_numpy(ours[k]), v, msg=k)


def test_gru_backward_matches_torch_autograd():
    m = torch_module(torch.nn.GRU).double()
    g = torch.Generator().manual_seed(5)
    T, B = 5, 3
    x = torch.randn(T, B, 5, generator=g, dtype=torch.float64)
    hx = (torch.randn(1, B, 6, generator=g, dtype=torch.float64),)
    wy = torch.randn(T, B, 6, generator=g, dtype=torch.float64)
    ws = (torch.randn(1, B, 6, generator=g, dtype=torch.float64),)
    expected = torch_grads(m, x, hx, wy, ws)
    sd = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    _, _, cache = ln.gru_forward(x.numpy(), hx[0][0].numpy(), sd["weight_ih_l0"], sd["weight_hh_l0"],
                                 sd["bias_ih_l0"], sd["bias_hh_l0"])
    ours = ln.gru_backward(wy.numpy(), ws[0][0].numpy(), cache)
    assert set(ours) == set(expected)
    for k, v in expected.items():
        torch.testing.assert_close(torch.from_numpy(ours[k]), v, msg=k)
