"""Truncated BPTT: chunked == one pass, state carried and detached, resets per row."""

import pytest
import torch

import lstmkit
from lstmkit.train.tbptt import StateCarrier, reset_rows, run_tbptt, tbptt


def _models():
    torch.manual_seed(0)
    # the reference engine: TBPTT is engine-agnostic, and this keeps the test off kernel builds
    return [lstmkit.LSTM(3, 5, num_layers=2, batch_first=True, engine="reference"),
            lstmkit.GRU(3, 5, num_layers=2, batch_first=True, engine="reference")]


@pytest.mark.parametrize("which", [0, 1], ids=["lstm", "gru"])
@pytest.mark.parametrize("bptt", [1, 4, 7, 30])
def test_chunked_equals_one_pass(which, bptt):
    model = _models()[which]
    x = torch.randn(3, 23, 3, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y_full, hx_full = model(x)
        y, hx = run_tbptt(model, x, bptt)
    torch.testing.assert_close(y, y_full)
    torch.testing.assert_close(hx, hx_full)


def test_time_major_layout():
    model = lstmkit.LSTM(3, 4)
    x = torch.randn(11, 2, 3)
    with torch.no_grad():
        torch.testing.assert_close(run_tbptt(model, x, 4, batch_first=False)[0], model(x)[0])


@pytest.mark.parametrize("which", [0, 1], ids=["lstm", "gru"])
def test_reset_mask_restarts_exactly_those_rows(which):
    model = _models()[which]
    x = torch.randn(3, 12, 3, generator=torch.Generator().manual_seed(2))
    bptt = 4  # chunks start at 0, 4, 8
    resets = torch.zeros(3, 3, dtype=torch.bool)
    resets[1, 2] = True  # row 1 starts a new document at t=8
    with torch.no_grad():
        y, _ = run_tbptt(model, x, bptt, resets=resets)
        y_plain, _ = run_tbptt(model, x, bptt)
        y_fresh, _ = model(x[1:2, 8:])  # row 1 from t=8 with a zero state
    torch.testing.assert_close(y[[0, 2]], y_plain[[0, 2]])  # other rows untouched
    torch.testing.assert_close(y[1, :8], y_plain[1, :8])
    torch.testing.assert_close(y[1, 8:], y_fresh[0])
    assert not torch.allclose(y[1, 8:], y_plain[1, 8:])


def test_reset_rows_zeroes_only_masked_rows():
    h, c = torch.randn(2, 4, 5), torch.randn(2, 4, 5)
    mask = torch.tensor([False, True, False, True])
    h2, c2 = reset_rows((h, c), mask)
    for new, old in ((h2, h), (c2, c)):
        assert torch.all(new[:, mask] == 0)
        torch.testing.assert_close(new[:, ~mask], old[:, ~mask])
    carrier = StateCarrier()
    carrier.update((h.requires_grad_(), c))
    assert not carrier.get()[0].requires_grad
    carrier.reset(mask)
    assert torch.all(carrier.get()[0][:, mask] == 0)
    with pytest.raises(ValueError, match="mask"):
        reset_rows(h, torch.tensor([True, False]))


def test_state_is_detached_between_chunks():
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = torch.nn.GRU(2, 3, batch_first=True)

        def forward(self, x, hx):
            seen.append(hx)
            return self.rnn(x, hx)

    spy = Spy()
    x = torch.randn(2, 9, 2)
    for _, y, _ in tbptt(spy, x, 3):
        y.sum().backward()  # works per chunk: the graph does not reach into earlier chunks
    assert seen[0] is None
    assert all(h is not None and not h.requires_grad for h in seen[1:])


def test_bad_resets_shape():
    with pytest.raises(ValueError, match="resets"):
        run_tbptt(lstmkit.LSTM(3, 4, batch_first=True), torch.randn(2, 10, 3), 4,
                  resets=torch.zeros(2, 2, dtype=torch.bool))
