"""lstmkit: the LSTM family from its equations, with hand-derived BPTT, as drop-in torch layers.

>>> import torch, lstmkit as lk
>>> lstm = lk.LSTM(8, 16, num_layers=2, batch_first=True)
>>> y, (h_n, c_n) = lstm(torch.randn(4, 10, 8))
>>> tuple(y.shape), tuple(h_n.shape)
((4, 10, 16), (2, 4, 16))
"""

from .nn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell

__version__ = "0.1.0"
__all__ = ["GRU", "LSTM", "RNN", "GRUCell", "LSTMCell", "RNNCell"]
