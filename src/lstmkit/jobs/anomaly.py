"""The anomaly-detection job: LSTM detectors scored honestly beside the one-liners.

Symbols: N points, F features, T window length, l prediction length, H hidden.

``train(AnomalyConfig(...)) -> Result``:

1. reads a labelled series from the catalogue (``dataset``, default ``kdd_tsad_135``) or a CSV
   (value column(s), optional 0/1 ``label`` column, the first ``train_size`` points train);
2. resolves the window length from the data (the season of the training part, at most 64) and
   says why; checks the input (constant series, window too long, labelled anomalies in the
   training part: warned with their count);
3. holds out the last ``val_share`` of the (normal) training part as *normal validation*; fits
   the scaler on the rest and trains one detector through :class:`lstmkit.train.Trainer`:
   ``autoencoder`` (EncDec-AD, :mod:`lstmkit.models.autoencoder`; ``latent_only`` for the
   unconditioned decoder) or ``forecast`` (LSTM-AD: a stateful :class:`Forecaster` predicting
   the next ``horizon`` values at every step, trained by truncated BPTT);
4. fits a Gaussian to the error vectors of the normal validation part (the Mahalanobis score)
   and picks the threshold without the test labels: ``fbeta`` on the source's labelled
   validation series when it has one, else the ``percentile`` of the normal validation scores;
   ``dynamic`` (Hundman et al.) thresholds the test scores without labels;
5. scores the test part (reading the training part as its past when the test continues it)
   with the LSTM (per-point error and Mahalanobis score) and the baselines (absolute first
   difference, moving z-score, Isolation Forest, matrix-profile discord), each thresholded the
   same way, and prints one table;
6. writes ``config.json``, ``metrics.json``, ``scores.csv``, ``anomaly.png`` and ``model.pt``.

``score(checkpoint, ...)`` applies a trained detector to new data (the CLI's ``score``).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields

import numpy as np
import pandas as pd
import torch

from .._io import atomic_write, atomic_write_text, prepare_out
from .._threads import limited_threads
from ..data.anomaly import AnomalySeries, check_training_data, read_csv, segments
from ..data.scaling import StandardScaler
from ..models.anomaly import prediction_errors, reconstruction_errors
from ..models.autoencoder import AutoencoderConfig, LSTMAutoencoder, reverse_target
from ..models.checkpoints import load_model, save_model
from ..models.forecaster import Forecaster, ForecasterConfig
from ..train import anomaly_metrics as am
from ..train.trainer import TrainConfig, Trainer
from . import _anomaly_baselines as bl
from ._config import config_from

DETECTORS = ("autoencoder", "forecast")
THRESHOLDS = ("percentile", "fbeta", "dynamic")
MAX_WINDOW = 64
LSTM = "lstm"  # the row of the LSTM's Mahalanobis score; "lstm_error" is its raw error


@dataclass
class AnomalyConfig:
    """Every ``lstmkit anomaly train`` flag (same name, same default). ``None`` = from the data."""

    dataset: str | None = None  # a catalogue name (task "anomaly"); default kdd_tsad_135
    csv: str | None = None
    value: list[str] = field(default_factory=list)  # CSV value columns (default: every numeric one)
    label: str | None = None  # CSV 0/1 label column
    train_size: int | float = 0.3  # CSV: the first points (count or fraction) are training data
    detector: str = "autoencoder"
    latent_only: bool = False  # autoencoder: decoder sees only the latent state
    window: int | None = None
    horizon: int = 5  # forecast detector: l values predicted at every step
    hidden_size: int = 32
    num_layers: int = 1
    epochs: int = 50
    batch_size: int = 64
    lr: float = 3e-3
    patience: int = 8
    val_share: float = 0.25  # last share of the training part held out as normal validation
    max_train_windows: int = 2000  # autoencoder: a seeded sample of the training windows
    stride: int = 1  # autoencoder: scoring windows start every `stride` points
    threshold: str | None = None  # percentile | fbeta | dynamic; None: fbeta if labelled val, else percentile
    percentile: float = 99.0
    beta: float = 0.1
    baselines: bool = True
    seed: int = 0
    threads: int = 1
    no_progress: bool = False
    out: str = os.path.join("runs", "anomaly")

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ValueError(f"detector: expected one of {DETECTORS}, got {self.detector!r}")
        if self.threshold is not None and self.threshold not in THRESHOLDS:
            raise ValueError(f"threshold: expected one of {THRESHOLDS} or None, got {self.threshold!r}")
        for name in ("horizon", "hidden_size", "num_layers", "epochs", "batch_size", "patience",
                     "max_train_windows", "stride", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if self.window is not None and (isinstance(self.window, bool) or not isinstance(self.window, int)
                                        or self.window < 2):
            raise ValueError(f"window: expected an int >= 2 or None (from the data), got {self.window!r}")
        if not 0 < self.val_share < 1:
            raise ValueError(f"val_share: expected a fraction in (0, 1), got {self.val_share}")
        if not 0 < self.percentile <= 100:
            raise ValueError(f"percentile: expected a number in (0, 100], got {self.percentile}")
        if not self.beta > 0:
            raise ValueError(f"beta: expected > 0, got {self.beta}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")
        if self.csv and self.dataset:
            raise ValueError("dataset/csv: expected one of them, got both")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    config: AnomalyConfig
    metrics: dict  # model name -> metrics on the test part
    scores: pd.DataFrame  # one row per test point: index, value(s), label, each model's score
    threshold: dict  # method, value, why
    window: int
    why: list[str]
    model: torch.nn.Module


def config_from_flags(flags: dict, path: str | None = None) -> AnomalyConfig:
    """The config of ``lstmkit anomaly train``: ``flags`` over the fields of a TOML file or of a
    run's saved ``config.json`` (which reproduces that run; :mod:`lstmkit.jobs._config`)."""
    return config_from(AnomalyConfig, flags, path)


