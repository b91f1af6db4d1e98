"""nn.Module API: cells (one step) and layers (sequences).

Besides the hand-written torch twins below, every family in ``lstmkit.functional.registry``
gets a layer ``{title}`` and a cell ``{title}Cell`` here (e.g. ``IndRNN``, ``IndRNNCell``).
"""

from . import cells, recurrent
from ._checks import check_lengths
from .bidirectional import Bidirectional
from .cells import GRUCell, LSTMCell, RNNCell
from .conv_lstm import ConvLSTM, ConvLSTMCell
from .recurrent import GRU, LSTM, RNN, reverse_padded

globals().update({c.__name__: c for c in recurrent.GENERATED + cells.GENERATED})

__all__ = [
    "Bidirectional", "ConvLSTM", "ConvLSTMCell", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN",
    "RNNCell", "check_lengths", "reverse_padded",
]
__all__ += [c.__name__ for c in recurrent.GENERATED + cells.GENERATED]
