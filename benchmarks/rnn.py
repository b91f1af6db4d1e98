"""LSTM engines against torch.nn on CPU, by the DESIGN §5 protocol.

Symbols: T time, B batch, I input (= H here), H hidden, G gate count (4 for the LSTM).

Ratio = lstmkit time / torch time, measured in the same process with the engines alternated
(A/B/A/B...), after warm-ups, as the median of >= 5 runs each lasting >= 50 ms, on 2 threads with
``torch.set_flush_denormal(True)``. GFLOP/s counts the GEMM work only: forward
``2*T*B*G*H*(I+H)``, training step (forward + backward) ``6*T*B*G*H*(I+H)``.

Until ``lstmkit.LSTM`` is wired to the engines, the engines are called directly with the same
weights as the torch module: ``reference`` = ``functional.lstm.lstm`` (hand BPTT, PyTorch ops),
``fused`` = ``kernels.lstm`` (compiled), ``eager`` = ``functional.eager.lstm_eager`` (autograd).

    python -m benchmarks.rnn --quick
    python -m benchmarks.rnn --sections grid,variants,lengths,step,memory
    python -m benchmarks.rnn --sections bf16,inference,step,overhead
    python -m benchmarks.rnn --threads 1 --sections gru_cho,ln --before OLD_BUILD.so
    python -m benchmarks.rnn --threads 1 --sections ln,stepgemm --base OLD_EXPORT/src
    LSTMKIT_MAX_ISA=avx2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 \
        python -m benchmarks.rnn --threads 1 --sections variants,gru,inference --shapes 50x64x256

The header records the machine's float32 and bfloat16 GEMM rates (the rooflines beside every
GFLOP/s column): a big GEMM (the input projection of T=50, B=64, H=512) and a per-step one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lstmkit import kernels
from lstmkit.functional import LSTMParams, Masks
from lstmkit.functional.eager import lstm_eager
from lstmkit.functional.gru import GRUParams
from lstmkit.functional.gru import gru as gru_reference
from lstmkit.functional.lstm import lstm as lstm_reference

GRID = [(50, B, H) for B in (1, 16, 64) for H in (64, 128, 256, 512)] + [(100, 64, 512)]
QUICK_GRID = [(50, 1, 64), (50, 16, 256), (50, 64, 256), (50, 64, 512)]
SECTIONS = ("grid", "gru", "gru_cho", "variants", "lengths", "step", "memory", "bf16", "inference",
            "overhead", "ln", "stepgemm", "crossover")
VARIANTS = ("plain", "peephole", "coupled", "layer_norm")


# --------------------------------------------------------------------------- timing


def _calibrate(fn: Callable[[], None], min_run_s: float) -> int:
    """Inner repetitions so one timed run lasts at least ``min_run_s``."""
    fn()
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-6)
    return max(1, int(min_run_s / one * 1.2) + 1)


def compare(fns: dict[str, Callable[[], None]], runs: int, min_run_s: float) -> dict[str, float]:
    """Median seconds per call of each fn, engines alternated run by run."""
    reps = {k: _calibrate(f, min_run_s) for k, f in fns.items()}
    for k, f in fns.items():  # warm-up run
        for _ in range(reps[k]):
            f()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, f in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps[k]):
                f()
            times[k].append((time.perf_counter() - t0) / reps[k])
    return {k: statistics.median(v) for k, v in times.items()}


# --------------------------------------------------------------------------- setups


def torch_lstm(I: int, H: int, seed: int = 0) -> torch.nn.LSTM:
    torch.manual_seed(seed)
    return torch.nn.LSTM(I, H)


def params_of(m: torch.nn.LSTM, **extra) -> LSTMParams:
    """Our LSTMParams sharing the torch module's weights (plus variant weights in ``extra``)."""
    return LSTMParams(m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0, **extra)


def variant_params(I: int, H: int, variant: str, seed: int = 0) -> LSTMParams:
    g = torch.Generator().manual_seed(seed)
    coupled = variant == "coupled"
    G = (3 if coupled else 4) * H
    k = H**-0.5

    def r(*shape, scale=k):
        return ((torch.rand(*shape, generator=g) * 2 - 1) * scale).requires_grad_()

    d = dict(w_ih=r(G, I), w_hh=r(G, H), b_ih=r(G), b_hh=r(G))
    if variant == "peephole":
        d.update(w_ci=r(H), w_cf=r(H), w_co=r(H))
    if variant == "layer_norm":
        one = lambda n: torch.ones(n).requires_grad_()
        zero = lambda n: torch.zeros(n).requires_grad_()
        d.update(ln_ih_w=one(G), ln_ih_b=zero(G), ln_hh_w=one(G), ln_hh_b=zero(G),
                 ln_c_w=one(H), ln_c_b=zero(H))
    return LSTMParams(**d)


def variant_masks(variant: str, T: int, B: int, H: int) -> Masks:
    g = torch.Generator().manual_seed(1)
    if variant == "recurrent_dropout":
        return Masks(rec=(torch.rand(B, H, generator=g) > 0.25).float() / 0.75)
    if variant == "zoneout":
        return Masks(keep_c=(torch.rand(T, B, H, generator=g) < 0.1).float(),
                     keep_h=(torch.rand(T, B, H, generator=g) < 0.05).float())
    return Masks()


