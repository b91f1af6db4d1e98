"""The equations: one file per cell family (step forward, hand backward, BPTT, autograd.Function)."""

from ._common import Masks
from .lstm import LSTMFunction, LSTMParams, lstm, lstm_step_backward, lstm_step_forward

__all__ = ["LSTMFunction", "LSTMParams", "Masks", "lstm", "lstm_step_backward", "lstm_step_forward"]
