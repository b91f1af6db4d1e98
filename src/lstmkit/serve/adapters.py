"""A checkpoint -> a streaming model: ``init_state`` / ``step`` / ``predict``.

This is the one place the server turns a checkpoint into something it can stream; everything else
sees a :class:`StreamingModel`. Checkpoints are read by ``models.checkpoints`` (with
``weights_only=True``):

- a bare ``lstmkit.LSTM`` written by ``lstmkit.models.checkpoints.save_model``. Outputs are the
  top layer's hidden states.
- the forecaster (``model_config`` + ``model`` [+ ``series_spec``, ``scaler``]): inputs are the
  model's feature rows (in its transformed units), each step's output is the forecast of the
  next ``horizon`` values from the state so far (modes ``single`` and ``direct``).
- ``kind="language_model"`` (+ ``tokenizer.json`` beside it if present): inputs are token ids,
  each step's output is the log-probabilities of the next token; ``/v1/generate`` decodes.

Symbols: B batch (sessions in one batched step), T steps, I input features, H hidden,
L layers, O outputs per step, V vocabulary. A session's state is one float32 tensor
``(2, L, H)`` (h and c), so the store and the database handle every model alike.

>>> import torch, lstmkit as lk
>>> m = LayerModel(lk.LSTM(3, 4, 2, batch_first=True))
>>> s = m.init_state(2)                                   # (B, 2, L, H)
>>> y, s2 = m.step(torch.randn(2, 5, 3), torch.tensor([5, 2]), s)
>>> tuple(y.shape), tuple(s2.shape)
((2, 5, 4), (2, 2, 2, 4))
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import Tensor

from .. import LSTM, LSTMCell
from ..models.checkpoints import ForecasterEnsemble, load_model, resolve
from ..models.forecaster import Forecaster
from ..models.language_model import LanguageModel


class LSTMStepper:
    """Runs a unidirectional ``lstmkit.LSTM`` (batch_first) over (B, T, I) with per-row lengths.

    LSTMs without projection or zoneout go through one ``lstmkit.LSTMCell`` per layer
    (``from_layer``: the packed streaming step, the cheapest call for a few steps of many
    sessions), in the weight precision ``step_weights`` ('full', 'bfloat16' or 'int8'); the
    others go through the layer itself with ``hx`` and ``lengths``, in full precision. Both give
    what each row would give alone."""

    def __init__(self, lstm: LSTM, step_weights: str = "full") -> None:
        if lstm.bidirectional:
            raise ValueError("model: a bidirectional LSTM cannot be streamed step by step")
        if lstm.mode != "LSTM":
            raise ValueError(f"model: expected an LSTM, got {lstm.mode}")
        self.lstm = lstm
        self.num_layers, self.hidden_size = lstm.num_layers, lstm.hidden_size
        self.out_size = lstm.proj_size or lstm.hidden_size
        self.step_weights = step_weights
        self.cells: list[LSTMCell] | None = None
        if lstm.proj_size or lstm.zoneout != (0.0, 0.0):  # the layer path (no cell for these)
            if step_weights != "full":
                raise ValueError(f"step_weights: {step_weights!r} needs an LSTM without projection "
                                 f"or zoneout (this one has proj_size={lstm.proj_size}, zoneout="
                                 f"{lstm.zoneout}); use 'full'")
        else:
            self.cells = [LSTMCell.from_layer(lstm, k, step_weights=step_weights).eval()
                          for k in range(lstm.num_layers)]

    @torch.no_grad()
    def __call__(self, x: Tensor, lengths: Tensor, h: Tensor, c: Tensor):
        """x (B, T, I), lengths (B,) in [1, T], h (L, B, P), c (L, B, H) ->
        y (B, T, P) (zeros past each row's length), h_n, c_n after each row's last step."""
        if self.cells is None:
            y, (h_n, c_n) = self.lstm(x, (h.contiguous(), c.contiguous()), lengths=lengths)
            return y, h_n, c_n
        T = x.shape[1]
        uniform = bool((lengths == T).all())
        hs, cs = list(h.unbind(0)), list(c.unbind(0))  # L x (B, H)
        ys = []
        for t in range(T):
            inp = x[:, t]  # (B, I)
            live = None if uniform else (lengths > t).unsqueeze(1)  # (B, 1)
            for k, cell in enumerate(self.cells):
                h_k, c_k = cell(inp, (hs[k], cs[k]))  # (B, H)
                if live is not None:
                    h_k, c_k = torch.where(live, h_k, hs[k]), torch.where(live, c_k, cs[k])
                hs[k], cs[k] = h_k, c_k
                inp = h_k + inp if k and self.lstm.residual else h_k
            ys.append(inp if live is None else inp * live)
        return torch.stack(ys, 1), torch.stack(hs), torch.stack(cs)  # (B, T, H), (L, B, H) x2


class StreamingModel:
    """What the server serves. Subclasses set the attributes and ``_outputs``."""

    kind = ""
    input_kind = "float"  # "float": rows of input_size numbers; "tokens": ids in [0, vocab)
    input_size = 0  # features per step (float), or the vocabulary size (tokens)
    output_size = 0
    streaming_error: str | None = None  # why step() is unavailable, if it is
    tokenizer = None

    def __init__(self, stepper: LSTMStepper) -> None:
        self.stepper = stepper
        L, H, P = stepper.num_layers, stepper.hidden_size, stepper.out_size
        self._p = P  # a projected h (P < H) sits in the first P columns of the (2, L, H) state
        self.state_shape = (2, L, H)

    def init_state(self, n: int = 1) -> Tensor:
        """Zero states for ``n`` sessions: (n, 2, L, H)."""
        return torch.zeros((n, *self.state_shape))

    def _embed(self, x: Tensor) -> Tensor:
        return x

    def _outputs(self, y: Tensor) -> Tensor:  # (B, T, P) -> (B, T, O)
        return y

    @torch.no_grad()
    def step(self, x: Tensor, lengths: Tensor, state: Tensor):
        """x (B, T, I) float or (B, T) long, lengths (B,), state (B, 2, L, H) ->
        outputs (B, T, O), new state (B, 2, L, H)."""
        if self.streaming_error:
            raise ValueError(self.streaming_error)
        h = state[:, 0, :, : self._p].transpose(0, 1)  # (L, B, P)
        c = state[:, 1].transpose(0, 1)  # (L, B, H)
        y, h_n, c_n = self.stepper(self._embed(x), lengths, h, c)
        new = torch.zeros_like(state)
        new[:, 0, :, : self._p] = h_n.transpose(0, 1)
        new[:, 1] = c_n.transpose(0, 1)
        return self._outputs(y), new

    def predict(self, x: Tensor, future: Tensor | None = None) -> Tensor:
        """Stateless: a batch of whole sequences (B, T, I) -> the model's offline outputs."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {"kind": self.kind, "input": self.input_kind, "input_size": self.input_size,
                "output_size": self.output_size, "num_layers": self.stepper.num_layers,
                "hidden_size": self.stepper.hidden_size, "streaming": self.streaming_error is None,
                "step_weights": self.stepper.step_weights}