# ----------------------------------------------------------------------------- data
def load_series(cfg: AnomalyConfig) -> AnomalySeries:
    if cfg.csv:
        return read_csv(cfg.csv, cfg.value or None, cfg.label, cfg.train_size)
    from ..data import datasets

    name = cfg.dataset or "kdd_tsad_135"
    names = datasets.names("anomaly")
    if name not in names:
        raise ValueError(f"dataset: expected an anomaly set of {names}, got {name!r}")
    return datasets.load(name)


def resolve_window(cfg: AnomalyConfig, s: AnomalySeries) -> tuple[int, str]:
    if cfg.window is not None:
        return cfg.window, f"window {cfg.window}: given"
    from ..data.season import detect_season

    m = detect_season(s.train[:, 0], max_season=min(len(s.train) // 4, 400)).season
    cap = min(MAX_WINDOW, max(2, len(s.train) // 8))
    if m > 1:
        w = min(m, cap)
        why = f"the training part's season is {m}" + (f", capped at {w}" if w < m else "")
    else:
        w = min(32, cap)
        why = "no season in the training part: the default"
    return int(w), f"window {w}: {why}"


# ----------------------------------------------------------------------------- detectors
def _windows(x: np.ndarray, T: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(x, T, axis=0).transpose(0, 2, 1).copy()  # (W, T, F)


def _sample(w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    return w if len(w) <= k else w[np.sort(rng.choice(len(w), k, replace=False))]


def fit_autoencoder(cfg: AnomalyConfig, fit: np.ndarray, val: np.ndarray, T: int, out: str):
    rng = np.random.default_rng(cfg.seed)
    tr = torch.as_tensor(_sample(_windows(fit, T), cfg.max_train_windows, rng), dtype=torch.float32)
    va = torch.as_tensor(_sample(_windows(val, T), 1000, rng), dtype=torch.float32)
    torch.manual_seed(cfg.seed)
    model = LSTMAutoencoder(AutoencoderConfig(input_size=fit.shape[1], hidden_size=cfg.hidden_size,
                                              num_layers=cfg.num_layers, latent_only=cfg.latent_only))
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(tr), batch_size=cfg.batch_size,
                                         shuffle=True)
    val_loader = [(va[i:i + 256],) for i in range(0, len(va), 256)]

    def loss(m, batch):  # teacher forcing in train mode, the model's own outputs in eval mode
        (x,) = batch
        return torch.nn.functional.mse_loss(m(x), reverse_target(x))

    trainer = Trainer(model, loss, _train_config(cfg), out)
    trainer.fit(loader, val_loader)
    return model.eval(), trainer


def _stream_batches(x: np.ndarray, T: int, l: int, n_streams: int):
    """Truncated-BPTT batches: the series cut into ``n_streams`` contiguous streams, each walked in
    chunks of T; row b of a batch continues row b of the previous one. Targets (B, T, l) are the
    next l values of every step, with a mask where they run past the stream's end."""
    n = len(x) // n_streams
    s = x[:n * n_streams, 0].reshape(n_streams, n)  # (B, n)
    pad = np.concatenate([s, np.zeros((n_streams, l))], axis=1)
    batches = []
    for a in range(0, n - 1, T):
        b = min(a + T, n - 1)
        steps = np.arange(a, b)
        idx = steps[:, None] + 1 + np.arange(l)  # (T, l)
        y = pad[:, idx]  # (B, T, l)
        mask = np.broadcast_to(idx < n, y.shape)
        batches.append(tuple(torch.as_tensor(v, dtype=torch.float32)
                             for v in (s[:, steps, None], y, mask.astype(np.float64))))
    return batches


def fit_forecaster(cfg: AnomalyConfig, train_scaled: np.ndarray, n_fit: int, T: int, out: str):
    """LSTM-AD: fitted on the first ``n_fit`` points of the scaled training series, validated on
    the rest (one stateful pass over it all)."""
    fit = train_scaled[:n_fit]
    if fit.shape[1] != 1:
        raise ValueError(f"detector: 'forecast' models one channel, got {fit.shape[1]} (use "
                         f"--detector autoencoder for several value columns)")
    torch.manual_seed(cfg.seed)
    model = Forecaster(ForecasterConfig(input_size=1, horizon=cfg.horizon, mode="direct",
                                        hidden_size=cfg.hidden_size, num_layers=cfg.num_layers))
    n_streams = int(max(1, min(cfg.batch_size, len(fit) // (8 * T))))
    batches = _stream_batches(fit, T, cfg.horizon, n_streams)

    def loss(m, batch, hx):
        x, y, mask = batch
        out_, hx = m.lstm(x, hx)
        err = (m.head(out_) - y) ** 2 * mask
        return err.sum() / mask.sum().clamp_min(1), hx

    def val_error(m, _loader):  # one stateful pass over train + validation, scored on validation
        e = prediction_errors(m, train_scaled)[n_fit:]
        return float(np.nanmean(e ** 2))

    trainer = Trainer(model, loss, _train_config(cfg), out, stateful=True, eval_fn=val_error)
    trainer.fit(batches, [None])
    return model.eval(), trainer


def _train_config(cfg: AnomalyConfig) -> TrainConfig:
    return TrainConfig(epochs=cfg.epochs, lr=cfg.lr, patience=cfg.patience, seed=cfg.seed,
                       progress=False if cfg.no_progress else None, resume=False, restore_best=True)


def error_vectors(model, detector: str, x: np.ndarray, T: int, stride: int = 1) -> np.ndarray:
    """Scaled series (N, F) -> the detector's error vectors (N, D); NaN rows where undefined."""
    if detector == "forecast":
        return prediction_errors(model, x)
    return reconstruction_errors(model, x, T, stride)


def lstm_scores(e: np.ndarray, gaussian: am.GaussianErrors) -> dict[str, np.ndarray]:
    """Error vectors -> {"lstm_error": mean |e|, "lstm": Mahalanobis}; unscored points get the
    lowest score of their series (never flagged)."""
    ok = np.isfinite(e).all(axis=1)
    err = np.full(len(e), np.nan)
    maha = np.full(len(e), np.nan)
    err[ok] = np.abs(e[ok]).mean(axis=1)
    maha[ok] = gaussian.score(e[ok])
    return {"lstm_error": bl._fill(err), LSTM: bl._fill(maha)}


# ----------------------------------------------------------------------------- thresholds
def choose_threshold(method: str, val_scores: np.ndarray, test_scores: np.ndarray, cfg: AnomalyConfig,
                     labelled: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, dict]:
    """(0/1 flags on the test part, what was chosen). Never reads the test labels."""
    if method == "percentile":
        t = am.percentile_threshold(val_scores, cfg.percentile)
        return test_scores >= t, {"method": method, "value": t,
                                  "why": f"{cfg.percentile:g}th percentile of the normal validation scores"}
    if method == "fbeta":
        if labelled is None:
            raise ValueError("threshold: 'fbeta' needs a labelled validation series; this data has none "
                             "(use 'percentile' or 'dynamic')")
        t = am.fbeta_threshold(labelled[0], labelled[1], cfg.beta)
        return test_scores >= t, {"method": method, "value": t,
                                  "why": f"maximises F{cfg.beta:g} on the labelled validation series"}
    thr, smooth = am.dynamic_threshold(test_scores)
    return smooth >= thr, {"method": method, "value": float(np.median(thr)),
                           "why": "Hundman et al. dynamic threshold on the smoothed test scores (no labels)"}


# ----------------------------------------------------------------------------- the job
def train(config: AnomalyConfig, data: AnomalySeries | None = None, echo=print) -> Result:
    cfg = config
    prepare_out(cfg.out)
    with limited_threads(cfg.threads):  # torch and the BLAS pools (IsolationForest, statsmodels)
        return _train(cfg, data, echo)


def _train(cfg: AnomalyConfig, data: AnomalySeries | None, echo) -> Result:
    s = data if data is not None else load_series(cfg)
    T, why_w = resolve_window(cfg, s)
    why = [why_w]
    check_training_data(s, T)
    n_tr = len(s.train)
    n_val = max(int(round(cfg.val_share * n_tr)), 2 * T)
    n_fit = n_tr - n_val
    if n_fit < 2 * T:
        raise ValueError(f"window: {T} leaves {n_fit} training points after the {n_val}-point "
                         f"validation part; expected at least 2 windows (shorten the window)")
    why.append(f"normal validation: the last {n_val} of {n_tr} training points")
    scaler = StandardScaler().fit(s.train[:n_fit])
    train_x = scaler.transform(s.train)  # (N_tr, F)
    fit, val = train_x[:n_fit], train_x[n_fit:]
    work = os.path.join(cfg.out, "training")
    if cfg.detector == "autoencoder":
        model, trainer = fit_autoencoder(cfg, fit, val, T, work)
    else:
        model, trainer = fit_forecaster(cfg, train_x, n_fit, T, work)
    epochs = len(trainer.history)

    # error vectors: validation from the training series alone, test with its past where it has one
    e_train = error_vectors(model, cfg.detector, train_x, T, cfg.stride)
    gaussian = am.GaussianErrors().fit(e_train[n_fit:])
    if s.continues:
        full = np.concatenate([train_x, scaler.transform(s.test)])
        e_test = error_vectors(model, cfg.detector, full, T, cfg.stride)[n_tr:]
    else:
        e_test = error_vectors(model, cfg.detector, scaler.transform(s.test), T, cfg.stride)
    val_sc = {k: v[n_fit:] for k, v in lstm_scores(e_train, gaussian).items()}
    test_sc = lstm_scores(e_test, gaussian)
    lab_sc = None
    if s.labelled_val is not None:
        e_lab = error_vectors(model, cfg.detector, scaler.transform(s.labelled_val[0]), T, cfg.stride)
        lab_sc = lstm_scores(e_lab, gaussian)

    if cfg.baselines:
        for name, (v, t, lv) in baseline_scores(s, T, n_fit, cfg.seed).items():
            val_sc[name], test_sc[name] = v, t
            if lab_sc is not None:
                lab_sc[name] = lv

    method = cfg.threshold or ("fbeta" if s.labelled_val is not None else "percentile")
    why.append(f"threshold: {method}" + ("" if cfg.threshold else
                                         (" (the source has a labelled validation series)"
                                          if method == "fbeta" else " (no labelled validation series)")))
    flags, thresholds = {}, {}
    for name in test_sc:
        lab = (lab_sc[name], s.labelled_val[1]) if lab_sc is not None else None
        flags[name], thresholds[name] = choose_threshold(method, val_sc[name], test_sc[name], cfg, lab)

    metrics = {}
    if s.test_labels is not None and s.test_labels.any():
        for name in test_sc:
            metrics[name] = am.all_metrics(test_sc[name], s.test_labels, flags[name])
    for line in why:
        echo(f"anomaly: {line}")
    scores = _score_frame(s, test_sc, flags)
    res = Result(cfg, metrics, scores, thresholds[LSTM], T, why, model)
    extra = dict(dataset=s.name, about=s.about, window=T, n_train=n_tr, n_fit=n_fit, epochs=epochs,
                 detector=_detector_name(cfg), thresholds=thresholds,
                 training_labels_anomalous=int(s.train_labels.sum()) if s.train_labels is not None else None)
    _write(res, s, scaler, gaussian, extra, flags)
    echo(format_table(metrics, f"{s.name}: {_detector_name(cfg)} vs baselines (test part, "
                               f"{len(s.test)} points, threshold: {method})"))
    return res


def _detector_name(cfg: AnomalyConfig) -> str:
    if cfg.detector == "forecast":
        return f"LSTM-AD (predicts {cfg.horizon})"
    return "EncDec-AD" + (" latent-only" if cfg.latent_only else "")


def baseline_scores(s: AnomalySeries, T: int, n_fit: int, seed: int):
    """name -> (scores on the normal validation part, on the test part, on the labelled
    validation series or None), every baseline reading the same data as the LSTM."""
    lab = s.labelled_val[0] if s.labelled_val is not None else None
    lab = None if lab is None else (lab[:, None] if lab.ndim == 1 else lab)
    n_tr = len(s.train)

    def split(fn):
        tr = fn(s.train)[n_fit:]
        te = fn(np.concatenate([s.train, s.test]))[n_tr:] if s.continues else fn(s.test)
        return tr, te, (fn(lab) if lab is not None else None)

    out = {"abs_diff": split(bl.abs_diff), "moving_zscore": split(lambda x: bl.moving_zscore(x, T))}
    forest = bl.IsolationForestBaseline(T, seed).fit(s.train[:n_fit])
    out["isolation_forest"] = split(forest.score)
    out["discord"] = split(lambda x: bl.discord(x, T))
    return out


def _score_frame(s: AnomalySeries, scores: dict, flags: dict) -> pd.DataFrame:
    df = pd.DataFrame({"index": np.arange(len(s.test)) + s.offset})
    for j, c in enumerate(s.columns[:s.test.shape[1]]):
        df[c] = s.test[:, j]
    if s.test_labels is not None:
        df["label"] = s.test_labels
    for name, v in scores.items():
        df[f"score_{name}"] = v
    df["flagged"] = np.asarray(flags[LSTM]).astype(int)
    return df


COLUMNS = [("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("best_f1", "bestF1"), ("f1", "F1@thr"),
           ("range_f1", "rangeF1"), ("ucr_hit", "UCR"), ("point_adjusted_f1_INFLATED", "PA-F1*")]


def format_table(metrics: dict, title: str = "") -> str:
    if not metrics:
        return f"{title}\n(no labelled anomalies in the test part: scores written, no metrics)"
    cols = [c for c in COLUMNS if any(c[0] in m for m in metrics.values())]
    head = f"{'model':<18}" + "".join(f"{h:>9}" for _, h in cols)
    lines = [title, head, "-" * len(head)]
    for name, m in metrics.items():
        cells = []
        for k, _ in cols:
            v = m.get(k)
            text = "-" if v is None else "yes" if v is True else "no" if v is False else f"{v:.3f}"
            cells.append(f"{text:>9}")
        lines.append(f"{name:<18}" + "".join(cells))
    lines.append("lstm = Mahalanobis score, lstm_error = raw error; *PA-F1 is point-adjusted, INFLATED "
                 "(Wu & Keogh 2021): not for comparison")
    return "\n".join(lines)


def _json(obj) -> str:
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, float)):
            return None if not math.isfinite(float(v)) else float(v)
        if isinstance(v, np.integer):
            return int(v)
        if isinstance(v, np.bool_):
            return bool(v)
        return v

    return json.dumps(clean(obj), indent=2)


def _write(res: Result, s: AnomalySeries, scaler, gaussian, extra: dict, flags: dict) -> None:
    cfg = res.config
    out = cfg.out
    resolved = {**cfg.to_dict(), "window": res.window, "threshold": res.threshold["method"]}
    atomic_write_text(os.path.join(out, "config.json"), _json(resolved))
    atomic_write_text(os.path.join(out, "metrics.json"),
                      _json({"dataset": s.name, "window": res.window, "why": res.why,
                             "threshold": res.threshold, "models": res.metrics, **extra}))
    atomic_write(os.path.join(out, "scores.csv"), lambda tmp: res.scores.to_csv(tmp, index=False))
    save_model(os.path.join(out, "model.pt"), res.model, job="anomaly", job_config=cfg.to_dict(),
               window=res.window, detector=cfg.detector, scaler=scaler.state_dict(),
               gaussian=gaussian.state_dict(), threshold=res.threshold)
    plot(os.path.join(out, "anomaly.png"), res.scores, s.columns[0], f"{s.name}: {extra['detector']}",
         res.threshold, flags[LSTM])


def plot(path: str, df: pd.DataFrame, column: str, title: str, threshold: dict, flags) -> None:
    """The series with true anomalies shaded and detections marked; below, the score and threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    idx = df["index"].to_numpy()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(12, 5.5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    ax1.plot(idx, df[column], lw=0.6, color="C0", label=column)
    if "label" in df:
        for k, (a, b) in enumerate(segments(df["label"].to_numpy())):
            for ax in (ax1, ax2):
                ax.axvspan(idx[a], idx[b - 1] + 1, color="C3", alpha=0.18, lw=0,
                           label="true anomaly" if (k == 0 and ax is ax1) else None)
    hit = np.asarray(flags).astype(bool)
    ax1.scatter(idx[hit], df[column].to_numpy()[hit], s=8, color="C3", zorder=3, label="detected")
    ax1.set_title(title)
    ax1.legend(loc="upper right", fontsize=8)
    score = df[f"score_{LSTM}"].to_numpy()
    ax2.plot(idx, score, lw=0.6, color="C2", label="Mahalanobis score")
    if threshold["method"] != "dynamic":
        ax2.axhline(threshold["value"], color="k", ls="--", lw=0.8,
                    label=f"threshold ({threshold['method']})")
    ax2.set_yscale("symlog", linthresh=1.0)
    ax2.set_ylim(bottom=0)
    ax2.set_xlabel("time index")
    ax2.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


# ----------------------------------------------------------------------------- score
def score(checkpoint: str, csv: str | None = None, dataset: str | None = None, label: str | None = None,
          value: list[str] | None = None, out: str | None = None, echo=print) -> pd.DataFrame:
    """Score new data with a trained detector: every row of ``csv`` (with an optional ``label``
    column), or the test part of a catalogue ``dataset``. Flags with the saved threshold (the
    dynamic one is recomputed on the new scores); writes scores.csv, anomaly.png and, with
    labels, metrics.json into ``out`` (default: the checkpoint's folder / "score")."""
    model, parts = load_model(checkpoint)
    if parts.get("job") != "anomaly":
        raise ValueError(f"checkpoint: expected an 'lstmkit anomaly train' model.pt, got "
                         f"job={parts.get('job')!r}")
    jc = AnomalyConfig(**{k: v for k, v in parts["job_config"].items()
                          if k in {f.name for f in fields(AnomalyConfig)}})
    T, det = int(parts["window"]), parts["detector"]
    scaler = StandardScaler().load_state_dict(parts["scaler"])
    gaussian = am.GaussianErrors().load_state_dict(parts["gaussian"])
    if (csv is None) == (dataset is None):
        raise ValueError("score: expected --csv PATH or --dataset NAME")
    if csv is not None:
        s = read_csv(csv, value, label, train_size=1)  # every row but the first is scored...
        x = np.concatenate([s.train, s.test])  # ...so put the first back: all rows are scored
        labels = None if s.test_labels is None else np.concatenate([s.train_labels, s.test_labels])
        s = AnomalySeries(s.name, x[:1], x, labels, continues=False, columns=s.columns)
        context = None
    else:
        s = load_series(AnomalyConfig(dataset=dataset))
        context = scaler.transform(s.train) if s.continues else None
    if s.test.shape[1] != len(scaler.mean_):
        raise ValueError(f"value: expected {len(scaler.mean_)} value column(s) as in training, "
                         f"got {s.test.shape[1]}")
    if len(s.test) < T and context is None:
        raise ValueError(f"csv: expected at least the window's {T} rows, got {len(s.test)}")
    x = scaler.transform(s.test)
    if context is not None:
        e = error_vectors(model, det, np.concatenate([context, x]), T, jc.stride)[len(context):]
    else:
        e = error_vectors(model, det, x, T, jc.stride)
    sc = lstm_scores(e, gaussian)
    thr = dict(parts["threshold"])
    if thr["method"] == "dynamic":
        t, smooth = am.dynamic_threshold(sc[LSTM])
        flags = smooth >= t
    else:
        flags = sc[LSTM] >= thr["value"]
    out = out or os.path.join(os.path.dirname(os.path.abspath(os.fspath(checkpoint)))
                              if os.path.isfile(checkpoint) else checkpoint, "score")
    prepare_out(out)
    df = _score_frame(s, sc, {LSTM: flags})
    atomic_write(os.path.join(out, "scores.csv"), lambda tmp: df.to_csv(tmp, index=False))
    metrics = {}
    if s.test_labels is not None and s.test_labels.any():
        metrics = {name: am.all_metrics(v, s.test_labels, flags if name == LSTM else None)
                   for name, v in sc.items()}
        atomic_write_text(os.path.join(out, "metrics.json"),
                          _json({"data": s.name, "threshold": thr, "models": metrics}))
    plot(os.path.join(out, "anomaly.png"), df, s.columns[0], f"{s.name}: scored by {checkpoint}", thr, flags)
    echo(f"anomaly score: {int(flags.sum())} of {len(flags)} points flagged; wrote {out}")
    if metrics:
        echo(format_table(metrics, s.name))
    return df
