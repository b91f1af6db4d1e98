"""ConvLSTMCell / ConvLSTM modules: shapes, stacking, lengths, bad input, and that it learns motion."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lstmkit.functional.conv_lstm import ConvLSTMParams, conv_lstm_eager
from lstmkit.nn.conv_lstm import ConvLSTM, ConvLSTMCell


def seeded(module: nn.Module, seed: int) -> nn.Module:
    """Overwrite every parameter with seeded random values (peepholes included)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    return module


def layer_params(m: ConvLSTM, k: int) -> ConvLSTMParams:
    get = lambda n: getattr(m, f"{n}_l{k}", None)
    return ConvLSTMParams(get("weight_ih"), get("weight_hh"), get("bias_ih"),
                          get("weight_ci"), get("weight_cf"), get("weight_co"))


# ---------------------------------------------------------------- shapes and equations


@pytest.mark.parametrize("batch_first", [True, False])
def test_output_and_state_shapes_follow_batch_first_and_stacking(batch_first):
    m = ConvLSTM(2, [4, 3], [3, (5, 3)], num_layers=2, batch_first=batch_first)
    x = torch.randn(2, 5, 2, 6, 7) if batch_first else torch.randn(5, 2, 2, 6, 7)
    y, states = m(x)
    assert y.shape == ((2, 5, 3, 6, 7) if batch_first else (5, 2, 3, 6, 7))
    assert [tuple(h.shape) for h, _ in states] == [(2, 4, 6, 7), (2, 3, 6, 7)]
    assert [tuple(c.shape) for _, c in states] == [(2, 4, 6, 7), (2, 3, 6, 7)]
    ys, _ = ConvLSTM(2, [4, 3], 3, num_layers=2, batch_first=batch_first, return_all_layers=True)(x)
    assert [y.shape[2] for y in ys] == [4, 3]


@pytest.mark.parametrize("peephole", [False, True])
def test_stacked_layer_equals_eager_equations_layer_by_layer(peephole):
    torch.manual_seed(0)
    frame = (5, 6) if peephole else None
    m = seeded(ConvLSTM(2, [3, 4], 3, num_layers=2, peephole=peephole, frame_size=frame,
                        dtype=torch.float64), 1)
    x = torch.randn(2, 4, 2, 5, 6, dtype=torch.float64, requires_grad=True)  # (B, T, C, Hs, Ws)
    y, states = m(x)
    h = x.transpose(0, 1)
    ref_states = []
    for k, K in enumerate([3, 4]):
        z = torch.zeros(2, K, 5, 6, dtype=torch.float64)
        h, h_n, c_n = conv_lstm_eager(h, z, z, layer_params(m, k))
        ref_states.append((h_n, c_n))
    torch.testing.assert_close(y, h.transpose(0, 1))
    for (a, b), (ra, rb) in zip(states, ref_states):
        torch.testing.assert_close(a, ra)
        torch.testing.assert_close(b, rb)
    params = list(m.parameters())
    g1 = torch.autograd.grad(y.square().sum() + states[0][1].sum(), [x, *params])
    g2 = torch.autograd.grad(h.square().sum() + ref_states[0][1].sum(), [x, *params])
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def test_peephole_shapes_per_channel_by_default_and_spatial_with_frame_size():
    m = ConvLSTM(1, 4, 3, peephole=True)
    assert m.weight_ci_l0.shape == (4, 1, 1)
    m(torch.randn(1, 2, 1, 7, 9))  # any frame size
    m = ConvLSTM(1, 4, 3, peephole=True, frame_size=(7, 9))
    assert m.weight_co_l0.shape == (4, 7, 9)
    with pytest.raises(ValueError, match=r"input: expected frame size \(7, 9\)"):
        m(torch.randn(1, 2, 1, 8, 9))


