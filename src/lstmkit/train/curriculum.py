"""Length curricula as batch samplers for the Trainer: short sequences first, bucketed batches,
baby steps.

Symbols: N examples, B batch, E epoch, K buckets.

``LengthBatchSampler(lengths, batch_size, mode=...)`` goes into
``DataLoader(dataset, batch_sampler=..., collate_fn=...)``; the Trainer calls its ``set_epoch``
at every epoch (a new shuffle from ``(seed, epoch)``) and, under data parallel training, gives
each process its share of every batch (``for_rank``). Modes:

- ``"sorted"`` -- one pass from short to long every epoch (Bengio et al. 2009's easy-first
  ordering; length is the difficulty): examples sorted by length, ties shuffled, batches walked in
  that order;
- ``"buckets"`` -- batches of similar lengths (little padding), in a shuffled order: no
  curriculum, the usual efficiency trick and the control for ``"sorted"``;
- ``"baby_steps"`` -- the pool grows (Spitkovsky et al. 2010, Cirik et al. 2016): epoch e draws
  only from the shortest ``min(1, (e + 1) / ramp)`` fraction of the examples, cycled to the same
  number of batches every epoch (the Trainer's epoch length is fixed); from epoch ``ramp - 1`` on
  every example comes exactly once per epoch, shuffled in buckets;
- ``"random"`` -- plain shuffled batches (the baseline), for comparisons through one code path.

``"sorted"``, ``"buckets"`` and ``"random"`` yield every example exactly once per epoch.

>>> s = LengthBatchSampler([5, 1, 3, 2, 4, 6], batch_size=2, mode="sorted")
>>> [b for b in s]
[[1, 3], [2, 4], [0, 5]]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch

__all__ = ["LengthBatchSampler", "MODES"]

MODES = ("sorted", "buckets", "baby_steps", "random")


class LengthBatchSampler:
    def __init__(self, lengths: Sequence[int], batch_size: int, *, mode: str = "sorted",
                 seed: int = 0, ramp: int = 4, bucket_batches: int = 8, drop_last: bool = False,
                 rank: int = 0, world: int = 1) -> None:
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")
        if batch_size % world:
            raise ValueError(f"batch_size: expected a multiple of the world size {world} (it is "
                             f"the global batch), got {batch_size}")
        if not isinstance(ramp, int) or ramp < 1:
            raise ValueError(f"ramp: expected an int >= 1, got {ramp!r}")
        self.lengths = torch.as_tensor(list(lengths), dtype=torch.long)
        if self.lengths.dim() != 1 or len(self.lengths) == 0:
            raise ValueError(f"lengths: expected a non-empty 1-D sequence, got shape "
                             f"{tuple(self.lengths.shape)}")
        self.batch_size, self.mode, self.seed, self.ramp = batch_size, mode, seed, ramp
        self.bucket_batches, self.drop_last = bucket_batches, drop_last
        self.rank, self.world, self.epoch = rank, world, 0

    def for_rank(self, rank: int, world: int) -> LengthBatchSampler:
        """The same global batches; this process takes positions ``rank::world`` of each."""
        return LengthBatchSampler(self.lengths.tolist(), self.batch_size, mode=self.mode,
                                  seed=self.seed, ramp=self.ramp, bucket_batches=self.bucket_batches,
                                  drop_last=self.drop_last, rank=rank, world=world)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _by_length(self, idx: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """``idx`` sorted by length, ties in a random order."""
        idx = idx[torch.randperm(len(idx), generator=g)]
        return idx[torch.sort(self.lengths[idx], stable=True).indices]

    def _bucketed(self, order: torch.Tensor, g: torch.Generator) -> list[torch.Tensor]:
        """Sorted ``order`` cut into batches, shuffled inside buckets of ``bucket_batches``
        batches, then the batches shuffled."""
        B = self.batch_size
        span = B * self.bucket_batches
        parts = [order[i:i + span] for i in range(0, len(order), span)]
        parts = [p[torch.randperm(len(p), generator=g)] for p in parts]
        flat = torch.cat(parts)
        batches = list(flat.split(B))
        return [batches[i] for i in torch.randperm(len(batches), generator=g).tolist()]

    def batches(self) -> list[list[int]]:
        """This epoch's global batches (every rank computes the same list)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n, B = len(self.lengths), self.batch_size
        all_idx = torch.arange(n)
        if self.mode == "random":
            batches = list(torch.randperm(n, generator=g).split(B))
        elif self.mode == "sorted":
            batches = list(self._by_length(all_idx, g).split(B))
        elif self.mode == "buckets":
            batches = self._bucketed(self._by_length(all_idx, g), g)
        else:  # baby steps: the shortest fraction, cycled to a full epoch
            frac = min(1.0, (self.epoch + 1) / self.ramp)
            order = self._by_length(all_idx, g)
            pool = order[:max(B, int(round(frac * n)))]
            reps = -(-n // len(pool))
            cycled = torch.cat([pool[torch.randperm(len(pool), generator=g)] for _ in range(reps)])[:n]
            batches = self._bucketed(cycled[torch.sort(self.lengths[cycled], stable=True).indices], g)
        if self.drop_last:
            batches = [b for b in batches if len(b) == B]
        return [b.tolist() for b in batches]

    def __iter__(self) -> Iterator[list[int]]:
        for b in self.batches():
            yield b[self.rank::self.world]
