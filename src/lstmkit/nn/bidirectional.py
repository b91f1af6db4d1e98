"""A composable bidirectional wrapper (Flax style): two unidirectional runners and a merge.

Symbols: T time, B batch, P output width, L layers of each runner.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from ._checks import check_lengths
from .recurrent import RecurrentBase, reverse_padded

MERGE_MODES = ("concat", "sum", "mean", "mul")


class Bidirectional(nn.Module):
    """Run ``forward_layer`` left to right and ``backward_layer`` right to left (each sequence
    from its own last valid step when ``lengths`` is given), then merge the two outputs.

    ``merge_mode="concat"`` gives torch's layout: two single-layer runners with the weights of
    a ``bidirectional=True`` layer give its outputs and its ``h_n`` (directions interleaved per
    layer). The backward runner defaults to a fresh copy of the forward one.

    Args:
        forward_layer: a unidirectional lstmkit layer (LSTM, GRU, RNN or a registered family's)
        backward_layer: the same kind, run right to left; None: a re-initialised deep copy of
            forward_layer. Default: None
        merge_mode: "concat" (D*P features), "sum", "mean" or "mul". Default: "concat"

    Inputs: input, hx=None, *, lengths=None
        input: as the layers take it (same batch_first for both)
        hx: None or a pair (forward state, backward state), each as its layer takes it
        lengths: (B,) ints, right padding; the backward runner starts at each sequence's end

    Outputs: output, h_n
        output: the merged outputs; h_n: the two layers' final states interleaved per layer
        (torch's (L*D, B, P) layout), a tuple for families with a cell state

    Attributes:
        forward_layer, backward_layer, merge_mode: as given

    >>> import torch, lstmkit as lk
    >>> bi = lk.nn.Bidirectional(lk.GRU(3, 4, batch_first=True), merge_mode="sum")
    >>> y, h = bi(torch.randn(2, 5, 3), lengths=[5, 2])
    >>> tuple(y.shape), tuple(h.shape)
    ((2, 5, 4), (2, 2, 4))
    """

    def __init__(self, forward_layer: RecurrentBase, backward_layer: RecurrentBase | None = None,
                 merge_mode: str = "concat") -> None:
        super().__init__()
        if merge_mode not in MERGE_MODES:
            raise ValueError(f"merge_mode: expected one of {MERGE_MODES}, got {merge_mode!r}")
        if backward_layer is None:
            backward_layer = copy.deepcopy(forward_layer)
            backward_layer.reset_parameters()
        for name, layer in (("forward_layer", forward_layer), ("backward_layer", backward_layer)):
            if not isinstance(layer, RecurrentBase):
                raise TypeError(f"{name}: expected an lstmkit LSTM/GRU/RNN, got {type(layer).__name__}")
            if layer.bidirectional:
                raise ValueError(f"{name}: expected a unidirectional layer, got bidirectional=True")
        if forward_layer.batch_first != backward_layer.batch_first:
            raise ValueError("backward_layer: expected the same batch_first as forward_layer, got "
                             f"{backward_layer.batch_first} vs {forward_layer.batch_first}")
        self.forward_layer, self.backward_layer = forward_layer, backward_layer
        self.merge_mode = merge_mode

    def forward(self, input: Tensor, hx=None, *, lengths=None):
        fwd, bwd = self.forward_layer, self.backward_layer
        if not isinstance(input, Tensor):
            raise TypeError(f"input: expected a torch.Tensor, got {type(input).__name__}")
        time_dim = 1 if (fwd.batch_first and input.dim() == 3) else 0
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError("hx: expected a pair (forward state, backward state) or None")
        hx_f, hx_b = (None, None) if hx is None else hx
        lens = None
        if lengths is not None and input.dim() == 3:
            lens = check_lengths(lengths, input.shape[1 - time_dim], input.shape[time_dim])

        def flip(t: Tensor) -> Tensor:
            t = t.movedim(time_dim, 0)
            return reverse_padded(t, lens).movedim(0, time_dim)

        y_f, s_f = fwd(input, hx_f, lengths=lengths)
        y_b, s_b = bwd(flip(input), hx_b, lengths=lengths)
        y_b = flip(y_b)
        if self.merge_mode == "concat":
            y = torch.cat([y_f, y_b], dim=-1)
        elif self.merge_mode == "sum":
            y = y_f + y_b
        elif self.merge_mode == "mean":
            y = (y_f + y_b) / 2
        else:
            y = y_f * y_b

        def interleave(a: Tensor, b: Tensor) -> Tensor:  # torch's (L*D, ...) layout
            return torch.stack([a, b], dim=1).flatten(0, 1)

        if isinstance(s_f, tuple):
            return y, tuple(interleave(a, b) for a, b in zip(s_f, s_b))
        return y, interleave(s_f, s_b)
