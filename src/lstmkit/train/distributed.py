"""Data-parallel training for the one Trainer: ``torchrun`` / ``torch.multiprocessing`` on loopback
or across machines, gloo on CPU (nccl when the model sits on a GPU).

Symbols: W world size (processes), r rank, B the global batch, b = B / W the per-process batch.

The Trainer runs unchanged under ``torchrun --nproc-per-node W``: when the launcher's
environment (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``) is present the Trainer
joins the process group (:func:`init_from_env`) and :class:`Context` does the rest:

- the job's batch size is the **global** batch: a ``DataLoader`` of batch B is rebuilt with a
  ``DistributedSampler`` (seeded with the Trainer's seed, reshuffled every epoch through
  ``set_epoch``) and batch b, so that global batch k holds the same examples whatever W is
  (rank r takes positions ``k*B + r, k*B + r + W, ...`` of the epoch's permutation). B must
  be a multiple of W. Any other sized iterable of batches (the LM's ``StreamLoader``) is
  sharded by rows: rank r owns rows ``r*b .. (r+1)*b - 1`` of every batch, i.e. its own
  streams, and carries their state (stateful truncated BPTT);
- gradients are all-reduced by ``DistributedDataParallel`` (mean over ranks, so W ranks x b
  give the step that one process gives with B, for a loss that is a mean over the batch);
- rank 0 alone writes checkpoints, ``metrics.csv`` and the progress bar; the validation score
  is rank 0's (broadcast), the training loss is averaged over ranks, and a stop wanted by any
  rank (a callback, the clock) stops all of them, so no rank waits forever on another;
- checkpoints hold the carried state of **all** streams (gathered in global row order) and the
  world size; every rank resumes from the same ``last.pt``, and a checkpoint written at one W
  resumes at another (the epoch position counts global batches; each rank slices its rows of
  the state).

Multi-node: the same command on every machine with ``--nnodes N --node-rank i
--rdzv-endpoint HOST:PORT`` (or ``lstmkit <job> train --nproc W --nnodes N --rdzv HOST:PORT``).

:func:`spawn` starts W local processes on loopback with a time limit (tests, notebooks);
:func:`launch` runs ``torchrun`` for the CLI.

>>> ctx = Context(world=2, rank=1)  # a view of rank 1 of 2 (no process group needed)
>>> rows = ctx.shard([(torch.arange(8).view(4, 2),)], seed=0)
>>> [b[0].tolist() for b in rows]
[[[4, 5], [6, 7]]]
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler

__all__ = ["Context", "ShardedLoader", "RowShardedLoader", "init_from_env", "spawn", "launch",
           "free_port"]


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group described by the launcher's environment variables (torchrun's
    ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``); True when distributed."""
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return True
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return False
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    dist.init_process_group(backend)
    atexit.register(_destroy)
    return True


def _destroy() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


class ShardedLoader:
    """Rank r's part of a ``DataLoader`` whose batch is the global batch (module docstring)."""

    def __init__(self, loader: DataLoader, world: int, rank: int, seed: int) -> None:
        B = loader.batch_size
        if B is None:
            raise ValueError("train_loader: a DataLoader with a batch_sampler cannot be sharded "
                             "by the Trainer; give the sampler rank and world itself (as "
                             "train.curriculum.LengthBatchSampler does) or a plain batch_size")
        if B % world:
            raise ValueError(f"batch_size: expected a multiple of the world size {world} (it is "
                             f"the global batch, split across processes), got {B}")
        shuffle = isinstance(loader.sampler, RandomSampler)
        self.sampler = DistributedSampler(loader.dataset, num_replicas=world, rank=rank,
                                          shuffle=shuffle, seed=seed, drop_last=False)
        self.loader = DataLoader(loader.dataset, batch_size=B // world, sampler=self.sampler,
                                 collate_fn=loader.collate_fn, drop_last=loader.drop_last,
                                 num_workers=loader.num_workers, pin_memory=loader.pin_memory)

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def _rows(obj, lo: int, hi: int, world: int):
    if isinstance(obj, Tensor):
        if obj.dim() == 0 or obj.shape[0] % world:
            raise ValueError(f"batch: expected every tensor's first dim (the global batch) to be "
                             f"a multiple of the world size {world}, got shape {tuple(obj.shape)}")
        b = obj.shape[0] // world
        return obj[lo * b:hi * b]
    if isinstance(obj, (tuple, list)):
        return type(obj)(_rows(o, lo, hi, world) for o in obj)
    if isinstance(obj, dict):
        return {k: _rows(v, lo, hi, world) for k, v in obj.items()}
    return obj


