"""Under torch.autocast a layer's output state comes back in the autocast dtype; carrying it into
the next call (stateful TBPTT does) must work and mean the same as carrying it in float32."""

import pytest
import torch

import lstmkit as lk
from lstmkit.cpu import probe
from lstmkit.train.trainer import TrainConfig


@pytest.mark.parametrize("engine", ["reference", "vendor", "auto"])
def test_a_state_carried_under_autocast_is_accepted_and_read_in_the_inputs_dtype(engine):
    torch.manual_seed(0)
    layer = lk.LSTM(4, 6, engine=engine)
    x = torch.randn(5, 3, 4)
    if engine == "vendor" and not probe().onednn_bf16:  # torch's oneDNN LSTM has no bfloat16 here
        with torch.autocast("cpu", dtype=torch.bfloat16), pytest.raises(
                ValueError, match=r"engine: 'vendor' .* no bfloat16 autocast on this CPU .* engine='auto'"):
            layer(x)
        return
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, (h, c) = layer(x)
        h16, c16 = h.to(torch.bfloat16), c.to(torch.bfloat16)  # what a bf16 engine hands back
        y_16 = layer(x, (h16, c16))[0]
        y_32 = layer(x, (h16.float(), c16.float()))[0]
    torch.testing.assert_close(y_16, y_32, rtol=0, atol=0)
    with pytest.raises(TypeError, match=r"hx\[0\].*dtype"):  # outside autocast: still an error
        layer(x, (h16, c16))


def test_a_cell_accepts_its_autocast_state_too():
    torch.manual_seed(0)
    cell = lk.LSTMCell(4, 6)
    x = torch.randn(3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h, c = cell(x)
        h16, c16 = h.to(torch.bfloat16), c.to(torch.bfloat16)
        h2, _ = cell(x, (h16, c16))
        h3, _ = cell(x, (h16.float(), c16.float()))
    assert h2.shape == (3, 6)
    torch.testing.assert_close(h2, h3, rtol=0, atol=0)  # read as the same state in float32


def test_trainer_autocast_is_bfloat16_or_nothing():
    with pytest.raises(ValueError, match="autocast: expected None or 'bfloat16'"):
        TrainConfig(autocast="float16")


def test_a_stateful_layer_keeps_its_state_in_the_inputs_dtype_under_autocast():
    torch.manual_seed(0)
    layer = lk.LSTM(4, 6, stateful=True)
    x = torch.randn(5, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        layer(x)
    assert all(s.dtype == torch.float32 for s in layer._state)
    out, _ = layer(x)  # the next call, outside autocast, starts from it
    assert out.dtype == torch.float32


@pytest.mark.parametrize("onednn_bf16", [True, False])
def test_auto_sends_bfloat16_to_torchs_kernel_only_where_onednn_has_bfloat16(monkeypatch, onednn_bf16):
    import dataclasses

    from lstmkit.nn import recurrent

    fake = dataclasses.replace(probe(), onednn_bf16=onednn_bf16)
    monkeypatch.setattr(recurrent, "probe", lambda: fake)
    layer = lk.LSTM(4, 6)
    want = "vendor" if onednn_bf16 else "fused_or_reference"
    x = torch.randn(5, 3, 4)
    assert layer._pick_engine(x, None, False) == "vendor"  # float32: torch's kernel either way
    assert layer._pick_engine(x.bfloat16(), None, False) == want
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert layer._pick_engine(x, None, False) == want
    forced = lk.LSTM(4, 6, engine="vendor")
    assert forced._pick_engine(x.bfloat16(), None, False) == "vendor"  # runs there, slowly
