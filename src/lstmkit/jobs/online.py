"""Online forecasting: an LSTM that keeps learning while a series streams in.

Symbols: t time step, n stream length, W update window, H hidden, R replay windows.

``run(values, OnlineConfig(...))`` replays a series as a stream and compares, step by step, the
one-step-ahead absolute error of

- ``frozen``: the model fitted on the warm-up part, then only predicting (stateful);
- ``online``: the same start, then every ``update_every`` steps ``update_steps`` small AdamW steps
  on the last ``window`` points (truncated BPTT from the state carried at the window's start)
  mixed with ``replay`` windows drawn from a reservoir of past windows (against catastrophic
  forgetting), and a Page-Hinkley drift detector on the error that triggers a larger update
  (``drift_steps``) on the recent data when the error level jumps;
- ``finetune``: ``online`` without the replay buffer (the forgetting control);
- ``retrain``: a fresh model fitted from scratch on everything seen so far every
  ``retrain_every`` steps (the expensive reference).

The model is :class:`lstmkit.models.forecaster.Forecaster` (mode ``single``), run one step at a
time: ``prediction_{t+1} = head(h_t)`` with ``h_t = LSTM(z_t, h_{t-1})``. The state is carried
through the whole stream and never recomputed: a weight update changes how the next steps are
read, not the state already reached, so the states equal those of a single offline pass that
switches weights at the same steps (the test checks this). The warm-up fit and every
from-scratch refit go through :class:`lstmkit.train.Trainer` (stateful truncated BPTT).
Values are scaled with the warm-up part's mean and deviation (the future is never seen).
Reported: rolling MAE (window ``rolling``) per model, MAE before and after a given change point,
the old-regime MAE of each model's final weights (forgetting), drift alarms; ``online.png``.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import Tensor, nn

from ..data.split import resolve_size
from ..models.forecaster import Forecaster, ForecasterConfig
from ..train.trainer import TrainConfig, Trainer

MODELS = ("frozen", "online", "finetune", "retrain")


@dataclass
class OnlineConfig:
    hidden_size: int = 32
    warmup: int | float = 0.3  # points (or fraction) fitted before the stream starts
    fit_epochs: int = 40  # passes over the warm-up (and each from-scratch refit)
    lr: float = 1e-2  # fitting learning rate
    chunk: int = 32  # truncated-BPTT length of the fits
    online_lr: float = 3e-3
    update_every: int = 5
    update_steps: int = 2
    window: int = 40
    replay: int = 2  # replay windows per update (0 = plain fine-tuning)
    buffer: int = 200  # reservoir capacity (windows)
    drift_delta: float = 0.1  # Page-Hinkley: tolerated error rise (scaled units)
    drift_threshold: float = 8.0  # Page-Hinkley: alarm level (scaled units)
    drift_steps: int = 20  # update steps when drift is detected
    retrain_every: int | None = None  # steps between from-scratch refits; None: a quarter of the stream
    rolling: int = 25
    change_point: int | None = None  # index of a known change (for the before/after report)
    models: list[str] = field(default_factory=lambda: list(MODELS))
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "fit_epochs", "chunk", "update_every", "update_steps", "window",
                     "buffer", "drift_steps", "rolling"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if not isinstance(self.replay, int) or self.replay < 0:
            raise ValueError(f"replay: expected an int >= 0, got {self.replay!r}")
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ValueError(f"models: expected some of {MODELS}, got {self.models}")


# --- the stateful model ------------------------------------------------------------------------
def new_model(cfg: OnlineConfig) -> Forecaster:
    return Forecaster(ForecasterConfig(input_size=1, horizon=1, mode="single",
                                       hidden_size=cfg.hidden_size))


def predict_path(model: Forecaster, z: Tensor, hx=None):
    """One offline pass: z (B, T) -> predictions of z[:, 1:T+1] (B, T) and the final state."""
    y, hx = model.lstm(z.unsqueeze(-1), hx)  # (B, T, H)
    return model.head(y).squeeze(-1), hx  # (B, T)


def _stream_loss(model, batch, hx):
    x, y = batch  # (B, K), (B, K)
    pred, hx = predict_path(model, x, hx)
    return nn.functional.mse_loss(pred, y), hx


def fit(z: np.ndarray, cfg: OnlineConfig, seed: int, out_dir: str | None = None) -> Forecaster:
    """A fresh model fitted on the scaled series ``z`` through the Trainer (stateful TBPTT over
    up to 4 contiguous streams)."""
    t = torch.as_tensor(z, dtype=torch.float32)
    B = max(1, min(4, (len(t) - 1) // (2 * cfg.chunk)))
    n = (len(t) - 1) // B
    x = torch.stack([t[b * n:(b + 1) * n] for b in range(B)])  # (B, n)
    y = torch.stack([t[b * n + 1:(b + 1) * n + 1] for b in range(B)])
    batches = [(x[:, i:i + cfg.chunk], y[:, i:i + cfg.chunk]) for i in range(0, n, cfg.chunk)]
    torch.manual_seed(seed)
    model = new_model(cfg)
    tcfg = TrainConfig(epochs=cfg.fit_epochs, lr=cfg.lr, patience=None, progress=False, seed=seed,
                       resume=False, weight_decay=0.0)
    with tempfile.TemporaryDirectory() as d:
        Trainer(model, _stream_loss, tcfg, out_dir or d, stateful=True).fit(batches)
    return model.eval()


class PageHinkley:
    """Page-Hinkley test for a rise in the mean of a stream (here the absolute error)."""

    def __init__(self, delta: float, threshold: float) -> None:
        self.delta, self.threshold = delta, threshold
        self.reset()

    def reset(self) -> None:
        self.n, self.mean, self.cum, self.low = 0, 0.0, 0.0, 0.0

    def update(self, x: float) -> bool:
        """Feed one value; True (and a reset) when the mean has risen."""
        self.n += 1
        self.mean += (x - self.mean) / self.n
        self.cum += x - self.mean - self.delta
        self.low = min(self.low, self.cum)
        if self.cum - self.low > self.threshold:
            self.reset()
            return True
        return False


def reservoir_add(buffer: list, item, seen: int, capacity: int, rng: np.random.Generator) -> None:
    """Reservoir sampling (algorithm R): ``item`` is the ``seen``-th item offered (from 1); after
    it every offered item is in ``buffer`` with the same probability ``capacity / seen``."""
    if len(buffer) < capacity:
        buffer.append(item)
    else:
        j = int(rng.integers(seen))
        if j < capacity:
            buffer[j] = item


class OnlineLearner:
    """Stateful one-step forecaster that updates itself from the stream (module docstring).

    ``observe(z_t)`` scores the standing prediction against ``z_t``, advances the state, and
    (when due) updates the weights; returns the prediction it had made for ``z_t``."""

    def __init__(self, model: Forecaster, cfg: OnlineConfig, *, replay: int | None = None,
                 learn: bool = True) -> None:
        self.model, self.cfg = model, cfg
        self.replay = cfg.replay if replay is None else replay
        # a learner watches for drift; a frozen model has nothing to react with
        self.learn, self.drift = learn, PageHinkley(cfg.drift_delta, cfg.drift_threshold) if learn else None
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.online_lr, weight_decay=0.0)
        self.hx = None  # state after the last observed value
        self.pred = torch.zeros(())  # prediction of the next value (nothing seen: 0, the mean)
        self.recent: list[tuple[float, object]] = []  # (z_t, state before z_t), last W + 1
        self.buffer: list[tuple[object, Tensor]] = []  # reservoir: (start state, z window)
        self.seen_windows = 0
        self.t = 0
        self.alarms: list[int] = []
        self.updates: list[int] = []  # steps after which the weights changed
        self.rng = np.random.default_rng(cfg.seed)

    @torch.no_grad()
    def prime(self, z: Tensor) -> None:
        """Run through a history (the warm-up) without scoring or learning."""
        for v in z.tolist():
            self._advance(v)

    @torch.no_grad()
    def _advance(self, v: float) -> None:
        self.recent.append((v, self.hx))
        del self.recent[:-(self.cfg.window + 1)]
        pred, self.hx = predict_path(self.model, torch.tensor([[v]]), self.hx)
        self.pred = pred[0, -1]
        self.t += 1

    def observe(self, v: float) -> float:
        p = float(self.pred)
        self._advance(v)
        if self.learn:
            steps = 0
            if self.drift is not None and self.drift.update(abs(p - v)):
                self.alarms.append(self.t - 1)
                steps = self.cfg.drift_steps
            elif self.t % self.cfg.update_every == 0:
                steps = self.cfg.update_steps
            if steps and len(self.recent) > 2:
                self._update(steps)
        return p

    def _window(self):
        z = torch.tensor([[v for v, _ in self.recent]])  # (1, W + 1)
        return self.recent[0][1], z

    def _update(self, steps: int) -> None:
        start, z = self._window()
        if self.replay:
            self.seen_windows += 1  # reservoir sampling over every update's window
            reservoir_add(self.buffer, (start, z), self.seen_windows, self.cfg.buffer, self.rng)
        self.model.train()
        for _ in range(steps):
            pred, _ = predict_path(self.model, z[:, :-1], start)
            loss = nn.functional.mse_loss(pred, z[:, 1:])
            if self.replay and len(self.buffer) > 1:
                picks = self.rng.choice(len(self.buffer), size=min(self.replay, len(self.buffer)),
                                        replace=False)
                for j in picks:
                    s0, zr = self.buffer[int(j)]
                    pr, _ = predict_path(self.model, zr[:, :-1], s0)
                    loss = loss + nn.functional.mse_loss(pr, zr[:, 1:])
                loss = loss / (1 + len(picks))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
        self.model.eval()
        self.updates.append(self.t)
        with torch.no_grad():  # the standing prediction from the carried state, new weights
            self.pred = self.model.head(self.hx[0][-1])[0, 0]


# --- the comparison ----------------------------------------------------------------------------
def _size(v: int | float, n: int) -> int:
    k = resolve_size(v, n, "warmup")
    if not 8 <= k < n - 8:
        raise ValueError(f"warmup: expected a count or fraction leaving >= 8 points on each side "
                         f"of a series of {n}, got {v!r}")
    return k


@torch.no_grad()
def _mae_on(model, z: np.ndarray, scale: float) -> float:
    pred, _ = predict_path(model, torch.as_tensor(z[None, :-1], dtype=torch.float32))
    return float(np.mean(np.abs(pred[0].numpy() - z[1:]))) * scale


def run(values: np.ndarray, cfg: OnlineConfig, progress: bool = False) -> dict:
    """Replay ``values`` as a stream (module docstring); returns errors, rolling MAE and alarms."""
    y = np.asarray(values, dtype=np.float64)
    if y.ndim != 1 or not np.isfinite(y).all():
        raise ValueError(f"values: expected a 1-D series without NaN, got shape {y.shape}")
    n = len(y)
    w = _size(cfg.warmup, n)
    mu, sd = float(y[:w].mean()), float(y[:w].std() or 1.0)
    z = ((y - mu) / sd).astype(np.float32)
    zt = torch.from_numpy(z)
    base = fit(z[:w], cfg, cfg.seed)
    every = cfg.retrain_every or max(cfg.update_every, (n - w) // 4)
    learners = {}
    for name in cfg.models:
        if name == "retrain":
            continue
        m = copy.deepcopy(base)
        learners[name] = OnlineLearner(m, cfg, replay=0 if name == "finetune" else None,
                                       learn=name != "frozen")
        learners[name].prime(zt[:w])
    retrain = None
    if "retrain" in cfg.models:
        retrain = OnlineLearner(copy.deepcopy(base), cfg, learn=False)
        retrain.prime(zt[:w])
    errors = {name: [] for name in cfg.models}
    preds = {name: [] for name in cfg.models}
    rng = range(w, n)
    if progress:
        from tqdm.auto import tqdm

        rng = tqdm(rng, desc="stream", leave=False)
    refits = []
    for t in rng:
        v = float(z[t])
        for name, lr in learners.items():
            p = lr.observe(v)
            preds[name].append(p * sd + mu)
            errors[name].append(abs(p - v) * sd)
        if retrain is not None:
            p = retrain.observe(v)
            preds["retrain"].append(p * sd + mu)
            errors["retrain"].append(abs(p - v) * sd)
            if (t + 1 - w) % every == 0 and t + 1 < n:  # refit on all seen, re-read the history
                model = fit(z[:t + 1], cfg, cfg.seed + len(refits) + 1)
                retrain = OnlineLearner(model, cfg, learn=False)
                retrain.prime(zt[:t + 1])
                refits.append(t)
    k = cfg.rolling
    roll = {m: np.convolve(e, np.ones(k) / k, mode="valid").tolist() for m, e in errors.items()}
    report: dict = dict(config=asdict(cfg), warmup=w, n=n, scale=dict(mean=mu, sd=sd),
                        mae={m: float(np.mean(e)) for m, e in errors.items()},
                        alarms={m: lr.alarms for m, lr in learners.items() if lr.drift is not None},
                        updates={m: len(lr.updates) for m, lr in learners.items()},
                        refits=refits, errors=errors, preds=preds, rolling=roll)
    cp = cfg.change_point
    if cp is not None and w < cp < n:
        i = cp - w
        report["mae_before"] = {m: float(np.mean(e[:i])) for m, e in errors.items()}
        report["mae_after"] = {m: float(np.mean(e[i:])) for m, e in errors.items()}
        report["mae_first_after"] = {m: float(np.mean(e[i:i + 2 * k])) for m, e in errors.items()}
        # forgetting: each model's final weights read the old regime again (offline pass)
        finals = {m: lr.model for m, lr in learners.items()}
        if retrain is not None:
            finals["retrain"] = retrain.model
        report["old_regime_mae"] = {m: _mae_on(mod, z[:cp], sd) for m, mod in finals.items()}
        thr = {m: report["mae_before"]["frozen" if "frozen" in errors else m] for m in errors}
        report["recovery_steps"] = {m: _recovery(roll[m], i, 1.5 * thr[m]) for m in errors}
    return report


def _recovery(roll: list[float], i: int, level: float) -> int | None:
    """Steps after the change until the rolling MAE is back under ``level`` (None: never)."""
    peaked = False
    for j in range(i, len(roll)):
        if roll[j] > level:
            peaked = True
        elif peaked:
            return j - i
    return 0 if not peaked else None


def format_table(r: dict) -> str:
    has_cp = "mae_after" in r
    cols = ["MAE"] + (["before", "after", "first 2w after", "old regime", "recovery"] if has_cp else [])
    lines = [f"{'model':<10}" + "".join(f"{c:>16}" for c in cols)]
    for m in r["mae"]:
        row = [f"{r['mae'][m]:.4g}"]
        if has_cp:
            rec = r["recovery_steps"][m]
            row += [f"{r['mae_before'][m]:.4g}", f"{r['mae_after'][m]:.4g}",
                    f"{r['mae_first_after'][m]:.4g}", f"{r['old_regime_mae'][m]:.4g}",
                    "never" if rec is None else f"{rec} steps"]
        lines.append(f"{m:<10}" + "".join(f"{c:>16}" for c in row))
    return "\n".join(lines)


def plot(path: str, r: dict, values: np.ndarray, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w, k = r["warmup"], r["config"]["rolling"]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    a1.plot(np.arange(len(values)), values, color="k", lw=0.8, label="series")
    for m, p in r["preds"].items():
        a1.plot(np.arange(w, w + len(p)), p, lw=0.8, label=m)
    a1.axvline(w, color="grey", ls=":", lw=0.8)
    a1.set_ylabel("value")
    a1.legend(fontsize=8, ncol=3)
    for m, roll in r["rolling"].items():
        a2.plot(np.arange(w + k - 1, w + k - 1 + len(roll)), roll, label=m)
    for t in r["alarms"].get("online", []):
        a2.axvline(t, color="tab:orange", lw=0.5, alpha=0.5)
    if r["config"].get("change_point") is not None:
        for a in (a1, a2):
            a.axvline(r["config"]["change_point"], color="r", ls="--", lw=0.8)
    a2.set_ylabel(f"rolling MAE ({k} steps)")
    a2.set_xlabel("time step (dotted: stream starts; dashed: change; thin: online drift alarms)")
    a2.legend(fontsize=8)
    fig.suptitle(title or "online vs frozen vs retrain-from-scratch")
    fig.tight_layout()
    from .._io import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def forecast_online(csv: str | None = None, *, data=None, target: str | None = None,
                    time: str | None = None, out: str | None = None, config: OnlineConfig | None = None,
                    echo=print, progress: bool = False) -> dict:
    """``lstmkit forecast online``: read the series the way the forecast job does, replay it."""

    from . import forecast as fj

    cfg = config or OnlineConfig()
    fc = fj.ForecastConfig(csv=csv, target=target, time=time, no_progress=True)
    series, source = fj.load_series(fc, data)
    if len(series) != 1:
        raise ValueError(f"csv: expected one series for online learning, got {len(series)}")
    s = series[0]
    values = np.asarray(s.values, dtype=np.float64)
    values = values[:, 0] if values.ndim == 2 else values  # the target (covariates are not used)
    if not np.isfinite(values).all():  # the stream has gaps: carry the last value (causal)
        import pandas as pd

        values = pd.Series(values).ffill().bfill().to_numpy()
    r = run(values, cfg, progress=progress)
    echo(f"{source}: {r['n']} points, fitted on the first {r['warmup']}, then streamed one at a "
         f"time; online updates every {cfg.update_every} steps on the last {cfg.window} "
         f"(+{cfg.replay} replay windows), drift alarms {r['alarms'].get('online', [])}, "
         f"from-scratch refits at {r['refits']}")
    echo(format_table(r))
    if out:
        write_report(out, "online", r, ("errors", "preds", "rolling"),
                     lambda path: plot(path, r, values, f"{source}: online learning"), echo)
    return r


def write_report(out: str, stem: str, r: dict, per_step: tuple[str, ...], draw, echo) -> None:
    """An online job's ``{stem}.json`` (the report without its per-step lists) and ``{stem}.png``
    (``draw(path)``) in ``out``, both written atomically."""
    from .._io import atomic_write_text

    slim = {k: v for k, v in r.items() if k not in per_step}
    atomic_write_text(os.path.join(out, f"{stem}.json"), json.dumps(slim, indent=2) + "\n")
    draw(os.path.join(out, f"{stem}.png"))
    echo(f"wrote {out}/{stem}.json, {stem}.png")


__all__ = ["OnlineConfig", "OnlineLearner", "PageHinkley", "fit", "run", "forecast_online",
           "predict_path", "reservoir_add"]
