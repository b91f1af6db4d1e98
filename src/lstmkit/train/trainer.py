"""A generic training loop that every task reuses (forecasting, language modelling, ...).

``Trainer(model, loss_fn, config, out_dir).fit(train_loader, val_loader)`` where
``loss_fn(model, batch) -> scalar tensor``: the task decides what a batch is and how it is scored,
the Trainer owns everything else:

- AdamW, gradient-norm clipping, LR schedule (linear warm-up, then constant or cosine decay);
- early stopping on the validation loss (``best.pt`` holds the best weights);
- NaN/Inf loss or gradient: stops with :class:`NonFiniteError` naming epoch, step and the fix;
- a tqdm progress bar (off when stderr is not a TTY, or with ``progress=False``);
- determinism under ``seed``: every epoch reseeds torch's RNG with ``(seed, epoch)``, so the
  shuffling of a ``DataLoader`` (which draws its seed from it) and dropout masks depend only on
  the epoch; a run resumed at an epoch boundary therefore replays exactly what an uninterrupted
  run does;
- atomic checkpoints ``last.pt`` (every epoch) with model, optimizer, scheduler, epoch, step,
  early-stopping state, history and the caller's ``extra`` parts (config dataclass, scaler...);
  a new Trainer on the same ``out_dir`` resumes from it after a crash;
- ``metrics.csv``: one row per epoch (epoch, step, train_loss, val_loss, lr, seconds).
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time
from dataclasses import asdict, dataclass

import torch
from torch import nn

from .checkpoint import atomic_write, load_checkpoint, save_checkpoint


class NonFiniteError(FloatingPointError):
    """The loss or the gradient norm became NaN/Inf."""


@dataclass
class TrainConfig:
    epochs: int = 20
    lr: float = 1e-3
    weight_decay: float = 1e-2
    clip_grad_norm: float | None = 1.0
    schedule: str = "cosine"  # "constant" | "cosine" (after warm-up)
    warmup_steps: int = 0
    patience: int | None = 5  # epochs without val improvement before stopping; None = never
    min_delta: float = 0.0
    seed: int = 0
    progress: bool | None = None  # None: only when stderr is a TTY
    resume: bool = True  # continue from out_dir/last.pt if it exists

    def __post_init__(self) -> None:
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"schedule: expected 'constant' or 'cosine', got {self.schedule!r}")
        if self.epochs < 1:
            raise ValueError(f"epochs: expected >= 1, got {self.epochs}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")


class Trainer:
    def __init__(self, model: nn.Module, loss_fn, config: TrainConfig, out_dir: str | os.PathLike,
                 extra: dict | None = None) -> None:
        self.model, self.loss_fn, self.config = model, loss_fn, config
        self.out_dir = os.fspath(out_dir)
        self.extra = dict(extra or {})
        os.makedirs(self.out_dir, exist_ok=True)
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr,
                                           weight_decay=config.weight_decay)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer steps taken
        self.best_val = math.inf
        self.bad_epochs = 0
        self.history: list[dict] = []
        self.stopped_early = False

    # --- paths
    @property
    def last_path(self) -> str:
        return os.path.join(self.out_dir, "last.pt")

    @property
    def best_path(self) -> str:
        return os.path.join(self.out_dir, "best.pt")

    def _lr_lambda(self, total_steps: int):
        c = self.config

        def f(step: int) -> float:
            if step < c.warmup_steps:
                return (step + 1) / c.warmup_steps
            if c.schedule == "constant":
                return 1.0
            span = max(1, total_steps - c.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - c.warmup_steps) / span)))

        return f

    def _state(self) -> dict:
        return dict(model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                    scheduler=self.scheduler.state_dict(), epoch=self.epoch, step=self.step,
                    best_val=self.best_val, bad_epochs=self.bad_epochs, history=self.history,
                    train_config=asdict(self.config), **self.extra)

    def _resume(self) -> None:
        ck = load_checkpoint(self.last_path)
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.scheduler.load_state_dict(ck["scheduler"])
        self.epoch, self.step = ck["epoch"], ck["step"]
        self.best_val, self.bad_epochs = ck["best_val"], ck["bad_epochs"]
        self.history = list(ck["history"])

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

    @torch.no_grad()
    def evaluate(self, loader) -> float:
        self.model.eval()
        total, n = 0.0, 0
        for batch in loader:
            total += float(self.loss_fn(self.model, batch))
            n += 1
        return total / max(n, 1)

    def fit(self, train_loader, val_loader=None) -> list[dict]:
        """Train for ``config.epochs`` (or until early stopping); returns the per-epoch history."""
        c = self.config
        total = c.epochs * len(train_loader)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_lambda(total))
        if c.resume and os.path.exists(self.last_path):
            self._resume()
            if self.history and self.history[-1].get("stopped_early"):
                self.stopped_early = True
                return self.history
        show = c.progress if c.progress is not None else sys.stderr.isatty()
        from tqdm.auto import tqdm

        bar = tqdm(total=total, initial=self.step, disable=not show, desc="train", leave=False,
                   dynamic_ncols=True)
        params = [p for p in self.model.parameters() if p.requires_grad]
        try:
            while self.epoch < c.epochs:
                torch.manual_seed(c.seed * 100_003 + self.epoch)
                t0 = time.perf_counter()
                self.model.train()
                run, n = 0.0, 0
                for batch in train_loader:
                    loss = self.loss_fn(self.model, batch)
                    self._check_finite(float(loss.detach()), "loss")
                    self.optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    norm = nn.utils.clip_grad_norm_(params, c.clip_grad_norm or math.inf)
                    self._check_finite(float(norm), "gradient norm")
                    self.optimizer.step()
                    self.scheduler.step()
                    self.step += 1
                    run += float(loss.detach())
                    n += 1
                    bar.update(1)
                    bar.set_postfix(loss=f"{run / n:.4g}", refresh=False)
                val = self.evaluate(val_loader) if val_loader is not None else None
                if val is not None:
                    self._check_finite(val, "validation loss")
                self.epoch += 1
                score = val if val is not None else run / max(n, 1)
                improved = score < self.best_val - c.min_delta
                if improved:
                    self.best_val, self.bad_epochs = score, 0
                else:
                    self.bad_epochs += 1
                stop = c.patience is not None and self.bad_epochs >= c.patience
                self.history.append(dict(epoch=self.epoch, step=self.step, train_loss=run / max(n, 1),
                                         val_loss=val, lr=self.optimizer.param_groups[0]["lr"],
                                         seconds=round(time.perf_counter() - t0, 3)))
                if improved:
                    save_checkpoint(self.best_path, **self._state())
                if stop:
                    self.history[-1]["stopped_early"] = True
                    self.stopped_early = True
                save_checkpoint(self.last_path, **self._state())
                self._write_csv()
                if stop:
                    break
        finally:
            bar.close()
        return self.history

    def load_best(self) -> None:
        """Put the best (lowest validation loss) weights back into the model."""
        if os.path.exists(self.best_path):
            self.model.load_state_dict(load_checkpoint(self.best_path)["model"])