def test_cell_equals_one_step_of_the_layer_and_carries_state():
    torch.manual_seed(0)
    cell = seeded(ConvLSTMCell(2, 3, 3, peephole=True), 2)
    layer = ConvLSTM(2, 3, 3, peephole=True)
    layer.load_state_dict({k + "_l0": v for k, v in cell.state_dict().items()})
    x = torch.randn(2, 4, 2, 5, 5)
    y, [(h_n, c_n)] = layer(x)
    state = None
    for t in range(4):
        state = cell(x[:, t], state)
        torch.testing.assert_close(state[0], y[:, t])
    torch.testing.assert_close(state[0], h_n)
    torch.testing.assert_close(state[1], c_n)


def test_initial_state_is_used():
    torch.manual_seed(0)
    m = ConvLSTM(1, 2, 3, num_layers=2)
    x = torch.randn(1, 3, 1, 4, 4)
    hx = [(torch.randn(1, 2, 4, 4), torch.randn(1, 2, 4, 4)) for _ in range(2)]
    y0, _ = m(x)
    y1, _ = m(x, hx)
    assert not torch.allclose(y0, y1)
    y2, _ = m(x, [(torch.zeros(1, 2, 4, 4), torch.zeros(1, 2, 4, 4))] * 2)
    torch.testing.assert_close(y0, y2)


# ---------------------------------------------------------------- lengths


@pytest.mark.parametrize("peephole", [False, True])
def test_padded_batch_with_lengths_equals_each_sequence_alone(peephole):
    torch.manual_seed(0)
    m = seeded(ConvLSTM(2, [3, 2], 3, num_layers=2, peephole=peephole), 3)
    lengths = [5, 2, 0, 4]
    x = torch.randn(4, 5, 2, 6, 6, requires_grad=True)
    y, states = m(x, lengths=torch.tensor(lengths))
    (y.square().sum() + sum(h.sum() + c.sum() for h, c in states)).backward()
    for b, n in enumerate(lengths):
        assert torch.count_nonzero(y[b, n:]) == 0  # padded steps output 0
        assert torch.count_nonzero(x.grad[b, n:]) == 0  # and get no gradient
        if n == 0:
            for h, c in states:  # length 0 keeps the (zero) initial state
                assert torch.count_nonzero(h[b]) == 0 and torch.count_nonzero(c[b]) == 0
            continue
        xb = x.detach()[b : b + 1, :n].requires_grad_()
        yb, sb = m(xb)
        torch.testing.assert_close(y[b : b + 1, :n], yb)
        for (h, c), (hb, cb) in zip(states, sb):
            torch.testing.assert_close(h[b : b + 1], hb)
            torch.testing.assert_close(c[b : b + 1], cb)
        (yb.square().sum() + sum(h.sum() + c.sum() for h, c in sb)).backward()
        torch.testing.assert_close(x.grad[b : b + 1, :n], xb.grad)


def test_full_lengths_change_nothing():
    torch.manual_seed(0)
    m = ConvLSTM(1, 2, 3)
    x = torch.randn(2, 3, 1, 4, 4)
    torch.testing.assert_close(m(x, lengths=[3, 3])[0], m(x)[0])


# ---------------------------------------------------------------- directions (the common runner)