def engine_fn(engine: str, x, h0, c0, p: LSTMParams, masks: Masks, train: bool):
    fn = {"reference": lstm_reference, "fused": kernels.lstm, "eager": lstm_eager}[engine]
    leaves = [x, *[t for t in p if t is not None]]

    def fwd():
        with torch.no_grad():
            fn(x, h0, c0, p, masks)

    def step():
        y, h_n, c_n = fn(x, h0, c0, p, masks)
        y.sum().backward()
        for t in leaves:
            t.grad = None

    return step if train else fwd


def torch_fn(m: torch.nn.LSTM, x, h0, c0, train: bool):
    leaves = [x, *m.parameters()]

    def fwd():
        with torch.no_grad():
            m(x, (h0[None], c0[None]))

    def step():
        y, _ = m(x, (h0[None], c0[None]))
        y.sum().backward()
        for t in leaves:
            t.grad = None

    return step if train else fwd


def inputs(T, B, I, H, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, I, generator=g).requires_grad_()
    return x, torch.zeros(B, H), torch.zeros(B, H)


# --------------------------------------------------------------------------- sections


def gflops(T, B, I, H, train, seconds, G=4):
    return (6 if train else 2) * T * B * G * H * (I + H) / seconds / 1e9


def section_grid(args, grid) -> list[str]:
    engines = [e for e in args.engines if e in ("reference", "fused")]
    head = "| T | B | H | mode | torch ms | torch GFLOP/s | " + " | ".join(
        f"{e} ms | {e} GFLOP/s | {e} ratio | {e} µs/step" for e in engines) + " |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for T, B, H in grid:
        I = H
        m = torch_lstm(I, H)
        p = params_of(m)
        x, h0, c0 = inputs(T, B, I, H)
        for train in (False, True):
            fns = {"torch": torch_fn(m, x, h0, c0, train)}
            for e in engines:
                fns[e] = engine_fn(e, x, h0, c0, p, Masks(), train)
            t = compare(fns, args.runs, args.min_run_ms / 1e3)
            mode = "fwd+bwd" if train else "fwd"
            cells = [f"{T}", f"{B}", f"{H}", mode, f"{t['torch'] * 1e3:.2f}",
                     f"{gflops(T, B, I, H, train, t['torch']):.1f}"]
            for e in engines:
                cells += [f"{t[e] * 1e3:.2f}", f"{gflops(T, B, I, H, train, t[e]):.1f}",
                          f"{t[e] / t['torch']:.2f}", f"{t[e] / T * 1e6:.0f}"]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    return rows


