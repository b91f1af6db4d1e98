"""The kernels' build step: ``python -m lstmkit.kernels build`` leaves them cached (a later load
compiles nothing); with no C++ compiler the build fails once with a warning, says so on stderr,
the set-up command still exits 0 (1 with --strict), and the layers run on the reference engine."""

import warnings

import pytest
import torch

import lstmkit as lk
from lstmkit import kernels
from lstmkit.kernels import __main__ as cli
from lstmkit.kernels import _loader


def test_status_says_built_once_the_kernels_are_loaded(capsys):
    assert kernels.available()
    assert _loader.is_built()
    assert cli.main(["status"]) == 0
    assert "fused kernels: built" in capsys.readouterr().out
    assert cli.main(["build"]) == 0  # already built: loads the cached library
    assert "fused kernels ready" in capsys.readouterr().out


@pytest.fixture
def no_compiler(monkeypatch, tmp_path):
    """A fresh build cache and a C++ compiler that does not exist; the loader state restored after."""
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-c++"))
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    monkeypatch.setattr(_loader, "_state", {"tried": False, "module": None, "error": None})


def test_without_a_compiler_the_layers_fall_back_to_the_reference_engine(no_compiler, capsys):
    assert not _loader.is_built()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert kernels.available() is False
        assert kernels.available() is False
    assert len([w for w in caught if "could not be built" in str(w.message)]) == 1
    assert any("no C++ compiler found" in str(w.message) for w in caught)  # said, not tried
    torch.manual_seed(0)
    auto = lk.LSTM(3, 4, peephole=True, layer_norm=True)
    ref = lk.LSTM(3, 4, peephole=True, layer_norm=True, engine="reference")
    ref.load_state_dict(auto.state_dict())
    x = torch.randn(5, 2, 3)
    torch.testing.assert_close(auto(x, lengths=[5, 3])[0], ref(x, lengths=[5, 3])[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="fused"):
        lk.LSTM(3, 4, engine="fused", peephole=True)(x)


def test_build_command_exits_zero_without_a_compiler_unless_strict(no_compiler, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["build"]) == 0
        assert "could not be built" in capsys.readouterr().err
        assert cli.main(["build", "--strict"]) == 1
    assert cli.main(["status"]) == 1