class RowShardedLoader:
    """Rank r's rows (its own streams) of every batch of a sized iterable of batches."""

    def __init__(self, loader, world: int, rank: int) -> None:
        self.loader, self.world, self.rank = loader, world, rank

    def set_epoch(self, epoch: int) -> None:
        if hasattr(self.loader, "set_epoch"):
            self.loader.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            yield _rows(batch, self.rank, self.rank + 1, self.world)


def _with_batch_sampler(loader: DataLoader, batch_sampler) -> DataLoader:
    return DataLoader(loader.dataset, batch_sampler=batch_sampler, collate_fn=loader.collate_fn,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory)


class _DDP(nn.parallel.DistributedDataParallel):
    """DDP that also answers the wrapped model's attributes (a loss_fn may read ``model.config``)."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


class Context:
    """Where this process stands: ``world``, ``rank``, ``active`` (a process group is joined).

    A single process is ``Context()`` (world 1, inactive): every method is then the identity."""

    def __init__(self, world: int = 1, rank: int = 0, active: bool = False) -> None:
        if world < 1 or not 0 <= rank < world:
            raise ValueError(f"rank: expected 0 <= rank < world ({world}), got {rank}")
        self.world, self.rank, self.active = world, rank, active

    @classmethod
    def current(cls) -> Context:
        """The process group this process is in (joining it from torchrun's environment)."""
        if init_from_env():
            return cls(dist.get_world_size(), dist.get_rank(), True)
        return cls()

    @property
    def is_writer(self) -> bool:
        """Rank 0 writes files and shows progress."""
        return self.rank == 0

    def __repr__(self) -> str:
        return f"Context(world={self.world}, rank={self.rank}, active={self.active})"

    # --- data and model
    def shard(self, loader, seed: int):
        """This rank's view of the training loader (the loader itself in a single process)."""
        if self.world == 1 and not self.active:
            return loader
        if isinstance(loader, DataLoader):
            if hasattr(loader.batch_sampler, "for_rank"):  # e.g. a curriculum's batch sampler
                return _with_batch_sampler(loader, loader.batch_sampler.for_rank(self.rank, self.world))
            return ShardedLoader(loader, self.world, self.rank, seed)
        if hasattr(loader, "shard"):
            return loader.shard(self.rank, self.world)
        return RowShardedLoader(loader, self.world, self.rank)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model that computes training losses: DDP when distributed (rank 0's weights are
        broadcast here, so every rank starts equal), the model itself otherwise."""
        if not self.active:
            return model
        p = next(model.parameters(), None)
        ids = [p.device.index] if p is not None and p.device.type == "cuda" else None
        return _DDP(model, device_ids=ids)

    # --- agreement between ranks (one scalar collective each; identities in a single process)
    def _device(self) -> torch.device:
        return torch.device("cuda") if dist.get_backend() == "nccl" else torch.device("cpu")

    def _reduce(self, value: float, op) -> float:
        if not self.active or self.world == 1:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._device())
        dist.all_reduce(t, op=op)
        return float(t.item())

    def any(self, flag: bool) -> bool:
        """True on every rank if it is True on any."""
        return self._reduce(1.0 if flag else 0.0, dist.ReduceOp.MAX) > 0

    def max(self, value: float) -> float:
        return self._reduce(value, dist.ReduceOp.MAX)

    def mean(self, value: float) -> float:
        return self._reduce(value, dist.ReduceOp.SUM) / (self.world if self.active else 1)

    def broadcast(self, value: float) -> float:
        """Rank 0's value on every rank."""
        if not self.active or self.world == 1:
            return value
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._device())
        dist.broadcast(t, src=0)
        return float(t.item())

    def broadcast_object(self, obj):
        """Rank 0's picklable object on every rank (e.g. a tuning trial's parameters)."""
        if not self.active or self.world == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        if self.active and self.world > 1:
            dist.barrier()

    # --- carried state of the streams (stateful TBPTT)
    def gather_state(self, hx, batch_dim: int = 1):
        """All ranks' rows of a carried state, concatenated in global row order (a collective)."""
        if hx is None or not self.active or self.world == 1:
            return hx
        if isinstance(hx, (tuple, list)):
            return type(hx)(self.gather_state(h, batch_dim) for h in hx)
        parts = [torch.empty_like(hx) for _ in range(self.world)]
        dist.all_gather(parts, hx.contiguous())
        return torch.cat(parts, dim=batch_dim)

    def slice_state(self, hx, batch_dim: int = 1):
        """This rank's rows of a full carried state (read from a checkpoint of any world size)."""
        if hx is None or self.world == 1:
            return hx
        if isinstance(hx, (tuple, list)):
            return type(hx)(self.slice_state(h, batch_dim) for h in hx)
        B = hx.shape[batch_dim]
        if B % self.world:
            raise ValueError(f"hx: the checkpoint carries {B} streams, not a multiple of the "
                             f"world size {self.world}")
        b = B // self.world
        return hx.narrow(batch_dim, self.rank * b, b).clone()


