import os
from dataclasses import dataclass

import pytest
import torch

from lstmkit.train.checkpoint import atomic_write, load_checkpoint, save_checkpoint


@dataclass
class Cfg:
    hidden: int = 4
    mode: str = "direct"


def test_round_trip_with_config_dataclass_and_state_dict(tmp_path):
    torch.manual_seed(0)
    m = torch.nn.Linear(3, 2)
    p = tmp_path / "ck.pt"
    save_checkpoint(p, model=m.state_dict(), config=Cfg(), scaler={"mean": [1.0]}, epoch=2)
    ck = load_checkpoint(p)
    assert ck["config"] == {"hidden": 4, "mode": "direct"} and ck["epoch"] == 2
    m2 = torch.nn.Linear(3, 2)
    m2.load_state_dict(ck["model"])
    torch.testing.assert_close(m2.weight, m.weight)


def test_corrupt_file_gives_a_clear_error(tmp_path):
    p = tmp_path / "ck.pt"
    save_checkpoint(p, model=torch.nn.Linear(3, 2).state_dict())
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])  # truncated, as after a crash mid-copy
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(p)
    p.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(p)


def test_foreign_torch_file_gives_a_clear_error(tmp_path):
    p = tmp_path / "foreign.pt"
    torch.save({"state_dict": torch.nn.Linear(3, 2).state_dict()}, p)
    with pytest.raises(ValueError, match="not an lstmkit checkpoint"):
        load_checkpoint(p)
    torch.save([1, 2, 3], p)
    with pytest.raises(ValueError, match="not an lstmkit checkpoint"):
        load_checkpoint(p)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")


def test_failed_write_leaves_no_file_behind(tmp_path):
    p = tmp_path / "out.txt"

    def boom(tmp):
        open(tmp, "w").write("half")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(p, boom)
    assert os.listdir(tmp_path) == []


def test_docstring_examples_hold():
    import doctest

    from lstmkit.train import checkpoint, metrics, trainer

    for mod in (checkpoint, metrics, trainer):
        assert doctest.testmod(mod).failed == 0, mod.__name__
