"""The equations: one file per cell family (step forward, hand backward, BPTT, autograd.Function).

Each family module (``lstm``, ``gru``, ``rnn``) exposes a sequence function of the same name,
e.g. ``lstmkit.functional.lstm.lstm(x, h0, c0, params, masks)``; the package itself exports
only the parameter and mask tuples so module names are never shadowed by functions.
"""

from ._common import Masks
from .gru import GRUParams
from .lstm import LSTMParams
from .rnn import RNNParams

__all__ = ["GRUParams", "LSTMParams", "Masks", "RNNParams"]
