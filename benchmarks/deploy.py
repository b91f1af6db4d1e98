"""Deployment benchmark: ONNX export parity over a grid of layer configurations, then a small
character LM (trained here on the Python standard library) compressed every way lstmkit can,
each variant measured for file size, parameters, latency of one generation step at batch 1 and
16 (each backend timed in its own process) and test bits/char.

    python -m benchmarks.deploy [--quick] [--steps 600] [--out DIR]

Writes DIR/deploy.json, DIR/deploy.md (the table) and DIR/pareto.png.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

# -- 1. export parity sweep ---------------------------------------------------------------------


def parity_sweep(quick: bool) -> dict:
    import lstmkit as lk
    from lstmkit.export.onnx_export import ParityError, to_onnx

    grid = []
    for fam, flags in (("LSTM", [{}, {"peephole": True}, {"coupled": True}, {"layer_norm": True},
                                 {"proj_size": 3}, {"zoneout": (0.2, 0.1)},
                                 {"peephole": True, "coupled": True, "layer_norm": True, "proj_size": 3}]),
                       ("GRU", [{}, {"reset_after": False}, {"zoneout": 0.2}]),
                       ("RNN", [{}, {"nonlinearity": "relu"}])):
        for f, bi, layers, bf in itertools.product(flags, (False, True), (1, 2), (False, True)):
            if quick and (layers == 2 and bf):
                continue
            kw = dict(f, bidirectional=bi, num_layers=layers, batch_first=bf)
            grid.append((fam, kw))
    rows, worst, fails = [], 0.0, []
    with tempfile.TemporaryDirectory() as d:
        for i, (fam, kw) in enumerate(grid):
            torch.manual_seed(i)
            m = getattr(lk, fam)(4, 6, **kw)
            for step in (False, True):
                if step and kw["bidirectional"]:
                    continue
                for lowering in ("auto", "scan"):
                    try:
                        r = to_onnx(m, os.path.join(d, "m.onnx"), step=step, lowering=lowering)
                        worst = max(worst, r.max_abs_error)
                        rows.append((fam, kw, step, r.lowering, r.max_abs_error))
                    except (ParityError, ValueError) as e:
                        fails.append((fam, kw, step, lowering, str(e)[:200]))
    return {"configurations": len(grid), "exports": len(rows), "failures": fails,
            "max_abs_error_written": worst,
            "native": sum(r[3] == "native" for r in rows), "scan": sum(r[3] == "scan" for r in rows)}


# -- 2. the LM ------------------------------------------------------------------------------------
def prepare_text(max_chars: int):
    from lstmkit.data.text import make_tokenizer, stdlib_corpus

    text = "\n".join(stdlib_corpus(max_chars))
    n = len(text)
    tr, va = text[: int(0.8 * n)], text[int(0.8 * n): int(0.9 * n)]
    te = text[int(0.9 * n):]
    tok = make_tokenizer("char", [tr])
    ids = [torch.tensor(tok.encode(t), dtype=torch.long) for t in (tr, va, te)]
    return tok, ids, (tr, va, te)


def bpc(model_fn, ids: torch.Tensor, text: str, *, batch: int = 16, bptt: int = 128) -> float:
    """Bits per character of a stream; ``model_fn(tokens (B, T), state) -> (logits, state)``."""
    from lstmkit.data.text import stream_batches

    total, count, hx = 0.0, 0, None
    with torch.no_grad():
        for x, y in stream_batches(ids, batch, bptt):
            logits, hx = model_fn(x, hx)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                     reduction="sum").item()
            count += y.numel()
    n_chars = len(text) * count / len(ids)
    return total / n_chars / math.log(2)


def onnx_lm_fn(path: str):
    import numpy as np

    from lstmkit.export.onnx_export import session

    sess = session(path)
    L = sess.get_inputs()[1].shape[0]
    P, H = sess.get_inputs()[1].shape[2], sess.get_inputs()[2].shape[2]

    def fn(x, hx):
        B = x.shape[0]
        if hx is None:
            hx = (np.zeros((L, B, P), np.float32), np.zeros((L, B, H), np.float32))
        logits, h, c = sess.run(None, {"tokens": x.numpy(), "h0": hx[0], "c0": hx[1]})
        return torch.from_numpy(logits), (h, c)

    return fn


def chunks(ids: torch.Tensor, bptt: int, n: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(0, len(ids) - bptt - 1, (n,), generator=g)
    x = torch.stack([ids[s: s + bptt] for s in starts])
    y = torch.stack([ids[s + 1: s + bptt + 1] for s in starts])
    return TensorDataset(x, y)


def lm_loss(model, batch):
    x, y = batch
    logits, _ = model(x)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def distill_section(lm, cfg, train_dl, val_dl, te, te_t, epochs: int, d: str) -> list[dict]:
    """A student with ~1/4 of the teacher's parameters, trained alone vs distilled (same data,
    steps, seed, Trainer)."""
    from dataclasses import replace

    from lstmkit.export import compress as C
    from lstmkit.models.language_model import LanguageModel

    target = C.count_params(lm) / 4
    H = min(range(8, cfg.hidden_size), key=lambda h: abs(C.count_params(
        LanguageModel(replace(cfg, hidden_size=h))) - target))
    rows = []
    for name in ("student alone", "student distilled (T=2, alpha=0.5)"):
        torch.manual_seed(0)
        student = LanguageModel(replace(cfg, hidden_size=H))
        out = os.path.join(d, f"kd{len(rows)}")
        if name == "student alone":
            C.fine_tune(student, lm_loss, train_dl, val_dl, out_dir=out, epochs=epochs, lr=3e-3)
        else:
            C.distill(lm, student, train_dl, val_dl, out_dir=out, temperature=2.0, alpha=0.5,
                      epochs=epochs, lr=3e-3)
        rows.append({"name": f"{name}, H={H}", "params": C.count_params(student),
                     "params_vs_teacher": C.count_params(student) / C.count_params(lm),
                     "test_bpc": bpc(student, te, te_t)})
        print(f"   {rows[-1]['name']}: {rows[-1]['params']:,} params "
              f"({rows[-1]['params_vs_teacher']:.2f} of the teacher), {rows[-1]['test_bpc']:.3f} bpc",
              flush=True)
    return rows


# -- 3. latency worker (its own process per backend) ------------------------------------------------
def worker(kind: str, path: str, batch: int, min_ms: float, runs: int) -> dict:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    steps = 20
    if kind == "onnx":
        import numpy as np

        from lstmkit.export.onnx_export import session

        sess = session(path, threads=1)
        ins = sess.get_inputs()
        L, P, H = ins[1].shape[0], ins[1].shape[2], ins[2].shape[2]
        V = sess.get_outputs()[0].shape[1]
        tok = np.zeros(batch, np.int64)
        h, c = np.zeros((L, batch, P), np.float32), np.zeros((L, batch, H), np.float32)

        def run_steps():
            nonlocal h, c, tok
            for _ in range(steps):
                lp, h, c = sess.run(None, {"tokens": tok, "h0": h, "c0": c})
                tok = lp.argmax(-1)
    else:
        from lstmkit.export.checkpoints import load_model

        model, _ = load_model(path)
        V = None
        tok = torch.zeros(batch, dtype=torch.long)
        hx = None

        def run_steps():
            nonlocal hx, tok
            with torch.no_grad():
                for _ in range(steps):
                    lp, hx = model.step(tok, hx)
                    tok = lp.argmax(-1)
    run_steps()  # warm-up
    reps = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(reps):
            run_steps()
        if (time.perf_counter() - t0) * 1000 >= min_ms:
            break
        reps *= 2
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        for _ in range(reps):
            run_steps()
        times.append((time.perf_counter() - t0) / (reps * steps))
    return {"us_per_step": statistics.median(times) * 1e6, "vocab": V}


def latency(kind: str, path: str, batch: int, quick: bool) -> float:
    cmd = [sys.executable, "-m", "benchmarks.deploy", "--worker", kind, path, str(batch),
           "--runs", "3" if quick else "5"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"latency worker failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["us_per_step"]


# -- the run --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.deploy", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller grid, corpus and training")
    ap.add_argument("--steps", type=int, default=None, help="LM training steps (default 800, quick 150)")
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--out", default="deploy_out")
    ap.add_argument("--sweep-only", action="store_true", help="only the export parity sweep")
    ap.add_argument("--distill-only", action="store_true", help="only train the LM and the distillation")
    ap.add_argument("--worker", nargs=3, metavar=("KIND", "PATH", "BATCH"), help=argparse.SUPPRESS)
    ap.add_argument("--runs", type=int, default=5, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        kind, path, b = args.worker
        print(json.dumps(worker(kind, path, int(b), 50.0, args.runs)))
        return 0

    from lstmkit.export import compress as C
    from lstmkit.export.checkpoints import save_model
    from lstmkit.export.onnx_export import to_onnx
    from lstmkit.models.language_model import LanguageModel, LanguageModelConfig
    from lstmkit.train.trainer import TrainConfig, Trainer

    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    t_start = time.time()
    load0 = os.getloadavg()[0]
    print("1. ONNX export parity sweep ...", flush=True)
    sweep = parity_sweep(args.quick) if not args.distill_only else {
        "configurations": 0, "exports": 0, "native": 0, "scan": 0, "failures": [],
        "max_abs_error_written": 0.0}
    print(f"   {sweep['configurations']} layer configurations, {sweep['exports']} exports "
          f"({sweep['native']} native, {sweep['scan']} scan), {len(sweep['failures'])} failures, "
          f"max abs error of the written ones {sweep['max_abs_error_written']:.2e}", flush=True)
    for f in sweep["failures"]:
        print(f"   not written: {f}")
    if args.sweep_only:
        return 0

    steps = args.steps or (150 if args.quick else 800)
    tok, (tr, va, te), (tr_t, va_t, te_t) = prepare_text(300_000 if args.quick else 1_000_000)
    print(f"2. LM: stdlib text {len(tr_t):,} train / {len(va_t):,} val / {len(te_t):,} test chars, "
          f"vocab {len(tok)}; training {steps} steps ...", flush=True)
    torch.manual_seed(0)
    cfg = LanguageModelConfig(vocab_size=len(tok), embedding_dim=64, hidden_size=args.hidden, num_layers=1,
                              dropout=0.0, embedding_dropout=0.0, output_dropout=0.0)
    lm = LanguageModel(cfg)
    t_fit = time.perf_counter()
    d = tempfile.mkdtemp(prefix="deploy-")
    fit_dl = DataLoader(chunks(tr, 64, steps * 32, 0), batch_size=32, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    Trainer(lm, lm_loss, TrainConfig(epochs=1, lr=3e-3, patience=None, seed=0, clip_grad_norm=1.0,
                                     progress=sys.stderr.isatty(), resume=False),
            os.path.join(d, "fit")).fit(fit_dl)
    fit = {"steps": steps, "seconds": time.perf_counter() - t_fit}
    lm.eval()
    print(f"   trained in {fit['seconds']:.0f} s", flush=True)

    ft_n = 64 if args.quick else 256
    train_dl = DataLoader(chunks(tr, 64, ft_n * 8, 1), batch_size=32, shuffle=True)
    val_dl = DataLoader(chunks(va, 64, 64, 2), batch_size=32)
    ft_epochs = 1 if args.quick else 2

    def tuned(model, masks=None):
        C.fine_tune(model, lm_loss, train_dl, val_dl, out_dir=os.path.join(d, f"ft{time.time_ns()}"),
                    epochs=ft_epochs, lr=1e-3, masks=masks)
        return model

    if args.distill_only:
        print("4. distillation ...", flush=True)
        rows = distill_section(lm, cfg, train_dl, val_dl, te, te_t, 2 * ft_epochs, d)
        rows.insert(0, {"name": "teacher", "params": C.count_params(lm), "test_bpc": bpc(lm, te, te_t)})
        from lstmkit._io import atomic_write_text

        atomic_write_text(os.path.join(args.out, "distill.json"), json.dumps(rows, indent=2) + "\n")
        return 0
    variants = {"float32 (torch)": lm}
    variants["float32 + the same fine-tune (control)"] = tuned(copy.deepcopy(lm))
    variants["int8 weights (torch, lstmkit)"] = C.quantize_int8(lm)
    variants["float16 weights"] = C.cast_weights(lm, "float16")
    variants["bfloat16 weights"] = C.cast_weights(lm, "bfloat16")
    mp, masks = C.magnitude_prune(lm, 0.5)
    variants["magnitude 50%"] = mp
    mp2, masks2 = C.magnitude_prune(lm, 0.5)
    variants["magnitude 50% + fine-tune"] = tuned(mp2, masks2)
    variants["prune hidden 1/2, no fine-tune"] = C.prune_hidden(lm, 0.5)
    variants["prune hidden 1/2 + fine-tune"] = tuned(C.prune_hidden(lm, 0.5))
    variants["low rank 1/4 + fine-tune"] = tuned(C.low_rank(lm, 0.25)).eval()
    print(f"3. {len(variants)} torch variants built; exporting and measuring ...", flush=True)

    results = []
    for name, m in variants.items():
        m.eval()
        path = os.path.join(d, f"v{len(results)}.pt")
        save_model(path, m)
        res = {"name": name, "backend": "torch", "file_bytes": os.path.getsize(path),
               "params": C.count_params(m), "nonzero_params": C.count_params(m, nonzero=True),
               "test_bpc": bpc(m, te, te_t)}
        res["us_b1"] = latency("torch", path, 1, args.quick)
        res["us_b16"] = latency("torch", path, 16, args.quick)
        results.append(res)
        print(f"   {name}: {res['test_bpc']:.3f} bpc, {res['file_bytes'] / 1024:.0f} KiB, "
              f"{res['us_b1']:.0f} / {res['us_b16']:.0f} us/step", flush=True)
    for name, m in (("float32", lm), ("pruned 1/2 + ft", variants["prune hidden 1/2 + fine-tune"])):
        seq, stp = os.path.join(d, "seq.onnx"), os.path.join(d, "step.onnx")
        to_onnx(m, seq)
        to_onnx(m, stp, step=True)
        # int8 with both quantiser settings lstmkit.cpu can choose: full 8-bit weights (VNNI CPUs)
        # and 7-bit per-channel weights (CPUs without VNNI, where u8s8 kernels saturate)
        for q in (None, "vnni", "no-vnni"):
            if q:
                narrow = q == "no-vnni"
                for f in (seq, stp):
                    C.quantize_onnx(f, f + ".q", per_channel=narrow, reduce_range=narrow)
            s_path, t_path = (seq + ".q", stp + ".q") if q else (seq, stp)
            label = {None: "", "vnni": " int8 (ORT dynamic, 8-bit)",
                     "no-vnni": " int8 (ORT dynamic, 7-bit per-channel)"}[q]
            res = {"name": f"ONNX {name}{label}", "backend": "onnxruntime",
                   "file_bytes": os.path.getsize(t_path), "params": C.count_params(m),
                   "nonzero_params": C.count_params(m, nonzero=True),
                   "test_bpc": bpc(onnx_lm_fn(s_path), te, te_t)}
            res["us_b1"] = latency("onnx", t_path, 1, args.quick)
            res["us_b16"] = latency("onnx", t_path, 16, args.quick)
            results.append(res)
            print(f"   {res['name']}: {res['test_bpc']:.3f} bpc, {res['file_bytes'] / 1024:.0f} KiB, "
                  f"{res['us_b1']:.0f} / {res['us_b16']:.0f} us/step", flush=True)
    print("4. distillation ...", flush=True)
    distilled = distill_section(lm, cfg, train_dl, val_dl, te, te_t, 2 * ft_epochs, d)
    base = results[0]
    for r in results:
        r["bpc_vs_float_pct"] = 100 * (r["test_bpc"] / base["test_bpc"] - 1)
        r["size_x"] = base["file_bytes"] / r["file_bytes"]
        r["speed_b1_x"] = base["us_b1"] / r["us_b1"]
        r["speed_b16_x"] = base["us_b16"] / r["us_b16"]
    meta = {"sweep": sweep, "lm": {"config": cfg.__dict__, "train_steps": fit["steps"],
                                   "train_seconds": fit["seconds"], "train_chars": len(tr_t),
                                   "test_chars": len(te_t), "fine_tune_epochs": ft_epochs},
            "results": results, "distillation": distilled, "seconds": time.time() - t_start,
            "loadavg_start_end": [load0, os.getloadavg()[0]], "threads": 1}
    from lstmkit._io import atomic_write_text

    atomic_write_text(os.path.join(args.out, "deploy.json"), json.dumps(meta, indent=2, default=str) + "\n")
    lines = ["| model | backend | file KiB | params | test bits/char | vs float | step us B=1 | "
             "step us B=16 | speed-up B=1 |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        nz = f" ({r['nonzero_params']:,} nonzero)" if r["nonzero_params"] != r["params"] else ""
        lines.append(f"| {r['name']} | {r['backend']} | {r['file_bytes'] / 1024:.0f} | {r['params']:,}{nz} | "
                     f"{r['test_bpc']:.3f} | {r['bpc_vs_float_pct']:+.1f}% | {r['us_b1']:.0f} | "
                     f"{r['us_b16']:.0f} | {r['speed_b1_x']:.2f}x |")
    lines += ["", "| distillation | params | vs teacher | test bits/char |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['params']:,} | {r['params_vs_teacher']:.2f} | {r['test_bpc']:.3f} |"
              for r in distilled]
    table = "\n".join(lines)
    atomic_write_text(os.path.join(args.out, "deploy.md"), table + "\n")
    print(table)
    plot(results, os.path.join(args.out, "pareto.png"))
    print(f"wrote {args.out}/deploy.json, deploy.md, pareto.png in {meta['seconds']:.0f} s "
          f"(load average {load0:.1f} -> {os.getloadavg()[0]:.1f})")
    return 0


def plot(results: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lstmkit._io import atomic_write

    fig, axes = plt.subplots(1, 2, figsize=(15, 5.5))
    for ax, key, label in ((axes[0], "file_bytes", "file size (KiB)"),
                           (axes[1], "us_b1", "latency of one step at batch 1 (us, noisy)")):
        scale = 1024 if key == "file_bytes" else 1
        for i, r in enumerate(results):
            x = r[key] / scale
            marker = "s" if r["backend"] == "onnxruntime" else "o"
            ax.scatter(x, r["test_bpc"], marker=marker, s=40, label=f"{i + 1}. {r['name']}")
            ax.annotate(str(i + 1), (x, r["test_bpc"]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        pts = sorted((r[key] / scale, r["test_bpc"]) for r in results)
        front, best = [], math.inf
        for x, y in pts:
            if y < best:
                front.append((x, y))
                best = y
        ax.step(*zip(*front), "k--", lw=0.8, where="post")
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("test bits/char (lower is better)")
        ax.grid(alpha=0.3)
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.suptitle("char LM on Python stdlib text: compressed variants "
                 "(o torch, s onnxruntime; -- Pareto front)")
    fig.tight_layout()
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=100))
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
