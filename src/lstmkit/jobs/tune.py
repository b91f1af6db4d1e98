"""Hyperparameter search for a job with Optuna: ``lstmkit tune JOB --trials N``.

- **Sampler**: TPE (seeded), over a default search space per job ordered by what matters
  (Greff et al. 2017, 5,400 runs: the learning rate first by far, then the network size; the
  input length / BPTT window and dropout after). The space is sized from the data (input lengths
  around the job's own choice).
- **Pruning**: the Trainer's validation records feed ``trial.report`` through an ambient
  callback (:func:`lstmkit.train.trainer.extra_callbacks`), and ``should_stop`` ends a trial the
  pruner gives up on: ``median`` (MedianPruner) or ``asha`` (SuccessiveHalvingPruner).
- **Bookkeeping**: every trial's parameters, full job config, score, state and validation curve
  go to ``OUT/trials/NNNN.json`` and to the study (user attributes); ``trials.csv`` lists them.
- **Resumable, several workers**: the study lives in an RDB file (``--storage sqlite:///s.db``,
  default ``OUT/study.db``) and is loaded if it exists; ``--trials N`` is the study's total of
  finished (complete or pruned) trials, so a rerun adds only what is missing, and any number of
  processes may run the same command at once (each then reports too; the total may overshoot by
  up to one trial per extra worker). Heartbeats mark a killed worker's trial failed,
  and it is retried with the same parameters (optuna's RetryFailedTrialCallback).
- **Report**: the best parameters and the defaults are both re-evaluated over ``--seeds`` new
  seeds on the validation split; only then (the choice made) the forecast job runs both on its
  test split once. ``history.png`` (optimisation history) and ``importance.png`` (fANOVA
  importances) are drawn with matplotlib.
- **Under torchrun** (``--nproc``): rank 0 asks the study and broadcasts each trial's
  parameters, every rank trains the same trial (data parallel), and the pruning decision of rank
  0 stops all of them.

Objective: validation MASE of the forecaster (the job's own selection score), validation loss
(nats per token) of the language model. The test split is never read while choosing.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field

from .._io import atomic_write_text
from ..train.distributed import Context
from ..train.trainer import extra_callbacks

JOBS = ("forecast", "lm")
PRUNERS = ("median", "asha", "none")


@dataclass
class TuneConfig:
    job: str = "forecast"
    trials: int = 20  # finished trials the study should hold
    timeout: float | None = None  # seconds for this worker
    storage: str | None = None  # an optuna RDB URL; None: sqlite:///OUT/study.db
    study_name: str | None = None  # None: tune-JOB
    pruner: str = "median"
    seeds: int = 3  # seeds the best and the default configs are re-evaluated with
    seed: int = 0
    final: bool = True  # forecast: run the job on its test split with the best and the default
    base: dict = field(default_factory=dict)  # job config fields held fixed
    out: str = os.path.join("runs", "tune")

    def __post_init__(self) -> None:
        if self.job not in JOBS:
            raise ValueError(f"job: expected one of {JOBS}, got {self.job!r}")
        if self.pruner not in PRUNERS:
            raise ValueError(f"pruner: expected one of {PRUNERS}, got {self.pruner!r}")
        for name in ("trials", "seeds"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if self.timeout is not None and not self.timeout > 0:
            raise ValueError(f"timeout: expected seconds > 0 or None, got {self.timeout!r}")


# --- the jobs ------------------------------------------------------------------------------
class ForecastTask:
    """One forecaster per trial (no inner search, one seed), scored by validation MASE."""

    name = "forecast"

    def __init__(self, base: dict, work: str) -> None:
        from . import forecast as fj

        self.fj, self.work = fj, work
        self.measure = None  # model -> validation MASE of the trial being trained (for pruning)
        base = dict(base)
        name = base.pop("dataset", None)  # a catalogue series (lstmkit datasets) instead of --csv
        self.data = None
        if name is not None:
            from ..data import datasets

            self.data = datasets.load(name)
        cfg = fj.ForecastConfig(**{**base, "search": False, "ensemble": 1, "no_progress": True,
                                   "out": work})
        self.series, _ = fj.load_series(cfg, self.data)
        self.why = fj.resolve(cfg, self.series)  # season, sizes, input length: from the data
        self.cfg, self.base = cfg, dict(base)
        n = min(len(s.values) for s in self.series)
        T, h = cfg.input_len, cfg.horizon
        n_train = n - fj.resolve_size(cfg.test_size, n, "t") - fj.resolve_size(cfg.val_size, n, "v")
        self.lengths = sorted({v for v in (max(2, T // 2), T, 2 * T) if v + h < n_train // 2 or v == T})
        self.transforms = ["diff", "level"] + (["sdiff"] if cfg.season > 1 else [])
        # log levels only where every target value is positive (as the job's own search)
        self.logs = [False, True] if fj.log_allowed(self.series) else [False]

    def defaults(self) -> dict:
        c = self.cfg
        return dict(lr=c.lr, hidden_size=c.hidden_size, input_len=c.input_len,
                    num_layers=c.num_layers, transform=c.transform or "diff", log=bool(c.log),
                    batch_size=c.batch_size)

    def suggest(self, trial) -> dict:
        return dict(  # ordered by what matters
            lr=trial.suggest_float("lr", 1e-4, 3e-2, log=True),
            hidden_size=trial.suggest_int("hidden_size", 8, 128, log=True),
            input_len=trial.suggest_categorical("input_len", self.lengths),
            num_layers=trial.suggest_int("num_layers", 1, 2),
            transform=trial.suggest_categorical("transform", self.transforms),
            log=trial.suggest_categorical("log", self.logs),
            batch_size=trial.suggest_categorical("batch_size", [16, 32, 64, 128]),
        )

    def config(self, params: dict, seed: int):
        return self.fj.ForecastConfig(**{**asdict(self.cfg), **params, "seed": seed})

    def score(self, params: dict, seed: int, tag: str) -> tuple[float, list[dict]]:
        fj = self.fj
        c = self.config(params, seed)
        log = params.get("log", False)  # absent from studies made before it was searched
        parts = fj._parts(c, self.series, params["transform"], False, log)
        cand = fj.Candidate(params["input_len"], params["transform"], params["hidden_size"], log)
        # the Trainer's loss depends on the transform; the pruner compares trials by MASE
        self.measure = lambda m: float(fj._score(parts, [m], "val", c.quantiles))
        model, trainer = fj.fit_model(c, cand, parts, "train", "val", seed, os.path.join(self.work, tag))
        return float(fj._score(parts, [model], "val", c.quantiles)), trainer.history

    def final(self, params: dict, tag: str) -> dict:
        """The job itself (baselines and the test split) with these parameters, one model."""
        c = self.fj.ForecastConfig(**{**self.base, **params, "search": False, "ensemble": 1,
                                      "no_progress": True, "out": os.path.join(self.work, tag)})
        res = self.fj.train(c, data=self.data, echo=lambda *_: None, log=lambda *_: None)
        return {k: {m: float(v) for m, v in ms.items()} for k, ms in res.metrics.items()}


class LMTask:
    """One language model per trial (the job's own schedule), scored by validation loss."""

    name = "lm"
    measure = None  # the Trainer's validation loss is the objective itself

    def __init__(self, base: dict, work: str) -> None:
        from . import lm as lj

        self.lj, self.work = lj, work
        self.cfg = lj.LMConfig(**{**base, "out": work, "progress": False})

    def defaults(self) -> dict:
        c = self.cfg
        return dict(lr=c.lr, hidden_size=c.hidden_size, dropout=c.dropout,
                    embedding_dropout=c.embedding_dropout, bptt=c.bptt)

    def suggest(self, trial) -> dict:
        return dict(
            lr=trial.suggest_float("lr", 3e-4, 3e-2, log=True),
            hidden_size=trial.suggest_int("hidden_size", 32, 512, log=True),
            dropout=trial.suggest_float("dropout", 0.0, 0.5),
            embedding_dropout=trial.suggest_float("embedding_dropout", 0.0, 0.3),
            bptt=trial.suggest_categorical("bptt", [32, 64, 128, 256]),
        )

    def config(self, params: dict, seed: int):
        c = {**asdict(self.cfg), **params, "seed": seed}
        if c.get("tie_weights", True):
            c["embedding_dim"] = params["hidden_size"]
        return self.lj.LMConfig(**c)

    def score(self, params: dict, seed: int, tag: str) -> tuple[float, list[dict]]:
        c = self.config(params, seed)
        c.out = os.path.join(self.work, tag)
        res = self.lj.train(c, echo=lambda *_: None)
        vals = [r["val_loss"] for r in res.history if r.get("val_loss") is not None]
        return float(min(vals)), res.history

    def final(self, params: dict, tag: str) -> dict:
        return {}  # the LM job reports its test split itself; tuning stops at validation


TASKS = {"forecast": ForecastTask, "lm": LMTask}


# --- pruning -------------------------------------------------------------------------------
class PruneCallback:
    """Trainer callback: report each validation to the trial (the objective's own measure of
    the current weights when the task has one, else the Trainer's validation loss), stop when
    the pruner says so."""

    def __init__(self, trial, task=None) -> None:
        self.trial, self.task, self.pruned, self.i = trial, task, False, 0

    def on_validation(self, trainer, record: dict) -> None:
        measure = getattr(self.task, "measure", None)
        if measure is not None:
            was = trainer.model.training
            trainer.model.eval()
            value = measure(trainer.model)
            trainer.model.train(was)
        elif record.get("val_loss") is not None:
            value = float(record["val_loss"])
        else:
            return
        self.trial.report(value, self.i)
        self.i += 1

    def should_stop(self, trainer) -> bool:
        if self.i and self.trial.should_prune():
            self.pruned = True
        return self.pruned


# --- running the same work on every rank -------------------------------------------------
class _Everywhere:
    """Rank 0 names the work (a task method and its arguments) and every rank does it."""

    def __init__(self, task, ctx: Context) -> None:
        self.task, self.ctx = task, ctx
        self.calls: list = []  # what this rank ran: (method, args)

    def __call__(self, method: str, *args, callbacks=()):
        self.ctx.broadcast_object((method, args))
        self.calls.append((method, args))
        with extra_callbacks(*callbacks):
            return getattr(self.task, method)(*args)

    def follow(self) -> None:
        while True:
            msg = self.ctx.broadcast_object(None)
            if msg is None:
                return
            method, args = msg
            self.calls.append((method, args))
            getattr(self.task, method)(*args)

    def done(self) -> None:
        self.ctx.broadcast_object(None)


# --- the study -----------------------------------------------------------------------------
def _storage(url: str):
    import warnings

    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeats are marked experimental
        return RDBStorage(url, heartbeat_interval=20, grace_period=60,
                          heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=2))


