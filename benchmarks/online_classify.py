"""Online sequence classification under an injected concept drift: online (updates + replay +
drift trigger) vs frozen vs fine-tuning without replay vs retrain-from-scratch vs prequential 1-NN.

Run: ``python -m benchmarks.online_classify [--seeds 0,1,2] [--out DIR]``. Data: aeon's
ItalyPowerDemand (1096 days of 24 hourly loads, 2 classes; train and test pooled): 20% held out,
the rest streamed in a seeded order, the first 20% of the stream fitted (warm-up), then each
example predicted before its label is learned from. Drifts at the stream's middle:

- ``reverse`` (every seed): the later days are read backwards. The labels stay meaningful and
  the old concept stays valid, so a model can know both: forgetting is measurable;
- ``negate`` (first seed): the sign of the standardised loads flips (a polarity swap);
- ``permute`` (first seed): the labels swap. The old concept becomes wrong, so replaying it
  fights the adaptation: the honest worst case for the replay buffer.

Prints per stream and model: accuracy over the stream, before / after the change, over the first
2 rolling windows after it, the steps until the rolling accuracy is back within 0.1 of the frozen
model's pre-change accuracy, and each model's final weights on the held-out days under the old
concept (forgetting) and the new one; writes ``online-classify-<drift>-lr<online lr>.png``.
``--online-lr 1e-2`` (default 1e-3) is the sensitivity check of the online step size.
"""

from __future__ import annotations

import argparse
import os

from lstmkit.jobs import online_classify as oc


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--dataset", default="italypowerdemand")
    ap.add_argument("--out", default="benchmarks/out")
    ap.add_argument("--online-lr", type=float, default=1e-3, help="of online and finetune")
    a = ap.parse_args(argv)
    os.makedirs(a.out, exist_ok=True)
    load0 = os.getloadavg()[0]
    seeds = [int(s) for s in a.seeds.split(",")]
    runs = [("reverse", s) for s in seeds] + [("negate", seeds[0]), ("permute", seeds[0])]
    rows = []
    for drift, seed in runs:
        r = oc.classify_online(a.dataset, config=oc.OnlineClassifyConfig(drift=drift, seed=seed,
                                                                 online_lr=a.online_lr),
                               echo=lambda *_: None)
        rows.append((f"{drift} seed {seed}", r))
        if seed == seeds[0]:
            oc.plot(os.path.join(a.out, f"online-classify-{drift}-lr{a.online_lr:g}.png"), r,
                    f"{a.dataset}: drift '{drift}' at stream example {r['change_point']} "
                    f"(seed {seed}, online lr {a.online_lr:g})")
    print(f"load average {load0:.2f} at start, {os.getloadavg()[0]:.2f} at end\n")
    print("| stream | model | accuracy | before | after | first 2 windows after | recovery "
          "(examples) | held-out old concept | held-out new concept | drift alarms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        for m in r["accuracy"]:
            rec = r["recovery_steps"][m]
            ho, hn = r["holdout_old"].get(m), r["holdout_new"].get(m)
            print(f"| {name} | {m} | {r['accuracy'][m]:.3f} | {r['acc_before'][m]:.3f} | "
                  f"{r['acc_after'][m]:.3f} | {r['acc_first_after'][m]:.3f} | "
                  f"{'never' if rec is None else rec} | {'-' if ho is None else f'{ho:.3f}'} | "
                  f"{'-' if hn is None else f'{hn:.3f}'} | {r['alarms'].get(m, '')} |")


if __name__ == "__main__":
    main()
