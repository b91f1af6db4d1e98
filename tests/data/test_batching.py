"""Length-bucketed batches (data/batching.py), used by the classify, seq2seq and speech jobs."""

import pytest
import torch

from lstmkit.data.batching import LengthBuckets

LENGTHS = [7, 3, 9, 3, 1, 8, 2, 6, 5, 4, 7]


def test_keeps_the_batches_of_the_jobs_former_batchers():
    # recorded from classify's BucketBatches(LENGTHS, 2, pool=2) (seq2seq's Batches and speech's
    # SpeechBatches drew the same way) before the three became LengthBuckets
    torch.manual_seed(0)
    s = LengthBuckets(LENGTHS, 2, pool=2)
    assert list(s) == [[7], [1, 8], [10, 0], [5, 2], [6, 9], [4, 3]]
    assert list(s) == [[8], [6, 7], [0, 10], [4, 1], [3, 9], [5, 2]]  # a new shuffle each epoch
    assert torch.rand(1).item() == pytest.approx(0.3051000237464905)  # and no other draw


@pytest.mark.parametrize("pool", [1, 2, 50])
def test_each_index_once_sorted_inside_each_pool(pool):
    g = torch.Generator().manual_seed(pool)
    lengths = torch.randint(1, 40, (103,), generator=g).tolist()
    torch.manual_seed(1)
    batches = list(LengthBuckets(lengths, 4, pool=pool))
    assert len(batches) == len(LengthBuckets(lengths, 4, pool=pool)) == 26
    assert sorted(i for b in batches for i in b) == list(range(103))
    assert all(lengths[b[k]] <= lengths[b[k + 1]] for b in batches for k in range(len(b) - 1))
    # without shuffle: the pools in order, each sorted by length (ties in index order)
    in_order = [i for b in LengthBuckets(lengths, 4, shuffle=False, pool=pool) for i in b]
    pools = [range(s, min(s + 4 * pool, 103)) for s in range(0, 103, 4 * pool)]
    assert in_order == [i for p in pools for i in sorted(p, key=lambda i: (lengths[i], i))]


def test_same_seed_same_batches_through_a_data_loader():
    ds = torch.utils.data.TensorDataset(torch.arange(len(LENGTHS)))

    def run(seed):
        torch.manual_seed(seed)
        loader = torch.utils.data.DataLoader(ds, batch_sampler=LengthBuckets(LENGTHS, 3))
        return [b[0].tolist() for b in loader]

    assert run(5) == run(5) != run(6)


@pytest.mark.parametrize("kwargs, match", [(dict(batch_size=0), "batch_size"),
                                           (dict(batch_size=2, pool=0), "pool")])
def test_bad_arguments_name_themselves(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LengthBuckets(LENGTHS, **kwargs)