def finished(study) -> list:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return [t for t in study.trials if t.state in done]


def _pruner(name: str):
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=5)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner()
    return optuna.pruners.NopPruner()


def run(config: TuneConfig, echo=print, log=None) -> dict:
    """Run (or resume) the study, then report; returns the summary (also ``OUT/tune.json``)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    ctx = Context.current()
    os.makedirs(config.out, exist_ok=True)
    task = TASKS[config.job](config.base, os.path.join(config.out, "work"))
    every = _Everywhere(task, ctx)
    if not ctx.is_writer:
        every.follow()
        return {"calls": every.calls}
    try:
        return {**_lead(config, task, every, echo, log), "calls": every.calls}
    finally:
        every.done()


def _ranks_check(config: TuneConfig) -> None:
    """Run the study under a process group; each rank writes the work it did to
    ``OUT/rank{r}.json`` (the test that every rank trains the same trials)."""
    ctx = Context.current()
    calls = run(config, echo=lambda *_: None, log=lambda *_: None)["calls"]
    atomic_write_text(os.path.join(config.out, f"rank{ctx.rank}.json"),
                      json.dumps(calls, default=str) + "\n")


def _lead(config: TuneConfig, task, every: _Everywhere, echo, log) -> dict:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = config.storage or f"sqlite:///{os.path.abspath(os.path.join(config.out, 'study.db'))}"
    name = config.study_name or f"tune-{config.job}"
    storage = _storage(url)
    probe = optuna.load_study(study_name=name, storage=storage) if name in {
        s.study_name for s in optuna.get_all_study_summaries(storage)} else None
    seen = len(probe.trials) if probe is not None else 0
    # a private study is reproducible (seed + trials so far); on a shared --storage, workers that
    # start together must not draw the same trials, so their process id joins the seed
    shared = 0 if config.storage is None else 7919 * (os.getpid() % 9973)
    study = optuna.create_study(study_name=name, storage=storage, direction="minimize",
                                load_if_exists=True, pruner=_pruner(config.pruner),
                                sampler=optuna.samplers.TPESampler(seed=config.seed + seen + shared))
    before = len(finished(study))
    if before:
        log(f"tune: resuming study {name!r} from {url}: {before} trials finished")
    tdir = os.path.join(config.out, "trials")
    os.makedirs(tdir, exist_ok=True)

    def objective(trial) -> float:
        params = task.suggest(trial)
        trial.set_user_attr("config", json.loads(json.dumps(asdict(task.config(params, config.seed)),
                                                           default=str)))
        cb = PruneCallback(trial, task)
        t0 = time.perf_counter()
        value, history = every("score", params, config.seed, f"trial-{trial.number:04d}", callbacks=[cb])
        rec = dict(number=trial.number, params=params, config=trial.user_attrs["config"],
                   value=value, state="PRUNED" if cb.pruned else "COMPLETE",
                   seconds=round(time.perf_counter() - t0, 2),
                   curve=[r.get("val_loss") for r in history])
        atomic_write_text(os.path.join(tdir, f"{trial.number:04d}.json"), json.dumps(rec, indent=2) + "\n")
        log(f"tune: trial {trial.number} {rec['state'].lower()} value {value:.4f} {params}")
        if cb.pruned:
            raise optuna.TrialPruned()
        return value

    left = config.trials - before
    if left > 0:
        study.optimize(objective, n_trials=left, timeout=config.timeout, catch=(FloatingPointError,),
                       callbacks=[optuna.study.MaxTrialsCallback(
                           config.trials, states=(optuna.trial.TrialState.COMPLETE,
                                                  optuna.trial.TrialState.PRUNED))])
    return report(config, study, every, echo, log)


def report(config: TuneConfig, study, every: _Everywhere, echo, log) -> dict:
    import optuna

    task = every.task
    done = finished(study)
    complete = [t for t in done if t.state == optuna.trial.TrialState.COMPLETE]
    summary: dict = dict(job=config.job, study=study.study_name, finished=len(done),
                         complete=len(complete), pruned=len(done) - len(complete))
    try:
        study.trials_dataframe().to_csv(os.path.join(config.out, "trials.csv"), index=False)
    except Exception as e:  # pragma: no cover - pandas is a dependency of optuna's dataframe
        log(f"tune: no trials.csv ({e})")
    if len(done) < config.trials or not complete:
        summary["note"] = "study unfinished: no report yet"
        _write_summary(config, summary)
        return summary
    best = study.best_trial
    params, defaults = dict(best.params), task.defaults()
    seeds = [config.seed + 1 + k for k in range(config.seeds)]
    rerun = {}
    for label, p in (("best", params), ("default", defaults)):
        vals = [every("score", p, s, f"{label}-{_key(p)}-seed{s}")[0] for s in seeds]
        rerun[label] = dict(params=p, values=vals, mean=statistics.fmean(vals),
                            sd=statistics.stdev(vals) if len(vals) > 1 else 0.0)
        log(f"tune: {label} over seeds {seeds}: {rerun[label]['mean']:.4f} ± {rerun[label]['sd']:.4f}")
    summary.update(best_trial=best.number, best_value=best.value, best_params=params,
                   reevaluated=rerun, metric="val_mase" if config.job == "forecast" else "val_loss")
    if config.final and config.job == "forecast":
        summary["test"] = {label: every("final", rerun[label]["params"],
                                        f"final-{label}-{_key(rerun[label]['params'])}")
                           for label in ("best", "default")}
    summary["plots"] = _plots(study, config.out, log)
    _write_summary(config, summary)
    echo(format_report(summary))
    return summary


def _key(params: dict) -> str:
    """A short name for a parameter set: a work folder is never reused by other parameters (the
    Trainer would resume from a checkpoint of another shape)."""
    import hashlib

    return hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]


def _write_summary(config: TuneConfig, summary: dict) -> None:
    atomic_write_text(os.path.join(config.out, "tune.json"),
                      json.dumps(dict(config=asdict(config), **summary), indent=2, default=str) + "\n")


def _plots(study, out: str, log) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import warnings

    import matplotlib.pyplot as plt
    import optuna
    from optuna.visualization import matplotlib as ovm

    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib backend experimental
        for name, draw in (("history.png", lambda: ovm.plot_optimization_history(study)),
                           ("importance.png", lambda: ovm.plot_param_importances(
                               study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0)))):
            try:
                ax = draw()
                fig = ax.figure
                fig.set_size_inches(7, 4.2)
                fig.tight_layout()
                path = os.path.join(out, name)
                fig.savefig(path, dpi=110)
                plt.close(fig)
                written.append(path)
            except (ValueError, RuntimeError) as e:  # e.g. too few trials for importances
                log(f"tune: no {name} ({e})")
    return written


def format_report(s: dict) -> str:
    m = s["metric"]
    lines = [f"tune {s['job']}: {s['finished']} trials ({s['pruned']} pruned), best trial "
             f"{s['best_trial']} {m} {s['best_value']:.4f}",
             f"best: {s['best_params']}"]
    for label in ("best", "default"):
        r = s["reevaluated"][label]
        lines.append(f"{label:<8} {m} over {len(r['values'])} new seeds: {r['mean']:.4f} ± {r['sd']:.4f}")
    for label, ms in s.get("test", {}).items():
        lstm = ms.get("lstm", {})
        lines.append(f"{label:<8} test (once, after choosing): MASE {lstm.get('mase', math.nan):.4f} "
                     f"MAE {lstm.get('mae', math.nan):.4g}; seasonal naive MASE "
                     f"{ms.get('seasonal_naive', {}).get('mase', math.nan):.4f}")
    return "\n".join(lines)
