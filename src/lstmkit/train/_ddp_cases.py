"""Tiny trainings that the data-parallel tests and benchmark run in spawned processes.

Spawned children import their target by name, so the cases live in the package (a test file
imported by pytest's importlib mode has no importable name). Each case trains through the
Trainer in ``out_dir`` and rank 0 saves the final weights to ``out_dir/final.pt``.

Symbols: N examples, B global batch, T steps, I input, H hidden, V vocabulary.
"""

from __future__ import annotations

import os
import time

import torch
from torch import nn

from .. import LSTM
from .distributed import ShardedLoader
from .trainer import TrainConfig, Trainer


def _config(steps: int, **kw) -> TrainConfig:
    return TrainConfig(max_steps=steps, val_every=2, lr=0.05, schedule="constant", patience=None,
                       progress=False, seed=3, **kw)


class _Regressor(nn.Module):
    def __init__(self, I: int = 3, H: int = 6) -> None:
        super().__init__()
        self.lstm = LSTM(I, H, batch_first=True)
        self.head = nn.Linear(H, 1)

    def forward(self, x):
        y, _ = self.lstm(x)  # (B, T, H)
        return self.head(y[:, -1]).squeeze(-1)  # (B,)


class _StreamLM(nn.Module):
    def __init__(self, V: int = 7, H: int = 8) -> None:
        super().__init__()
        self.emb = nn.Embedding(V, H)
        self.lstm = LSTM(H, H, batch_first=True)
        self.out = nn.Linear(H, V)

    def forward(self, x, hx=None):
        y, hx = self.lstm(self.emb(x), hx)  # (B, T, H)
        return self.out(y), hx  # (B, T, V)


class _StopOnRank:
    """Wants training to stop from step ``at`` on, but only on rank ``rank``."""

    def __init__(self, rank: int, at: int) -> None:
        self.rank, self.at = rank, at

    def should_stop(self, trainer) -> bool:
        return trainer.dist.rank == self.rank and trainer.step >= self.at


def regress(out_dir: str, steps: int, N: int = 32, B: int = 8, sampler_order: bool = False,
            stop_on_rank: tuple[int, int] | None = None, grad_accum: int = 1) -> Trainer:
    """A shuffled DataLoader (4 batches an epoch at the defaults): the DistributedSampler path.
    ``sampler_order``: a single process walks the batches in the order a process group walks
    them (a DistributedSampler of one replica), the reference of the equivalence test.
    ``grad_accum``: micro-batches per optimizer step."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N, 5, 3, generator=g)  # (N, T, I)
    y = x.sum(dim=(1, 2)) * 0.1
    ds = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(ds, batch_size=B, shuffle=True)
    torch.manual_seed(0)
    model = _Regressor()
    mse = lambda m, b: nn.functional.mse_loss(m(b[0]), b[1])
    cfg = _config(steps, grad_accum=grad_accum)
    if sampler_order:
        loader = ShardedLoader(loader, 1, 0, cfg.seed)
    cbs = [_StopOnRank(*stop_on_rank)] if stop_on_rank else []
    tr = Trainer(model, mse, cfg, out_dir, callbacks=cbs)
    tr.fit(loader, [(x[:8], y[:8])])
    return tr


def stream(out_dir: str, steps: int, B: int = 4, bptt: int = 5) -> Trainer:
    """Stateful truncated BPTT over B token streams (6 chunks an epoch): the row-shard path."""
    from ..data.text import StreamLoader

    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, 7, (B * bptt * 6 + 1,), generator=g)
    loader = StreamLoader(tokens, B, bptt)
    torch.manual_seed(0)
    model = _StreamLM()

    def loss_fn(m, batch, hx):
        x, y = batch  # (b, T), (b, T)
        logits, hx = m(x, hx)
        return nn.functional.cross_entropy(logits.reshape(-1, 7), y.reshape(-1)), hx

    tr = Trainer(model, loss_fn, _config(steps), out_dir, stateful=True)
    tr.fit(loader, [next(iter(loader))])
    return tr


CASES = {"regress": regress, "stream": stream}


def run(jobs: list[tuple]) -> None:
    """Run ``(case, out_dir, steps[, kwargs])`` in turn; rank 0 saves each ``final.pt``."""
    for case, out_dir, steps, *kw in jobs:
        tr = CASES[case](out_dir, steps, **(kw[0] if kw else {}))
        if tr.dist.is_writer:
            torch.save({k: v.clone() for k, v in tr.model.state_dict().items()},
                       os.path.join(out_dir, "final.pt"))
        tr.dist.barrier()


def throughput(out_dir: str, steps: int, B: int, T: int, H: int) -> None:
    """Examples per second of a forecaster-sized LSTM regression; rank 0 writes ``rate.txt``."""
    g = torch.Generator().manual_seed(0)
    N = B * steps
    x = torch.randn(N, T, H, generator=g)  # (N, T, I=H)
    ds = torch.utils.data.TensorDataset(x, x[:, -1, 0].clone())
    loader = torch.utils.data.DataLoader(ds, batch_size=B, shuffle=True)
    torch.manual_seed(0)
    model = _Regressor(H, H)
    mse = lambda m, b: nn.functional.mse_loss(m(b[0]), b[1])
    cfg = TrainConfig(max_steps=steps, lr=1e-3, patience=None, progress=False, seed=0,
                      val_every=steps)
    tr = Trainer(model, mse, cfg, out_dir)
    tr.dist.barrier()
    t0 = time.perf_counter()
    tr.fit(loader)
    seconds = tr.dist.max(time.perf_counter() - t0)
    if tr.dist.is_writer:
        with open(os.path.join(out_dir, "rate.txt"), "w") as f:
            f.write(f"{N / seconds:.1f} {seconds:.3f}\n")
