"""nn.Module API: cells (one step) and layers (sequences)."""

from .bidirectional import Bidirectional
from .cells import GRUCell, LSTMCell, RNNCell
from .conv_lstm import ConvLSTM, ConvLSTMCell
from .recurrent import GRU, LSTM, RNN, reverse_padded

__all__ = [
    "Bidirectional", "ConvLSTM", "ConvLSTMCell", "GRU", "GRUCell", "LSTM", "LSTMCell", "RNN",
    "RNNCell", "reverse_padded",
]
