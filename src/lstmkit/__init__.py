"""lstmkit: the LSTM family from its equations, with hand-derived BPTT, as drop-in torch layers.

>>> import torch, lstmkit as lk
>>> lstm = lk.LSTM(8, 16, num_layers=2, batch_first=True)
>>> y, (h_n, c_n) = lstm(torch.randn(4, 10, 8))
>>> tuple(y.shape), tuple(h_n.shape)
((4, 10, 16), (2, 4, 16))

The public names are imported lazily so that ``lstmkit.numpy`` works without torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "LSTM": "lstmkit.nn",
    "GRU": "lstmkit.nn",
    "RNN": "lstmkit.nn",
    "LSTMCell": "lstmkit.nn",
    "GRUCell": "lstmkit.nn",
    "RNNCell": "lstmkit.nn",
    "ConvLSTM": "lstmkit.nn",
    "ConvLSTMCell": "lstmkit.nn",
    "Bidirectional": "lstmkit.nn",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name[:1].isupper():  # the layers and cells of every other registered family (IndRNN, ...)
        nn = importlib.import_module("lstmkit.nn")
        if name in nn.__all__:
            return getattr(nn, name)
    raise AttributeError(f"module 'lstmkit' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))
