"""Greff et al. (2017) "LSTM: A Search Space Odyssey", on a small budget: the eight one-change
variants of the peephole LSTM trained with the same data, steps and seeds on a character
language model of Python's standard library, ranked by validation bits per character with a
t confidence interval over seeds.

Variants (each one change from the baseline ``vanilla``: an LSTM with peepholes, as in the
paper): NIG no input gate, NFG no forget gate, NOG no output gate, NIAF no input activation,
NOAF no output activation, CIFG coupled input-forget gate, NP no peepholes, FGR full gate
recurrence. Every one is an option of the LSTM family (``lk.LSTM(..., no_forget_gate=True)``).

The test part of the text is never read: the ranking is a choice, made on validation text.

Symbols: B batch, T time (bptt), V vocabulary.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

VARIANTS = {
    "vanilla": {"peephole": True},
    "NIG": {"peephole": True, "no_input_gate": True},
    "NFG": {"peephole": True, "no_forget_gate": True},
    "NOG": {"peephole": True, "no_output_gate": True},
    "NIAF": {"peephole": True, "no_input_activation": True},
    "NOAF": {"peephole": True, "no_output_activation": True},
    "CIFG": {"peephole": True, "coupled": True},
    "NP": {},
    "FGR": {"peephole": True, "full_gate_recurrence": True},
}


@dataclass
class AblateConfig:
    variants: tuple[str, ...] = tuple(VARIANTS)
    seeds: int = 3
    steps: int = 300
    hidden_size: int = 96
    batch_size: int = 16
    bptt: int = 64
    lr: float = 6e-3
    max_chars: int = 200_000
    val_chars: int = 20_000

    def __post_init__(self) -> None:
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad:
            raise ValueError(f"variants: expected some of {list(VARIANTS)}, got {bad}")
        if self.seeds < 2:
            raise ValueError(f"seeds: expected >= 2 (a confidence interval needs two), got {self.seeds}")
        for name in ("steps", "hidden_size", "batch_size", "bptt", "max_chars", "val_chars"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")

    @staticmethod
    def quick() -> AblateConfig:
        return AblateConfig(seeds=2, steps=200, hidden_size=48, bptt=32, lr=1e-2, max_chars=60_000,
                            val_chars=6_000)


class CharLSTM(nn.Module):
    def __init__(self, vocab: int, hidden: int, options: dict) -> None:
        super().__init__()
        import lstmkit as lk

        self.embedding = nn.Embedding(vocab, hidden)
        self.lstm = lk.LSTM(hidden, hidden, batch_first=True, **options)
        self.decoder = nn.Linear(hidden, vocab)

    def forward(self, ids):
        return self.decoder(self.lstm(self.embedding(ids))[0])


@dataclass
class AblateResult:
    config: AblateConfig
    bpc: dict = field(default_factory=dict)  # variant -> [validation bits/char per seed]
    params: dict = field(default_factory=dict)
    unigram_bpc: float = float("nan")  # the baseline: training character frequencies

    def summary(self) -> list[tuple[str, float, float, float]]:
        """(variant, mean, low, high) of the 95% t interval, best first."""
        from scipy import stats

        rows = []
        for v, xs in self.bpc.items():
            a = np.asarray(xs)
            half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / math.sqrt(len(a))
            rows.append((v, float(a.mean()), float(a.mean() - half), float(a.mean() + half)))
        return sorted(rows, key=lambda r: r[1])


def _data(cfg: AblateConfig):
    from ..data.text import make_tokenizer, stdlib_corpus
    from ..jobs.lm import split_text

    text = "\n".join(stdlib_corpus(cfg.max_chars))
    train, val, _ = split_text(text, 0.1, 0.1)  # the LM job's split; the test part stays unread
    tok = make_tokenizer("char", [train])
    return tok, torch.tensor(tok.encode(train)), torch.tensor(tok.encode(val[: cfg.val_chars]))


def _windows(ids: torch.Tensor, n: int, T: int, g: torch.Generator) -> torch.Tensor:
    starts = torch.randint(0, len(ids) - T - 1, (n,), generator=g)
    return torch.stack([ids[s : s + T + 1] for s in starts.tolist()])


def _val_bpc(model: CharLSTM, val: torch.Tensor, T: int) -> float:
    n = (len(val) - 1) // T
    x = val[: n * T].reshape(n, T)
    y = val[1 : n * T + 1].reshape(n, T)
    model.eval()
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(x).reshape(-1, model.decoder.out_features),
                                           y.reshape(-1))
    return float(loss) / math.log(2)


def ablate(cfg: AblateConfig, *, progress=None) -> AblateResult:
    from ..train.trainer import TrainConfig, Trainer

    tok, train, val = _data(cfg)
    res = AblateResult(cfg)
    counts = torch.bincount(train, minlength=len(tok)).double() + 1.0
    p = counts / counts.sum()
    res.unigram_bpc = float(-(torch.log2(p[val[1:]])).mean())
    jobs = [(v, s) for s in range(cfg.seeds) for v in cfg.variants]
    for v, seed in (progress(jobs) if progress is not None else jobs):
        g = torch.Generator().manual_seed(1000 + seed)  # the same batches for every variant
        batches = [(w[:, :-1], w[:, 1:]) for w in
                   (_windows(train, cfg.batch_size, cfg.bptt, g) for _ in range(min(cfg.steps, 100)))]
        torch.manual_seed(seed)
        model = CharLSTM(len(tok), cfg.hidden_size, VARIANTS[v])
        res.params[v] = sum(q.numel() for q in model.lstm.parameters())

        def loss_fn(m, batch):
            xb, yb = batch
            return nn.functional.cross_entropy(m(xb).reshape(-1, len(tok)), yb.reshape(-1))

        tc = TrainConfig(lr=cfg.lr, max_steps=cfg.steps, patience=None, weight_decay=0.0,
                         seed=seed, progress=False, resume=False, warmup_steps=min(20, cfg.steps))
        with tempfile.TemporaryDirectory() as tmp:
            Trainer(model, loss_fn, tc, tmp).fit(batches)
        res.bpc.setdefault(v, []).append(_val_bpc(model, val, cfg.bptt))
    return res


def format_table(res: AblateResult) -> str:
    cfg = res.config
    lines = [f"char LM on the stdlib, {cfg.steps} steps x batch {cfg.batch_size} x bptt {cfg.bptt}, "
             f"H={cfg.hidden_size}, {cfg.seeds} seeds; validation bits/char (lower is better), "
             f"95% t interval",
             f"{'rank':>4} {'variant':8} {'bits/char':>9} {'95% interval':>17} {'LSTM params':>11}"]
    for k, (v, m, lo, hi) in enumerate(res.summary(), 1):
        lines.append(f"{k:>4} {v:8} {m:>9.3f} {f'[{lo:.3f}, {hi:.3f}]':>17} {res.params[v]:>11}")
    lines.append(f"     unigram (train character frequencies): {res.unigram_bpc:.3f} bits/char")
    return "\n".join(lines)


def save(res: AblateResult, out: str) -> str:
    """``ablate.json`` (config, bits/char per seed, parameters, unigram baseline, ranking) and
    ``ablate.png`` into ``out``; the picture's path."""
    import json
    import os
    from dataclasses import asdict

    from .._io import atomic_write_text

    os.makedirs(out, exist_ok=True)
    atomic_write_text(os.path.join(out, "ablate.json"), json.dumps(
        {"config": asdict(res.config), "bpc": res.bpc, "params": res.params,
         "unigram_bpc": res.unigram_bpc, "ranking": res.summary()}, indent=1))
    return plot(res, os.path.join(out, "ablate.png"))


def plot(res: AblateResult, path: str) -> str:
    from ._plot import pyplot, save_png

    plt = pyplot()
    rows = res.summary()
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ys = np.arange(len(rows))
    means = [r[1] for r in rows]
    err = [[r[1] - r[2] for r in rows], [r[3] - r[1] for r in rows]]
    colours = ["tab:red" if r[0] == "vanilla" else "tab:blue" for r in rows]
    ax.errorbar(means, ys, xerr=err, fmt="none", ecolor="0.4", capsize=3)
    ax.scatter(means, ys, c=colours, zorder=3)
    for v, xs in res.bpc.items():
        y = [r[0] for r in rows].index(v)
        ax.scatter(xs, [y] * len(xs), s=8, c="0.6", zorder=2)
    ax.set_yticks(ys)
    ax.set_yticklabels([r[0] for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("validation bits per character (95% t interval over seeds; dots: seeds)")
    cfg = res.config
    ax.set_title(f"Greff et al.'s LSTM variants, same budget ({cfg.steps} steps, {cfg.seeds} seeds)",
                 fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
