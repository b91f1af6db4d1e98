"""Torch-free inference of saved LSTM/GRU weights: stacked, bidirectional, proj_size, batch_first.

Symbols: T time, B batch, I input, H hidden, P output width (proj_size, or H), D directions,
L layers.

A state_dict of ``torch.nn.LSTM`` / ``lstmkit.LSTM`` (same names) saved with ``save_npz`` loads
into ``NumpyLSTM`` with nothing but NumPy; everything (layers, directions, sizes, bias,
proj_size) is read off the parameter names and shapes:

    weight_ih_l{k}[_reverse]  (G, I) for k = 0, (G, D*P) after
    weight_hh_l{k}[_reverse]  (G, P)
    bias_ih_l{k}, bias_hh_l{k} (G,)        absent when bias=False
    weight_hr_l{k}            (P, H)       LSTM with proj_size only

>>> import numpy as np, os, tempfile
>>> rng = np.random.default_rng(0)
>>> sd = {f"{n}_l0": rng.normal(size=s) for n, s in
...       [("weight_ih", (12, 3)), ("weight_hh", (12, 4)), ("bias_ih", (12,)), ("bias_hh", (12,))]}
>>> path = os.path.join(tempfile.mkdtemp(), "gru.npz")
>>> save_npz(sd, path)
>>> gru = NumpyGRU.from_npz(path)
>>> gru
NumpyGRU(input_size=3, hidden_size=4, num_layers=1, bias=True, batch_first=False, bidirectional=False)
>>> y, h_n = gru(rng.normal(size=(7, 2, 3)))   # (T, B, I)
>>> y.shape, h_n.shape
((7, 2, 4), (1, 2, 4))
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

import numpy as np

from .._io import atomic_write
from .gru import gru_step_forward
from .lstm import lstm_step_forward

_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def _to_numpy(name: str, value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, converted without importing torch here
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            value = value.float()
        value = value.numpy()
    if not isinstance(value, np.ndarray):
        raise TypeError(f"state_dict[{name!r}]: expected a tensor or numpy array, got {type(value).__name__}")
    return value


def save_npz(module_or_state_dict, path: str | os.PathLike) -> None:
    """Write a module's ``state_dict()`` (or a mapping name -> tensor/array) to ``path`` as .npz,
    atomically (temp file in the same folder, then ``os.replace``). Needs no torch import: tensors
    are recognised by their ``detach`` method."""
    obj = module_or_state_dict
    sd = obj.state_dict() if hasattr(obj, "state_dict") else obj
    if not isinstance(sd, Mapping):
        raise TypeError(f"module_or_state_dict: expected an nn.Module or a mapping, got {type(obj).__name__}")
    arrays = {str(k): _to_numpy(str(k), v) for k, v in sd.items()}

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, **arrays)

    atomic_write(path, write)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read an .npz written by ``save_npz`` into a dict name -> array (no pickles)."""
    with np.load(os.fspath(path), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class _NumpyRNN:
    _GATES = 0  # gate blocks per layer: 4 (LSTM), 3 (GRU)
    _PROJ = False  # whether weight_hr_l{k} may appear

    def __init__(self, state_dict: Mapping, *, batch_first: bool = False):
        if not isinstance(batch_first, bool):
            raise TypeError(f"batch_first: expected bool, got {type(batch_first).__name__}")
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a mapping name -> array, got {type(state_dict).__name__}")
        sd = {str(k): _to_numpy(str(k), v) for k, v in state_dict.items()}
        name = type(self).__name__
        bad = sorted(k for k in sd if not _KEY.match(k) or (k.startswith("weight_hr") and not self._PROJ))
        if bad:
            raise ValueError(f"state_dict: unexpected keys {bad} for {name} (torch.nn names only)")
        if "weight_ih_l0" not in sd:
            raise ValueError(f"state_dict: expected 'weight_ih_l0', got keys {sorted(sd)}")
        self.batch_first = batch_first
        self.num_layers = 1 + max(int(_KEY.match(k).group(2)) for k in sd)
        self.bidirectional = "weight_ih_l0_reverse" in sd
        self.bias = "bias_ih_l0" in sd
        G, self.input_size = sd["weight_ih_l0"].shape
        if G % self._GATES:
            raise ValueError(f"state_dict['weight_ih_l0']: expected {self._GATES}*H rows, got shape {(G,)}")
        self.hidden_size = H = G // self._GATES
        self.proj_size = sd["weight_hr_l0"].shape[0] if "weight_hr_l0" in sd else 0
        P = self.proj_size or H
        D = 2 if self.bidirectional else 1
        expected = {}
        for k in range(self.num_layers):
            for sfx in ["", "_reverse"][:D]:
                expected[f"weight_ih_l{k}{sfx}"] = (G, self.input_size if k == 0 else D * P)
                expected[f"weight_hh_l{k}{sfx}"] = (G, P)
                if self.bias:
                    expected[f"bias_ih_l{k}{sfx}"] = (G,)
                    expected[f"bias_hh_l{k}{sfx}"] = (G,)
                if self.proj_size:
                    expected[f"weight_hr_l{k}{sfx}"] = (P, H)
        if set(expected) != set(sd):
            raise ValueError(
                f"state_dict: expected keys {sorted(expected)}, got missing {sorted(set(expected) - set(sd))}"
                f" and unexpected {sorted(set(sd) - set(expected))}"
            )
        for k, shape in expected.items():
            if sd[k].shape != shape:
                raise ValueError(f"state_dict[{k!r}]: expected shape {shape}, got {sd[k].shape}")
        self.params = sd
        self.dtype = sd["weight_ih_l0"].dtype

    @classmethod
    def from_npz(cls, path: str | os.PathLike, *, batch_first: bool = False):
        """Load a state_dict saved by ``save_npz``."""
        return cls(load_npz(path), batch_first=batch_first)

    def __repr__(self) -> str:
        proj = f", proj_size={self.proj_size}" if self.proj_size else ""
        return (
            f"{type(self).__name__}(input_size={self.input_size}, hidden_size={self.hidden_size}, "
            f"num_layers={self.num_layers}, bias={self.bias}, batch_first={self.batch_first}, "
            f"bidirectional={self.bidirectional}{proj})"
        )

    def _layer(self, k: int, sfx: str) -> dict[str, np.ndarray | None]:
        p = self.params
        return {
            "W_ih": p[f"weight_ih_l{k}{sfx}"],
            "W_hh": p[f"weight_hh_l{k}{sfx}"],
            "b_ih": p.get(f"bias_ih_l{k}{sfx}"),
            "b_hh": p.get(f"bias_hh_l{k}{sfx}"),
            "W_hr": p.get(f"weight_hr_l{k}{sfx}"),
        }

    def _prepare(self, x, states: list[tuple[str, np.ndarray | None, int]]):
        """Check x and the initial states; return time-major batched x, states (L*D, B, .), flags."""
        x = np.asarray(x)
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"x: expected a floating array, got dtype {x.dtype}")
        dtype = np.result_type(x.dtype, self.dtype)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            I = self.input_size
            raise ValueError(f"x: expected shape (T, B, {I}) or (T, {I}), got {x.shape}")
        unbatched = x.ndim == 2
        x = x[:, None] if unbatched else (x.transpose(1, 0, 2) if self.batch_first else x)
        if x.shape[0] == 0:
            raise ValueError(f"x: expected at least one time step, got shape {x.shape}")
        B = x.shape[1]
        LD = self.num_layers * (2 if self.bidirectional else 1)
        out = []
        for name, s, width in states:
            if s is None:
                out.append(np.zeros((LD, B, width), dtype=dtype))
                continue
            s = np.asarray(s)
            want = (LD, width) if unbatched else (LD, B, width)
            if s.shape != want:
                raise ValueError(f"{name}: expected shape {want}, got {s.shape}")
            out.append(s[:, None] if unbatched else s)
        return x.astype(dtype, copy=False), out, unbatched

    def _finish(self, y, states, unbatched):
        if unbatched:
            return y[:, 0], [s[:, 0] for s in states]
        return (y.transpose(1, 0, 2) if self.batch_first else y), states

    def _run(self, x, states):
        """Stack layers and directions. x: (T, B, I); states: list of (L*D, B, .) arrays."""
        D = 2 if self.bidirectional else 1
        finals = [np.empty_like(s) for s in states]
        inp = x
        for k in range(self.num_layers):
            outs = []
            for d, sfx in enumerate(["", "_reverse"][:D]):
                j = k * D + d
                seq = inp if d == 0 else inp[::-1]  # the reverse direction reads time backwards
                y, last = self._direction(seq, [s[j] for s in states], self._layer(k, sfx))  # (T, B, P)
                outs.append(y if d == 0 else y[::-1])
                for f, v in zip(finals, last):
                    f[j] = v
            inp = np.concatenate(outs, axis=-1) if D == 2 else outs[0]  # (T, B, D*P)
        return inp, finals


