"""Data parallel training: 2 processes x b == 1 process x 2b, resumable across world sizes."""

import os

import pytest
import torch

from lstmkit.train import _ddp_cases as cases
from lstmkit.train.distributed import Context, ShardedLoader, spawn, torchrun_command


def _weights(d):
    return torch.load(os.path.join(d, "final.pt"), weights_only=True)


def test_global_batch_k_holds_the_same_examples_at_every_world_size():
    ds = torch.utils.data.TensorDataset(torch.arange(24))
    loader = torch.utils.data.DataLoader(ds, batch_size=6, shuffle=True)
    one = ShardedLoader(loader, 1, 0, seed=5)
    two = [ShardedLoader(loader, 2, r, seed=5) for r in range(2)]
    for epoch in range(2):
        for s in (one, *two):
            s.set_epoch(epoch)
        ref = [set(b[0].tolist()) for b in one]
        got = [set(a[0].tolist()) | set(b[0].tolist()) for a, b in zip(*two)]
        assert got == ref
    assert ref != [set(range(6 * k, 6 * k + 6)) for k in range(4)]  # it did shuffle


def test_each_rank_owns_its_streams_and_the_state_round_trips():
    batch = (torch.arange(12).view(4, 3), torch.arange(12).view(4, 3) + 1)
    ranks = [Context(2, r) for r in range(2)]
    rows = [next(iter(c.shard([batch], seed=0)))[0] for c in ranks]
    assert torch.equal(torch.cat(rows), batch[0])
    h = torch.randn(2, 4, 5)  # (L, B, H)
    parts = [c.slice_state((h, h + 1)) for c in ranks]
    assert torch.equal(torch.cat([p[0] for p in parts], dim=1), h)
    assert torch.equal(parts[1][1], h[:, 2:] + 1)


def test_global_batch_must_split_evenly():
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.arange(9)), batch_size=3)
    with pytest.raises(ValueError, match="batch_size: expected a multiple of the world size 2"):
        ShardedLoader(loader, 2, 0, seed=0)


def test_torchrun_command_single_and_multi_node():
    cmd = torchrun_command(["forecast", "train"], 2)
    assert "--standalone" in cmd and cmd[-3:] == ["lstmkit.cli", "forecast", "train"]
    cmd = torchrun_command(["lm", "train"], 4, nnodes=2, node_rank=1, rdzv="10.0.0.1:29400")
    assert "--rdzv-endpoint" in cmd and "10.0.0.1:29400" in cmd and "--standalone" not in cmd
    with pytest.raises(ValueError, match="rdzv"):
        torchrun_command(["lm"], 2, nnodes=2)


@pytest.mark.slow
def test_two_processes_match_one_and_resume_at_world_size_one(tmp_path):
    d = lambda name: str(tmp_path / name)
    # a real launch: 2 processes on loopback (gloo), 1 thread each, bounded in time
    spawn(cases.run, 2, [("regress", d("r2"), 6), ("regress", d("r2-cut"), 2),
                         ("stream", d("s2"), 6), ("stream", d("s2-cut"), 3),
                         ("regress", d("stop"), 6, {"stop_on_rank": (1, 3)}),
                         ("regress", d("ra2"), 4, {"grad_accum": 2})], timeout=240)
    # a stop wanted by one rank stops every rank at the same step (no rank left waiting)
    hist = torch.load(os.path.join(d("stop"), "last.pt"), weights_only=True)["history"]
    assert hist[-1]["step"] == 3 and hist[-1]["stopped"] == "callback"
    for name in ("r2-cut", "s2-cut"):  # mid-epoch checkpoints of world size 2
        assert torch.load(os.path.join(d(name), "last.pt"), weights_only=True)["world_size"] == 2
    # one process, the same global batch (and, for the loader, the same order)
    cases.run([("regress", d("r1"), 6, {"sampler_order": True}), ("stream", d("s1"), 6),
               ("regress", d("ra1"), 4, {"sampler_order": True, "grad_accum": 2})])
    tol = dict(rtol=1e-4, atol=1e-5)
    # ra: 2 micro-batches a step, all-reduced once per step (no_sync on the first)
    for two, one in (("r2", "r1"), ("s2", "s1"), ("ra2", "ra1")):
        a, b = _weights(d(two)), _weights(d(one))
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], **tol, msg=f"{two} vs {one}: {k}")
    # the world-size-2 checkpoints resume in one process and end where the 1-process run ends
    cases.run([("regress", d("r2-cut"), 6, {"sampler_order": True}), ("stream", d("s2-cut"), 6)])
    for cut, one in (("r2-cut", "r1"), ("s2-cut", "s1")):
        a, b = _weights(d(cut)), _weights(d(one))
        for k in a:
            torch.testing.assert_close(a[k], b[k], **tol, msg=f"{cut} vs {one}: {k}")
        hist = torch.load(os.path.join(d(cut), "last.pt"), weights_only=True)["history"]
        steps = [r["step"] for r in hist]
        assert steps == sorted(set(steps)) and steps[-1] == 6 and 2 in steps  # none repeated
