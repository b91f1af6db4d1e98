"""Online sequence classification: a classifier that keeps learning from a stream of labelled
sequences, evaluated prequentially (test, then train).

Symbols: N examples, i stream position, T time steps, C channels, K classes, W recent examples,
R replayed examples per step.

``run(series, labels, OnlineClassifyConfig(...))`` streams labelled sequences one at a time. Each
arriving example is first predicted (that prediction is scored), then its label is revealed and
learned from. Compared, example by example:

- ``frozen``: a :class:`~lstmkit.models.classifier.SequenceClassifier` fitted on the warm-up
  part (through :class:`lstmkit.train.Trainer`), then only predicting;
- ``online``: the same start, then every ``update_every`` examples ``update_steps`` AdamW steps
  on a batch of the last ``window`` examples plus ``replay`` examples drawn from a reservoir of
  past examples (against catastrophic forgetting; the reservoir starts with the warm-up part),
  and a Page-Hinkley detector on the 0/1 error stream that triggers a larger update
  (``drift_steps``) when the error rate jumps;
- ``finetune``: ``online`` without the replay reservoir (the forgetting control);
- ``retrain``: a fresh model fitted from scratch on every example seen so far, every
  ``retrain_every`` examples (the expensive reference);
- ``1nn``: the baseline a practitioner would try first on a stream of series: 1-nearest
  neighbour (Euclidean, scipy's ``cdist``) over every labelled example seen so far, which
  learns each example the moment its label arrives (equal-length series only).

A concept drift can be injected at ``change_point`` (``drift``): ``reverse`` reads every later
series backwards (the input distribution changes, the labels stay meaningful: both concepts can
be known at once, so forgetting is measurable), ``negate`` flips their sign, ``permute`` shifts
the labels (class k becomes k+1 mod K: the old concept is then wrong, not just different).
Series are standardised per channel with the warm-up part's statistics. A seeded ``holdout``
part of the examples never enters the stream: each model's final weights are scored on it under
the old concept (forgetting) and the new one. Reported: accuracy over the stream, before and
after the change, over the first 2 rolling windows after it, recovery steps (until the rolling
accuracy is back within ``recover_margin`` of frozen's pre-change accuracy), held-out accuracy,
drift alarms; ``online-classify.png``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> y = np.array(["a", "b"] * 30)
>>> xs = [np.outer(np.linspace(0, 1, 6) * (1 if v == "a" else -1), [1.0]) + rng.normal(0, .1, (6, 1))
...       for v in y]
>>> cfg = OnlineClassifyConfig(hidden_size=4, warmup=20, fit_epochs=2, holdout=0.0, rolling=5,
...                            models=["frozen", "online"])
>>> r = run(xs, y, cfg)
>>> len(r["correct"]["online"]), r["n_stream"]
(40, 40)
"""

from __future__ import annotations

import copy
import tempfile
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch
from torch import Tensor, nn

from ..data.labelled import pad_series
from ..data.split import resolve_size
from ..models.classifier import ClassifierConfig, SequenceClassifier
from ..train.trainer import TrainConfig, Trainer
from .classify import classify_loss
from .online import PageHinkley, _recovery, reservoir_add, write_report

MODELS = ("frozen", "online", "finetune", "retrain", "1nn")
DRIFTS = ("none", "reverse", "negate", "permute")


@dataclass
class OnlineClassifyConfig:
    hidden_size: int = 32
    cell: str = "lstm"
    pooling: str = "mean"
    warmup: int | float = 0.2  # stream examples (or fraction) fitted before streaming starts
    fit_epochs: int = 30  # passes over the warm-up (and each from-scratch refit)
    lr: float = 3e-3  # fitting learning rate
    batch_size: int = 16  # of the fits
    online_lr: float = 1e-3
    update_every: int = 4
    update_steps: int = 2
    window: int = 16  # recent examples in each update
    replay: int = 16  # reservoir examples per update step (0 = plain fine-tuning)
    buffer: int = 200  # reservoir capacity (examples)
    drift_delta: float = 0.05  # Page-Hinkley: tolerated rise of the error rate
    drift_threshold: float = 5.0  # Page-Hinkley: alarm level (errors)
    drift_steps: int = 20  # update steps when drift is detected
    retrain_every: int | None = None  # examples between refits; None: a quarter of the stream
    rolling: int = 50
    drift: str = "reverse"  # injected at change_point: none, reverse, negate, permute
    change_point: int | float | None = 0.5  # stream index (or fraction of the stream)
    holdout: float = 0.2  # of the examples, kept out of the stream to score the final weights
    recover_margin: float = 0.1  # recovered: rolling accuracy >= frozen's before - margin
    models: list[str] = field(default_factory=lambda: list(MODELS))
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_size", "fit_epochs", "batch_size", "update_every", "update_steps",
                     "window", "buffer", "drift_steps", "rolling"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if isinstance(self.replay, bool) or not isinstance(self.replay, int) or self.replay < 0:
            raise ValueError(f"replay: expected an int >= 0, got {self.replay!r}")
        if self.drift not in DRIFTS:
            raise ValueError(f"drift: expected one of {DRIFTS}, got {self.drift!r}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout: expected 0 <= holdout < 1, got {self.holdout!r}")
        bad = [m for m in self.models if m not in MODELS]
        if bad or not self.models:
            raise ValueError(f"models: expected some of {MODELS}, got {self.models}")


