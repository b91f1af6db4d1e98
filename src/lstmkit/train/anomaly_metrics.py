"""Anomaly scores -> thresholds and metrics (scikit-learn where it has them).

Symbols: N points, D error dimensions.

- :class:`GaussianErrors`: the anomaly score of Malhotra et al. (2015, 2016): a Gaussian fitted
  to error vectors on *normal validation* data; the score is the squared Mahalanobis distance
  ``(e - mu)^T Sigma^-1 (e - mu)``.
- thresholds: :func:`percentile_threshold` (normal validation scores),
  :func:`fbeta_threshold` (the paper's choice when a labelled validation series exists),
  :func:`dynamic_threshold` (Hundman et al. 2018, unsupervised, per window of a stream);
- metrics: ROC-AUC, PR-AUC (average precision), best F1 over all thresholds, F1 at a threshold,
  range-based precision/recall (Tatbul et al. 2018), point-adjusted F1 (inflated: reported
  apart), and the UCR archive's single-anomaly protocol.

>>> import numpy as np
>>> y = np.array([0, 0, 1, 1, 0, 0, 0, 0])
>>> p = np.array([0, 0, 0, 1, 1, 0, 0, 0])
>>> range_precision_recall(y, p)  # half of the one true range found; half of the one predicted hits
(0.5, 0.5)
>>> round(point_adjusted_f1(y, p), 3)  # the hit in the true range counts as finding all of it
0.8
"""

from __future__ import annotations

import numpy as np

from ..data.anomaly import segments


class GaussianErrors:
    """A multivariate Gaussian over error vectors (N, D); ``score`` is the squared Mahalanobis
    distance. A ridge of ``ridge * mean variance`` keeps Sigma invertible for short validation.

    >>> g = GaussianErrors(ridge=0.0).fit(np.array([[0.0], [2.0]]))  # mu 1, var 1
    >>> g.score(np.array([[3.0], [1.0]])).tolist()
    [4.0, 0.0]
    """

    def __init__(self, ridge: float = 1e-6) -> None:
        self.ridge = ridge
        self.mean_: np.ndarray | None = None
        self.cov_: np.ndarray | None = None

    def fit(self, e: np.ndarray) -> GaussianErrors:
        e = _errors(e, "e")
        e = e[np.isfinite(e).all(axis=1)]
        if len(e) < 2:
            raise ValueError(f"e: expected at least 2 finite error vectors to fit a Gaussian, got {len(e)}")
        self.mean_ = e.mean(axis=0)
        cov = np.atleast_2d(np.cov(e, rowvar=False, bias=True))
        scale = float(np.trace(cov)) / len(cov) if np.trace(cov) > 0 else 1.0
        self.cov_ = cov + self.ridge * scale * np.eye(len(cov))
        self._inv = np.linalg.pinv(self.cov_, hermitian=True)
        return self

    def score(self, e: np.ndarray) -> np.ndarray:
        if self.mean_ is None:
            raise ValueError("GaussianErrors: call fit() (or load_state_dict()) first")
        e = _errors(e, "e")
        if e.shape[1] != len(self.mean_):
            raise ValueError(f"e: expected {len(self.mean_)} error dimensions, got {e.shape[1]}")
        d = e - self.mean_  # (N, D)
        return np.einsum("nd,de,ne->n", d, self._inv, d)

    def state_dict(self) -> dict:
        return {"mean": self.mean_.tolist(), "cov": self.cov_.tolist(), "ridge": self.ridge}

    def load_state_dict(self, state: dict) -> GaussianErrors:
        self.ridge = float(state["ridge"])
        self.mean_ = np.asarray(state["mean"], dtype=np.float64)
        self.cov_ = np.asarray(state["cov"], dtype=np.float64)
        self._inv = np.linalg.pinv(self.cov_, hermitian=True)
        return self


def _errors(e, name: str) -> np.ndarray:
    e = np.asarray(e, dtype=np.float64)
    if e.ndim == 1:
        e = e[:, None]
    if e.ndim != 2:
        raise ValueError(f"{name}: expected error vectors (N, D), got shape {e.shape}")
    return e


def _scores_labels(scores, labels):
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).astype(np.int64).ravel()
    if s.shape != y.shape:
        raise ValueError(f"scores: expected one per label ({y.shape[0]}), got {s.shape[0]}")
    if not np.isfinite(s).all():
        raise ValueError("scores: expected finite values (fill the unscored points first)")
    return s, y