class LayerModel(StreamingModel):
    """A bare ``lstmkit.LSTM``: outputs are its top layer's h at each step."""

    kind = "lstm_layer"

    def __init__(self, lstm: LSTM, step_weights: str = "full") -> None:
        if not lstm.batch_first:
            raise ValueError("lstm: expected batch_first=True")
        super().__init__(LSTMStepper(lstm.eval(), step_weights))
        self.lstm = lstm
        self.input_size, self.output_size = lstm.input_size, self.stepper.out_size

    @torch.no_grad()
    def predict(self, x: Tensor, future: Tensor | None = None) -> Tensor:
        return self.lstm(x)[0]  # (B, T, P)


class ForecasterModel(StreamingModel):
    """The forecaster: each step's output is the forecast (horizon values) from the state so far;
    a quantile forecaster serves its median level (the point forecast)."""

    kind = "forecaster"

    def __init__(self, model: Forecaster, step_weights: str = "full") -> None:
        super().__init__(LSTMStepper(model.lstm, step_weights))
        self.model = model.eval()
        c = model.config
        self.input_size, self.output_size = c.input_size, c.horizon
        if c.mode not in ("single", "direct"):
            self.streaming_error = (f"model: streaming steps need a forecaster in mode 'single' or "
                                    f"'direct' (this one is {c.mode!r}); use POST /v1/predict")

    def _point(self, f: Tensor) -> Tensor:
        """A quantile forecaster's median level: (..., h, Q) -> (..., h); else unchanged."""
        c = self.model.config
        return f[..., c.median_index] if c.quantiles else f

    def _outputs(self, y: Tensor) -> Tensor:
        B, T = y.shape[:2]
        raw = self.model.head(y).reshape(B * T, -1)  # (B*T, h*Q)
        return self._point(self.model._out(raw)).reshape(B, T, -1)  # (B, T, h)

    @torch.no_grad()
    def predict(self, x: Tensor, future: Tensor | None = None) -> Tensor:
        return self._point(self.model(x, future))  # (B, h): the point (median) forecast


