"""ConvLSTM learns to predict the next frame of a moving square.

A 3x3 square moves one pixel per frame on 12x12 frames (random start and direction, bouncing off
the borders). A one-layer ConvLSTM + a 1x1 convolution head is trained to predict frame t+1 from
frames 1..t; we compare its held-out MSE with the copy-the-last-frame baseline and save a PNG of
true vs predicted frames.

    python examples/conv_lstm_moving_square.py [out.png]      (default ./conv_lstm_frames.png)
"""

from __future__ import annotations

import os
import sys
import tempfile

import torch
from torch import nn

from lstmkit.nn.conv_lstm import ConvLSTM

STEPS, SIZE, SIDE = 10, 12, 3
DIRS = [(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)]


def moving_squares(n: int, seed: int) -> torch.Tensor:
    """(n, STEPS, 1, SIZE, SIZE) frames of one moving square each."""
    g = torch.Generator().manual_seed(seed)
    frames = torch.zeros(n, STEPS, 1, SIZE, SIZE)
    hi = SIZE - SIDE
    for b in range(n):
        r, c = torch.randint(0, hi + 1, (2,), generator=g).tolist()
        dr, dc = DIRS[int(torch.randint(0, len(DIRS), (1,), generator=g))]
        for t in range(STEPS):
            frames[b, t, 0, r : r + SIDE, c : c + SIDE] = 1.0
            dr = -dr if not 0 <= r + dr <= hi else dr  # bounce
            dc = -dc if not 0 <= c + dc <= hi else dc
            r, c = r + dr, c + dc
    return frames


class NextFrame(nn.Module):
    def __init__(self, hidden: int = 16) -> None:
        super().__init__()
        self.rnn = ConvLSTM(1, hidden, kernel_size=3)  # batch_first: (B, T, C, H, W)
        self.head = nn.Conv2d(hidden, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.rnn(x)  # (B, T, hidden, H, W)
        return self.head(y.flatten(0, 1)).reshape(x.shape)  # logits of the next frame


def save_png(path: str, true: torch.Tensor, pred: torch.Tensor) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    T = true.shape[0]
    fig, axes = plt.subplots(2, T, figsize=(1.3 * T, 3))
    for t in range(T):
        for row, (frames, name) in enumerate(((true, "true"), (pred, "predicted"))):
            ax = axes[row, t]
            ax.imshow(frames[t, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if t == 0:
                ax.set_ylabel(name)
        axes[0, t].set_title(f"t={t + 2}", fontsize=8)
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=os.path.dirname(os.path.abspath(path)))
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=80)
        os.replace(tmp, path)  # atomic
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def main(argv: list[str]) -> None:
    out = argv[1] if len(argv) > 1 else "conv_lstm_frames.png"
    torch.manual_seed(0)
    train, test = moving_squares(512, seed=1), moving_squares(128, seed=2)
    net = NextFrame()
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = nn.BCEWithLogitsLoss()
    for step in range(1, 401):
        x = train[torch.randint(0, len(train), (32,))]
        loss = loss_fn(net(x[:, :-1]), x[:, 1:])  # predict frame t+1 from frames <= t
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            print(f"step {step:4d}  train BCE {loss.item():.4f}")
    net.eval()
    with torch.no_grad():
        pred = torch.sigmoid(net(test[:, :-1]))
    warm = 1  # the first prediction cannot know the direction: score from the 3rd frame on
    mse = (pred[:, warm:] - test[:, warm + 1 :]).square().mean().item()
    copy_last = (test[:, warm:-1] - test[:, warm + 1 :]).square().mean().item()
    print(f"held-out MSE: ConvLSTM {mse:.4f}   copy-last-frame baseline {copy_last:.4f}")
    save_png(out, test[0, 1:], pred[0])
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv)
