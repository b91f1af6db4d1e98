"""Quality benchmark of the classify and tag jobs (issue 10): ``python -m benchmarks.classify``.

Sections (``--sections``, default all):

- ``series``: for each aeon problem (official train/test split), one run of the classify job with
  ``model="auto"`` (the configuration chosen on a validation split of the training data at seed 0)
  and ``seeds`` members of that configuration (seeds 0..S-1): mean +- std of the members' test
  accuracy, the soft-voting ensemble, 1-NN DTW and MiniRocket (aeon) on the same split, and the
  published InceptionTime accuracy shipped by aeon (mean over its 30 resamples; resample 0 is the
  official split).
- ``tag``: the tag job on held-out standard-library files, softmax and CRF, beside the
  most-frequent-tag baseline.
- ``text``: the classify job on Debian fortunes beside TF-IDF + logistic regression.

Results go to ``--out`` (JSON, one entry per run, written as each finishes) and a markdown table
is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import torch

PROBLEMS = ["gunpoint", "italypowerdemand", "arrowhead", "basicmotions", "japanesevowels",
            "pickupgesturewiimotez"]


def reference_accuracy(aeon_name: str, estimator: str = "InceptionTime") -> tuple[float, float] | None:
    """(mean over resamples, resample 0) from aeon's shipped results, or None if absent."""
    import aeon

    path = os.path.join(os.path.dirname(aeon.__file__), "testing", "example_results_files",
                        "classification", "accuracy", f"{estimator}_accuracy.csv")
    with open(path) as f:
        for line in f:
            parts = line.strip().split(",")
            if parts[0] == aeon_name:
                vals = [float(v) for v in parts[1:] if v]
                return float(np.mean(vals)), vals[0]
    return None


def run_series(problems, seeds: int, epochs: int, patience: int, out: str, results: dict, save,
               model: str = "auto"):
    from lstmkit.data._classify_sets import AEON_PROBLEMS
    from lstmkit.jobs.classify import ClassifyConfig, train

    for name in problems:
        key = f"series/{name}"
        if key in results:
            continue
        t = time.perf_counter()
        r = train(ClassifyConfig(dataset=name, out=os.path.join(out, "runs", name), seeds=seeds,
                                 epochs=epochs, patience=patience, progress=False, model=model))
        accs = r.chosen.get("member_accuracy", [r.metrics["lstmkit"]["accuracy"]])
        ref = reference_accuracy(AEON_PROBLEMS[name][0])
        results[key] = dict(
            problem=AEON_PROBLEMS[name][0], chosen=r.chosen["model"], member_accuracy=accs,
            mean=float(np.mean(accs)), std=float(np.std(accs)),
            soft_vote=r.metrics.get("lstmkit_soft_vote", r.metrics["lstmkit"])["accuracy"],
            dtw=r.metrics["1nn_dtw"]["accuracy"], minirocket=r.metrics["minirocket"]["accuracy"],
            inceptiontime=ref[0] if ref else None, inceptiontime_r0=ref[1] if ref else None,
            selection=r.selection, seconds=round(time.perf_counter() - t, 1))
        save()


def run_tag(out: str, results: dict, save, epochs: int):
    from lstmkit.jobs.tag import TagConfig, train

    for crf in (False, True):
        key = f"tag/{'crf' if crf else 'softmax'}"
        if key in results:
            continue
        r = train(TagConfig(dataset="stdlib_tokens", crf=crf, epochs=epochs, progress=False,
                            out=os.path.join(out, "runs", key.replace("/", "-"))))
        results[key] = dict(metrics={k: {m: v[m] for m in ("accuracy", "entity_f1", "macro_f1")}
                                     for k, v in r.metrics.items()}, setup=r.setup)
        save()


def run_text(out: str, results: dict, save, seeds: int):
    from lstmkit.jobs.classify import ClassifyConfig, train

    key = "text/fortunes"
    if key in results:
        return
    r = train(ClassifyConfig(dataset="fortunes", out=os.path.join(out, "runs", "fortunes"),
                             seeds=seeds, progress=False))
    results[key] = dict(metrics={k: {m: v[m] for m in ("accuracy", "balanced_accuracy", "macro_f1",
                                                       "log_loss")} for k, v in r.metrics.items()},
                        chosen=r.chosen, selection=r.selection, seconds=round(r.seconds, 1))
    save()


def table(results: dict) -> str:
    lines = []
    rows = [v for k, v in results.items() if k.startswith("series/")]
    if rows:
        lines += ["| problem | chosen (validation) | lstmkit mean ± std | soft vote | 1-NN DTW | "
                  "MiniRocket | InceptionTime (30 resamples / split 0) | beats DTW | within 3 pts of IT |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            it = r["inceptiontime"]
            its = f"{it:.3f} / {r['inceptiontime_r0']:.3f}" if it is not None else "n/a"
            within = ("yes" if r["mean"] >= it - 0.03 else "no") if it is not None else "n/a"
            lines.append(f"| {r['problem']} | {r['chosen']} | {r['mean']:.3f} ± {r['std']:.3f} "
                         f"(n={len(r['member_accuracy'])}) | {r['soft_vote']:.3f} | {r['dtw']:.3f} | "
                         f"{r['minirocket']:.3f} | {its} | "
                         f"{'yes' if r['mean'] >= r['dtw'] else 'no'} | {within} |")
    for k in ("tag/softmax", "tag/crf", "text/fortunes"):
        if k in results:
            lines += ["", f"{k}:", "| model | " + " | ".join(next(iter(results[k]["metrics"].values())))
                      + " |", "|---" * (1 + len(next(iter(results[k]["metrics"].values())))) + "|"]
            for name, m in results[k]["metrics"].items():
                lines.append(f"| {name} | " + " | ".join("-" if v is None else f"{v:.4f}"
                                                        for v in m.values()) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", default="series,tag,text")
    p.add_argument("--problems", default=",".join(PROBLEMS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--patience", type=int, default=40)
    p.add_argument("--model", default="auto", help="series: 'auto' or one preset for every problem")
    p.add_argument("--tag-epochs", type=int, default=8)
    p.add_argument("--text-seeds", type=int, default=1)
    p.add_argument("--out", default="runs/bench-classify")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "results.json")
    results = json.load(open(path)) if os.path.exists(path) else {}

    def save():
        from lstmkit._io import atomic_write_text

        atomic_write_text(path, json.dumps(results, indent=2) + "\n")

    sections = a.sections.split(",")
    if "series" in sections:
        run_series(a.problems.split(","), a.seeds, a.epochs, a.patience, a.out, results, save,
                   a.model)
    if "tag" in sections:
        run_tag(a.out, results, save, a.tag_epochs)
    if "text" in sections:
        run_text(a.out, results, save, a.text_seeds)
    print(table(results))


if __name__ == "__main__":
    main()
