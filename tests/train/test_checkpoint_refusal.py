"""A file that a weights-only load refuses gets lstmkit's message, never torch's advice to retry
with weights_only=False."""

import collections

import pytest
import torch

from lstmkit.train.checkpoint import load_checkpoint


class NotAWeight:
    pass


def test_refused_checkpoint_names_the_object_and_never_suggests_weights_only_false(tmp_path):
    path = tmp_path / "untrusted.pt"
    torch.save({"format": "lstmkit-checkpoint", "model": collections.OrderedDict(),
                "payload": NotAWeight()}, path)
    with pytest.raises(ValueError) as e:
        load_checkpoint(path)
    msg = str(e.value)
    assert "not a trusted lstmkit checkpoint" in msg
    assert "NotAWeight" in msg
    assert "weights_only=False" not in msg and "weights_only` set to `False" not in msg


def test_damaged_bytes_are_called_corrupt_not_untrusted(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_checkpoint(path)