class NumpyLSTM(_NumpyRNN):
    """``torch.nn.LSTM`` inference in NumPy from its state_dict.

    ``__call__(x, hx=None) -> (output, (h_n, c_n))`` with torch's shapes: x (T, B, I) (or
    (B, T, I) with ``batch_first``, or unbatched (T, I)); hx = (h_0 (L*D, B, P), c_0 (L*D, B, H));
    output (T, B, D*P).
    """

    _GATES = 4
    _PROJ = True

    def __call__(self, x, hx=None):
        if hx is not None and (not isinstance(hx, (tuple, list)) or len(hx) != 2):
            raise TypeError(f"hx: expected a tuple (h_0, c_0), got {type(hx).__name__}")
        h0, c0 = (None, None) if hx is None else hx
        P = self.proj_size or self.hidden_size
        x, states, unbatched = self._prepare(x, [("hx[0]", h0, P), ("hx[1]", c0, self.hidden_size)])
        y, (h_n, c_n) = self._run(x, states)
        y, (h_n, c_n) = self._finish(y, [h_n, c_n], unbatched)
        return y, (h_n, c_n)

    @staticmethod
    def _direction(x, state, w):
        h, c = state
        b = None if w["b_ih"] is None else w["b_ih"] + w["b_hh"]
        y = np.empty(x.shape[:2] + (h.shape[-1],), dtype=x.dtype)
        for t in range(x.shape[0]):
            h, c, _ = lstm_step_forward(x[t], h, c, w["W_ih"], w["W_hh"], b, w["W_hr"])
            y[t] = h
        return y, (h, c)


class NumpyGRU(_NumpyRNN):
    """``torch.nn.GRU`` inference in NumPy from its state_dict.

    ``__call__(x, hx=None) -> (output, h_n)``; hx: h_0 (L*D, B, H); output (T, B, D*H).
    """

    _GATES = 3

    def __call__(self, x, hx=None):
        x, states, unbatched = self._prepare(x, [("hx", hx, self.hidden_size)])
        y, (h_n,) = self._run(x, states)
        y, (h_n,) = self._finish(y, [h_n], unbatched)
        return y, h_n

    @staticmethod
    def _direction(x, state, w):
        (h,) = state
        y = np.empty(x.shape[:2] + (h.shape[-1],), dtype=x.dtype)
        for t in range(x.shape[0]):
            h, _ = gru_step_forward(x[t], h, w["W_ih"], w["W_hh"], w["b_ih"], w["b_hh"])
            y[t] = h
        return y, (h,)
