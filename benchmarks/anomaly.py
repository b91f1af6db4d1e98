"""Anomaly-detection benchmark: the LSTM detectors beside the one-liners, Isolation Forest and
matrix-profile discords on every labelled series of the catalogue, plus the streaming scorer's
cost per point.

Run: ``python -m benchmarks.anomaly [--only NAME ...] [--epochs N] [--out DIR]``. Every series goes
through ``lstmkit.jobs.anomaly.train`` with its defaults (window from the season, normal
validation = the last quarter of the training part, threshold from normal or labelled
validation, never from the test); EncDec-AD (teacher forcing), EncDec-AD latent-only and LSTM-AD
(stateful forecaster, 5 steps ahead) are trained with seed 0. Prints markdown: per series and
model ROC-AUC, PR-AUC, best F1 (an oracle over thresholds), F1 at the chosen threshold, range F1
(Tatbul et al., flat bias), F1 under Hundman et al.'s unsupervised dynamic threshold, the UCR
protocol where it applies, and the inflated point-adjusted F1
apart; then the streaming timing (benchmarks/README.md holds a measured copy).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import torch

from lstmkit.data import datasets
from lstmkit.jobs.anomaly import AnomalyConfig, train
from lstmkit.train.anomaly_metrics import dynamic_threshold, f1_at

SUITE = ["kdd_tsad_135", "ecg_diff_count_3", "mitdb", "gunpoint_one_class"]
DETECTORS = [  # row name, config changes
    ("EncDec-AD", dict(detector="autoencoder")),
    ("EncDec-AD latent", dict(detector="autoencoder", latent_only=True)),
    ("LSTM-AD", dict(detector="forecast")),
]
BASELINES = ("abs_diff", "moving_zscore", "isolation_forest", "discord")


def run_series(name: str, out: str, epochs: int) -> tuple[dict, dict]:
    """{row: metrics}, {row: seconds} for one series."""
    data = datasets.load(name)
    rows, secs = {}, {}
    for k, (label, change) in enumerate(DETECTORS):
        cfg = AnomalyConfig(dataset=name, epochs=epochs, no_progress=True, baselines=(k == 0),
                            out=os.path.join(out, name, label.replace(" ", "_")), **change)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = train(cfg, data, echo=lambda *_: None)
        secs[label] = time.perf_counter() - t0
        rows[f"{label} (Mahalanobis)"] = _dynamic(res, "lstm", data)
        rows[f"{label} (error)"] = _dynamic(res, "lstm_error", data)
        if k == 0:
            for b in BASELINES:
                rows[b] = _dynamic(res, b, data)
            window, thr = res.window, res.threshold["method"]
        print(f"  {name} {label}: window {res.window}, {secs[label]:.0f} s", file=sys.stderr)
    return rows, {"seconds": secs, "window": window, "threshold": thr,
                  "n_test": len(data.test), "anomalies": int(data.test_labels.sum())}


def _dynamic(res, name: str, data) -> dict:
    """The job's metrics of one score plus F1 under the unsupervised dynamic threshold."""
    thr, smooth = dynamic_threshold(res.scores[f"score_{name}"].to_numpy())
    return {**res.metrics[name], "f1_dynamic": f1_at(smooth >= thr, data.test_labels)}


def table(name: str, rows: dict, info: dict) -> str:
    cols = [("roc_auc", "ROC-AUC"), ("pr_auc", "PR-AUC"), ("best_f1", "best F1"), ("f1", "F1 @thr"),
            ("range_f1", "range F1"), ("f1_dynamic", "F1 dynamic"), ("ucr_hit", "UCR ±100"),
            ("point_adjusted_f1_INFLATED", "PA-F1 (inflated)")]
    cols = [c for c in cols if any(c[0] in r for r in rows.values())]
    lines = [f"### {name} ({info['n_test']} test points, {info['anomalies']} anomalous; window "
             f"{info['window']}; threshold: {info['threshold']})", "",
             "| model | " + " | ".join(h for _, h in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    best = {k: max((r.get(k, -1) for r in rows.values() if isinstance(r.get(k), float)), default=None)
            for k in ("roc_auc", "pr_auc")}
    for model, r in rows.items():
        cells = []
        for k, _ in cols:
            v = r.get(k)
            if isinstance(v, bool):
                cells.append("yes" if v else "no")
            elif v is None:
                cells.append("-")
            else:
                s = f"{v:.3f}"
                cells.append(f"**{s}**" if k in best and best[k] is not None and v == best[k] else s)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def streaming_cost(name: str, out: str, epochs: int, n: int = 2000) -> str:
    """Per point: the stateful scorer's one step against re-running the LSTM over the last window."""
    from lstmkit.models.anomaly import StreamingPredictionScorer, step_predictions
    from lstmkit.models.checkpoints import load_model

    path = os.path.join(out, name, "LSTM-AD", "model.pt")
    model, parts = load_model(path)
    T = int(parts["window"])
    x = datasets.load(name).test[:n, 0]
    from lstmkit.data.scaling import StandardScaler

    x = StandardScaler().load_state_dict(parts["scaler"]).transform(x[:, None])[:, 0]
    s = StreamingPredictionScorer(model)
    xt = torch.as_tensor(x, dtype=torch.float32)
    res = {}
    for _ in range(2):  # warm-up, then measured
        s.reset()
        t0 = time.perf_counter()
        for v in x:
            s.update(v)
        res["stream"] = (time.perf_counter() - t0) / len(x)
        t0 = time.perf_counter()
        with torch.no_grad():
            for t in range(T, len(x)):
                step_predictions(model, xt[t - T + 1:t + 1].view(1, T, 1))
        res["window"] = (time.perf_counter() - t0) / (len(x) - T)
    return (f"Streaming LSTM-AD on {name} (window {T}, H={model.config.hidden_size}, {len(x)} points, "
            f"one thread): {res['stream'] * 1e6:.0f} µs per point carrying the state, "
            f"{res['window'] * 1e6:.0f} µs per point re-scoring its window "
            f"({res['window'] / res['stream']:.1f}x)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", default=None)
    p.add_argument("--epochs", type=int, default=AnomalyConfig().epochs)
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    out = args.out or tempfile.mkdtemp(prefix="lstmkit-anomaly-")
    names = args.only or SUITE
    load = os.getloadavg()
    t0 = time.perf_counter()
    parts = []
    for name in names:
        rows, info = run_series(name, out, args.epochs)
        parts.append(table(name, rows, info))
        secs = ", ".join(f"{k} {v:.0f}" for k, v in info["seconds"].items())
        parts.append(f"Training + scoring seconds: {secs}")
        print(parts[-2] + "\n\n" + parts[-1] + "\n", flush=True)
    stream = streaming_cost(names[0], out, args.epochs)
    print(stream)
    print(f"\n{len(names)} series, {time.perf_counter() - t0:.0f} s, load average at start "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; artefacts in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