# --- model and data ----------------------------------------------------------------------------
def new_model(cfg: OnlineClassifyConfig, channels: int, classes: int) -> SequenceClassifier:
    return SequenceClassifier(ClassifierConfig(input_size=channels, num_classes=classes,
                                               cell=cfg.cell, hidden_size=cfg.hidden_size,
                                               pooling=cfg.pooling))


def _batches(x: Tensor, lengths: Tensor, y: Tensor, bs: int, seed: int) -> list:
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    out = []
    for k in range(0, len(y), bs):
        j = perm[k:k + bs]
        out.append((x[j, :int(lengths[j].max())], lengths[j], y[j]))
    return out


class _Shuffled:
    """A re-iterable list of batches, reshuffled (seeded) every pass."""

    def __init__(self, x, lengths, y, bs: int, seed: int) -> None:
        self.args, self.bs, self.seed, self.epoch = (x, lengths, y), bs, seed, 0

    def __iter__(self):
        self.epoch += 1
        return iter(_batches(*self.args, self.bs, self.seed * 1000 + self.epoch))

    def __len__(self) -> int:
        return -(-len(self.args[2]) // self.bs)


def fit(x: Tensor, lengths: Tensor, y: Tensor, classes: int, cfg: OnlineClassifyConfig,
        seed: int) -> SequenceClassifier:
    """A fresh classifier fitted on (x, lengths, y) through the Trainer (fixed epochs)."""
    torch.manual_seed(seed)
    model = new_model(cfg, x.shape[2], classes)
    tcfg = TrainConfig(epochs=cfg.fit_epochs, lr=cfg.lr, patience=None, progress=False, seed=seed,
                       resume=False, weight_decay=0.0)
    with tempfile.TemporaryDirectory() as d:
        Trainer(model, classify_loss, tcfg, d).fit(_Shuffled(x, lengths, y, cfg.batch_size, seed))
    return model.eval()


def inject(series: list[np.ndarray], labels: np.ndarray, drift: str, classes: int):
    """The drifted concept: (series, labels) as they read after the change."""
    if drift == "reverse":
        series = [s[::-1].copy() for s in series]
    elif drift == "negate":
        series = [-s for s in series]
    elif drift == "permute":
        labels = (labels + 1) % classes
    return series, labels


# --- the learner -------------------------------------------------------------------------------
class OnlineClassifier:
    """Test-then-train learner over a stream of (series, label) examples (module docstring).

    ``observe(i, x, y)`` predicts example ``i`` (x: (T, C)) with the weights in force,
    then stores it, offers it to the reservoir and (when due) updates the weights; returns the
    predicted class index."""

    def __init__(self, model: SequenceClassifier, cfg: OnlineClassifyConfig, *,
                 replay: int | None = None, learn: bool = True) -> None:
        self.model, self.cfg = model.eval(), cfg
        self.replay = cfg.replay if replay is None else replay
        self.learn = learn
        self.drift = PageHinkley(cfg.drift_delta, cfg.drift_threshold) if learn else None
        self.opt = torch.optim.AdamW(model.parameters(), lr=cfg.online_lr, weight_decay=0.0)
        self.recent: list[tuple[int, Tensor, int]] = []  # (stream index, x (T, C), y), last W
        self.buffer: list[tuple[int, Tensor, int]] = []  # reservoir of past examples
        self.seen = 0
        self.n = 0
        self.alarms: list[int] = []
        self.updates: list[int] = []  # stream indices after which the weights changed
        self.rng = np.random.default_rng(cfg.seed)

    def remember(self, i: int, x: Tensor, y: int) -> None:
        """Offer a labelled past example to the reservoir (the warm-up part, or a streamed one)."""
        if self.replay:
            self.seen += 1
            reservoir_add(self.buffer, (i, x, y), self.seen, self.cfg.buffer, self.rng)

    @torch.no_grad()
    def predict(self, x: Tensor) -> int:
        return int(self.model(x[None]).argmax(-1))

    def observe(self, i: int, x: Tensor, y: int) -> int:
        p = self.predict(x)  # test: before the label is seen
        if not self.learn:
            return p
        self.n += 1
        self.recent.append((i, x, y))
        del self.recent[:-self.cfg.window]
        steps = 0
        if self.drift is not None and self.drift.update(float(p != y)):
            self.alarms.append(i)
            steps = self.cfg.drift_steps
        elif self.n % self.cfg.update_every == 0:
            steps = self.cfg.update_steps
        if steps:
            self._update(steps)
            self.updates.append(i)
        self.remember(i, x, y)  # after the update: the replay draws strictly earlier examples
        return p

    def _update(self, steps: int) -> None:
        self.model.train()
        for _ in range(steps):
            batch = list(self.recent)
            if self.replay and self.buffer:
                picks = self.rng.choice(len(self.buffer), size=min(self.replay, len(self.buffer)),
                                        replace=False)
                batch += [self.buffer[int(j)] for j in picks]
            x, lengths = pad_series([b[1].numpy() for b in batch])
            y = torch.tensor([b[2] for b in batch])
            loss = classify_loss(self.model, (x, lengths, y))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
        self.model.eval()


# --- the comparison ----------------------------------------------------------------------------
def _count(v: int | float | None, n: int, name: str, lo: int = 1) -> int:
    k = resolve_size(v, n, name)
    if not lo <= k < n:
        raise ValueError(f"{name}: expected a count or fraction inside a stream of {n} "
                         f"examples, got {v!r}")
    return k


@torch.no_grad()
def _accuracy(model, series: list[np.ndarray], y: np.ndarray) -> float:
    if not len(y):
        return float("nan")
    x, lengths = pad_series(series)
    model.eval()
    return float((model(x, lengths).argmax(-1).numpy() == y).mean())


def _nn_predict(stream: list[np.ndarray], y: np.ndarray, start: int) -> list[int]:
    """Prequential 1-NN: example i (from ``start``) gets the label of its nearest among 0..i-1."""
    from scipy.spatial.distance import cdist

    flat = np.stack([s.reshape(-1) for s in stream])
    d = cdist(flat[start:], flat)  # (n - start, n)
    return [int(y[int(np.argmin(d[r, :i]))]) for r, i in enumerate(range(start, len(y)))]


def run(series: list[np.ndarray], labels, cfg: OnlineClassifyConfig,
        progress: bool = False) -> dict:
    """Stream labelled ``series`` (N arrays (T_i, C)) in a seeded order (module docstring)."""
    labels = np.asarray(labels)
    if len(series) != len(labels) or len(series) < 20:
        raise ValueError(f"series: expected >= 20 series with one label each, got {len(series)} "
                         f"series and {len(labels)} labels")
    series = [np.asarray(s, dtype=np.float32).reshape(len(s), -1) for s in series]
    if "1nn" in cfg.models and len({len(s) for s in series}) != 1:  # checked before any work
        raise ValueError("models: 1nn needs equal-length series; leave it out for this data")
    classes = sorted(set(labels.tolist()))
    K = len(classes)
    if K < 2:
        raise ValueError(f"labels: expected at least 2 classes, got {classes}")
    yall = np.array([classes.index(v) for v in labels.tolist()])
    order = np.random.default_rng(cfg.seed).permutation(len(series))
    nh = int(round(cfg.holdout * len(series)))
    held, streamed = order[:nh], order[nh:]
    n = len(streamed)
    w = _count(cfg.warmup, n, "warmup", lo=8)
    if cfg.change_point is None and cfg.drift != "none":
        raise ValueError(f"change_point: expected a stream index for drift {cfg.drift!r}, got None")
    cp = None if cfg.change_point is None else _count(cfg.change_point, n, "change_point", w + 1)
    # the stream as it arrives: the drifted concept from the change point on
    xs, ys = [series[j] for j in streamed], yall[streamed]
    if cp is not None:
        xd, yd = inject(xs[cp:], ys[cp:], cfg.drift, K)
        xs, ys = xs[:cp] + xd, np.concatenate([ys[:cp], yd])
    allv = np.concatenate(xs[:w])
    mu, sd = allv.mean(0), np.where(allv.std(0) > 0, allv.std(0), 1.0)
    xs = [((s - mu) / sd).astype(np.float32) for s in xs]
    X, L = pad_series(xs)
    Y = torch.as_tensor(ys, dtype=torch.long)
    xt = [torch.from_numpy(s) for s in xs]
    base = fit(X[:w], L[:w], Y[:w], K, cfg, cfg.seed)
    every = cfg.retrain_every or max(cfg.update_every, (n - w) // 4)
    learners: dict[str, OnlineClassifier] = {}
    for name in cfg.models:
        if name in ("retrain", "1nn"):
            continue
        learners[name] = lr = OnlineClassifier(copy.deepcopy(base), cfg, learn=name != "frozen",
                                               replay=0 if name == "finetune" else None)
        for i in range(w):
            lr.remember(i, xt[i], int(ys[i]))
    retrain = OnlineClassifier(copy.deepcopy(base), cfg, learn=False) if "retrain" in cfg.models \
        else None
    correct: dict[str, list[bool]] = {m: [] for m in cfg.models}
    preds: dict[str, list[int]] = {m: [] for m in cfg.models}
    steps = range(w, n)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="stream", leave=False)
    refits = []
    for i in steps:
        for name, lr in learners.items():
            p = lr.observe(i, xt[i], int(ys[i]))
            preds[name].append(p)
            correct[name].append(p == int(ys[i]))
        if retrain is not None:
            p = retrain.observe(i, xt[i], int(ys[i]))
            preds["retrain"].append(p)
            correct["retrain"].append(p == int(ys[i]))
            if (i + 1 - w) % every == 0 and i + 1 < n:  # refit on every example seen
                retrain = OnlineClassifier(fit(X[:i + 1], L[:i + 1], Y[:i + 1], K, cfg,
                                               cfg.seed + len(refits) + 1), cfg, learn=False)
                refits.append(i)
    if "1nn" in cfg.models:
        preds["1nn"] = _nn_predict(xs, ys, w)
        correct["1nn"] = [p == int(v) for p, v in zip(preds["1nn"], ys[w:])]
    k = cfg.rolling
    roll = {m: np.convolve(np.asarray(c, float), np.ones(k) / k, mode="valid").tolist()
            for m, c in correct.items()}
    report: dict = dict(config=asdict(cfg), classes=classes, n=len(series), n_stream=n - w,
                        warmup=w, change_point=cp, holdout=int(nh), every=every,
                        accuracy={m: float(np.mean(c)) for m, c in correct.items()},
                        alarms={m: lr.alarms for m, lr in learners.items() if lr.learn},
                        updates={m: len(lr.updates) for m, lr in learners.items()},
                        refits=refits, correct=correct, preds=preds, rolling=roll)
    finals = {m: lr.model for m, lr in learners.items()}
    if retrain is not None:
        finals["retrain"] = retrain.model
    hs = [((series[j] - mu) / sd).astype(np.float32) for j in held]
    hy = yall[held]
    report["holdout_old"] = {m: _accuracy(mod, hs, hy) for m, mod in finals.items()}
    if cp is not None:
        i0 = cp - w
        hn, hny = inject(hs, hy, cfg.drift, K)
        report["holdout_new"] = {m: _accuracy(mod, hn, hny) for m, mod in finals.items()}
        report["acc_before"] = {m: float(np.mean(c[:i0])) for m, c in correct.items()}
        report["acc_after"] = {m: float(np.mean(c[i0:])) for m, c in correct.items()}
        report["acc_first_after"] = {m: float(np.mean(c[i0:i0 + 2 * k])) for m, c in correct.items()}
        ref = report["acc_before"]["frozen" if "frozen" in correct else cfg.models[0]]
        level = 1.0 - ref + cfg.recover_margin  # an error-rate level for online.py's _recovery
        report["recovery_steps"] = {
            m: _recovery([1.0 - a for a in roll[m]], i0, level) for m in correct}
    return report


def format_table(r: dict) -> str:
    has_cp = "acc_after" in r
    cols = ["accuracy"] + (["before", "after", "first 2w after"] if has_cp else []) + \
        ["held-out old"] + (["held-out new", "recovery"] if has_cp else [])
    lines = [f"{'model':<10}" + "".join(f"{c:>15}" for c in cols)]
    for m in r["accuracy"]:
        row = [f"{r['accuracy'][m]:.3f}"]
        if has_cp:
            row += [f"{r['acc_before'][m]:.3f}", f"{r['acc_after'][m]:.3f}",
                    f"{r['acc_first_after'][m]:.3f}"]
        row.append(f"{r['holdout_old'][m]:.3f}" if m in r["holdout_old"] else "-")
        if has_cp:
            rec = r["recovery_steps"][m]
            row += [f"{r['holdout_new'][m]:.3f}" if m in r["holdout_new"] else "-",
                    "never" if rec is None else f"{rec} ex"]
        lines.append(f"{m:<10}" + "".join(f"{c:>15}" for c in row))
    return "\n".join(lines)


def plot(path: str, r: dict, title: str = "") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w, k = r["warmup"], r["config"]["rolling"]
    fig, ax = plt.subplots(figsize=(8, 4))
    for m, roll in r["rolling"].items():
        ax.plot(np.arange(w + k - 1, w + k - 1 + len(roll)), roll, label=m, lw=1.2)
    for t in r["alarms"].get("online", []):
        ax.axvline(t, color="tab:orange", lw=0.5, alpha=0.5)
    if r.get("change_point") is not None:
        ax.axvline(r["change_point"], color="r", ls="--", lw=0.8)
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(f"rolling accuracy ({k} examples)")
    ax.set_xlabel("stream example (dashed: change; thin: online drift alarms)")
    ax.legend(fontsize=8, ncol=3, loc="lower left")
    ax.set_title(title or "online vs frozen vs retrain-from-scratch", fontsize=10)
    fig.tight_layout()
    from .._io import atomic_write

    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def classify_online(dataset: str = "italypowerdemand", *, out: str | None = None,
                    config: OnlineClassifyConfig | None = None, echo=print,
                    progress: bool = False, threads: int = 1) -> dict:
    """``lstmkit classify online``: a catalogue series problem's examples (train and test splits
    pooled) streamed in a seeded order with the configured drift, on ``threads`` threads."""
    from .._threads import limited_threads

    with limited_threads(threads):
        return _classify_online(dataset, out, config, echo, progress)


def _classify_online(dataset, out, config, echo, progress) -> dict:

    from ..data import datasets
    from ..data.labelled import SeriesSet

    cfg = config or OnlineClassifyConfig()
    if dataset not in datasets.names("classify"):
        raise ValueError(f"dataset: expected a classification set {datasets.names('classify')}, "
                         f"got {dataset!r}")
    got = datasets.load(dataset)
    parts = [got["train"], got["test"]] if isinstance(got, dict) else [got]
    if not all(isinstance(s, SeriesSet) for s in parts):
        raise ValueError(f"dataset: expected a series problem for online classification, got "
                         f"{dataset!r} (texts)")
    series = [s for p in parts for s in p.series]
    labels = np.concatenate([p.labels for p in parts])
    if "1nn" in cfg.models and len({len(s) for s in series}) != 1:
        cfg = replace(cfg, models=[m for m in cfg.models if m != "1nn"])
        echo("unequal lengths: the 1nn baseline is left out")
    r = run(series, labels, cfg, progress=progress)
    echo(f"{dataset}: {r['n']} examples, {r['holdout']} held out, {r['warmup']} fitted, "
         f"{r['n_stream']} streamed (test, then train); drift {cfg.drift!r} at example "
         f"{r['change_point']}; online updates every {cfg.update_every} on the last "
         f"{cfg.window} (+{cfg.replay} replayed), drift alarms {r['alarms'].get('online', [])}, "
         f"refits at {r['refits']}")
    echo(format_table(r))
    if out:
        write_report(out, "online-classify", r, ("correct", "preds", "rolling"),
                     lambda path: plot(path, r, f"{dataset}: drift '{cfg.drift}' at example "
                                                f"{r['change_point']}"), echo)
    return r


__all__ = ["OnlineClassifyConfig", "OnlineClassifier", "run", "classify_online", "inject",
           "format_table", "plot"]
