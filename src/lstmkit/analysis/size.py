"""What a recurrent layer costs: parameters, FLOPs, activation memory and latency, predicted from
the equations and then measured on a real step.

Symbols: T time, B batch, I input (layer k: I for k = 0, else D*P), H hidden, P output width
(proj_size or H), G gate rows (LSTM 4H, or 3H coupled / without a gate; GRU 3H; RNN H),
D directions, L layers.

Counting rules (per layer-direction, summed over L*D):

- parameters: ``G*I + G*P_rec + 2G`` (bias) plus the options' extras (projection P*H,
  peepholes H each, layer norm 2*(2G + H), full gate recurrence 9H^2); GRU/RNN take ``P_rec =
  H``; IndRNN's recurrent weight is a diagonal (H); ConvLSTM's are ``G*(C + K)*kh*kw + G``.
- FLOPs of one step of one sequence, forward: every GEMM as 2*m*n*k (``2G(I + P)``, the
  projection ``2PH``, FGR ``2*9H^2``, ConvLSTM ``2G(C + K)*kh*kw*Hs*Ws``) plus the pointwise work
  (each add, multiply or activation one flop: about ``2G + 5H`` for an LSTM). A training step
  (forward + backward) is 3x the GEMM flops (the backward has two GEMMs per forward one: data
  and weight gradients) plus 3x the pointwise work.
- activation memory in training: the bytes the engine keeps for the backward, per
  layer-direction: its input (T, B, I), the carried states (T+1, B, P) and (T+1, B, H), the gate
  activations (T, B, G) and tanh(c) (T, B, H) for an LSTM (GRU: h, r/z/n and hn; RNN: the new
  h); the reference and fused engines save the same set. Inference keeps no graph: the peak is
  one layer-direction's working set (the input projection (T, B, G), the states and gates the
  loop writes) plus the layer outputs alive at that moment.
- latency: every GEMM of the forward (and backward) timed at its exact shape on this machine
  (the measured GEMM rate), the pointwise work as memory traffic at the measured bandwidth and
  the gate activations at the measured sigmoid rate, plus
  the engine's fixed cost (Python and dispatch per step), measured on the same configuration
  shrunk to one unit and one sequence.

Measured: wall time of the real forward (no grad) and forward + backward (median of repeats),
and the bytes the real module saved for backward (``torch.autograd.graph.saved_tensors_hooks``,
each storage once, parameters excluded). The ratio measured / predicted is printed.

    >>> cfg = SizeConfig("lstm", input_size=10, hidden_size=20, num_layers=2, bidirectional=True)
    >>> count_params(cfg) == sum(p.numel() for p in cfg.build().parameters())
    True
    >>> flops(cfg, T=1, B=1)["gemm_forward"]  # 2 * 80 * (10 + 20) * 2 + 2 * 80 * (40 + 20) * 2
    28800
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..functional import registry
from ..functional.lstm import ablation_of

DTYPE_BYTES = {torch.float32: 4, torch.float64: 8, torch.bfloat16: 2, torch.float16: 2}


@dataclass(frozen=True)
class SizeConfig:
    """One layer configuration (the arguments of ``lk.LSTM`` and friends)."""

    family: str = "lstm"
    input_size: int = 128
    hidden_size: int = 256
    num_layers: int = 1
    bidirectional: bool = False
    proj_size: int = 0
    bias: bool = True
    options: dict = field(default_factory=dict)  # the family's options (peephole=True, ...)
    kernel: int = 3  # ConvLSTM only
    frame: tuple[int, int] = (16, 16)  # ConvLSTM only: (Hs, Ws)

    def __post_init__(self) -> None:
        fam = registry.get(self.family)
        fam.configure(**self.options)
        for name in ("input_size", "hidden_size", "num_layers", "kernel"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if isinstance(self.proj_size, bool) or not isinstance(self.proj_size, int) or \
                not 0 <= self.proj_size < self.hidden_size:
            raise ValueError(f"proj_size: expected an int in [0, hidden_size={self.hidden_size}), "
                             f"got {self.proj_size!r}")
        if self.family == "conv_lstm" and (self.bidirectional or self.proj_size):
            raise ValueError("bidirectional, proj_size: ConvLSTM has neither")
        if self.proj_size and not fam.proj:
            raise ValueError(f"proj_size: only applies to LSTM, not to {fam.title}")

    @property
    def opts(self) -> dict:
        return registry.get(self.family).configure(**self.options)

    @property
    def D(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def P(self) -> int:
        return self.proj_size or self.hidden_size

    @property
    def G(self) -> int:
        return registry.get(self.family).gates(self.opts) * self.hidden_size

    def in_size(self, k: int) -> int:
        if self.family == "conv_lstm":
            return self.input_size if k == 0 else self.hidden_size
        return self.input_size if k == 0 else self.D * self.P

    def build(self, engine: str = "auto", dtype=torch.float32) -> nn.Module:
        """The module (seeded)."""
        import lstmkit as lk

        torch.manual_seed(0)
        if self.family == "conv_lstm":
            return lk.ConvLSTM(self.input_size, self.hidden_size, self.kernel, self.num_layers,
                               bias=self.bias, **self.options).to(dtype)
        kw = dict(num_layers=self.num_layers, bias=self.bias, bidirectional=self.bidirectional,
                  engine=engine, **self.options)
        if self.proj_size:
            kw["proj_size"] = self.proj_size
        return getattr(lk, registry.get(self.family).title)(self.input_size, self.hidden_size,
                                                             **kw).to(dtype)

    def describe(self) -> str:
        parts = [f"{registry.get(self.family).title}(I={self.input_size}, H={self.hidden_size}"]
        if self.num_layers > 1:
            parts.append(f"L={self.num_layers}")
        if self.bidirectional:
            parts.append("bidirectional")
        if self.proj_size:
            parts.append(f"proj={self.proj_size}")
        defaults = {o.name: o.default for o in registry.get(self.family).options}
        parts += [f"{k}={v}" for k, v in self.options.items() if v != defaults[k]]
        if self.family == "conv_lstm":
            parts.append(f"k={self.kernel}, frame={self.frame[0]}x{self.frame[1]}")
        return ", ".join(parts) + ")"


def _layer_params(cfg: SizeConfig, k: int) -> int:
    H, P, G, I = cfg.hidden_size, cfg.P, cfg.G, cfg.in_size(k)
    b = 2 * G if cfg.bias else 0
    if cfg.family == "lstm":
        o = cfg.opts
        ab = ablation_of(o)
        n = G * I + G * P + b + (P * H if cfg.proj_size else 0)
        if o["peephole"]:
            n += H * (3 - (1 if o["coupled"] or ab in ("no_input_gate", "no_forget_gate",
                                                       "no_output_gate") else 0))
        if o["layer_norm"]:
            n += 2 * (2 * G + H)
        if ab == "full_gate_recurrence":
            n += 9 * H * H
        return n
    if cfg.family in ("gru", "rnn"):
        return G * I + G * H + b
    if cfg.family == "indrnn":
        return H * I + H + b
    if cfg.family == "conv_lstm":
        kk = cfg.kernel * cfg.kernel
        return G * (I + H) * kk + (G if cfg.bias else 0) + (3 * H if cfg.opts["peephole"] else 0)
    raise ValueError(f"family: no size rules for {cfg.family!r}")


def count_params(cfg: SizeConfig) -> int:
    """Parameters from the equations (not from a module)."""
    return sum(_layer_params(cfg, k) * cfg.D for k in range(cfg.num_layers))


def _step_flops(cfg: SizeConfig, k: int) -> tuple[int, int]:
    """(GEMM flops, pointwise flops) of one step of one sequence, one layer-direction."""
    H, P, G, I = cfg.hidden_size, cfg.P, cfg.G, cfg.in_size(k)
    if cfg.family == "conv_lstm":
        px = cfg.frame[0] * cfg.frame[1]
        return 2 * G * (I + H) * cfg.kernel ** 2 * px, (2 * G + 5 * H) * px
    if cfg.family == "indrnn":
        return 2 * H * I, 4 * H
    rec = P if cfg.family == "lstm" else H
    gemm = 2 * G * (I + rec)
    if cfg.family == "lstm":
        if cfg.proj_size:
            gemm += 2 * P * H
        if ablation_of(cfg.opts) == "full_gate_recurrence":
            gemm += 2 * 9 * H * H
        return gemm, 2 * G + 5 * H
    if cfg.family == "gru":
        return gemm, 2 * G + 5 * H
    return gemm, 3 * H  # rnn: bias adds, activation


def flops(cfg: SizeConfig, T: int, B: int) -> dict:
    """FLOPs of a (T, B) batch: forward and training (forward + backward), GEMM and total."""
    gemm = sum(_step_flops(cfg, k)[0] for k in range(cfg.num_layers)) * cfg.D
    pw = sum(_step_flops(cfg, k)[1] for k in range(cfg.num_layers)) * cfg.D
    n = T * B
    return {"gemm_forward": gemm * n, "forward": (gemm + pw) * n,
            "training": 3 * (gemm + pw) * n, "forward_per_step": (gemm + pw) * B}


def activation_bytes(cfg: SizeConfig, T: int, B: int, *, training: bool,
                     dtype=torch.float32, engine: str = "reference") -> int:
    """Predicted activation memory (module docstring): saved for backward in training, the peak
    working set in inference. Reference and fused engines (vendor: see the measured column;
    the fused RNN keeps its pre-blend h as well)."""
    e = DTYPE_BYTES[dtype]
    H, P, G = cfg.hidden_size, cfg.P, cfg.G
    px = cfg.frame[0] * cfg.frame[1] if cfg.family == "conv_lstm" else 1
    total = 0
    for k in range(cfg.num_layers):
        I = cfg.in_size(k)
        if cfg.family in ("lstm", "conv_lstm"):
            states = (T + 1) * B * (P + H) * px
            saved = states + T * B * (G + H) * px  # gate activations, tanh(c)
            if cfg.family == "lstm" and ablation_of(cfg.opts) is not None:
                saved = states + T * B * 6 * H  # its own path: (i, f, g, o) always, tc, c_new
            if cfg.family == "lstm" and cfg.opts["layer_norm"]:
                # normalised values (fused: x W_ih) and the three (fused: four) statistics
                saved += T * B * (2 * G + H + (4 if engine == "fused" else 3))
        elif cfg.family == "gru":
            states = (T + 1) * B * H
            saved = states + T * B * (G + (H if cfg.opts["reset_after"] else 0))  # r, z, n, hn
        else:
            states = (T + 1) * B * H
            saved = states + (T * B * H if engine == "fused" and cfg.family == "rnn" else 0)
        if training:
            total += cfg.D * (saved + T * B * I * px)  # + the layer's input, saved by each direction
        else:
            out = T * B * cfg.D * P * px  # this layer's output, kept while the next one runs
            work = T * B * G * px + saved  # the input projection and what the loop writes
            total = max(total, out + work + (T * B * I * px if k else 0))
    return total * e


# -- latency model: GEMMs timed at their shapes, pointwise passes timed as torch ops ----------------

def _median_seconds(fn: Callable[[], object], min_time: float = 0.05, repeats: int = 5) -> float:
    fn()  # warm-up
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_time / one))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        times.append((time.perf_counter() - t0) / inner)
    return statistics.median(times)


class GemmTimer:
    """Seconds of one ``(m, k) @ (k, n)`` GEMM on this machine (cached per shape)."""

    def __init__(self, dtype=torch.float32, min_time: float = 0.02) -> None:
        self.dtype, self.min_time, self.cache = dtype, min_time, {}

    def __call__(self, m: int, k: int, n: int) -> float:
        key = (m, k, n)
        if key not in self.cache:
            a, b = torch.randn(m, k, dtype=self.dtype), torch.randn(k, n, dtype=self.dtype)
            out = torch.empty(m, n, dtype=self.dtype)
            self.cache[key] = _median_seconds(lambda: torch.mm(a, b, out=out), self.min_time, 3)
        return self.cache[key]

    def transcendental(self) -> float:
        """Elements per second of a large sigmoid (the gates' activations are compute-bound)."""
        if "tr" not in self.cache:
            n = 1 << 22
            a, c = torch.randn(n, dtype=self.dtype), torch.empty(n, dtype=self.dtype)
            sec = _median_seconds(lambda: torch.sigmoid(a, out=c), self.min_time, 3)
            self.cache["tr"] = n / sec
        return self.cache["tr"]

    def bandwidth(self) -> float:
        """Bytes per second of a large elementwise pass (read two arrays, write one)."""
        if "bw" not in self.cache:
            n = 1 << 22
            a, b, c = (torch.randn(n, dtype=self.dtype) for _ in range(3))
            sec = _median_seconds(lambda: torch.add(a, b, out=c), self.min_time, 3)
            self.cache["bw"] = 3 * n * a.element_size() / sec
        return self.cache["bw"]


def _activations(cfg: SizeConfig) -> int:
    """Sigmoid/tanh evaluations per step of one sequence: every gate row, plus tanh(c)."""
    if cfg.family in ("lstm", "conv_lstm"):
        return cfg.G + cfg.hidden_size
    return cfg.G


def predict_seconds(cfg: SizeConfig, T: int, B: int, timer: GemmTimer,
                    overhead: dict | None = None) -> dict:
    """Forward and training seconds: every GEMM timed at its shape, the pointwise work as memory
    traffic at the measured bandwidth (each pointwise flop reads and writes one element), plus
    ``overhead`` (the engine's fixed cost: the same configuration measured at size 1). Dense
    families only (ConvLSTM: None)."""
    if cfg.family == "conv_lstm":
        return {"forward": None, "training": None}
    H, P, G = cfg.hidden_size, cfg.P, cfg.G
    rec = P if cfg.family == "lstm" else H
    e = torch.empty((), dtype=timer.dtype).element_size()
    bw, tr = timer.bandwidth(), timer.transcendental()
    fwd = bwd = 0.0
    for k in range(cfg.num_layers):
        I = cfg.in_size(k)
        # one forward pass of pointwise work: memory traffic, plus the activations at the measured
        # sigmoid rate (a gate activation is compute-bound, not bandwidth-bound)
        pw = T * B * (_step_flops(cfg, k)[1] * 2 * e / bw + _activations(cfg) / tr)
        if cfg.family == "indrnn":
            f = timer(T * B, I, H) + pw
            b = timer(H, T * B, I) + timer(T * B, H, I) + 2 * pw
        else:
            f = timer(T * B, I, G) + T * timer(B, rec, G) + pw
            b = (T * timer(B, G, rec) + 2 * pw  # dh_prev each step, the pointwise derivatives
                 + timer(G, T * B, I) + timer(G, T * B, rec) + timer(T * B, G, I))  # dW, dx
            if cfg.family == "lstm" and cfg.proj_size:
                f += T * timer(B, H, P)
                b += T * timer(B, P, H) + timer(P, T * B, H)
            if cfg.family == "lstm" and ablation_of(cfg.opts) == "full_gate_recurrence":
                f += T * timer(B, 3 * H, 3 * H)
                b += T * timer(B, 3 * H, 3 * H) + timer(3 * H, T * B, 3 * H)
        fwd += cfg.D * f
        bwd += cfg.D * b
    overhead = overhead or {"forward": 0.0, "training": 0.0}
    return {"forward": fwd + overhead["forward"], "training": fwd + bwd + overhead["training"]}


def engine_overhead(cfg: SizeConfig, T: int, engine: str, dtype=torch.float32,
                    min_time: float = 0.05) -> dict:
    """The engine's fixed cost for this configuration: the same layers and options with one
    input, one hidden unit and one sequence of T steps, measured (seconds, forward / training)."""
    from dataclasses import replace

    tiny = replace(cfg, input_size=1, hidden_size=2 if cfg.proj_size else 1,
                   proj_size=1 if cfg.proj_size else 0)
    return measure_seconds(tiny.build(engine, dtype), _input(tiny, T, 1, dtype), min_time)


# -- measurement --------------------------------------------------------------------------------

def _input(cfg: SizeConfig, T: int, B: int, dtype) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    if cfg.family == "conv_lstm":
        return torch.randn(B, T, cfg.input_size, *cfg.frame, generator=g, dtype=dtype)
    return torch.randn(T, B, cfg.input_size, generator=g, dtype=dtype)


def measure_saved_bytes(module: nn.Module, x: torch.Tensor) -> int:
    """Bytes the module's forward keeps for its backward: each storage once, parameters out."""
    params = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        if isinstance(t, torch.Tensor) and t.device.type != "meta":
            s = t.untyped_storage()
            if s.data_ptr() not in params and s.data_ptr():
                seen[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = module(x)
    del out
    return sum(seen.values())


def measure_seconds(module: nn.Module, x: torch.Tensor, min_time: float = 0.2) -> dict:
    def fwd():
        with torch.no_grad():
            module(x)

    def train():
        y = module(x)[0]
        y.sum().backward()

    return {"forward": _median_seconds(fwd, min_time, 3),
            "training": _median_seconds(train, min_time, 3)}


@dataclass
class SizeRow:
    engine: str
    params: int
    flops: dict
    predicted_seconds: dict
    measured_seconds: dict | None
    predicted_bytes: dict
    measured_saved_bytes: int | None


def size_report(cfg: SizeConfig, T: int, B: int, *, engines=("auto",), measure: bool = True,
                timer: GemmTimer | None = None, dtype=torch.float32,
                min_time: float = 0.2) -> list[SizeRow]:
    """Predictions (and measurements) for ``cfg`` on each engine in ``engines`` that it serves.
    ``min_time``: seconds each timed repeat runs at least (the median of three is kept)."""
    timer = timer or GemmTimer(dtype)
    fl = flops(cfg, T, B)
    rows = []
    fam = registry.get(cfg.family)
    if not fam.layer:  # ConvLSTM: its own modules, one engine
        engines = ("reference",)
    for engine in engines:
        if engine != "auto" and engine not in fam.engines(cfg.opts):
            continue
        pred_b = {"training": activation_bytes(cfg, T, B, training=True, dtype=dtype,
                                               engine=engine),
                  "inference": activation_bytes(cfg, T, B, training=False, dtype=dtype,
                                                engine=engine)}
        m_t = m_b = None
        pred_t = {"forward": None, "training": None}
        if measure:
            if fam.layer:
                pred_t = predict_seconds(cfg, T, B, timer,
                                         engine_overhead(cfg, T, engine, dtype, min_time / 4))
            module = cfg.build(engine, dtype)
            x = _input(cfg, T, B, dtype)
            m_t = measure_seconds(module, x, min_time)
            m_b = measure_saved_bytes(module, x)
        rows.append(SizeRow(engine, count_params(cfg), fl, pred_t, m_t, pred_b, m_b))
    return rows


# -- the catalogue the command runs by default ----------------------------------------------------

def default_suite(I: int = 64, H: int = 128) -> list[SizeConfig]:
    """LSTM and its variants, GRU, RNN, IndRNN, stacked, bidirectional, projection, ConvLSTM."""
    return [
        SizeConfig("lstm", I, H),
        SizeConfig("lstm", I, H, options={"peephole": True}),
        SizeConfig("lstm", I, H, options={"coupled": True}),
        SizeConfig("lstm", I, H, options={"layer_norm": True}),
        SizeConfig("lstm", I, H, options={"no_forget_gate": True}),
        SizeConfig("lstm", I, H, options={"full_gate_recurrence": True}),
        SizeConfig("lstm", I, H, proj_size=H // 2),
        SizeConfig("lstm", I, H, num_layers=2, bidirectional=True),
        SizeConfig("gru", I, H),
        SizeConfig("rnn", I, H),
        SizeConfig("indrnn", I, H),
        SizeConfig("conv_lstm", 3, 16, frame=(8, 8)),
    ]


def size_configs(configs: list[SizeConfig], T: int, batches: list[int], *, engines=("auto",),
                 measure: bool = True, min_time: float = 0.2, progress=None):
    """:func:`size_report` of every configuration at every batch size, one :class:`GemmTimer`
    for all: ``(results, timer)``, results as ``(cfg, T, B, row)`` (what :func:`rows_table`,
    :func:`save_results` take). ``progress``: a tqdm-like wrapper or None."""
    timer = GemmTimer()
    jobs = [(c, B) for c in configs for B in batches]
    results = []
    for cfg, B in (progress(jobs) if progress is not None else jobs):
        for row in size_report(cfg, T, B, engines=engines, measure=measure, timer=timer,
                               min_time=min_time):
            results.append((cfg, T, B, row))
    return results, timer


def measured_note(timer: GemmTimer) -> str:
    """The line under a measured table: the bandwidth the model used, the machine's load."""
    import os

    return (f"GEMM-rate model; pointwise at {timer.bandwidth() / 1e9:.1f} GB/s measured; "
            f"load average {os.getloadavg()[0]:.1f}. Vendor activations are torch's own "
            "(not predicted).")


def save_results(results: list[tuple[SizeConfig, int, int, SizeRow]], out: str, *,
                 plot: bool = True) -> str | None:
    """``size.json`` (one entry per row) into ``out`` and, with ``plot``, ``size.png``: its path
    (None without)."""
    import json
    import os

    from .._io import atomic_write_text

    os.makedirs(out, exist_ok=True)
    rows = [{"configuration": c.describe(), "T": T, "B": B, "engine": r.engine,
             "params": r.params, "flops": r.flops, "predicted_seconds": r.predicted_seconds,
             "measured_seconds": r.measured_seconds, "predicted_bytes": r.predicted_bytes,
             "measured_saved_bytes": r.measured_saved_bytes} for c, T, B, r in results]
    atomic_write_text(os.path.join(out, "size.json"), json.dumps(rows, indent=1))
    if not plot:
        return None
    path = os.path.join(out, "size.png")
    plot_results(results, path)
    return path


def rows_table(results: list[tuple[SizeConfig, int, int, SizeRow]]) -> str:
    """A text table of ``(cfg, T, B, row)`` results."""

    def ms(v):
        return "-" if v is None else f"{v * 1e3:.2f}"

    def ratio(a, b):
        return "-" if a is None or b is None or not b else f"{a / b:.2f}"

    head = (f"{'configuration':60} {'engine':9} {'T':>4} {'B':>4} {'params':>9} {'GF fwd':>7} "
            f"{'GF trn':>7} {'fwd ms':>7} {'meas':>7} {'ratio':>5} {'trn ms':>7} {'meas':>7} "
            f"{'ratio':>5} {'act MB':>7} {'meas':>7} {'ratio':>5} {'inf MB':>7}")
    lines = [head]
    for cfg, T, B, r in results:
        mt = r.measured_seconds or {}
        pb = r.predicted_bytes["training"] if r.engine != "vendor" else None
        mb = r.measured_saved_bytes
        lines.append(
            f"{cfg.describe()[:60]:60} {r.engine:9} {T:>4} {B:>4} {r.params:>9} "
            f"{r.flops['forward'] / 1e9:>7.3f} {r.flops['training'] / 1e9:>7.3f} "
            f"{ms(r.predicted_seconds['forward']):>7} {ms(mt.get('forward')):>7} "
            f"{ratio(mt.get('forward'), r.predicted_seconds['forward']):>5} "
            f"{ms(r.predicted_seconds['training']):>7} {ms(mt.get('training')):>7} "
            f"{ratio(mt.get('training'), r.predicted_seconds['training']):>5} "
            f"{'-' if pb is None else f'{pb / 2**20:.2f}':>7} "
            f"{'-' if mb is None else f'{mb / 2**20:.2f}':>7} {ratio(mb, pb):>5} "
            f"{r.predicted_bytes['inference'] / 2**20:>7.2f}")
    return "\n".join(lines)


def plot_results(results: list[tuple[SizeConfig, int, int, SizeRow]], path: str) -> None:
    """Measured against predicted: time (forward and training) and activation memory, log-log,
    with the 15% band around y = x."""
    from ._plot import pyplot, save_png

    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.3))
    colours = {"reference": "tab:blue", "fused": "tab:orange", "vendor": "tab:green",
               "auto": "tab:purple"}
    for *_, r in results:
        if r.measured_seconds is None or r.predicted_seconds["forward"] is None:
            continue
        for kind, marker in (("forward", "o"), ("training", "^")):
            axes[0].scatter(r.predicted_seconds[kind] * 1e3, r.measured_seconds[kind] * 1e3,
                            c=colours.get(r.engine, "k"), marker=marker, s=22, alpha=0.8, zorder=3)
    for *_, r in results:
        if r.measured_saved_bytes is not None and r.engine != "vendor":
            axes[1].scatter(r.predicted_bytes["training"] / 2**20, r.measured_saved_bytes / 2**20,
                            c=colours.get(r.engine, "k"), s=22, alpha=0.8, zorder=3)
    for ax, unit in ((axes[0], "ms"), (axes[1], "MiB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        lo, hi = ax.get_xlim()
        lo, hi = min(lo, ax.get_ylim()[0]), max(hi, ax.get_ylim()[1])
        xs = [lo, hi]
        ax.plot(xs, xs, "k-", lw=0.8, zorder=1)
        ax.fill_between(xs, [v * 0.85 for v in xs], [v * 1.15 for v in xs], color="0.85", zorder=0)
        ax.set_xlabel(f"predicted ({unit})")
        ax.set_ylabel(f"measured ({unit})")
    axes[0].set_title("time: o forward, ^ training (band: 15%)")
    axes[1].set_title("activations saved for backward")
    for name in sorted({r.engine for *_, r in results}):
        axes[0].scatter([], [], c=colours.get(name, "k"), label=name)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


def config_of(m: nn.Module) -> SizeConfig:
    """The SizeConfig of an lstmkit sequence layer."""
    from ..nn.recurrent import RecurrentBase

    if not isinstance(m, RecurrentBase):
        raise TypeError(f"model: expected an lstmkit sequence layer, got {type(m).__name__}")
    fam = m.v.family
    opts = {o.name: m.v.opts[o.name] for o in fam.options if m.v.opts[o.name] != o.default}
    return SizeConfig(fam.name, m.input_size, m.hidden_size, m.num_layers, m.bidirectional,
                      m.proj_size, m.bias, options=opts)


def configs_from_checkpoint(path) -> list[SizeConfig]:
    """The SizeConfig of every lstmkit sequence layer in a checkpoint (``models.checkpoints``)."""
    from ..models.checkpoints import load_model
    from ..nn.recurrent import RecurrentBase

    model, _ = load_model(path)
    layers = [m for m in model.modules() if isinstance(m, RecurrentBase)]
    if not layers:
        raise ValueError(f"checkpoint: no lstmkit sequence layer in {path}")
    return [config_of(m) for m in layers]
