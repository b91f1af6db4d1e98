"""Seq2seq quality and decoding-speed benchmark: G2P on CMUdict, Babel dates, beam vs greedy.

    OMP_NUM_THREADS=2 python -m benchmarks.seq2seq [--part g2p|dates|beam|all] [--out DIR]
        [--g2p-epochs N --g2p-max-train N --g2p-hidden N --threads N]

- ``dates``: the job on 20k Babel dates (20 locales, medium/long/full), Bahdanau attention vs
  none, greedy and beam 5, on 2000 held-out dates (never seen in training, in any locale).
- ``g2p``: the job on CMUdict (split by word; the test words are never seen in training),
  Bahdanau attention vs none; WER (share of words with any phoneme wrong) and PER.
- ``reverse``: a seeded TSV of random strings (4..40 letters) and their reversals: attention
  vs none by source length (the Bahdanau et al. 2015 figure on a toy).
- ``beam``: with the dates model (or g2p with ``--beam-task g2p``), beam 5 over test sources
  in batches of 128 (``beam_search_batch``: every sentence's beams in one tensor) against
  ``beam_search`` sentence by sentence; alternated A/B, median of 3 runs; the hypotheses must
  be the same.

Each part writes its job folder under ``--out`` (metrics.json, PNGs) and a summary JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from lstmkit.decoding import beam_search
from lstmkit.jobs import seq2seq as job


def run_job(out: Path, **kw) -> dict:
    cfg = job.Seq2SeqJobConfig(out=str(out), progress=False, **kw)
    t0 = time.perf_counter()
    res = job.train(cfg)
    res.metrics["wall_seconds"] = round(time.perf_counter() - t0, 1)
    return res.metrics


def beam_speed(checkpoint: Path, n: int, width: int = 5, batch: int = 128) -> dict:
    ld = job.load_model(checkpoint)
    data = job.load_task(job.Seq2SeqJobConfig(**{**ld.job.__dict__, "max_test": n, "progress": False}))
    srcs = [ld.src_vocab.encode(s) for s, _ in data["test"]]
    m, eos = ld.model, ld.model.config.eos_id

    def batched():
        return job.decode_all(m, srcs, beam_width=width, batch_size=batch, max_new_tokens=ld.max_new_tokens)

    def one_by_one():
        out = []
        with torch.no_grad():
            for s in srcs:
                bos, state = m.start(torch.tensor([s]), torch.tensor([len(s)]))
                hyps = beam_search(m.step, bos, state, beam_width=width, max_new_tokens=ld.max_new_tokens,
                                   eos_id=eos, reorder_state=m.beam_reorder)
                out.append([h._replace(tokens=[t for t in h.tokens if t != eos]) for h in hyps])
        return out

    times: dict[str, list[float]] = {"batched": [], "per_sentence": []}
    outs = {}
    for _ in range(3):
        for name, fn in (("batched", batched), ("per_sentence", one_by_one)):
            t0 = time.perf_counter()
            outs[name] = fn()
            times[name].append(time.perf_counter() - t0)
    same = sum(a[0].tokens == b[0].tokens for a, b in zip(outs["batched"], outs["per_sentence"]))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"sentences": len(srcs), "beam_width": width, "batch": batch,
            "batched_s": round(med["batched"], 3), "per_sentence_s": round(med["per_sentence"], 3),
            "speedup": round(med["per_sentence"] / med["batched"], 2), "same_best": f"{same}/{len(srcs)}"}


def write_reverse_tsv(path: Path, n: int = 20000, seed: int = 0) -> Path:
    """Random lowercase strings of 4..40 letters and their reversals: the task where a fixed
    context runs out of room as the source grows (Bahdanau et al.'s figure, on a toy)."""
    g = torch.Generator().manual_seed(seed)
    lines = []
    for _ in range(n):
        k = int(torch.randint(4, 41, (1,), generator=g))
        s = "".join(chr(97 + i) for i in torch.randint(0, 26, (k,), generator=g).tolist())
        lines.append(f"{s}\t{s[::-1]}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=["g2p", "dates", "reverse", "beam", "all"], default="all")
    ap.add_argument("--out", default="runs/bench-seq2seq")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--g2p-epochs", type=int, default=6)
    ap.add_argument("--g2p-max-train", type=int, default=0)
    ap.add_argument("--g2p-hidden", type=int, default=128)
    ap.add_argument("--g2p-batch", type=int, default=128)
    ap.add_argument("--dates-epochs", type=int, default=6)
    ap.add_argument("--beam-task", choices=["dates", "g2p"], default="dates")
    ap.add_argument("--beam-n", type=int, default=300)
    ap.add_argument("--beam-checkpoint", default=None, help="default: OUT/BEAM_TASK/model.pt")
    ap.add_argument("--reverse-epochs", type=int, default=6)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    out = Path(args.out)
    summary: dict = {"threads": args.threads}
    if args.part in ("dates", "all"):
        summary["dates"] = run_job(out / "dates", task="dates", n_dates=20000, epochs=args.dates_epochs,
                                   batch_size=64, embedding_dim=32, hidden_size=64, lr=3e-3, beam_width=5)
    if args.part in ("g2p", "all"):
        summary["g2p"] = run_job(out / "g2p", task="g2p", epochs=args.g2p_epochs, batch_size=args.g2p_batch,
                                 embedding_dim=64, hidden_size=args.g2p_hidden, lr=3e-3, dropout=0.2,
                                 max_train=args.g2p_max_train, beam_width=5, patience=2)
    if args.part in ("reverse", "all"):
        tsv = write_reverse_tsv(out / "reverse.tsv")
        summary["reverse"] = run_job(out / "reverse", tsv=str(tsv), epochs=args.reverse_epochs, batch_size=64,
                                     embedding_dim=32, hidden_size=64, lr=3e-3, beam_width=5)
    if args.part in ("beam", "all"):
        ck = Path(args.beam_checkpoint) if args.beam_checkpoint else out / args.beam_task / "model.pt"
        summary["beam_speed"] = beam_speed(ck, args.beam_n)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"summary-{args.part}.json"
    path.write_text(json.dumps(summary, indent=2) + "\n")
    for part in ("dates", "g2p", "reverse"):
        if part in summary:
            print(f"\n{part} ({summary[part]['wall_seconds']} s wall):")
            print(job.table(summary[part]))
    if "beam_speed" in summary:
        print("\nbeam speed:", summary["beam_speed"])
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
