"""Labelled anomaly-detection series for the catalogue (data/datasets.py).

Each loader returns an :class:`lstmkit.data.anomaly.AnomalySeries`. Nothing downloads: the
series are read from where aeon 1.6.0 and sktime 1.2.0 installed them.
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from .anomaly import AnomalySeries, one_class_stream
from .datasets import register

MITDB_TRAIN = 3000  # the MIT-BIH excerpt has no split: its first 3000 points (40%, unlabelled) train


@register("kdd_tsad_135", task="anomaly", needs="aeon==1.6.0 (extra 'classify')",
          licence="UCR anomaly archive terms (free for research), via aeon (BSD-3)",
          provenance="aeon 1.6.0 load_kdd_tsad_135: UCR anomaly archive #135 (heart rate, internal "
                     "bleeding), 1200 normal training points, 6301 test points, one anomaly")
def kdd_tsad_135() -> AnomalySeries:
    from aeon.datasets import load_kdd_tsad_135

    x, y = load_kdd_tsad_135("test")  # the whole file: its first 1200 points are the training part
    n = 1200
    return AnomalySeries("kdd_tsad_135", x[:n], x[n:], y[n:], continues=True, train_labels=y[:n],
                         offset=n, about="UCR_Anomaly_InternalBleeding16, train = first 1200 points")


@register("ecg_diff_count_3", task="anomaly", needs="aeon==1.6.0 (removed in aeon 1.7)",
          licence="TimeEval/GutenTAG synthetic data (MIT), via aeon (BSD-3)",
          provenance="aeon 1.6.0 load_ecg_diff_count_3: synthetic ECG (GutenTAG), clean 10000-point "
                     "training series, 10000-point test with 3 anomalies, a labelled 10000-point "
                     "series with 3 more for tuning a threshold")
def ecg_diff_count_3() -> AnomalySeries:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from aeon.datasets import load_ecg_diff_count_3

        x_te, y_te, x_tr, y_tr = load_ecg_diff_count_3("semi-supervised")
        _, _, x_val, y_val = load_ecg_diff_count_3("supervised")
    return AnomalySeries("ecg_diff_count_3", x_tr, x_te, y_te, continues=False,
                         train_labels=np.asarray(y_tr), labelled_val=(x_val[:, None], y_val),
                         about="GutenTAG ECG, 3 anomalies; labelled validation = aeon's supervised train")


def mitdb_path() -> str:
    """sktime's MIT-BIH CSV, located from the installed package without importing sktime."""
    import importlib.util

    spec = importlib.util.find_spec("sktime")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("mitdb: sktime is not installed (pip install sktime==1.2.0)")
    path = os.path.join(list(spec.submodule_search_locations)[0], "datasets", "data", "mitdb", "mitdb.csv")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"mitdb: expected sktime's CSV at {path!r}")
    return path


@register("mitdb", task="anomaly", needs="sktime==1.2.0",
          licence="PhysioNet ODC-By (MIT-BIH Arrhythmia Database), via sktime (BSD-3)",
          provenance="sktime 1.2.0 datasets/data/mitdb/mitdb.csv: MIT-BIH ECG excerpt, 7500 points, "
                     "one labelled 352-point anomaly; first 3000 points train")
def mitdb() -> AnomalySeries:
    import pandas as pd

    df = pd.read_csv(mitdb_path())
    x, y = df["data"].to_numpy(dtype=np.float64), df["label"].to_numpy(dtype=np.int64)
    n = MITDB_TRAIN
    return AnomalySeries("mitdb", x[:n], x[n:], y[n:], continues=True, train_labels=y[:n], offset=n,
                         about="MIT-BIH excerpt, train = first 3000 points")


def aeon_one_class(problem: str = "GunPoint", normal=None, anomaly_share: float = 0.1,
                   seed: int = 0) -> AnomalySeries:
    """"One class is normal" on an aeon classification problem: the training stream is the
    official train split's instances of the ``normal`` class (default: the first class); the
    test stream is the test split's normal instances plus other-class instances making up
    ``anomaly_share`` of them, in a seeded order, labelled 1."""
    from .labelled import aeon_problem

    tr, te = aeon_problem(problem, "train"), aeon_problem(problem, "test")
    classes = sorted(set(tr.labels.tolist()))
    normal = classes[0] if normal is None else str(normal)
    x_tr, _ = one_class_stream([s.T for s in tr.series], tr.labels, normal, anomaly_share=0.0, seed=seed)
    x_te, y_te = one_class_stream([s.T for s in te.series], te.labels, normal,
                                  anomaly_share=anomaly_share, seed=seed)
    name = f"{problem.lower()}_one_class"
    return AnomalySeries(name, x_tr, x_te, y_te, continues=False,
                         about=f"aeon {problem}: class {normal!r} normal, {anomaly_share:.0%} of test "
                               f"instances from the other classes")


@register("gunpoint_one_class", task="anomaly", needs="aeon==1.6.0 (extra 'classify')",
          licence="UCR/UEA archive terms (free for research), via aeon (BSD-3)",
          provenance="aeon 1.6.0 GunPoint, 'one class is normal': class 1 instances concatenated "
                     "train, test = class 1 plus 10% class 2 instances (seeded)")
def gunpoint_one_class(normal=None, anomaly_share: float = 0.1, seed: int = 0) -> AnomalySeries:
    return aeon_one_class("GunPoint", normal, anomaly_share, seed)