def section_gru(args, shapes) -> list[str]:
    """GRU (reset_after=True) fwd+bwd against torch.nn.GRU with the same weights."""
    engines = [e for e in args.engines if e in ("reference", "fused")]
    head = "| T | B | H | torch.nn.GRU ms | " + " | ".join(f"{e} ms | {e} ratio" for e in engines) + " |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for T, B, H in shapes:
        torch.manual_seed(0)
        m = torch.nn.GRU(H, H)
        p = GRUParams(m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
        x, h0, _ = inputs(T, B, H, H)
        leaves = [x, *m.parameters()]

        def torch_step(m=m, x=x, h0=h0, leaves=leaves):
            m(x, h0[None])[0].sum().backward()
            for t in leaves:
                t.grad = None

        fns = {"torch": torch_step}
        for e in engines:
            fn = gru_reference if e == "reference" else kernels.gru

            def step(fn=fn, x=x, h0=h0, p=p, leaves=leaves):
                fn(x, h0, p, Masks())[0].sum().backward()
                for t in leaves:
                    t.grad = None

            fns[e] = step
        t = compare(fns, args.runs, args.min_run_ms / 1e3)
        cells = [f"{T}", f"{B}", f"{H}", f"{t['torch'] * 1e3:.2f}"]
        for e in engines:
            cells += [f"{t[e] * 1e3:.2f}", f"{t[e] / t['torch']:.2f}"]
        rows.append("| " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
    return rows


def section_gru_cho(args, shapes) -> list[str]:
    """The Cho GRU (reset_after=False: two recurrent GEMMs a step), fwd+bwd and no_grad forward:
    the fused kernel against the reference engine, against torch.nn.GRU (which has no Cho form:
    its reset_after=True GRU with the same weights is the nearest thing a user could run instead)
    and against lstmkit's own fused reset_after=True kernel."""
    head = ("| T | B | H | pass | torch.nn.GRU ms | reference ms | fused Cho ms | Cho / torch | "
            "Cho / reference | fused reset_after ms |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for T, B, H in shapes:
        torch.manual_seed(0)
        m = torch.nn.GRU(H, H)
        p = GRUParams(m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
        x, h0, _ = inputs(T, B, H, H)
        leaves = [x, *m.parameters()]
        for train in (True, False):
            def run(call, train=train, leaves=leaves):
                if train:
                    call()[0].sum().backward()
                    for t in leaves:
                        t.grad = None
                else:
                    with torch.no_grad():
                        call()

            fns = {
                "torch": lambda run=run, m=m, x=x, h0=h0: run(lambda: m(x, h0[None])),
                "reference": lambda run=run, x=x, h0=h0, p=p: run(
                    lambda: gru_reference(x, h0, p, Masks(), reset_after=False)),
                "cho": lambda run=run, x=x, h0=h0, p=p: run(
                    lambda: kernels.gru(x, h0, p, Masks(), reset_after=False)),
                "after": lambda run=run, x=x, h0=h0, p=p: run(lambda: kernels.gru(x, h0, p, Masks())),
            }
            t = compare(fns, args.runs, args.min_run_ms / 1e3)
            rows.append(f"| {T} | {B} | {H} | {'fwd+bwd' if train else 'no_grad fwd'} | "
                        f"{t['torch'] * 1e3:.2f} | {t['reference'] * 1e3:.2f} | {t['cho'] * 1e3:.2f} | "
                        f"{t['cho'] / t['torch']:.2f} | {t['cho'] / t['reference']:.2f} | "
                        f"{t['after'] * 1e3:.2f} |")
            print(rows[-1], flush=True)
    return rows


def section_variants(args, shapes) -> list[str]:
    engines = [e for e in ("fused", "reference", "eager") if e in args.engines or e == "eager"]
    head = ("| variant | T | B | H | torch plain ms | " + " | ".join(f"{e} ms" for e in engines)
            + " | fused / torch plain | eager / fused |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for T, B, H in shapes:
        I = H
        m = torch_lstm(I, H)
        x, h0, c0 = inputs(T, B, I, H)
        for variant in ("peephole", "coupled", "layer_norm", "recurrent_dropout", "zoneout"):
            p = params_of(m) if variant in ("recurrent_dropout", "zoneout") else variant_params(I, H, variant)
            masks = variant_masks(variant, T, B, H)
            fns = {"torch": torch_fn(m, x, h0, c0, True)}
            for e in engines:
                fns[e] = engine_fn(e, x, h0, c0, p, masks, True)
            t = compare(fns, args.runs, args.min_run_ms / 1e3)
            cells = [variant, f"{T}", f"{B}", f"{H}", f"{t['torch'] * 1e3:.2f}",
                     *[f"{t[e] * 1e3:.2f}" for e in engines]]
            cells += [f"{t['fused'] / t['torch']:.2f}" if "fused" in t else "-",
                      f"{t['eager'] / t['fused']:.2f}" if "fused" in t else "-"]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    return rows


def section_lengths(args, T=100, B=64, H=256) -> list[str]:
    """fwd+bwd of a lengths-masked batch against torch.nn.LSTM + pack_padded_sequence."""
    I = H
    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(T // 2, T + 1, (B,), generator=g)
    lengths[0] = T
    m = torch_lstm(I, H)
    p = params_of(m)
    x, h0, c0 = inputs(T, B, I, H)
    out = (torch.arange(T)[:, None] < lengths[None, :]).float()[..., None]  # (T, B, 1)
    masks = Masks(keep_c=1 - out, keep_h=1 - out, out=out)
    leaves = [x, *m.parameters()]

    def packed():
        pk = pack_padded_sequence(x, lengths, enforce_sorted=False)
        y, _ = m(pk, (h0[None], c0[None]))
        y, _ = pad_packed_sequence(y, total_length=T)
        y.sum().backward()
        for t in leaves:
            t.grad = None

    def dense():
        y, _ = m(x, (h0[None], c0[None]))
        y.sum().backward()
        for t in leaves:
            t.grad = None

    fns = {"torch packed": packed, "torch dense": dense}
    for e in (e for e in args.engines if e in ("reference", "fused")):
        fns[e] = engine_fn(e, x, h0, c0, p, masks, True)
    t = compare(fns, args.runs, args.min_run_ms / 1e3)
    rows = ["| engine (T=100, B=64, H=256, lengths U[50,100], fwd+bwd) | ms | ratio to torch packed |",
            "|---|---|---|"]
    for k, v in t.items():
        rows.append(f"| {k} | {v * 1e3:.2f} | {v / t['torch packed']:.2f} |")
        print(rows[-1], flush=True)
    return rows


def section_step(args, H=256) -> list[str]:
    """One streaming step without autograd (H=256, I=256) at B=1 and B=16, in each weight
    precision, against ``torch.nn.LSTMCell`` (float32; bfloat16; torch.ao's dynamic int8): the
    kernel call ``kernels.lstm_step`` and the public ``lk.LSTMCell(step_weights=...)``. The
    weights are 2 MiB of float32: "memory floor" is one read of them (a 2 MiB sum, as measured
    here). "max |dh|" is the largest difference of h from a float64 step over 64 rows."""
    import warnings

    import lstmkit as lk

    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(H, H)
    cell_bf16 = torch.nn.LSTMCell(H, H).to(torch.bfloat16)
    cell_bf16.load_state_dict({k: v.to(torch.bfloat16) for k, v in cell.state_dict().items()})
    with warnings.catch_warnings():  # torch.ao's deprecation notice
        warnings.simplefilter("ignore")
        cell_q = torch.ao.quantization.quantize_dynamic(
            torch.nn.Sequential(cell), {torch.nn.LSTMCell}, dtype=torch.qint8)[0]
    p = LSTMParams(cell.weight_ih.detach(), cell.weight_hh.detach(), cell.bias_ih.detach(),
                   cell.bias_hh.detach())
    lk_cells = {w: lk.LSTMCell(H, H, step_weights=w) for w in kernels.STEP_WEIGHTS}
    for c in lk_cells.values():
        c.load_state_dict(cell.state_dict())
    src = torch.randn(2 * 4 * H * H // 2)  # 2 MiB of float32 weights

    # accuracy: 64 rows against the float64 step
    g = torch.Generator().manual_seed(1)
    xe, he, ce = (torch.randn(64, H, generator=g), torch.randn(64, H, generator=g).tanh(),
                  torch.randn(64, H, generator=g))
    with torch.no_grad():
        h64 = torch.nn.LSTMCell(H, H).double()
        h64.load_state_dict({k: v.double() for k, v in cell.state_dict().items()})
        ref = h64(xe.double(), (he.double(), ce.double()))[0]
        err = {"torch.nn.LSTMCell": cell(xe, (he, ce))[0],
               "torch.nn.LSTMCell bfloat16": cell_bf16(xe.bfloat16(), (he.bfloat16(), ce.bfloat16()))[0],
               "torch.ao dynamic int8 LSTMCell": cell_q(xe, (he, ce))[0]}
        for w in kernels.STEP_WEIGHTS:
            err[f"kernels.lstm_step {w}"] = kernels.lstm_step(xe, he, ce, p, w)[0]
        err = {k: (v.double() - ref).abs().max().item() for k, v in err.items()}

    rows = [f"| streaming step (H={H}, no grad) | B | µs per call | ratio to nn.LSTMCell | "
            "weight bytes read | max abs dh vs float64 |", "|---|---|---|---|---|---|"]
    for B in (1, 16):
        x, h, c = torch.randn(B, H), torch.zeros(B, H), torch.zeros(B, H)
        xb, hb, cb = x.bfloat16(), h.bfloat16(), c.bfloat16()

        def run(f, *a):
            def g():
                with torch.no_grad():
                    f(*a)
            return g

        fns = {"torch.nn.LSTMCell": run(cell, x, (h, c)),
               "torch.nn.LSTMCell bfloat16": run(cell_bf16, xb, (hb, cb)),
               "torch.ao dynamic int8 LSTMCell": run(cell_q, x, (h, c)),
               "memory floor (read 2 MiB)": src.sum}
        if "fused" in args.engines:
            for w in kernels.STEP_WEIGHTS:
                fns[f"kernels.lstm_step {w}"] = run(kernels.lstm_step, x, h, c, p, w)
                fns[f"lk.LSTMCell(step_weights={w!r})"] = run(lk_cells[w], x, (h, c))
        t = compare(fns, args.runs, args.min_run_ms / 1e3)
        nbytes = {"full": 4, "bfloat16": 2, "int8": 1}
        for k, v in t.items():
            w = next((w for w in kernels.STEP_WEIGHTS if w in k), None)
            mem = (f"{nbytes[w] * 8 * H * H / 2**20:.2f} MiB" if w else
                   "2.00 MiB" if k in ("torch.nn.LSTMCell", "memory floor (read 2 MiB)") else
                   "1.00 MiB" if "bfloat16" in k else "0.50 MiB")
            e = err.get(k, err.get(f"kernels.lstm_step {w}") if w else None)
            rows.append(f"| {k} | {B} | {v * 1e6:.1f} | {v / t['torch.nn.LSTMCell']:.2f} | {mem} | "
                        f"{'' if e is None else f'{e:.1e}'} |")
            print(rows[-1], flush=True)
    return rows


def saved_bytes(run: Callable[[], None], exclude: list[torch.Tensor]) -> int:
    """Bytes of distinct storages autograd saves for backward (activations), parameters excluded."""
    skip = {t.untyped_storage().data_ptr() for t in exclude}
    seen: dict[int, int] = {}

    def pack(t):
        s = t.untyped_storage()
        if s.data_ptr() not in skip:
            seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


def _saved_bytes_at(T: int, B: int, H: int) -> dict[str, int]:
    m = torch_lstm(H, H)
    p = params_of(m)
    x, h0, c0 = inputs(T, B, H, H)
    exclude = [*m.parameters(), x]
    got = {"torch": saved_bytes(lambda: m(x, (h0[None], c0[None]))[0].sum(), exclude)}
    for e, fn in (("fused", kernels.lstm), ("reference", lstm_reference)):
        got[e] = saved_bytes(lambda fn=fn: fn(x, h0, c0, p, Masks())[0].sum(), exclude)
    return got


def section_memory(args, shapes) -> list[str]:
    rows = ["| T | B | H | torch.nn.LSTM saved MiB | fused saved MiB | reference saved MiB | fused / torch |",
            "|---|---|---|---|---|---|---|"]
    for T, B, H in shapes:
        got = _saved_bytes_at(T, B, H)
        mib = {k: v / 2**20 for k, v in got.items()}
        rows.append(f"| {T} | {B} | {H} | {mib['torch']:.2f} | {mib['fused']:.2f} | "
                    f"{mib['reference']:.2f} | {got['fused'] / got['torch']:.2f} |")
        print(rows[-1], flush=True)
    return rows


def gemm_rate(M: int, N: int, K: int, dtype, onednn: bool = False, min_run_s: float = 0.2) -> float:
    """GFLOP/s of one (M, K) @ (K, N) GEMM in ``dtype`` (median of 5 runs): ``torch.mm`` (MKL for
    float32), or with ``onednn`` the oneDNN linear the kernels use for big GEMMs."""
    a, w = torch.randn(M, K).to(dtype), torch.randn(N, K).to(dtype)
    wt = w.t().contiguous()
    fn = (lambda: kernels.linear(a, w)) if onednn else (lambda: a @ wt)
    t = compare({"mm": fn}, 5, min_run_s)["mm"]
    return 2 * M * N * K / t / 1e9


def rooflines() -> str:
    """The machine's GEMM rates: the rooflines of the GFLOP/s columns."""
    shapes = {"T*B=3200 x 2048 x 512": (50 * 64, 4 * 512, 512),  # input projection, B=64 H=512
              "64 x 2048 x 512 (one step)": (64, 4 * 512, 512)}
    parts = []
    for name, shape in shapes.items():
        f32 = gemm_rate(*shape, torch.float32)
        f32d = gemm_rate(*shape, torch.float32, onednn=True)
        bf16 = gemm_rate(*shape, torch.bfloat16)
        parts.append(f"{name}: float32 {f32:.0f} (torch.mm/MKL), {f32d:.0f} (oneDNN), bfloat16 "
                     f"{bf16:.0f} (bf16/f32 oneDNN {bf16 / f32d:.2f})")
    return "GEMM rates, GFLOP/s: " + "; ".join(parts)


def _bf16_copy(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().bfloat16().requires_grad_(t.requires_grad)


def section_bf16(args, shapes) -> list[str]:
    """fwd+bwd in bfloat16: each LSTM variant (fused, bf16 params and input) and the GRU against
    torch.nn.LSTM/GRU in bfloat16 and in float32, and against the same fused call in float32."""
    head = ("| family | T | B | H | torch bf16 ms | torch f32 ms | fused bf16 ms | fused f32 ms | "
            "fused bf16 / torch bf16 | fused bf16 / fused f32 | torch bf16 / torch f32 |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for T, B, H in shapes:
        I = H
        for fam in (*VARIANTS, "gru"):
            torch.manual_seed(0)
            gru = fam == "gru"
            m = torch.nn.GRU(I, H) if gru else torch.nn.LSTM(I, H)
            m16 = torch.nn.GRU(I, H) if gru else torch.nn.LSTM(I, H)
            m16.load_state_dict(m.state_dict())
            m16 = m16.bfloat16()
            x, h0, c0 = inputs(T, B, I, H)
            x16 = x.detach().bfloat16().requires_grad_()
            h16, c16 = h0.bfloat16(), c0.bfloat16()
            if gru:
                p = GRUParams(m.weight_ih_l0, m.weight_hh_l0, m.bias_ih_l0, m.bias_hh_l0)
            else:
                p = params_of(m) if fam == "plain" else variant_params(I, H, fam)
            p16 = type(p)(*[_bf16_copy(t) for t in p])

            def torch_step(m, x, h0, c0, gru=gru):
                leaves = [x, *m.parameters()]

                def step():
                    y, _ = m(x, h0[None] if gru else (h0[None], c0[None]))
                    y.float().sum().backward()
                    for t in leaves:
                        t.grad = None
                return step

            def fused_step(x, h0, c0, p, gru=gru):
                leaves = [x, *[t for t in p if t is not None]]

                def step():
                    y = kernels.gru(x, h0, p)[0] if gru else kernels.lstm(x, h0, c0, p)[0]
                    y.float().sum().backward()
                    for t in leaves:
                        t.grad = None
                return step

            fns = {"torch bf16": torch_step(m16, x16, h16, c16), "torch f32": torch_step(m, x, h0, c0),
                   "fused bf16": fused_step(x16, h16, c16, p16), "fused f32": fused_step(x, h0, c0, p)}
            t = compare(fns, args.runs, args.min_run_ms / 1e3)
            cells = [fam, f"{T}", f"{B}", f"{H}", *[f"{t[k] * 1e3:.2f}" for k in fns],
                     f"{t['fused bf16'] / t['torch bf16']:.2f}", f"{t['fused bf16'] / t['fused f32']:.2f}",
                     f"{t['torch bf16'] / t['torch f32']:.2f}"]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    return rows


def section_inference(args, shapes) -> list[str]:
    """Forward under inference_mode: each variant through the fused forward-only path (and the
    layer, ``lk.LSTM``, which picks it under ``auto``) against the plain torch.nn.LSTM (float32)."""
    import lstmkit as lk

    head = ("| variant | T | B | H | torch plain ms | fused ms | lk.LSTM(auto) ms | fused / torch | "
            "lk.LSTM / torch | fused GFLOP/s |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for T, B, H in shapes:
        I = H
        m = torch_lstm(I, H)
        x, h0, c0 = inputs(T, B, I, H)
        x = x.detach()
        for variant in VARIANTS:
            p = params_of(m) if variant == "plain" else variant_params(I, H, variant)
            opts = {} if variant == "plain" else {variant: True}
            layer = lk.LSTM(I, H, **opts)  # its own weights: only the time matters here

            def run_torch(m=m, x=x, h0=h0, c0=c0):
                with torch.inference_mode():
                    m(x, (h0[None], c0[None]))

            def run_fused(p=p, x=x, h0=h0, c0=c0):
                with torch.inference_mode():
                    kernels.lstm(x, h0, c0, p)

            def run_layer(layer=layer, x=x):
                with torch.inference_mode():
                    layer(x)

            t = compare({"torch": run_torch, "fused": run_fused, "layer": run_layer}, args.runs,
                        args.min_run_ms / 1e3)
            G = 3 if variant == "coupled" else 4
            cells = [variant, f"{T}", f"{B}", f"{H}", f"{t['torch'] * 1e3:.2f}", f"{t['fused'] * 1e3:.2f}",
                     f"{t['layer'] * 1e3:.2f}", f"{t['fused'] / t['torch']:.2f}",
                     f"{t['layer'] / t['torch']:.2f}", f"{gflops(T, B, I, H, False, t['fused'], G):.1f}"]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    return rows


def section_overhead(args, T=3, B=2, H=8) -> list[str]:
    """Per-call overhead at a tiny size (T=3, B=2, H=8), fwd+bwd and no-grad forward: the fused
    call (Python glue + C++) against torch.nn.LSTM; microseconds per call."""
    m = torch_lstm(H, H)
    x, h0, c0 = inputs(T, B, H, H)
    rows = ["| T=3 B=2 H=8 | torch µs | fused µs | fused - torch µs | ratio |", "|---|---|---|---|---|"]
    for variant in ("plain", "peephole"):
        p = params_of(m) if variant == "plain" else variant_params(H, H, variant)
        for train in (False, True):
            t = compare({"torch": torch_fn(m, x, h0, c0, train),
                         "fused": engine_fn("fused", x, h0, c0, p, Masks(), train)},
                        args.runs, args.min_run_ms / 1e3)
            mode = "fwd+bwd" if train else "fwd (no_grad)"
            rows.append(f"| {variant} {mode} | {t['torch'] * 1e6:.1f} | {t['fused'] * 1e6:.1f} | "
                        f"{(t['fused'] - t['torch']) * 1e6:.1f} | {t['fused'] / t['torch']:.2f} |")
            print(rows[-1], flush=True)
    return rows


def load_library(path: str):
    """Another build of the kernels (e.g. an earlier commit's ``.so`` from
    ``$TORCH_EXTENSIONS_DIR``), imported beside the current one under its own module name."""
    import importlib.util
    import os

    name = os.path.basename(path).split(".")[0]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def base_kernels(args):
    """``--base SRC``: the kernels module of another lstmkit (an export of an older commit,
    ``git archive REV src | tar -x -C DIR``), imported beside this one under another name, so
    that its calls (Python glue and compiled library alike) are timed in the same process."""
    if not args.base:
        return None
    from benchmarks.small_call import load_alias

    load_alias(args.base, "lstmkit_base")
    return sys.modules["lstmkit_base.kernels"]


def section_ln(args, shapes) -> list[str]:
    """layer_norm LSTM (fused) training and inference against the plain torch.nn.LSTM (float32),
    and, with ``--before LIB``, against the same calls through another build of the kernels
    (its library swapped in for those calls: a before/after in one process), or with
    ``--base SRC`` through another lstmkit altogether (glue and kernels)."""
    from lstmkit.kernels import _loader

    now = _loader.load()
    before = load_library(args.before) if args.before else None
    base = base_kernels(args)

    def through(lib, fn):
        def run():
            _loader._state["module"] = lib
            try:
                fn()
            finally:
                _loader._state["module"] = now
        return run

    head = ("| T | B | H | pass | torch plain ms | fused layer_norm ms | fused / torch |"
            + (" before ms | before / torch | now / before |" if before or base else ""))
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for T, B, H in shapes:
        I = H
        m = torch_lstm(I, H)
        x, h0, c0 = inputs(T, B, I, H)
        p = variant_params(I, H, "layer_norm")
        for train in (True, False):
            fns = {"torch": torch_fn(m, x, h0, c0, train),
                   "now": engine_fn("fused", x, h0, c0, p, Masks(), train)}
            if before:
                fns["before"] = through(before, fns["now"])
            elif base:
                leaves = [x, *[q for q in p if q is not None]]
                fns["before"] = _base_call(base, x, h0, c0, p, train, leaves)
            t = compare(fns, args.runs, args.min_run_ms / 1e3)
            cells = [f"{T}", f"{B}", f"{H}", "fwd+bwd" if train else "no_grad fwd",
                     f"{t['torch'] * 1e3:.2f}", f"{t['now'] * 1e3:.2f}", f"{t['now'] / t['torch']:.2f}"]
            if before or base:
                cells += [f"{t['before'] * 1e3:.2f}", f"{t['before'] / t['torch']:.2f}",
                          f"{t['now'] / t['before']:.2f}"]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    return rows


def _base_call(base, x, h0, c0, p, train: bool, leaves):
    """One fused LSTM call through ``--base``'s kernels (its own LSTMParams type)."""
    import sys as _sys

    bp = _sys.modules["lstmkit_base.functional"].LSTMParams(*p)

    def run():
        if train:
            base.lstm(x, h0, c0, bp)[0].sum().backward()
            for t in leaves:
                t.grad = None
        else:
            with torch.no_grad():
                base.lstm(x, h0, c0, bp)
    return run


def section_stepgemm(args, shapes) -> list[str]:
    """The plain LSTM's fused call, whose per-step recurrent GEMM is (B, 4H, H), against
    torch.nn.LSTM in the same dtype and, with ``--base SRC``, against another lstmkit's fused
    call: where the per-step GEMM rule (at::mm, oneDNN dense or prepacked, panels) matters.
    float32 forward (no_grad) at every shape; float32 fwd+bwd and bfloat16 parameters (forward
    and fwd+bwd) at B <= 16."""
    base = base_kernels(args)
    head = ("| dtype | pass | T | B | H | step GEMM MACs | torch ms | fused ms | fused / torch |"
            + (" base ms | base / torch | fused / base |" if base else ""))
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for dtype, train in ((torch.float32, False), (torch.float32, True), (torch.bfloat16, False),
                         (torch.bfloat16, True)):
        for T, B, H in shapes:
            if (dtype == torch.bfloat16 or train) and B > 16:
                continue
            m = torch_lstm(H, H).to(dtype)
            p = params_of(m)
            x, h0, c0 = (t.detach().to(dtype) for t in inputs(T, B, H, H))
            x.requires_grad_(train)
            fns = {"torch": torch_fn(m, x, h0, c0, train),
                   "fused": engine_fn("fused", x, h0, c0, p, Masks(), train)}
            if base:
                fns["base"] = _base_call(base, x, h0, c0, p, train, [x, *m.parameters()])
            t = compare(fns, args.runs, args.min_run_ms / 1e3)
            cells = [str(dtype).replace("torch.", ""), "fwd+bwd" if train else "fwd", f"{T}", f"{B}",
                     f"{H}", f"{B * 4 * H * H / 1e6:.2f}M", f"{t['torch'] * 1e3:.2f}",
                     f"{t['fused'] * 1e3:.2f}", f"{t['fused'] / t['torch']:.2f}"]
            if base:
                cells += [f"{t['base'] * 1e3:.2f}", f"{t['base'] / t['torch']:.2f}",
                          f"{t['fused'] / t['base']:.2f}"]
            rows.append("| " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    return rows


def section_crossover(args, rows_list=(1, 2, 4, 8, 16, 32), hs=(128, 256, 512)) -> list[str]:
    """One step's recurrent GEMM (B, H) x (4H, H)^T three ways, alternated: ``torch.mm`` into a
    preallocated output with the weight transposed once (what the kernels' at::mm path does;
    MKL here), oneDNN's linear on the dense weight, and on the weight prepacked once
    (``mkldnn::_reorder_linear_weight``), each copied into the preallocated output as the kernels
    do: the measurement behind ``csrc/common.h``'s per-step rule."""
    lin, reorder = torch.ops.mkldnn._linear_pointwise, torch.ops.mkldnn._reorder_linear_weight
    head = ("| B (rows) | H | MACs | at::mm µs | oneDNN dense µs | oneDNN prepacked µs | "
            "prepacked / at::mm | kernels' rule |")
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for B in rows_list:
        for H in hs:
            g = torch.Generator().manual_seed(0)
            a, w = torch.randn(B, H, generator=g), torch.randn(4 * H, H, generator=g)
            wt, wp, y = w.t().contiguous(), reorder(w, B), torch.empty(B, 4 * H)
            t = compare({"mm": lambda a=a, wt=wt, y=y: torch.mm(a, wt, out=y),
                         "dense": lambda a=a, w=w, y=y: y.copy_(lin(a, w, None, "none", [], "")),
                         "packed": lambda a=a, wp=wp, y=y: y.copy_(lin(a, wp, None, "none", [], ""))},
                        args.runs, args.min_run_ms / 1e3)
            macs = B * 4 * H * H
            rule = "oneDNN" if B >= 2 and macs >= 1 << 20 else "at::mm"
            rows.append(f"| {B} | {H} | {macs / 1e6:.2f}M | {t['mm'] * 1e6:.1f} | {t['dense'] * 1e6:.1f} | "
                        f"{t['packed'] * 1e6:.1f} | {t['packed'] / t['mm']:.2f} | {rule} |")
            print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.rnn", description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small grid and fewer runs")
    ap.add_argument("--engines", default="reference,fused", help="comma list of reference,fused")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"comma list of {','.join(SECTIONS)}")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per engine (median), >= 5")
    ap.add_argument("--min-run-ms", type=float, default=50.0, help="minimum length of one run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="also write the markdown tables to this file")
    ap.add_argument("--shapes", default=None, metavar="TxBxH,...",
                    help="sections variants, gru, bf16, inference, ln: these shapes instead of their own")
    ap.add_argument("--before", default=None,
                    help="section ln: another build's kernel library (.so) to compare against")
    ap.add_argument("--base", default=None,
                    help="sections ln, stepgemm: another lstmkit's src/ folder to compare against")
    args = ap.parse_args(argv)
    args.engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    bad = [e for e in args.engines if e not in ("reference", "fused")]
    if bad:
        ap.error(f"--engines: expected names from reference,fused, got {bad}")
    shapes = None
    if args.shapes:
        try:
            shapes = [tuple(int(v) for v in item.split("x")) for item in args.shapes.split(",")]
        except ValueError:
            shapes = []
        if not shapes or any(len(t) != 3 or min(t) < 1 for t in shapes):
            ap.error(f"--shapes: expected T x B x H triples such as 50x64x256,50x16x128, got {args.shapes!r}")
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    bad = [s for s in sections if s not in SECTIONS]
    if bad:
        ap.error(f"--sections: expected names from {','.join(SECTIONS)}, got {bad}")
    if args.runs < 5 and not args.quick:
        ap.error(f"--runs: expected >= 5 (the protocol's median of 5), got {args.runs}")
    if "fused" in args.engines and not kernels.available():
        print("fused kernels unavailable: benchmarking the reference engine only", file=sys.stderr)
        args.engines = [e for e in args.engines if e != "fused"]
    if args.quick:
        args.runs = min(args.runs, 5)
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    grid = QUICK_GRID if args.quick else GRID
    var_shapes = [(50, 16, 128), (50, 64, 256)] if args.quick else [(50, 1, 128), (50, 16, 128),
                                                                    (50, 16, 256), (50, 64, 256)]
    mem_shapes = [(50, 64, 256)] if args.quick else [(50, 16, 256), (50, 64, 512), (100, 64, 512)]
    import os

    load = os.getloadavg()
    from lstmkit.cpu import probe

    cpu = probe()
    head = (f"torch {torch.__version__}, {args.threads} threads, engines {args.engines}, "
            f"{os.cpu_count()} CPUs ({cpu.model or cpu.arch}; lstmkit level {cpu.level}"
            f"{' forced by LSTMKIT_MAX_ISA' if cpu.max_isa else ''}, torch "
            f"{torch.backends.cpu.get_cpu_capability()}, oneDNN bfloat16 "
            f"{'yes' if cpu.onednn_bf16 else 'no'}), "
            f"load average at start {load[0]:.1f}")
    print(head, flush=True)
    roof = rooflines()
    print(roof, flush=True)
    out = [head, "", roof, ""]
    for s in sections:
        print(f"\n## {s}", flush=True)
        out += [f"## {s}", ""]
        if s == "grid":
            out += section_grid(args, grid)
        elif s == "gru":
            out += section_gru(args, shapes or ([(50, 16, 128), (50, 64, 256)] if args.quick else [
                (50, 1, 128), (50, 16, 128), (50, 16, 256), (50, 64, 256), (50, 64, 512)]))
        elif s == "gru_cho":
            if "fused" not in args.engines:
                out.append("(needs the fused kernels)")
                continue
            out += section_gru_cho(args, [(50, 16, 256)] if args.quick else
                                   [(50, 16, 256), (50, 64, 256), (50, 64, 512)])
        elif s == "variants":
            out += section_variants(args, shapes or var_shapes)
        elif s == "lengths":
            out += section_lengths(args)
        elif s == "step":
            out += section_step(args)
        elif s == "memory":
            out += section_memory(args, mem_shapes)
        elif s == "bf16":
            out += section_bf16(args, shapes or ([(50, 16, 256), (50, 64, 512)] if args.quick else
                                                 [(50, 16, 256), (50, 64, 256), (50, 64, 512)]))
        elif s == "inference":
            out += section_inference(args, shapes or ([(50, 16, 256), (50, 64, 512)] if args.quick else
                                                      [(50, 16, 256), (50, 64, 256), (50, 64, 512)]))
        elif s == "overhead":
            out += section_overhead(args)
        elif s == "ln":
            out += section_ln(args, shapes or [(50, 16, 256), (50, 64, 256), (50, 64, 512)])
        elif s == "crossover":
            out += section_crossover(args)
        elif s == "stepgemm":
            out += section_stepgemm(args, [(50, B, H) for H in (256, 512) for B in (1, 8, 16, 32)])
        out.append("")
    out.append(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.out:
        import tempfile

        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(args.out)) or ".")
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(out) + "\n")
        os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
