"""``lstmkit classify train|predict``: sequence classification (series or texts) vs baselines.

``lstmkit classify train --dataset gunpoint --out DIR`` (or ``--csv FILE [--test-csv FILE]``)
picks a model on a validation split of the training data, scores it on the test split beside
1-NN DTW and MiniRocket (series) or TF-IDF + logistic regression (texts), and writes
DIR/metrics.json, config.json, model.pt, confusion.png, attention.png.
``lstmkit classify predict --checkpoint DIR --csv FILE [--out DIR]`` labels new data.
``lstmkit classify online [--dataset NAME] [--drift reverse]`` streams a problem's examples with an
injected concept drift: online learning vs frozen, fine-tuning, retrain and 1-NN (jobs/online_classify).
"""

from __future__ import annotations

import argparse
import os

from ..jobs import classify as job
from ..jobs import online_classify as online
from ._labelled import add_common_flags, start
from ._types import add_online_flags, boolean, count_or_fraction


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("classify", help="classify series or texts vs 1-NN DTW / MiniRocket / "
                                        "TF-IDF (default data: aeon GunPoint)",
                       description=__doc__.split("\n\n")[0])
    d = job.ClassifyConfig()  # the train action's defaults: the config's own
    kd = job.KIND_DEFAULTS
    p.add_argument("action", choices=["train", "predict", "online"])
    p.add_argument("--dataset", default=None, help="catalogue name (`lstmkit datasets`); "
                                                   f"default {d.dataset}")
    p.add_argument("--csv", help="series rows 'label,x1,..,xT' or a 'text,label' CSV")
    p.add_argument("--test-csv", help="test data (default: hold out --test-size of --csv)")
    p.add_argument("--test-size", type=float, default=d.test_size)
    p.add_argument("--val-size", type=float, default=d.val_size, help="of the training data")
    p.add_argument("--model", default=d.model,
                   help=f"{d.model} (pick on validation) or a preset: "
                        + ", ".join(sorted(set(job.SERIES_PRESETS) | set(job.TEXT_PRESETS))))
    p.add_argument("--cell", choices=["lstm", "gru", "rnn"], default=d.cell,
                   help="override the presets' cell")
    p.add_argument("--hidden-size", type=int, default=d.hidden_size)
    p.add_argument("--pooling", choices=["last", "mean", "max", "attention"], default=d.pooling)
    p.add_argument("--bidirectional", type=boolean, metavar="BOOL", default=d.bidirectional)
    p.add_argument("--fcn", type=boolean, metavar="BOOL", default=d.fcn,
                   help="LSTM-FCN convolutional branch")
    for name, what in (("epochs", "max epochs"), ("patience", "early stopping"),
                       ("batch_size", "batch size")):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name),
                       help=f"{what} (default {kd['series'][name]} series, {kd['text'][name]} texts)")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--max-len", type=int, default=d.max_len, help="texts: words kept per text")
    p.add_argument("--seeds", type=int, default=d.seeds, help="ensemble members (soft/hard voting)")
    add_common_flags(p, d)
    od = online.OnlineClassifyConfig()
    o = p.add_argument_group("online (lstmkit classify online; default data: italypowerdemand)")
    o.add_argument("--drift", choices=online.DRIFTS, default=od.drift, metavar="KIND",
                   help=f"{', '.join(online.DRIFTS)} (default {od.drift})")
    o.add_argument("--change-point", type=count_or_fraction, default=od.change_point, metavar="N",
                   help=f"stream example (or fraction) of the drift ({od.change_point})")
    add_online_flags(o, od, "examples", "replayed examples")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.action == "online":
        if args.csv:
            raise ValueError("--csv: classify online reads a catalogue series problem "
                             "(--dataset), got a CSV")
        cfg = online.OnlineClassifyConfig(
            drift=args.drift, change_point=args.change_point, warmup=args.warmup,
            update_every=args.update_every, replay=args.replay, seed=args.seed,
            models=[m for m in online.MODELS if not (args.no_baselines and m == "1nn")],
            **{k: v for k, v in (("hidden_size", args.hidden_size), ("cell", args.cell),
                                 ("pooling", args.pooling)) if v is not None})
        online.classify_online(args.dataset or "italypowerdemand", config=cfg,
                               out=args.out or os.path.join("runs", "classify-online"),
                               progress=not args.no_progress, threads=args.threads)
        return 0
    if start(args):
        job.predict(args.checkpoint, csv=args.csv, dataset=args.dataset, out=args.out,
                    threads=args.threads)
        return 0
    if args.csv and args.dataset:
        raise ValueError("--dataset/--csv: expected one of them, got both")
    d = job.ClassifyConfig()
    cfg = job.ClassifyConfig(
        dataset=None if args.csv else (args.dataset or d.dataset), csv=args.csv,
        test_csv=args.test_csv, test_size=args.test_size, val_size=args.val_size,
        out=args.out or d.out, model=args.model, cell=args.cell,
        hidden_size=args.hidden_size, pooling=args.pooling, bidirectional=args.bidirectional,
        fcn=args.fcn, epochs=args.epochs, patience=args.patience, batch_size=args.batch_size,
        lr=args.lr, max_len=args.max_len, seeds=args.seeds, seed=args.seed,
        baselines=not args.no_baselines, progress=False if args.no_progress else None,
        precision=args.precision, threads=args.threads)
    res = job.train(cfg)
    pngs = "confusion.png" + (", attention.png" if res.attention is not None else "")
    print(f"wrote {cfg.out}/metrics.json, config.json, model.pt, {pngs}")
    return 0
