"""Gradient flow: why a vanilla RNN forgets and an LSTM does not, measured.

On the adding problem (Hochreiter & Schmidhuber 1997; ``data.synthetic.adding_problem``) a
vanilla RNN, a GRU and an LSTM with forget-gate bias 0 and 1 are each

1. probed at initialisation: the norm of d loss / d h_t (``analysis.record``, through
   lstmkit's own backward, eval mode) against the distance T - t from the loss;
2. trained with the same budget (``train.Trainer``) at several sequence lengths, then scored
   on fresh sequences: the success rate is the fraction solved to within 0.04 (the paper's
   criterion), beside the baseline that always predicts the mean (1.0);
3. probed again after training at the longest length.

Symbols: T time, B batch, H hidden.

    >>> res = gradflow(GradflowConfig(lengths=(6,), hidden_size=4, train_steps=2, batch_size=8,
    ...                               test_size=16, probe_size=4, cells=("rnn", "lstm_fb1")))
    >>> sorted(res.grad_norms["init"]), len(res.grad_norms["init"]["rnn"])
    (['lstm_fb1', 'rnn'], 6)
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..data.synthetic import adding_problem
from .recording import record

CELLS = {"rnn": "vanilla RNN (tanh)", "gru": "GRU", "lstm_fb0": "LSTM, forget bias 0",
         "lstm_fb1": "LSTM, forget bias 1"}
TOLERANCE = 0.04  # Hochreiter & Schmidhuber's success criterion on the adding problem


@dataclass
class GradflowConfig:
    lengths: tuple[int, ...] = (10, 20, 40, 80)
    hidden_size: int = 32
    train_steps: int = 600
    batch_size: int = 64
    lr: float = 1e-2
    test_size: int = 1000
    probe_size: int = 64
    cells: tuple[str, ...] = tuple(CELLS)
    seed: int = 0

    def __post_init__(self) -> None:
        bad = [c for c in self.cells if c not in CELLS]
        if bad:
            raise ValueError(f"cells: expected some of {list(CELLS)}, got {bad}")
        if not self.lengths or min(self.lengths) < 2:
            raise ValueError(f"lengths: expected sequence lengths >= 2, got {self.lengths}")
        for name in ("hidden_size", "train_steps", "batch_size", "test_size", "probe_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")


class AddingModel(nn.Module):
    """A recurrent layer and a linear read-out of its last output: (B, T, 2) -> (B, 1)."""

    def __init__(self, cell: str, hidden_size: int) -> None:
        super().__init__()
        import lstmkit as lk

        if cell == "rnn":
            self.rnn = lk.RNN(2, hidden_size, batch_first=True)
        elif cell == "gru":
            self.rnn = lk.GRU(2, hidden_size, batch_first=True)
        else:
            self.rnn = lk.LSTM(2, hidden_size, batch_first=True,
                               forget_bias=1.0 if cell == "lstm_fb1" else 0.0)
        self.head = nn.Linear(hidden_size, 1)

    def forward(self, x: Tensor) -> Tensor:
        y, _ = self.rnn(x)
        return self.head(y[:, -1])


@dataclass
class GradflowResult:
    config: GradflowConfig
    grad_norms: dict = field(default_factory=dict)  # "init"/"trained" -> cell -> [|dL/dh_t|] by T-t
    success: dict = field(default_factory=dict)  # cell -> [success rate per length]
    mse: dict = field(default_factory=dict)  # cell -> [test MSE per length]
    baseline_mse: list = field(default_factory=list)  # predict-the-mean MSE per length
    baseline_success: list = field(default_factory=list)


def grad_norm_by_distance(model: AddingModel, x: Tensor, y: Tensor) -> list[float]:
    """Mean over the batch of ||d loss / d h_t||, indexed by the distance T - t (0 = last step).
    Computed in float64 on a copy (float32 underflows past ~1e-38 within a hundred steps)."""
    import copy

    probe = copy.deepcopy(model).double().eval()
    with record(probe, grads=True) as rec:
        loss = nn.functional.mse_loss(probe(x.double()), y.double())
        rec.grad(loss)
    dh = rec["rnn"].dh[0]  # (T, B, H)
    norms = dh.norm(dim=-1).mean(dim=1)  # (T,)
    return norms.flip(0).tolist()


def _train(model: AddingModel, T: int, cfg: GradflowConfig, seed: int) -> None:
    from ..train.trainer import TrainConfig, Trainer

    g = torch.Generator().manual_seed(seed)
    batches = [adding_problem(cfg.batch_size, T, g) for _ in range(min(cfg.train_steps, 50))]

    def loss_fn(m, batch):
        xb, yb = batch
        return nn.functional.mse_loss(m(xb), yb)

    tc = TrainConfig(lr=cfg.lr, max_steps=cfg.train_steps, patience=None, weight_decay=0.0,
                     schedule="cosine", seed=seed, progress=False, resume=False)
    with tempfile.TemporaryDirectory() as tmp:
        Trainer(model, loss_fn, tc, tmp).fit(batches)


def gradflow(cfg: GradflowConfig, *, progress=None) -> GradflowResult:
    """Run the whole study (module docstring). ``progress``: a tqdm-like wrapper or None."""
    res = GradflowResult(cfg, {"init": {}, "trained": {}})
    longest = max(cfg.lengths)
    g = torch.Generator().manual_seed(cfg.seed + 1)
    probe = adding_problem(cfg.probe_size, longest, g)
    tests = {T: adding_problem(cfg.test_size, T, torch.Generator().manual_seed(cfg.seed + 2 + T))
             for T in cfg.lengths}
    for T in cfg.lengths:
        err = (tests[T][1] - 1.0).abs()
        res.baseline_mse.append(float(err.pow(2).mean()))
        res.baseline_success.append(float((err < TOLERANCE).float().mean()))
    jobs = [(c, T) for c in cfg.cells for T in cfg.lengths]
    it = progress(jobs) if progress is not None else jobs
    for cell, T in it:
        torch.manual_seed(cfg.seed)
        model = AddingModel(cell, cfg.hidden_size)
        if T == cfg.lengths[0]:
            res.grad_norms["init"][cell] = grad_norm_by_distance(model, *probe)
        _train(model, T, cfg, cfg.seed)
        model.eval()
        with torch.no_grad():
            xt, yt = tests[T]
            err = (model(xt) - yt).abs()
        res.mse.setdefault(cell, []).append(float(err.pow(2).mean()))
        res.success.setdefault(cell, []).append(float((err < TOLERANCE).float().mean()))
        if T == longest:
            res.grad_norms["trained"][cell] = grad_norm_by_distance(model, *probe)
    return res


def format_table(res: GradflowResult) -> str:
    cfg = res.config
    head = f"{'model':24}" + "".join(f"{'T=' + str(T):>16}" for T in cfg.lengths)
    lines = [f"adding problem: success rate (|error| < {TOLERANCE}) / test MSE, "
             f"{cfg.train_steps} steps of batch {cfg.batch_size}, H={cfg.hidden_size}", head]
    lines.append(f"{'predict the mean (1.0)':24}" + "".join(
        f"{s:>9.1%} {m:.3f}" for s, m in zip(res.baseline_success, res.baseline_mse)))
    for c in cfg.cells:
        lines.append(f"{CELLS[c]:24}" + "".join(
            f"{s:>9.1%} {m:.3f}" for s, m in zip(res.success[c], res.mse[c])))
    longest = max(cfg.lengths)
    lines.append(f"||dL/dh_t|| at T-t = {longest - 1} over T-t = 0 (init -> trained):")
    for c in cfg.cells:
        parts = []
        for stage in ("init", "trained"):
            n = res.grad_norms[stage].get(c)
            parts.append("-" if not n else f"{n[-1] / max(n[0], 1e-30):.1e}")
        lines.append(f"  {CELLS[c]:24} {parts[0]} -> {parts[1]}")
    return "\n".join(lines)


def save(res: GradflowResult, out: str) -> str:
    """``gradflow.json`` (the results, then the config) and ``gradflow.png`` into ``out``; the
    picture's path."""
    import json
    import os
    from dataclasses import asdict

    from .._io import atomic_write_text

    os.makedirs(out, exist_ok=True)
    data = asdict(res)
    data["config"] = data.pop("config")
    atomic_write_text(os.path.join(out, "gradflow.json"), json.dumps(data, indent=1))
    return plot(res, os.path.join(out, "gradflow.png"))


def plot(res: GradflowResult, path: str) -> str:
    from ._plot import pyplot, save_png

    plt = pyplot()
    cfg = res.config
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, stage, title in ((axes[0], "init", "at initialisation"),
                             (axes[1], "trained", f"after training at T={max(cfg.lengths)}")):
        for c in cfg.cells:
            n = res.grad_norms[stage].get(c)
            if n:
                ax.semilogy(range(len(n)), [max(v, 1e-30) for v in n], label=CELLS[c])
        ax.set_xlabel("distance from the loss, T - t")
        ax.set_ylabel("mean ||dL / dh_t||")
        ax.set_title(f"gradient reaching step t, {title}", fontsize=10)
    axes[0].legend(fontsize=8)
    ax = axes[2]
    for c in cfg.cells:
        ax.plot(cfg.lengths, res.success[c], "o-", label=CELLS[c])
    ax.plot(cfg.lengths, res.baseline_success, "k--", label="predict the mean")
    ax.set_xlabel("sequence length T")
    ax.set_ylabel(f"success rate (|error| < {TOLERANCE})")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"adding problem, {cfg.train_steps} steps each", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)
