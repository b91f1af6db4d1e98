"""The one training loop every job reuses (forecasting, language modelling, classification, ...).

``Trainer(model, loss_fn, config, out_dir).fit(train_loader, val_loader)`` where
``loss_fn(model, batch) -> scalar tensor``: the task decides what a batch is and how it is scored,
the Trainer owns everything else:

- schedules: ``epochs`` passes over the loader, or ``max_steps`` optimizer steps (the loader is
  walked again as often as needed); a ``max_time`` budget in seconds (summed over resumed
  sessions) ends training early, and the cosine then follows the clock as well (its progress is
  the larger of the spent steps and the spent time), so a budget cut still ends at a low LR;
- AdamW, gradient-norm clipping, LR schedule (linear warm-up, then constant or cosine decay to
  ``min_lr_ratio * lr`` at the last step);
- gradient accumulation: ``grad_accum`` micro-batches per optimizer step, each loss scaled by
  ``1/grad_accum``, so k micro-batches of size b give the step one batch of size k*b gives
  (for a loss that is a mean over the batch);
- validation at the end of every epoch, or every ``val_every`` optimizer steps (and once more at
  the end of training if steps were taken since the last one); the curve is ``history``;
- early stopping after ``patience`` validations without improvement (with ``lr_drops=n`` the
  first n times patience runs out the LR is multiplied by ``lr_drop_factor`` instead, and
  patience starts again); ``best.pt`` holds the best weights, put back into the model at the end
  with ``restore_best=True`` (or ``load_best()``);
- stateful truncated BPTT (``Trainer(..., stateful=True)``): ``loss_fn(model, batch, hx) ->
  (loss, hx)``; the Trainer carries ``hx`` detached from one batch to the next (row b of a batch
  continues row b of the previous one), starts every epoch and every evaluation from ``None``,
  and stores the carried state in mid-epoch checkpoints;
- ``eval_fn(model, val_loader) -> float``: replaces the default validation (the mean of
  ``loss_fn`` over the validation batches) when a job scores validation its own way;
- callbacks (any object with some of these methods; :class:`Callback` documents them):
  ``on_step(trainer, loss)``, ``on_validation(trainer, record)``, ``should_stop(trainer) -> bool``,
  ``on_fit_end(trainer)`` -- for later jobs, logging and tuning (an Optuna pruner is a
  ``should_stop`` / ``on_validation`` callback); ``with extra_callbacks(cb):`` adds ``cb`` to every
  Trainer created inside the block (a tuner prunes the trainings of a job it cannot edit);
- NaN/Inf loss or gradient: stops with :class:`NonFiniteError` naming epoch, step and the fix;
- a tqdm progress bar (off when stderr is not a TTY, or with ``progress=False``);
- determinism under ``seed``: every epoch reseeds torch's RNG with ``(seed, epoch)``, so the
  shuffling of a ``DataLoader`` (which draws its seed from it) and dropout masks depend only on
  the epoch; checkpoints also hold torch's RNG state and the position inside the epoch, so a run
  resumed from any checkpoint (epoch end or mid-epoch validation) replays exactly what an
  uninterrupted run does (not under ``max_time``, which depends on the clock);
- atomic checkpoints ``last.pt`` (after every validation and every epoch) with model, optimizer,
  scheduler, epoch, step, position, RNG state, carried state, early-stopping state, history and
  the caller's ``extra`` parts (config dataclass, scaler...); a new Trainer on the same
  ``out_dir`` resumes from it after a crash;
- ``metrics.csv``: one row per validation (epoch, step, train_loss, val_loss, lr, seconds);
  ``epoch`` is fractional for validations inside an epoch;
- data parallel under ``torchrun`` (or :func:`lstmkit.train.distributed.spawn`): the loader's
  batch is the global batch, sharded over the processes, gradients all-reduced by DDP, rank 0
  writes; see :mod:`lstmkit.train.distributed`.

>>> import tempfile
>>> torch.manual_seed(0)  # doctest: +ELLIPSIS
<torch._C.Generator object at ...>
>>> model = nn.Linear(1, 1)
>>> data = [(torch.tensor([[1.0], [2.0]]), torch.tensor([[2.0], [4.0]]))] * 4
>>> mse = lambda m, b: nn.functional.mse_loss(m(b[0]), b[1])
>>> cfg = TrainConfig(max_steps=6, val_every=3, lr=0.1, progress=False, restore_best=True)
>>> tr = Trainer(model, mse, cfg, tempfile.mkdtemp())
>>> [(r["step"], r["epoch"]) for r in tr.fit(data, data[:1])]
[(3, 0.75), (6, 1.5)]
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import math
import os
import sys
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .checkpoint import atomic_write, load_checkpoint, save_checkpoint
from .distributed import Context
from .tbptt import detach_state

__all__ = ["Callback", "NonFiniteError", "TrainConfig", "Trainer", "extra_callbacks"]

# callbacks every Trainer created inside ``with extra_callbacks(...)`` also gets (tuning prunes
# the trainings of a job that builds its Trainers itself)
_AMBIENT: contextvars.ContextVar[tuple] = contextvars.ContextVar("lstmkit_callbacks", default=())


@contextlib.contextmanager
def extra_callbacks(*callbacks):
    """Every Trainer created inside the block also calls ``callbacks`` (after its own)."""
    token = _AMBIENT.set(_AMBIENT.get() + tuple(callbacks))
    try:
        yield
    finally:
        _AMBIENT.reset(token)


class NonFiniteError(FloatingPointError):
    """The loss or the gradient norm became NaN/Inf."""


PRECISIONS = ("float32", "bfloat16")


def autocast_for(precision: str) -> str | None:
    """A job's ``precision`` as the Trainer's ``autocast``: None for float32, "bfloat16" for
    bfloat16 (the training forward under torch.autocast, float32 weights and optimizer)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {PRECISIONS}, got {precision!r}")
    return None if precision == "float32" else precision