def test_bidirectional_padded_batch_equals_each_sequence_alone_and_the_flipped_sequence():
    torch.manual_seed(0)
    m = seeded(ConvLSTM(2, [3, 2], 3, num_layers=2, bidirectional=True, dtype=torch.float64), 5)
    assert m.weight_ih_l1.shape[1] == 6 and m.weight_ih_l1_reverse.shape[1] == 6  # D*K_0 in
    lengths = [4, 1, 3]
    x = torch.randn(3, 4, 2, 5, 5, dtype=torch.float64)
    y, states = m(x, lengths=lengths)
    assert y.shape == (3, 4, 4, 5, 5) and len(states) == 4  # D*K_last channels, L*D states
    for b, n in enumerate(lengths):
        yb, sb = m(x[b : b + 1, :n])
        torch.testing.assert_close(y[b : b + 1, :n], yb)
        assert torch.count_nonzero(y[b, n:]) == 0
        for (h, c), (hb, cb) in zip(states, sb):
            torch.testing.assert_close(h[b : b + 1], hb)
            torch.testing.assert_close(c[b : b + 1], cb)
    # one layer's reverse direction is a forward layer with the _reverse weights on the
    # flipped sequence
    one = seeded(ConvLSTM(2, 3, 3, bidirectional=True, dtype=torch.float64), 6)
    back = ConvLSTM(2, 3, 3, dtype=torch.float64)
    back.load_state_dict({k.replace("_reverse", ""): v for k, v in one.state_dict().items()
                          if k.endswith("_reverse")})
    y2, (_, (h_rev, c_rev)) = one(x)
    yr, [(hr, cr)] = back(x.flip(1))
    torch.testing.assert_close(y2[:, :, 3:], yr.flip(1))
    torch.testing.assert_close((h_rev, c_rev), (hr, cr))


def test_repr_and_state_dict_round_trip():
    torch.manual_seed(0)
    m = ConvLSTM(2, [3, 2], [3, 5], num_layers=2, bidirectional=True, peephole=True, batch_first=False)
    assert repr(m).endswith("peephole=True, frame_size=None, bidirectional=True)")
    twin = ConvLSTM(2, [3, 2], [3, 5], num_layers=2, bidirectional=True, peephole=True,
                    batch_first=False)
    twin.load_state_dict(m.state_dict())
    x = torch.randn(3, 2, 2, 4, 4)
    torch.testing.assert_close(twin(x, lengths=[3, 1])[0], m(x, lengths=[3, 1])[0])
    with pytest.raises(TypeError, match=r"hx: expected a list of num_layers\*2=4"):
        m(x, hx=[(torch.zeros(2, 3, 4, 4),) * 2] * 2)
    with pytest.raises(TypeError, match="bidirectional: expected a bool"):
        ConvLSTM(2, 3, 3, bidirectional=1)


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(kernel_size=4), ValueError, "kernel_size: expected odd"),
        (dict(kernel_size=(3, 2)), ValueError, "kernel_size: expected odd"),
        (dict(kernel_size="3"), TypeError, "kernel_size"),
        (dict(hidden_channels=[4, 4, 4], num_layers=2), ValueError, "hidden_channels: expected a list of"),
        (dict(kernel_size=[3], num_layers=2), ValueError, "kernel_size: expected a list of"),
        (dict(hidden_channels=0), ValueError, "hidden_channels"),
        (dict(in_channels=-1), ValueError, "in_channels"),
        (dict(peephole=True, frame_size=(4,)), ValueError, "frame_size"),
    ],
)
def test_bad_constructor_arguments_raise_naming_them(kwargs, exc, match):
    args = dict(in_channels=1, hidden_channels=4, kernel_size=3)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        ConvLSTM(**args)
    if "num_layers" not in kwargs and "frame_size" not in kwargs:
        with pytest.raises(exc, match=match):
            ConvLSTMCell(**args)


