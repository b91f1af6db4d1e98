"""Length-bucketed batches: little padding, still random.

Symbols: N examples, B batch size, P batches per pool.

:class:`LengthBuckets` yields lists of example indices. With ``shuffle`` the N indices are
shuffled, cut into pools of ``P * B``, sorted by length inside each pool (ties keep their
order) and cut into batches, and the batches are shuffled; both draws come from torch's global
RNG, which the Trainer reseeds every epoch. Without ``shuffle`` the same is done on the indices
in order, and the batches come in order. The draws happen at the first ``next``, as in any
generator. It is a torch batch sampler
(``DataLoader(ds, batch_sampler=LengthBuckets(...))``) and a plain iterable.

>>> list(LengthBuckets([5, 1, 4, 2, 3], 2, shuffle=False, pool=1))
[[1, 0], [3, 2], [4]]
>>> list(LengthBuckets([5, 1, 4, 2, 3], 2, shuffle=False))  # one pool: sorted throughout
[[1, 3], [4, 2], [0]]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch


class LengthBuckets(torch.utils.data.Sampler):
    """Batches of indices of similar ``lengths`` (N ints), ``batch_size`` each (the last of a
    pool may be shorter), pools of ``pool`` batches; see the module docstring."""

    def __init__(self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True,
                 pool: int = 50) -> None:
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        if not isinstance(pool, int) or pool < 1:
            raise ValueError(f"pool: expected an int >= 1, got {pool!r}")
        self.lengths = [int(n) for n in lengths]
        self.batch_size, self.shuffle, self.pool = batch_size, shuffle, pool

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        n, bs = len(self.lengths), self.batch_size
        order = torch.randperm(n).tolist() if self.shuffle else list(range(n))
        size = bs * self.pool
        batches = []
        for i in range(0, n, size):
            part = sorted(order[i:i + size], key=self.lengths.__getitem__)
            batches += [part[k:k + bs] for k in range(0, len(part), bs)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        yield from batches
