"""Train one model in two processes with the ordinary Trainer (data parallel, gloo on CPU).

Run: ``python examples/data_parallel.py``. The same script under
``torchrun --standalone --nproc-per-node 2 examples/data_parallel.py --torchrun`` does the same
without ``spawn``. The DataLoader's batch (64) is the global batch: each process takes 32
examples of it, DDP averages the gradients, rank 0 writes ``runs/ddp-example``.
"""

import sys

import torch
from torch import nn

import lstmkit as lk
from lstmkit.train.distributed import spawn
from lstmkit.train.trainer import TrainConfig, Trainer


class LastStep(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = lk.LSTM(1, 32, batch_first=True)
        self.head = nn.Linear(32, 1)

    def forward(self, x):
        y, _ = self.lstm(x)  # (B, T, H)
        return self.head(y[:, -1]).squeeze(-1)  # (B,)


def train() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 20, 1, generator=g)  # (N, T, 1)
    y = x.sum(dim=(1, 2)) / 20 ** 0.5  # a running sum: the LSTM must remember
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=64,
                                         shuffle=True)
    torch.manual_seed(0)
    model = LastStep()
    mse = lambda m, b: nn.functional.mse_loss(m(b[0]), b[1])
    tr = Trainer(model, mse, TrainConfig(epochs=3, lr=1e-2, progress=False), "runs/ddp-example")
    hist = tr.fit(loader, [(x[:256], y[:256])])
    if tr.dist.is_writer:
        print(f"{tr.dist}: {tr.step} steps, validation MSE {hist[-1]['val_loss']:.4f}")


if __name__ == "__main__":
    if "--torchrun" in sys.argv:
        train()
    else:
        spawn(train, 2, timeout=600)
