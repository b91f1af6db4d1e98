"""Record what a recurrent layer does, step by step: gates, cells, hidden states, and the
gradient of any output with respect to every step's hidden and cell state.

Symbols: L layers, D directions, T time, B batch, H hidden, P output width (proj_size or H).

``record(model)`` is a context manager. Inside it, every lstmkit sequence layer found in
``model`` (``lk.LSTM``, ``lk.GRU``, ``lk.RNN`` and the other registered families, on any
engine) runs through the reference equations of ``lstmkit.functional`` one step at a time with
its own weights, and keeps what it saw. The numbers are the layer's (the same equations; the
tests check outputs against the layer's own engine and the gates against a plain recomputation).
Outside the block nothing is changed: the layers run their normal engine at full speed (the
recorder patches the instances, never the classes, and removes the patch on exit).

Gradients: ``rec.grad(output)`` backpropagates a scalar to every recorded step: ``dh`` is the
total d output / d h_t, ``dc`` the gradient the cell path carries into c_t (with h_t held
fixed: what BPTT carries as ``dc``, the constant error carousel). Each step is one
call of the family's reference ``autograd.Function``, so the gradient goes through lstmkit's
hand-derived step backward (Greff's ``full_gate_recurrence`` ablation, whose gates carry across
steps, is differentiated by autograd through ``ablation_step_forward`` instead).

    >>> import torch, lstmkit as lk
    >>> from lstmkit.analysis import record
    >>> torch.manual_seed(0) and None
    >>> m = lk.LSTM(3, 4, num_layers=2).eval()
    >>> x = torch.randn(6, 2, 3)
    >>> with record(m, grads=True) as rec:
    ...     y, _ = m(x)
    ...     rec.grad(y[-1].sum())
    >>> r = rec[""]
    >>> r.gate_names, tuple(r.gates["f"].shape), tuple(r.c.shape), tuple(r.dh.shape)
    (('i', 'f', 'g', 'o'), (2, 6, 2, 4), (2, 6, 2, 4), (2, 6, 2, 4))
    >>> torch.allclose(y, m(x)[0], atol=1e-6), "forward" in vars(m)
    (True, False)

Limits: eval mode (or a training-mode layer with no dropout/zoneout/weight drop); padded
batches with ``lengths=``, not PackedSequence; ConvLSTM (own modules) and cells are not
recorded.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from ..functional import gru as F_gru
from ..functional import lstm as F_lstm
from ..functional._common import Masks, lengths_to_mask
from ..nn import _params
from ..nn.recurrent import RecurrentBase, reverse_padded

GATE_NAMES = {"lstm": ("i", "f", "g", "o"), "gru": ("r", "z", "n")}


@dataclass
class LayerRecord:
    """One forward call of one layer. Tensors are (L*D, T, B, width), index ``k * D + d`` for
    layer k and direction d (torch's order), time in input order for both directions; padded
    steps hold the kept state and zero gates."""

    family: str
    num_layers: int
    directions: int
    gate_names: tuple[str, ...]
    gates: dict[str, Tensor]  # name -> (L*D, T, B, H)
    h: Tensor  # (L*D, T, B, P) the state after each step
    c: Tensor | None  # (L*D, T, B, H) (LSTM)
    lengths: Tensor | None  # (B,)
    dh: Tensor | None = None  # d output / d h_t (after ``Recorder.grad``), like h
    dc: Tensor | None = None  # d output / d c_t along the cell path (h_t held fixed): the
    #                           carried gradient of BPTT, the constant error carousel
    _live: list = field(default_factory=list, repr=False)  # per layer-direction: [(h_t, c_t)]

    def unit(self, layer: int = 0, direction: int = 0) -> int:
        return layer * self.directions + direction


class Recorder:
    """What ``record`` yields: ``rec[name]`` is the last call of the layer at module path
    ``name`` ("" for the model itself), ``rec.calls[name]`` every call in order."""

    def __init__(self, grads: bool) -> None:
        self.want_grads = grads
        self.calls: dict[str, list[LayerRecord]] = {}

    def __getitem__(self, name: str) -> LayerRecord:
        if name not in self.calls or not self.calls[name]:
            raise KeyError(f"name: expected one of the recorded layers {sorted(self.calls)}, "
                           f"got {name!r}")
        return self.calls[name][-1]

    def names(self) -> list[str]:
        return sorted(self.calls)

    def grad(self, output: Tensor) -> None:
        """Backpropagate the scalar ``output`` to every recorded step: fills ``dh`` (and ``dc``)
        of every call. Needs ``record(..., grads=True)``."""
        if not self.want_grads:
            raise ValueError("grads: record(model, grads=True) keeps the graph that grad() needs")
        if not isinstance(output, Tensor) or output.numel() != 1:
            raise ValueError(f"output: expected a scalar tensor, got "
                             f"{tuple(output.shape) if isinstance(output, Tensor) else output!r}")
        recs = [r for calls in self.calls.values() for r in calls]
        live = [t for r in recs for steps in r._live for st in steps for t in st if t is not None]
        got = torch.autograd.grad(output, live, allow_unused=True, retain_graph=True)
        it = iter(got)
        for r in recs:
            dh, dc = [], []
            for d_idx, steps in enumerate(r._live):
                gh, gc = [], []
                for st in steps:
                    for j, t in enumerate(st):
                        if t is None:
                            continue
                        g = next(it)
                        g = torch.zeros_like(t) if g is None else g
                        (gh if j == 0 else gc).append(g.detach())
                dh.append(_in_time_order(torch.stack(gh), d_idx % r.directions, r.lengths))
                if gc:
                    dc.append(_in_time_order(torch.stack(gc), d_idx % r.directions, r.lengths))
            r.dh = torch.stack(dh)
            r.dc = torch.stack(dc) if dc else None


def _in_time_order(z: Tensor, direction: int, lengths: Tensor | None) -> Tensor:
    return z if direction == 0 else reverse_padded(z, lengths)


@contextmanager
def record(model: nn.Module, *, grads: bool = False):
    """Record every lstmkit sequence layer in ``model`` while the block runs (module docstring).
    ``grads=True`` keeps the graph (even under frozen weights) so that ``rec.grad`` works."""
    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, RecurrentBase)]
    if not layers:
        raise ValueError(f"model: no lstmkit sequence layer (LSTM, GRU, RNN, ...) inside "
                         f"{type(model).__name__}")
    rec = Recorder(grads)
    for name, m in layers:
        rec.calls[name] = []
        m.forward = _recording_forward(m, rec.calls[name], grads)
    try:
        yield rec
    finally:
        for _, m in layers:
            del m.forward  # back to the class's forward: nothing left behind


def _check_mode(m: RecurrentBase) -> None:
    stochastic = (m.dropout and m.num_layers > 1) or m.input_dropout or m.recurrent_dropout or (
        m.weight_drop) or m.zoneout != (0.0, 0.0)
    if m.training and stochastic:
        raise ValueError(f"model: record() replays the eval-mode equations; call .eval() on "
                         f"{type(m).__name__} (it has dropout/zoneout, which differ in training)")


def step_gates(family: str, opts: dict, x_t: Tensor, state, p) -> dict[str, Tensor]:
    """The gate activations of one step from the equations: {name: (B, H)} (empty for a family
    without gates). A removed gate (Greff's ablations) reads 1, a coupled forget gate 1 - i.
    Not for ``full_gate_recurrence``, whose gates depend on the previous step's (the recorder
    runs that one through ``ablation_step_forward`` itself)."""
    if family == "lstm":
        ablation = F_lstm.ablation_of(opts)
        xg = F_lstm.input_projection(x_t, p)[0]
        h, c = state
        H = c.shape[-1]
        if ablation is not None:
            _, _, act, _ = F_lstm.ablation_step_forward(xg, h, c, None, p, None, ablation)
            return dict(zip("ifgo", act.split(H, dim=1)))
        _, _, cache = F_lstm.lstm_step_forward(xg, h, c, p)
        if opts["coupled"]:
            i, g, o = cache.act.split(H, dim=1)
            return {"i": i, "f": 1.0 - i, "g": g, "o": o}
        return dict(zip("ifgo", cache.act.split(H, dim=1)))
    if family == "gru":
        ra = opts["reset_after"]
        xg = F_gru.input_projection(x_t, p, ra)
        _, cache = F_gru.gru_step_forward(xg, state[0], p, None, ra)
        return dict(zip("rzn", cache.act.split(state[0].shape[-1], dim=1)))
    return {}


def _recording_forward(m: RecurrentBase, calls: list, grads: bool):
    fam = m.v.family

    def forward(input, hx=None, *, lengths=None):
        _check_mode(m)
        if isinstance(input, nn.utils.rnn.PackedSequence):
            raise ValueError("input: record() takes a padded batch with lengths=, not a "
                             "PackedSequence")
        batched = input.dim() == 3
        x = input if batched else input.unsqueeze(1)
        if batched and m.batch_first:
            x = x.transpose(0, 1)  # (T, B, I)
        T, B = x.shape[0], x.shape[1]
        D = 2 if m.bidirectional else 1
        H = m.hidden_size
        hx0 = m._initial_state(hx, B, batched, m.weight_ih_l0)  # validated like forward does
        if grads:  # every step then sits in the graph, whatever requires grad
            hx0 = tuple(s.detach().requires_grad_() if not s.requires_grad else s for s in hx0)
        lens = None
        out_mask = None
        if lengths is not None:
            from ..nn._checks import check_lengths
            lens = check_lengths(lengths, B, T)
            out_mask = lengths_to_mask(lens, T, x)  # (T, B, 1)
        pc, ph = m.zoneout
        keep_c = keep_h = None
        if pc or out_mask is not None:
            keep_c = x.new_full((T, B, 1), pc) if out_mask is None else 1 - out_mask * (1 - pc)
        if ph or out_mask is not None:
            keep_h = x.new_full((T, B, 1), ph) if out_mask is None else 1 - out_mask * (1 - ph)
        names = GATE_NAMES.get(fam.name, ())
        fgr = fam.name == "lstm" and F_lstm.ablation_of(m.v.opts) == "full_gate_recurrence"
        layer_in = x
        gates_all = {n: [] for n in names}
        h_rec, c_rec, live, finals = [], [], [], []
        for k in range(m.num_layers):
            outs = []
            for d in range(D):
                s = m._suffixes[k * D + d]
                p = _params.gather(m, m.v, s)
                xin = layer_in if d == 0 else reverse_padded(layer_in, lens)
                state = [h[k * D + d] for h in hx0]
                g_prev = x.new_zeros(B, 3 * H) if fgr else None
                steps, gts = [], {n: [] for n in names}
                for t in range(T):
                    mt = Masks(None, None if keep_c is None else keep_c[t : t + 1],
                               None if keep_h is None else keep_h[t : t + 1], None)
                    if fgr:  # gates in the graph: they carry to the next step
                        state, act = _fgr_step(xin[t], state, g_prev, p, mt)
                        g_prev = torch.cat([act[:, : 2 * H], act[:, 3 * H :]], 1)
                        gate = dict(zip("ifgo", act.detach().split(H, dim=1)))
                    else:
                        with torch.no_grad():
                            gate = step_gates(fam.name, m.v.opts, xin[t], state, p)
                        _, *state = fam.run("reference", xin[t : t + 1], state, p, mt, m.v.opts)
                    for n in names:
                        gts[n].append(gate[n] if out_mask is None else gate[n] * out_mask[t])
                    steps.append(tuple(state) if len(state) > 1 else (state[0], None))
                live.append(steps)
                hs = torch.stack([st[0] for st in steps])  # (T, B, P), in graph
                y = hs if out_mask is None else hs * out_mask
                outs.append(y if d == 0 else reverse_padded(y, lens))
                finals.append(state)
                h_rec.append(_in_time_order(hs.detach(), d, lens))
                if steps[0][1] is not None:
                    c_rec.append(_in_time_order(torch.stack([st[1] for st in steps]).detach(), d, lens))
                for n in names:
                    gates_all[n].append(_in_time_order(torch.stack(gts[n]), d, lens))
            out = outs[0] if D == 1 else torch.cat(outs, dim=-1)
            if m.residual and k > 0:
                out = out + layer_in
            layer_in = out
        h_n = tuple(torch.stack([f[j] for f in finals]) for j in range(len(hx0)))
        calls.append(LayerRecord(
            fam.name, m.num_layers, D, names, {n: torch.stack(v) for n, v in gates_all.items()},
            torch.stack(h_rec), torch.stack(c_rec) if c_rec else None, lens,
            _live=live if grads else []))
        if m.stateful:
            m._state = tuple(s.detach() for s in h_n)
        out = layer_in
        if not batched:
            out, h_n = out.squeeze(1), tuple(s.squeeze(1) for s in h_n)
        elif m.batch_first:
            out = out.transpose(0, 1)
        return out, (h_n if len(h_n) > 1 else h_n[0])

    return forward


def _fgr_step(x_t: Tensor, state, g_prev: Tensor, p, mt: Masks):
    """One step of the full-gate-recurrence ablation by autograd (its gates carry across steps,
    so one reference call per step cannot hold them)."""
    h, c = state
    xg = F_lstm.input_projection(x_t, p)[0]
    h_new, c_new, act, _ = F_lstm.ablation_step_forward(xg, h, c, g_prev, p, None,
                                                        "full_gate_recurrence")
    # the carried cell is its own node (h_new was computed from c_new), so d/dc means what it
    # means for the other families: the gradient along the cell path, h_t held fixed
    c_new = c_new.clone() if mt.keep_c is None else torch.lerp(c_new, c, mt.keep_c[0])
    if mt.keep_h is not None:
        h_new = torch.lerp(h_new, h, mt.keep_h[0])
    return [h_new, c_new], act
