"""The NumPy training loop learns the echo task; an untrained model does not."""

import numpy as np
import pytest

import lstmkit.numpy as ln


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_training_loop_learns_the_echo_task(cell):
    losses, params = ln.train_toy(cell, steps=200, seed=0)
    rng = np.random.default_rng(123)
    x, target = ln.echo_batch(rng, 20, 64, 3)
    untrained = ln.train_toy(cell, steps=0, seed=0)[1]
    before, _ = ln.loss_and_grads(cell, untrained, x, target)
    after, _ = ln.loss_and_grads(cell, params, x, target)  # a held-out batch
    assert before > 0.5
    assert after < 0.05
    assert after < before / 10
    assert np.mean(losses[-20:]) < np.mean(losses[:20]) / 10


def test_train_toy_rejects_bad_arguments():
    with pytest.raises(ValueError, match="cell"):
        ln.train_toy("rnn", steps=1)
    with pytest.raises(ValueError, match="delay"):
        ln.train_toy("lstm", steps=1, delay=20, seq_len=20)
