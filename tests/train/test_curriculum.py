"""Length curricula: every example exactly once per epoch, short first, the same global batches
on every rank, reshuffled by the Trainer every epoch."""

import pytest
import torch

from lstmkit.train.curriculum import LengthBatchSampler
from lstmkit.train.trainer import TrainConfig, Trainer

LENGTHS = torch.randint(1, 50, (37,), generator=torch.Generator().manual_seed(0)).tolist()


@pytest.mark.parametrize("mode", ["sorted", "buckets", "random", "baby_steps"])
def test_every_example_exactly_once_per_epoch(mode):
    s = LengthBatchSampler(LENGTHS, 5, mode=mode, seed=1, ramp=3)
    for epoch in range(5):
        s.set_epoch(epoch)
        got = [i for b in s for i in b]
        assert len(list(s)) == len(s) == 8
        if mode != "baby_steps" or epoch >= 2:
            assert sorted(got) == list(range(37)), (mode, epoch)
        else:  # a growing pool of the shortest examples, cycled to a full epoch
            pool = set(got)
            assert len(got) == 37 and len(pool) < 37
            assert max(LENGTHS[i] for i in pool) <= sorted(LENGTHS)[round((epoch + 1) / 3 * 37)]


def test_sorted_goes_short_to_long_and_reshuffles_ties():
    s = LengthBatchSampler(LENGTHS, 4, mode="sorted", seed=0)
    flat = [i for b in s for i in b]
    assert [LENGTHS[i] for i in flat] == sorted(LENGTHS)
    s.set_epoch(1)
    assert [i for b in s for i in b] != flat  # same lengths, ties in another order


def test_buckets_hold_similar_lengths_in_shuffled_order():
    s = LengthBatchSampler(list(range(64)), 4, mode="buckets", bucket_batches=2, seed=0)
    batches = list(s)
    assert all(max(b) - min(b) < 8 for b in batches)  # from one bucket of 8 sorted examples
    assert [min(b) for b in batches] != sorted(min(b) for b in batches)


def test_ranks_split_the_same_global_batches():
    s = LengthBatchSampler(LENGTHS, 6, mode="buckets", seed=2)
    ranks = [s.for_rank(r, 2) for r in range(2)]
    for x in (s, *ranks):
        x.set_epoch(3)
    assert [sorted(a + b) for a, b in zip(*ranks)] == [sorted(b) for b in s]


def test_trainer_sets_the_epoch_of_a_batch_sampler(tmp_path):
    seen = []

    class Spy(LengthBatchSampler):
        def set_epoch(self, epoch):
            seen.append(epoch)
            super().set_epoch(epoch)

    x = torch.randn(12, 1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, 2 * x),
                                         batch_sampler=Spy(list(range(12)), 4, mode="sorted"))
    model = torch.nn.Linear(1, 1)
    mse = lambda m, b: torch.nn.functional.mse_loss(m(b[0]), b[1])
    Trainer(model, mse, TrainConfig(epochs=3, progress=False, patience=None), tmp_path).fit(loader)
    assert seen == [0, 1, 2]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="mode: expected one of"):
        LengthBatchSampler([1, 2], 1, mode="hardest")
    with pytest.raises(ValueError, match="batch_size: expected a multiple of the world size 2"):
        LengthBatchSampler([1, 2, 3], 3, world=2)