def test_bad_forward_inputs_raise_naming_the_argument_with_expected_and_got():
    m = ConvLSTM(2, [3, 4], 3, num_layers=2)
    x = torch.randn(2, 3, 2, 5, 5)
    cases = [
        (lambda: m(torch.randn(3, 2, 5, 5)), ValueError, r"input: expected a 5-D tensor.*got 4-D"),
        (lambda: m(torch.randn(2, 3, 1, 5, 5)), ValueError, r"input: expected 2 channels"),
        (lambda: m(x.double()), TypeError, "input: expected dtype torch.float32"),
        (lambda: m(x.numpy()), TypeError, "input: expected a torch.Tensor"),
        (lambda: m(x, lengths=[3]), ValueError, r"lengths: expected shape \(2,\)"),
        (lambda: m(x, lengths=[3, 4]), ValueError, r"lengths: expected values in \[0, 3\]"),
        (lambda: m(x, lengths=[3, -1]), ValueError, r"lengths: expected values in \[0, 3\]"),
        (lambda: m(x, lengths=torch.tensor([3.0, 2.0])), TypeError, "lengths: expected an integer"),
        (lambda: m(x, lengths=[3, 2.5]), TypeError, "lengths: expected integers"),
        (lambda: m(x, hx=[(torch.zeros(2, 3, 5, 5),) * 2]), TypeError, "hx: expected a list of num_layers=2"),
        (lambda: m(x, hx=[torch.zeros(2, 3, 5, 5)] * 2), TypeError, r"hx\[0\]: expected a tuple \(h, c\)"),
        (lambda: m(x, hx=[(torch.zeros(2, 3, 5, 5),) * 2, (torch.zeros(2, 3, 5, 5),) * 2]),
         ValueError, r"hx\[1\]\[0\] \(h\): expected shape \(2, 4, 5, 5\), got \(2, 3, 5, 5\)"),
    ]
    for fn, exc, match in cases:
        with pytest.raises(exc, match=match):
            fn()
    cell = ConvLSTMCell(2, 3, 3)
    with pytest.raises(ValueError, match=r"input: expected a 4-D tensor"):
        cell(x)
    with pytest.raises(ValueError, match=r"hx\[1\] \(c\): expected shape \(2, 3, 5, 5\)"):
        cell(x[:, 0], (torch.zeros(2, 3, 5, 5), torch.zeros(2, 3, 4, 5)))
    with pytest.raises(TypeError, match=r"hx: expected a tuple \(h, c\)"):
        cell(x[:, 0], torch.zeros(2, 3, 5, 5))


# ---------------------------------------------------------------- it learns


def moving_squares(n: int, steps: int = 8, size: int = 12, side: int = 3, seed: int = 0) -> torch.Tensor:
    """(n, steps, 1, size, size) frames of a side x side square moving one pixel per frame in one of
    8 directions from a random start, bouncing off the borders. Seeded."""
    g = torch.Generator().manual_seed(seed)
    dirs = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]
    frames = torch.zeros(n, steps, 1, size, size)
    hi = size - side
    for b in range(n):
        r, c = torch.randint(0, hi + 1, (2,), generator=g).tolist()
        dr, dc = dirs[int(torch.randint(0, 8, (1,), generator=g))]
        for t in range(steps):
            frames[b, t, 0, r : r + side, c : c + side] = 1.0
            dr = -dr if not 0 <= r + dr <= hi else dr
            dc = -dc if not 0 <= c + dc <= hi else dc
            r, c = r + dr, c + dc
    return frames


class NextFrame(nn.Module):
    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.rnn = ConvLSTM(1, hidden, 3)
        self.head = nn.Conv2d(hidden, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, 1, S, S) -> next frames
        y, _ = self.rnn(x)  # (B, T, K, S, S)
        return self.head(y.flatten(0, 1)).reshape(x.shape)


def test_learns_to_predict_the_next_frame_of_a_moving_square_better_than_copying():
    torch.manual_seed(0)
    train, test = moving_squares(256, seed=1), moving_squares(64, seed=2)
    warm = 2  # the direction is unknown from one frame: score predictions from the 3rd frame on
    net = NextFrame()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(200):
        x = train[torch.randint(0, len(train), (16,))]
        loss = (net(x[:, :-1])[:, warm - 1 :] - x[:, warm:]).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        mse = (net(test[:, :-1])[:, warm - 1 :] - test[:, warm:]).square().mean().item()
    copy_last = (test[:, warm - 1 : -1] - test[:, warm:]).square().mean().item()
    assert mse < 0.5 * copy_last, (mse, copy_last)
