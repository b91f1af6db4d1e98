"""nn.Module API: cells (one step) and layers (sequences)."""

from .bidirectional import Bidirectional
from .cells import GRUCell, LSTMCell, RNNCell
from .recurrent import GRU, LSTM, RNN, reverse_padded

__all__ = ["Bidirectional", "GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell", "reverse_padded"]
