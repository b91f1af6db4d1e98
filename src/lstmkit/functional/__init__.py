"""The equations: one file per cell family (step forward, hand backward, BPTT, autograd.Function)."""

from .lstm import LSTMFunction, LSTMParams, Masks, lstm, lstm_step_backward, lstm_step_forward

__all__ = ["LSTMFunction", "LSTMParams", "Masks", "lstm", "lstm_step_backward", "lstm_step_forward"]