# --- launching
def free_port() -> int:
    """A TCP port free on loopback now (for MASTER_PORT)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spawned(local_rank: int, fn, world: int, port: int, threads: int, args: tuple) -> None:
    os.environ.update(RANK=str(local_rank), LOCAL_RANK=str(local_rank), WORLD_SIZE=str(world),
                      LOCAL_WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(threads)
    init_from_env()
    try:
        fn(*args)
    finally:
        _destroy()


def spawn(fn, world: int, *args, timeout: float = 300.0, threads: int = 1) -> None:
    """Run ``fn(*args)`` in ``world`` fresh processes joined on loopback (gloo on CPU), each
    with ``threads`` torch threads; raises if one fails or if they are not done in ``timeout``
    seconds (then all are killed). ``fn`` must be importable by name (a module-level function)."""
    import torch.multiprocessing as mp

    if not isinstance(world, int) or world < 1:
        raise ValueError(f"world: expected an int >= 1, got {world!r}")
    ctx = mp.start_processes(_spawned, args=(fn, world, free_port(), threads, args), nprocs=world,
                             join=False, start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=max(0.1, min(5.0, deadline - time.monotonic()))):
            if time.monotonic() > deadline:
                raise TimeoutError(f"spawn: {world} processes still running after {timeout} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
                p.join()


def torchrun_command(argv: list[str], nproc: int, *, nnodes: int = 1, node_rank: int = 0,
                     rdzv: str | None = None) -> list[str]:
    """The ``torchrun`` command line that runs ``lstmkit ARGV`` in ``nproc`` processes per node
    (only rank 0's output is shown)."""
    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc: expected an int >= 1, got {nproc!r}")
    if nnodes < 1:
        raise ValueError(f"nnodes: expected an int >= 1, got {nnodes!r}")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
           "--local-ranks-filter", "0"]
    if nnodes == 1 and rdzv is None:
        cmd += ["--standalone"]
    else:
        if rdzv is None:
            raise ValueError("rdzv: expected HOST:PORT of the rendezvous when --nnodes > 1")
        cmd += ["--nnodes", str(nnodes), "--node-rank", str(node_rank), "--rdzv-backend", "c10d",
                "--rdzv-endpoint", rdzv]
    return cmd + ["-m", "lstmkit.cli", *argv]


def launch(argv: list[str], nproc: int, **kw) -> int:
    """Run ``lstmkit ARGV`` under torchrun; returns its exit code."""
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.call(torchrun_command(argv, nproc, **kw), env=env)