class LanguageModelAdapter(StreamingModel):
    """The language model: token ids in, log-probabilities of the next token out."""

    kind = "language_model"
    input_kind = "tokens"

    def __init__(self, model: LanguageModel, tokenizer=None, step_weights: str = "full") -> None:
        super().__init__(LSTMStepper(model.lstm, step_weights))
        self.model = model.eval()
        self.input_size = self.output_size = model.config.vocab_size
        self.tokenizer = tokenizer

    def _embed(self, x: Tensor) -> Tensor:
        return self.model.embedding(x)  # (B, T, E)

    def _outputs(self, y: Tensor) -> Tensor:
        return torch.log_softmax(self.model.decoder(y).float(), dim=-1)  # (B, T, V)

    @torch.no_grad()
    def predict(self, x: Tensor, future: Tensor | None = None) -> Tensor:
        return torch.log_softmax(self.model(x)[0].float(), dim=-1)  # (B, T, V)


# -- checkpoints -----------------------------------------------------------------------------
def load_streaming_model(path: str | os.PathLike, step_weights: str = "full") -> StreamingModel:
    """A checkpoint file (or a job's ``--out`` folder holding ``model.pt``) -> a StreamingModel
    whose steps read the weights in ``step_weights`` precision (see ``LSTMStepper``).

    The checkpoint is read by ``models.checkpoints.load_model`` (every layout lstmkit writes);
    a bare layer must be a unidirectional ``lstmkit.LSTM``."""
    p = Path(resolve(path))
    model, _ = load_model(p)
    if isinstance(model, LSTM):
        model.batch_first = True  # the server's rows are (B, T, I); the weights do not change
        return LayerModel(model, step_weights)
    if isinstance(model, LanguageModel):
        tok = None
        tok_path = p.parent / "tokenizer.json"
        if tok_path.exists():
            from ..data.text import load_tokenizer

            tok = load_tokenizer(tok_path)
            if len(tok) != model.config.vocab_size:
                raise ValueError(f"{tok_path}: tokenizer has {len(tok)} tokens but the model "
                                 f"expects {model.config.vocab_size}")
        return LanguageModelAdapter(model, tok, step_weights)
    if isinstance(model, Forecaster):
        return ForecasterModel(model, step_weights)
    if isinstance(model, ForecasterEnsemble):
        raise ValueError(f"checkpoint {p}: a forecaster ensemble of {len(model.members)} members "
                         "cannot stream one state per session; train with --ensemble 1 to serve it")
    raise ValueError(f"checkpoint {p}: expected an lstmkit.LSTM layer, a forecaster or a language "
                     f"model, got {type(model).__name__}")


def checkpoint_fingerprint(path: str | os.PathLike) -> str:
    """sha256 of the checkpoint file: ties a session database to the weights it was made with."""
    p = Path(path)
    if p.is_dir():
        p = p / "model.pt"
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


__all__ = ["StreamingModel", "LayerModel", "ForecasterModel", "LanguageModelAdapter", "LSTMStepper",
           "load_streaming_model", "checkpoint_fingerprint"]