# ----------------------------------------------------------------------------- thresholds
def percentile_threshold(normal_scores: np.ndarray, q: float = 99.0) -> float:
    """The ``q``-th percentile of the scores of normal validation data (no labels needed)."""
    if not 0 < q <= 100:
        raise ValueError(f"q: expected a percentile in (0, 100], got {q}")
    s = np.asarray(normal_scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if not len(s):
        raise ValueError("normal_scores: expected some finite scores, got none")
    return float(np.percentile(s, q))


def fbeta_threshold(scores: np.ndarray, labels: np.ndarray, beta: float = 0.1) -> float:
    """The threshold that maximises F-beta on a *labelled validation* series (EncDec-AD; beta < 1
    weighs precision more). A point is anomalous when its score is >= the threshold."""

    s, y = _scores_labels(scores, labels)
    if not y.any():
        raise ValueError("labels: expected at least one anomalous point to tune F-beta on, got none")
    f, t = _fbeta_curve(s, y, beta)
    return float(t[int(np.argmax(f))])


def _fbeta_curve(s: np.ndarray, y: np.ndarray, beta: float) -> tuple[np.ndarray, np.ndarray]:
    """F-beta at every threshold of scikit-learn's precision-recall curve: (f, thresholds)."""
    from sklearn.metrics import precision_recall_curve

    p, r, t = precision_recall_curve(y, s)
    p, r = p[:-1], r[:-1]
    b2 = beta * beta
    with np.errstate(invalid="ignore", divide="ignore"):
        f = np.where(p + r > 0, (1 + b2) * p * r / (b2 * p + r), 0.0)
    return f, t


def dynamic_threshold(scores: np.ndarray, window: int | None = None, smoothing: float = 0.05,
                      z_range=(2.0, 10.0), z_step: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Hundman et al. (2018), unsupervised: smooth the scores (exponentially weighted mean, weight
    ``smoothing``), then in each window of ``window`` points pick ``eps = mu + z * sigma`` over a
    grid of ``z`` that maximises ``(dmu / mu + dsigma / sigma) / (n_above + n_runs ** 2)``, where
    ``dmu, dsigma`` are the drops of the mean and std when the points above ``eps`` are removed.
    Returns the per-point threshold on the *smoothed* scores and those scores: ``(thr, smoothed)``.
    (The paper's pruning of weak anomalies is left out.)"""
    import pandas as pd

    s = np.asarray(scores, dtype=np.float64).ravel()
    sm = pd.Series(s).ewm(alpha=smoothing, adjust=False).mean().to_numpy()
    window = len(sm) if window is None else int(window)
    if window < 2:
        raise ValueError(f"window: expected >= 2 points, got {window}")
    thr = np.empty_like(sm)
    zs = np.arange(z_range[0], z_range[1] + 1e-9, z_step)
    for start in range(0, len(sm), window):
        e = sm[start:start + window]
        mu, sd = e.mean(), e.std()
        best, best_eps = -np.inf, mu + zs[-1] * sd
        for z in zs:
            eps = mu + z * sd
            below = e[e < eps]
            above = e >= eps
            if not above.any() or len(below) < 2:
                continue
            n_runs = len(segments(above))
            gain = ((mu - below.mean()) / max(abs(mu), 1e-12) + (sd - below.std()) / max(sd, 1e-12))
            val = gain / (above.sum() + n_runs ** 2)
            if val > best:
                best, best_eps = val, eps
        thr[start:start + window] = best_eps
    return thr, sm


# ----------------------------------------------------------------------------- metrics
def roc_auc(scores, labels) -> float:
    from sklearn.metrics import roc_auc_score

    s, y = _scores_labels(scores, labels)
    return float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else float("nan")


def pr_auc(scores, labels) -> float:
    """Average precision (scikit-learn's step-wise area under the precision-recall curve)."""
    from sklearn.metrics import average_precision_score

    s, y = _scores_labels(scores, labels)
    return float(average_precision_score(y, s)) if y.any() else float("nan")


def best_f1(scores, labels) -> tuple[float, float]:
    """(best point-wise F1 over all thresholds, that threshold): an oracle, never used to choose."""
    s, y = _scores_labels(scores, labels)
    if not y.any():
        return float("nan"), float("nan")
    f, t = _fbeta_curve(s, y, 1.0)
    k = int(np.argmax(f))
    return float(f[k]), float(t[k])


def f1_at(pred, labels) -> float:
    from sklearn.metrics import f1_score

    return float(f1_score(np.asarray(labels).astype(int), np.asarray(pred).astype(int), zero_division=0))


def point_adjusted_f1(labels, pred) -> float:
    """INFLATED (Wu & Keogh 2021): one predicted point inside a true range marks the whole range
    found. Reported apart from the honest metrics, never to choose anything."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(pred).astype(bool).copy()
    for a, b in segments(y):
        if p[a:b].any():
            p[a:b] = True
    return f1_at(p, y)


def _bias(kind: str, length: int) -> np.ndarray:
    i = np.arange(1, length + 1, dtype=np.float64)
    if kind == "flat":
        return np.ones(length)
    if kind == "front":
        return length - i + 1
    if kind == "back":
        return i
    if kind == "middle":
        return np.where(i <= length / 2, i, length - i + 1)
    raise ValueError(f"bias: expected 'flat', 'front', 'back' or 'middle', got {kind!r}")


def _range_score(ranges, others, alpha: float, bias: str, cardinality: str) -> float:
    """Tatbul et al.'s recall of ``ranges`` against ``others`` (precision: swap the roles)."""
    if not ranges:
        return float("nan")
    total = 0.0
    for a, b in ranges:
        hits = [(max(a, c), min(b, d)) for c, d in others if max(a, c) < min(b, d)]
        existence = 1.0 if hits else 0.0
        delta = _bias(bias, b - a)
        omega = sum(delta[lo - a:hi - a].sum() for lo, hi in hits) / delta.sum()
        if len(hits) > 1 and cardinality == "reciprocal":
            omega /= len(hits)
        elif cardinality not in ("one", "reciprocal"):
            raise ValueError(f"cardinality: expected 'one' or 'reciprocal', got {cardinality!r}")
        total += alpha * existence + (1 - alpha) * omega
    return total / len(ranges)


def range_precision_recall(labels, pred, alpha: float = 0.0, bias: str = "flat",
                           cardinality: str = "one") -> tuple[float, float]:
    """Range-based (precision, recall) of Tatbul et al. (2018). Recall of a true range is
    ``alpha * existence + (1 - alpha) * cardinality * overlap`` (overlap weighted by the positional
    ``bias``); precision is the same over predicted ranges with ``alpha = 0``; each is the mean
    over its ranges. ``cardinality='reciprocal'`` divides by the number of ranges it overlaps."""
    if not 0 <= alpha <= 1:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha}")
    true_r, pred_r = segments(labels), segments(pred)
    recall = _range_score(true_r, pred_r, alpha, bias, cardinality)
    precision = _range_score(pred_r, true_r, 0.0, bias, cardinality) if pred_r else 0.0
    return float(precision), float(recall)


def ucr_hit(scores, labels, slack: int = 100) -> bool | None:
    """The UCR anomaly archive's protocol for a single-anomaly series: the highest-scoring point
    lies inside the labelled range widened by ``slack`` on each side. None if not one range."""
    s, y = _scores_labels(scores, labels)
    r = segments(y)
    if len(r) != 1:
        return None
    top = int(np.argmax(s))
    return bool(r[0][0] - slack <= top < r[0][1] + slack)


def all_metrics(scores, labels, pred=None) -> dict:
    """Every metric of one score on one labelled series; ``pred`` (0/1 per point: the score
    thresholded) adds the thresholded ones (F1, range precision/recall, inflated point-adjusted F1)."""
    s, y = _scores_labels(scores, labels)
    f1b, _ = best_f1(s, y)
    out = {"roc_auc": roc_auc(s, y), "pr_auc": pr_auc(s, y), "best_f1": f1b}
    hit = ucr_hit(s, y)
    if hit is not None:
        out["ucr_hit"] = hit
    if pred is not None:
        pred = np.asarray(pred).astype(bool)
        rp, rr = range_precision_recall(y, pred)
        out.update(f1=f1_at(pred, y), range_precision=rp, range_recall=rr,
                   range_f1=2 * rp * rr / (rp + rr) if rp + rr > 0 else 0.0,
                   flagged=int(pred.sum()),
                   point_adjusted_f1_INFLATED=point_adjusted_f1(y, pred))
    return out