@dataclass
class TrainConfig:
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-2
    clip_grad_norm: float | None = 1.0
    schedule: str = "cosine"  # "constant" | "cosine" (after warm-up)
    warmup_steps: int = 0
    patience: int | None = 5  # validations without improvement before stopping; None = never
    min_delta: float = 0.0
    seed: int = 0
    progress: bool | None = None  # None: only when stderr is a TTY
    resume: bool = True  # continue from out_dir/last.pt if it exists
    # added for the one-loop Trainer (issue 9); the defaults keep the epoch-based behaviour
    max_steps: int | None = None  # step-based schedule: this many optimizer steps, epochs ignored
    val_every: int | None = None  # validate every N optimizer steps; None: at every epoch end
    grad_accum: int = 1  # micro-batches per optimizer step
    max_time: float | None = None  # seconds; stops (after a last validation) when exceeded
    restore_best: bool = False  # put the best validated weights back at the end of fit()
    min_lr_ratio: float = 0.0  # cosine decays to lr * min_lr_ratio
    lr_drops: int = 0  # when patience runs out, first multiply the LR by lr_drop_factor (this often)
    lr_drop_factor: float = 0.25
    autocast: str | None = None  # "bfloat16": training forward/loss under torch.autocast (weights
    # and optimizer stay float32; validation runs in the model's own precision)

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule: expected 'constant' or 'cosine', got {self.schedule!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs: expected >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        for name in ("max_steps", "val_every", "patience"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                raise ValueError(f"{name}: expected an int >= 1 or None, got {v!r}")
        if not isinstance(self.grad_accum, int) or self.grad_accum < 1:
            raise ValueError(f"grad_accum: expected an int >= 1, got {self.grad_accum!r}")
        if self.max_time is not None and not self.max_time > 0:
            raise ValueError(f"max_time: expected seconds > 0 or None, got {self.max_time!r}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise ValueError(f"min_lr_ratio: expected a number in [0, 1], got {self.min_lr_ratio!r}")
        if not isinstance(self.lr_drops, int) or self.lr_drops < 0:
            raise ValueError(f"lr_drops: expected an int >= 0, got {self.lr_drops!r}")
        if not 0 < self.lr_drop_factor < 1:
            raise ValueError(f"lr_drop_factor: expected a number in (0, 1), got {self.lr_drop_factor!r}")
        if self.autocast not in (None, "bfloat16"):
            raise ValueError(f"autocast: expected None or 'bfloat16', got {self.autocast!r}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps: expected >= 0, got {self.warmup_steps}")


class Callback:
    """The hooks the Trainer calls; subclass and override what you need (all are optional)."""

    def on_step(self, trainer: Trainer, loss: float) -> None:
        """After every optimizer step; ``loss`` is that step's (accumulated) training loss."""

    def on_validation(self, trainer: Trainer, record: dict) -> None:
        """After every validation, once ``record`` (epoch, step, train_loss, val_loss, lr,
        seconds) is in ``trainer.history`` and the checkpoints are written."""

    def should_stop(self, trainer: Trainer) -> bool:
        """Asked after every optimizer step (validation included); True ends training."""
        return False

    def on_fit_end(self, trainer: Trainer) -> None:
        """Once, when ``fit`` ends normally (after ``restore_best``)."""


def _as_tuples(hx):
    """Checkpoints store tuples as lists; the recurrent modules take ``(h, c)`` tuples."""
    if isinstance(hx, list):
        return tuple(_as_tuples(h) for h in hx)
    return hx


class Trainer:
    def __init__(self, model: nn.Module, loss_fn, config: TrainConfig, out_dir: str | os.PathLike,
                 extra: dict | None = None, *, callbacks=(), stateful: bool = False,
                 eval_fn=None) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config: expected TrainConfig, got {type(config).__name__}")
        self.model, self.loss_fn, self.config = model, loss_fn, config
        self.out_dir = os.fspath(out_dir)
        self.extra = dict(extra or {})
        self.callbacks = list(callbacks) + list(_AMBIENT.get())
        self.stateful = bool(stateful)
        self.eval_fn = eval_fn
        os.makedirs(self.out_dir, exist_ok=True)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.batch_in_epoch = 0  # micro-batches consumed in the current epoch
        self.best_val = math.inf
        self.bad_epochs = 0  # validations without improvement (the name predates val_every)
        self.history: list[dict] = []
        self.stopped_early = False
        self.stop_reason: str | None = None  # "patience" | "callback" | "max_time" | None
        self.hx = None  # carried state (stateful=True)
        self._run, self._n = 0.0, 0  # training loss since the last validation
        self._rng_state = None
        self.elapsed = 0.0  # seconds of training over all sessions (for max_time)
        self.lr_dropped = 0  # how often patience ran out and the LR was dropped
        self.dist = Context.current()  # world 1 unless launched by torchrun / distributed.spawn
        self._net = model  # what computes training losses: DDP(model) while fit() runs distributed

    # --- paths
    @property
    def last_path(self) -> str:
        return os.path.join(self.out_dir, "last.pt")

    @property
    def best_path(self) -> str:
        return os.path.join(self.out_dir, "best.pt")

    def _factor(self, step: int, total_steps: int, time_frac: float = 0.0) -> float:
        """LR multiplier: linear warm-up, then constant or cosine; the cosine's progress is the
        larger of the step fraction and ``time_frac`` (the spent part of ``max_time``)."""
        c = self.config
        scale = c.lr_drop_factor ** self.lr_dropped
        if step < c.warmup_steps:
            return scale * (step + 1) / c.warmup_steps
        if c.schedule == "constant":
            return scale
        span = max(1, total_steps - c.warmup_steps)
        progress = min(1.0, max((step - c.warmup_steps) / span, time_frac))
        return scale * (c.min_lr_ratio + (1 - c.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))

    def _lr_lambda(self, total_steps: int):
        return lambda step: self._factor(step, total_steps)

    def _state(self) -> dict:
        return dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                    scheduler=self.scheduler.state_dict(), epoch=self.epoch, step=self.step,
                    batch_in_epoch=self.batch_in_epoch, rng_state=torch.get_rng_state(),
                    hx=self.dist.gather_state(self.hx), world_size=self.dist.world,
                    run_loss=self._run, run_n=self._n, elapsed=self.elapsed,
                    lr_dropped=self.lr_dropped, best_val=self.best_val,
                    bad_epochs=self.bad_epochs, history=self.history,
                    train_config=asdict(self.config), **self.extra)

    def _resume(self) -> None:
        ck = load_checkpoint(self.last_path)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.epoch, self.step = ck["epoch"], ck["step"]
        self.best_val, self.bad_epochs = ck["best_val"], ck["bad_epochs"]
        self.history = list(ck["history"])
        self.batch_in_epoch = ck.get("batch_in_epoch", 0)
        self.hx = self.dist.slice_state(_as_tuples(ck.get("hx")))  # this rank's streams
        self._run, self._n = ck.get("run_loss", 0.0), ck.get("run_n", 0)
        self._rng_state = ck.get("rng_state") if self.batch_in_epoch else None
        self.elapsed = ck.get("elapsed", 0.0)
        self.lr_dropped = ck.get("lr_dropped", 0)

    def _write_csv(self) -> None:
        cols = ["epoch", "step", "train_loss", "val_loss", "lr", "seconds"]

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="") as f:
                w = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
                w.writeheader()
                w.writerows(self.history)

        atomic_write(os.path.join(self.out_dir, "metrics.csv"), write)

    def _check_finite(self, value: float, what: str) -> None:
        if not math.isfinite(value):
            raise NonFiniteError(
                f"{what} is {value} at epoch {self.epoch + 1}, step {self.step + 1}: training "
                f"stopped. Lower the learning rate (lr={self.config.lr}), clip gradients, or check "
                f"the data for NaN/Inf; the last good state is in {self.last_path!r}")

    def _call(self, hook: str, *args):
        out = False
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                out = bool(fn(self, *args)) or out
        return out

    def _autocast(self):
        """The training step's precision context (a no-op unless ``config.autocast``)."""
        if self.config.autocast is None:
            return contextlib.nullcontext()
        device = next(self.model.parameters()).device.type
        return torch.autocast(device, dtype=getattr(torch, self.config.autocast))

    def _loss(self, batch, hx, model=None):
        model = self._net if model is None else model
        if self.stateful:
            loss, hx = self.loss_fn(model, batch, hx)
            return loss, detach_state(hx)
        return self.loss_fn(model, batch), None

    @torch.no_grad()
    def evaluate(self, loader) -> float:
        """Validation loss: ``eval_fn(model, loader)`` if given, else the mean of ``loss_fn`` over
        the batches (state carried from a fresh start when stateful). Leaves the model in eval mode."""
        self.model.eval()
        if self.eval_fn is not None:
            return float(self.eval_fn(self.model, loader))
        total, n, hx = 0.0, 0, None
        for batch in loader:
            loss, hx = self._loss(batch, hx, self.model)
            total += float(loss)
            n += 1
        return total / max(n, 1)

    # --- the loop
    def _validate(self, val_loader, epoch_end: bool, per_epoch: int, t_last: float) -> float:
        """Score, log, checkpoint; returns the time it finished (start of the next record)."""
        epoch_value = (self.epoch if epoch_end or not self.batch_in_epoch
                       else round(self.epoch + self.batch_in_epoch / per_epoch, 3))
        c = self.config
        val = self.evaluate(val_loader) if val_loader is not None else None
        self.model.train()
        if val is not None:
            val = self.dist.broadcast(val)  # rank 0's score decides for every rank
            self._check_finite(val, "validation loss")
        train_loss = self.dist.mean(self._run / max(self._n, 1))
        score = val if val is not None else train_loss
        improved = score < self.best_val - c.min_delta
        if improved:
            self.best_val, self.bad_epochs = score, 0
        else:
            self.bad_epochs += 1
        record = dict(epoch=epoch_value, step=self.step, train_loss=train_loss, val_loss=val,
                      lr=self.optimizer.param_groups[0]["lr"],
                      seconds=round(time.perf_counter() - t_last, 3))
        self.history.append(record)
        self._run, self._n = 0.0, 0
        if improved:
            state = self._state()  # a collective when distributed: every rank calls it
            if self.dist.is_writer:
                save_checkpoint(self.best_path, **state)
        if c.patience is not None and self.bad_epochs >= c.patience:
            if self.lr_dropped < c.lr_drops:
                self.lr_dropped += 1
                self.bad_epochs = 0
                record["lr_drop"] = self.lr_dropped
                for g in self.optimizer.param_groups:
                    g["lr"] *= c.lr_drop_factor
            else:
                self._stop("patience")
        self._save_last()
        self._call("on_validation", record)
        return time.perf_counter()

    def _stop(self, reason: str) -> None:
        self.stop_reason = reason
        if self.history:
            self.history[-1]["stopped"] = reason
            if reason in ("patience", "callback"):
                self.history[-1]["stopped_early"] = True
        if reason in ("patience", "callback"):
            self.stopped_early = True

    def _save_last(self) -> None:
        state = self._state()
        if self.dist.is_writer:
            save_checkpoint(self.last_path, **state)
            self._write_csv()

    def _finished_before(self) -> bool:
        last = self.history[-1] if self.history else {}
        return bool(last.get("stopped_early")) or last.get("stopped") in ("patience", "callback")

    def fit(self, train_loader, val_loader=None) -> list[dict]:
        """Train until the schedule ends or early stopping; returns the validation history."""
        c = self.config
        train_loader = self.dist.shard(train_loader, c.seed)
        per_epoch = len(train_loader)
        if per_epoch < 1:
            raise ValueError("train_loader: expected at least one batch, got an empty loader")
        steps_per_epoch = -(-per_epoch // c.grad_accum)
        total = c.max_steps if c.max_steps is not None else c.epochs * steps_per_epoch
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda(total))
        if c.resume and os.path.exists(self.last_path):
            self._resume()
            spent = c.max_time is not None and self.elapsed >= c.max_time  # its budget is used up
            if self._finished_before() or (spent and self.history):
                self.stop_reason = self.history[-1].get("stopped") or ("max_time" if spent else "patience")
                self.stopped_early = self.stop_reason in ("patience", "callback")
                self._end()
                return self.history
        self.batch_in_epoch = min(self.batch_in_epoch, per_epoch - 1)  # (another world size)
        self._net = self.dist.wrap(self.model)
        show = self.dist.is_writer and (c.progress if c.progress is not None else sys.stderr.isatty())
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=self.step, disable=not show, desc="train", leave=False,
                   dynamic_ncols=True, unit="step")
        params = [p for p in self.model.parameters() if p.requires_grad]
        t_start = t_last = time.perf_counter()
        elapsed0 = self.elapsed
        k = c.grad_accum

        def done() -> bool:
            return self.step >= total

        try:
            while not done() and (c.max_steps is not None or self.epoch < c.epochs):
                torch.manual_seed(c.seed * 100_003 + self.epoch + 7919 * self.dist.rank)
                for part in (train_loader, getattr(train_loader, "batch_sampler", None)):
                    if hasattr(part, "set_epoch"):  # a DistributedSampler / curriculum reshuffles
                        part.set_epoch(self.epoch)
                        break
                self.model.train()
                skip = self.batch_in_epoch  # > 0 when resuming inside an epoch
                if not skip:
                    self.hx = None  # every epoch starts the streams afresh
                it = iter(train_loader)
                for _ in range(skip):
                    next(it)
                if self._rng_state is not None:
                    torch.set_rng_state(self._rng_state)
                    self._rng_state = None
                stop = False
                micro, step_loss = 0, 0.0
                self.optimizer.zero_grad(set_to_none=True)
                for i, batch in enumerate(it, start=skip):
                    # distributed: only a group's last micro-batch all-reduces the gradients (DDP
                    # sums them locally until then, so the step's mean gradient is unchanged)
                    last = micro + 1 >= k or i + 1 >= per_epoch
                    with (contextlib.nullcontext() if last or not self.dist.active
                          else self._net.no_sync()):
                        with self._autocast():
                            loss, self.hx = self._loss(batch, self.hx)
                        value = float(loss.detach())
                        if not self.dist.active:  # distributed: the all-reduced gradient norm tells all
                            self._check_finite(value, "loss")
                        (loss / k).backward()
                    micro += 1
                    step_loss += value
                    self.batch_in_epoch = i + 1
                    if micro < k and i + 1 < per_epoch:
                        continue
                    if micro < k:  # a short last group: scale to the mean of what it holds
                        for p in params:
                            if p.grad is not None:
                                p.grad.mul_(k / micro)
                    norm = nn.utils.clip_grad_norm_(params, c.clip_grad_norm or math.inf)
                    self._check_finite(float(norm), "gradient norm")
                    self.optimizer.step()
                    self.scheduler.step()
                    if c.max_time is not None:  # anneal by the clock too: end low when time is up
                        self.elapsed = self.dist.max(elapsed0 + time.perf_counter() - t_start)
                        f = self._factor(self.step + 1, total, self.elapsed / c.max_time)
                        for g, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
                            g["lr"] = base * f
                    self.optimizer.zero_grad(set_to_none=True)
                    self.step += 1
                    self._run += step_loss / micro
                    self._n += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{step_loss / micro:.4g}", refresh=False)
                    self._call("on_step", step_loss / micro)
                    micro, step_loss = 0, 0.0
                    epoch_end = self.batch_in_epoch >= per_epoch
                    if epoch_end:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                    out_of_time = c.max_time is not None and self.elapsed >= c.max_time
                    last_step = done() or (c.max_steps is None and epoch_end and self.epoch >= c.epochs)
                    due = (self.step % c.val_every == 0) if c.val_every else epoch_end
                    validated = False
                    if due or last_step or out_of_time:
                        t_last = self._validate(val_loader, epoch_end, per_epoch, t_last)
                        validated = True
                    wants_stop = self.dist.any(self._call("should_stop"))
                    if wants_stop and self.stop_reason is None:
                        if not validated and self._n > 0:  # score the weights it stops with
                            t_last = self._validate(val_loader, epoch_end, per_epoch, t_last)
                            validated = True
                        if self.stop_reason is None:
                            self._stop("callback")
                    elif out_of_time and self.stop_reason is None and not last_step:
                        self._stop("max_time")
                    if self.stop_reason is not None:
                        self._save_last()
                    elif epoch_end and not validated:
                        self._save_last()
                    if self.stop_reason is not None or done():
                        stop = True
                        break
                if stop:
                    break
        finally:
            bar.close()
        self._end()
        return self.history

    def _end(self) -> None:
        self._net = self.model
        self.dist.barrier()  # rank 0's last writes are done before any rank reads best.pt
        if self.config.restore_best:
            self.load_best()
        self._call("on_fit_end")

    def load_best(self) -> None:
        """Put the best (lowest validation loss) weights back into the model."""
        if os.path.exists(self.best_path):
            self.model.load_state_dict(load_checkpoint(self.best_path)["model"])
