"""The LSTM and GRU from scratch in pure NumPy: forward, hand-derived BPTT, a numerical
gradient check, a small training loop, and torch-free inference of saved weights.

Importing this package never imports torch.

>>> import lstmkit.numpy as ln
>>> sorted(n for n in ln.__all__ if n.startswith("Numpy"))
['NumpyGRU', 'NumpyLSTM']
"""

from .gradcheck import gradient_check, numerical_gradient, relative_error
from .gru import gru_backward, gru_forward, gru_step_backward, gru_step_forward
from .lstm import lstm_backward, lstm_forward, lstm_step_backward, lstm_step_forward, sigmoid
from .modules import NumpyGRU, NumpyLSTM, load_npz, save_npz
from .train import Adam, echo_batch, loss_and_grads, train_toy

__all__ = [
    "Adam",
    "NumpyGRU",
    "NumpyLSTM",
    "echo_batch",
    "gradient_check",
    "gru_backward",
    "gru_forward",
    "gru_step_backward",
    "gru_step_forward",
    "load_npz",
    "loss_and_grads",
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "numerical_gradient",
    "relative_error",
    "save_npz",
    "sigmoid",
    "train_toy",
]
