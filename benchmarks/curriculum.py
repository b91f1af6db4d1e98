"""Does a length curriculum help? The adding problem (Hochreiter & Schmidhuber 1997) with
lengths drawn from [T_min, T_max], scored on sequences of length T_max.

Run: ``python -m benchmarks.curriculum [--steps 800] [--seeds 0,1] [--out DIR]``. For each mode of
``lstmkit.train.curriculum.LengthBatchSampler`` (random = the baseline, sorted, buckets,
baby_steps) and each seed, one LSTM (H=32) is trained through the Trainer (AdamW lr 1e-2,
constant, clip 1) for ``--steps`` steps, validating every 25 steps on 256 fixed sequences of
length T_max. Prints the steps to reach the target MSE (0.01; predicting the mean scores 0.167)
and the best and final validation MSE, and writes ``curriculum.png`` (validation MSE vs step).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch
from torch import nn

import lstmkit as lk
from lstmkit.train.curriculum import LengthBatchSampler
from lstmkit.train.trainer import TrainConfig, Trainer

TARGET = 0.01


def adding(n: int, lengths: torch.Tensor, T: int, g: torch.Generator):
    """(n, T, 2) inputs, zero after each length, and (n,) targets: the sum of the two marked
    values (one marker in each half of the sequence)."""
    x = torch.zeros(n, T, 2)
    x[:, :, 0] = torch.rand(n, T, generator=g)
    y = torch.empty(n)
    for k in range(n):
        L = int(lengths[k])
        a = int(torch.randint(0, max(1, L // 2), (1,), generator=g))
        b = int(torch.randint(L // 2, L, (1,), generator=g))
        x[k, [a, b], 1] = 1.0
        x[k, L:, 0] = 0.0
        y[k] = x[k, a, 0] + x[k, b, 0]
    return x, y


class Net(nn.Module):
    def __init__(self, H: int = 32) -> None:
        super().__init__()
        self.lstm = lk.LSTM(2, H, batch_first=True, forget_bias=1.0)
        self.head = nn.Linear(H, 1)

    def forward(self, x, lengths):
        _, (h, _) = self.lstm(x, lengths=lengths)  # h: (1, B, H)
        return self.head(h[-1]).squeeze(-1)


def collate(items):
    x, y, L = zip(*items)
    L = torch.stack(L)
    return torch.stack(x)[:, :int(L.max())], torch.stack(y), L  # padded to the batch's longest


def run(mode: str, seed: int, steps: int, data, val, out: str) -> list[dict]:
    x, y, L = data
    ds = torch.utils.data.TensorDataset(x, y, L)
    sampler = LengthBatchSampler(L.tolist(), 32, mode=mode, seed=seed, ramp=4)
    loader = torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate)
    torch.manual_seed(seed)
    model = Net()
    loss = lambda m, b: nn.functional.mse_loss(m(b[0], b[2]), b[1])
    cfg = TrainConfig(max_steps=steps, val_every=25, lr=1e-2, schedule="constant", patience=None,
                      progress=False, seed=seed, weight_decay=0.0)
    return Trainer(model, loss, cfg, out).fit(loader, [val])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--tmin", type=int, default=10)
    ap.add_argument("--tmax", type=int, default=100)
    ap.add_argument("--modes", default="random,sorted,buckets,baby_steps")
    ap.add_argument("--out", default="benchmarks/out")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    modes, seeds = a.modes.split(","), [int(s) for s in a.seeds.split(",")]
    g = torch.Generator().manual_seed(123)
    L = torch.randint(a.tmin, a.tmax + 1, (a.n,), generator=g)
    x, y = adding(a.n, L, a.tmax, g)
    vL = torch.full((256,), a.tmax)
    vx, vy = adding(256, vL, a.tmax, g)
    curves, secs = {}, {}
    load0 = os.getloadavg()[0]
    t0 = time.time()
    for seed in seeds:
        for mode in modes:
            t1 = time.time()
            with tempfile.TemporaryDirectory() as d:
                hist = run(mode, seed, a.steps, (x, y, L), (vx, vy, vL), d)
            curves[(mode, seed)] = [(r["step"], r["val_loss"]) for r in hist]
            secs[(mode, seed)] = time.time() - t1
    print(f"adding problem, train lengths U[{a.tmin}, {a.tmax}] (n={a.n}), validation at "
          f"T={a.tmax}, LSTM H=32, batch 32, {a.steps} steps, seeds {a.seeds}; load average "
          f"{load0:.2f} at start, {os.getloadavg()[0]:.2f} at end, {time.time() - t0:.0f} s\n")
    print(f"| mode | steps to val MSE < {TARGET} (per seed) | best val MSE | final val MSE | seconds |")
    print("|---|---|---|---|---|")
    for mode in modes:
        cs = [curves[(mode, s)] for s in seeds]
        reach = [next((s for s, v in c if v < TARGET), None) for c in cs]
        print(f"| {mode} | {', '.join('-' if r is None else str(r) for r in reach)} | "
              f"{', '.join(f'{min(v for _, v in c):.4f}' for c in cs)} | "
              f"{', '.join(f'{c[-1][1]:.4f}' for c in cs)} | "
              f"{', '.join(f'{secs[(mode, s)]:.0f}' for s in seeds)} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.4))
    colours = dict(zip(modes, ["k", "tab:blue", "tab:orange", "tab:green", "tab:red"]))
    for (mode, seed), c in curves.items():
        first = seed == seeds[0]
        ax.plot([s for s, _ in c], [v for _, v in c], color=colours[mode], alpha=0.85,
                ls="-" if first else "--", label=mode if first else None)
    ax.axhline(TARGET, color="grey", lw=0.8, ls=":", label=f"target {TARGET}")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel(f"validation MSE at T={a.tmax}")
    ax.set_title(f"Adding problem, lengths {a.tmin}-{a.tmax}: length curricula "
                 f"({'solid/dashed: two seeds' if len(seeds) > 1 else f'seed {seeds[0]}'})")
    ax.legend()
    fig.tight_layout()
    os.makedirs(a.out, exist_ok=True)
    path = os.path.join(a.out, "curriculum.png")
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
