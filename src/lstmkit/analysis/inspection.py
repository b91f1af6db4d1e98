"""Look inside a trained model: gate heatmaps, gate saturation, hidden-state trajectories, and for
a character LM on Python code, the cells that track strings, brackets, indentation or the position
in a line (Karpathy, Johnson & Fei-Fei 2015).

Everything here reads ``analysis.record``'s recordings (gates, cells, states per step and unit).

Symbols: L*D layer-directions, T time, B batch, H hidden units, F features.

    >>> import numpy as np
    >>> f = code_features('x = (a, "b(")\\n    y')
    >>> f["inside_string"][8:13].tolist(), f["bracket_depth"][4:12].tolist()
    ([1.0, 1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    >>> float(f["indentation"][-1]), float(f["position_in_line"][-1])
    (4.0, 4.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .recording import LayerRecord

LEFT, RIGHT = 0.1, 0.9  # Karpathy et al.: a gate is saturated below 0.1 or above 0.9
FEATURES = ("inside_string", "bracket_depth", "position_in_line", "indentation", "inside_quotes",
            "bracket_depth_docs")


def code_features(text: str) -> dict[str, np.ndarray]:
    """Per character of Python source: inside a string literal (quotes included), bracket depth
    (outside strings and comments), position in the line, indentation of the line; and the same
    string and bracket features with docstrings read as code (``inside_quotes``,
    ``bracket_depth_docs``: the doctest examples of the stdlib put code inside triple quotes)."""
    out = _code_features(text)
    flat = _code_features(text.replace('"""', "   ").replace("'''", "   "))
    out["inside_quotes"], out["bracket_depth_docs"] = flat["inside_string"], flat["bracket_depth"]
    return out


def _code_features(text: str) -> dict[str, np.ndarray]:
    n = len(text)
    inside, depth, col, indent = (np.zeros(n) for _ in range(4))
    quote = None  # the open string's delimiter: ' " ''' or """
    comment = False
    d = c = ind = 0
    at_start = True
    i = 0
    while i < n:
        ch = text[i]
        if ch == "\n":
            c, ind, at_start, comment = 0, 0, True, False
            if quote in ("'", '"'):  # an unterminated one-line string ends at the line
                quote = None
            elif quote is not None:  # a triple-quoted string goes on
                inside[i] = 1
            depth[i], col[i], indent[i] = d, c, ind
            i += 1
            continue
        if at_start:
            if ch == " ":
                ind += 1
            else:
                at_start = False
        step = 1
        if quote is not None:
            inside[i] = 1
            if ch == "\\" and i + 1 < n and text[i + 1] != "\n":
                inside[i + 1] = 1
                depth[i + 1], col[i + 1], indent[i + 1] = d, c + 1, ind
                step = 2
            elif text.startswith(quote, i):
                inside[i : i + len(quote)] = 1
                for k in range(len(quote)):
                    depth[i + k], col[i + k], indent[i + k] = d, c + k, ind
                step = len(quote)
                quote = None
        elif comment:
            pass
        elif ch == "#":
            comment = True
        elif ch in "'\"":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            inside[i : i + len(quote)] = 1
            for k in range(len(quote)):
                depth[i + k], col[i + k], indent[i + k] = d, c + k, ind
            step = len(quote)
        elif ch in "([{":
            d += 1
        elif ch in ")]}":
            d = max(0, d - 1)
        if step == 1:
            depth[i], col[i], indent[i] = (d - 1 if ch in "([{" and quote is None and not comment
                                           else d), c, ind
        i += step
        c += step
    return {"inside_string": inside, "bracket_depth": depth, "position_in_line": col,
            "indentation": indent}


def saturation(rec: LayerRecord, lengths_mask: np.ndarray | None = None) -> dict:
    """Per gate, per layer-direction and unit: the fraction of steps left-saturated (< 0.1) and
    right-saturated (> 0.9): {gate: (left (L*D, H), right (L*D, H))}. Sigmoid gates only (the
    tanh candidate g / n has another range)."""
    out = {}
    for name, g in rec.gates.items():
        if name in ("g", "n"):
            continue
        a = g.double()  # (L*D, T, B, H)
        if lengths_mask is not None:
            m = torch.as_tensor(lengths_mask, dtype=torch.bool)  # (T, B)
            a = a[:, m]  # (L*D, N, H)
        else:
            a = a.reshape(a.shape[0], -1, a.shape[-1])
        out[name] = ((a < LEFT).double().mean(1).numpy(), (a > RIGHT).double().mean(1).numpy())
    return out


@dataclass
class CellMatch:
    layer: int
    unit: int
    feature: str
    r_select: float  # correlation on the text the cell was chosen on
    r_check: float  # on held-out text


def correlations(acts: np.ndarray, feats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Pearson r of every unit (acts (N, U)) with every feature (N,): {feature: (U,)}."""
    a = acts - acts.mean(0)
    an = np.sqrt((a * a).sum(0)) + 1e-12
    out = {}
    for name, f in feats.items():
        fc = f - f.mean()
        out[name] = (a * fc[:, None]).sum(0) / (an * (np.sqrt((fc * fc).sum()) + 1e-12))
    return out


def interpretable_cells(sel_acts: np.ndarray, sel_feats: dict, chk_acts: np.ndarray,
                        chk_feats: dict, units_per_layer: int, top: int = 5) -> list[CellMatch]:
    """For each feature, the ``top`` units by |r| on the selection text, each re-scored on the
    check text (so the reported r is not the maximum of many noisy ones); all sorted by |r|."""
    r_sel, r_chk = correlations(sel_acts, sel_feats), correlations(chk_acts, chk_feats)
    out = []
    for f in r_sel:  # the ``top`` best cells of each feature, then all by |r|
        order = np.argsort(-np.abs(np.nan_to_num(r_sel[f])))[:top]
        out += [CellMatch(int(u) // units_per_layer, int(u) % units_per_layer, f,
                          float(r_sel[f][u]), float(r_chk[f][u])) for u in order]
    return sorted(out, key=lambda m: -abs(m.r_select))


# -- pictures -------------------------------------------------------------------------------------

def plot_gates(rec: LayerRecord, path: str, *, layer: int = -1, batch: int = 0, steps: int = 120,
               units: int = 48, labels: list[str] | None = None, title: str = "") -> str:
    """Heatmaps (units x time) of each gate of one layer-direction for one sequence."""
    from ._plot import pyplot, save_png

    plt = pyplot()
    k = layer % (rec.num_layers * rec.directions)
    names = list(rec.gates) or ["h"]
    fig, axes = plt.subplots(len(names), 1, figsize=(12, 1.6 * len(names) + 0.6), squeeze=False)
    for ax, name in zip(axes[:, 0], names):
        z = (rec.gates[name] if name in rec.gates else rec.h)[k, :steps, batch, :units]
        lo, hi = (-1, 1) if name in ("g", "n", "h") else (0, 1)
        im = ax.imshow(z.T.numpy(), aspect="auto", cmap="RdBu_r" if lo < 0 else "viridis",
                       vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_ylabel(f"{name}\nunit")
        fig.colorbar(im, ax=ax, pad=0.01, fraction=0.02)
        ax.set_xticks([])
    ax = axes[-1, 0]
    if labels is not None:
        shown = labels[:steps]
        ax.set_xticks(range(len(shown)))
        ax.set_xticklabels([repr(ch)[1:-1] for ch in shown], fontsize=6, family="monospace")
    else:
        ax.set_xticks(range(0, min(steps, rec.h.shape[1]), max(1, steps // 10)))
        ax.set_xlabel("time step")
    axes[0, 0].set_title(title or f"gate activations, layer-direction {k}, sequence {batch}",
                         fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def plot_saturation(sat: dict, rec: LayerRecord, path: str, title: str = "") -> str:
    """Karpathy et al. Fig. 3: per unit, fraction of time right- (x) vs left-saturated (y)."""
    from ._plot import pyplot, save_png

    plt = pyplot()
    fig, axes = plt.subplots(1, len(sat), figsize=(3.6 * len(sat), 3.4), squeeze=False)
    for ax, (name, (left, right)) in zip(axes[0], sat.items()):
        for k in range(left.shape[0]):
            ax.scatter(right[k], left[k], s=8, alpha=0.7, label=f"layer-direction {k}")
        ax.plot([0, 1], [1, 0], color="0.7", lw=0.8)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(f"fraction right-saturated (> {RIGHT})")
        ax.set_ylabel(f"fraction left-saturated (< {LEFT})")
        ax.set_title(f"gate {name}", fontsize=10)
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def plot_pca(rec: LayerRecord, path: str, *, layer: int = -1, batch: int = 0, steps: int = 400,
             colour: np.ndarray | None = None, colour_name: str = "time step") -> str:
    """The hidden-state trajectory of one sequence projected on its first two principal
    components (scikit-learn's PCA), coloured by time or by ``colour``."""
    from sklearn.decomposition import PCA

    from ._plot import pyplot, save_png

    plt = pyplot()
    k = layer % (rec.num_layers * rec.directions)
    h = rec.h[k, :steps, batch].double().numpy()  # (T, P)
    pca = PCA(n_components=2).fit(h)
    z = pca.transform(h)
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    ax.plot(z[:, 0], z[:, 1], color="0.8", lw=0.6, zorder=1)
    c = np.arange(len(z)) if colour is None else colour[: len(z)]
    sc = ax.scatter(z[:, 0], z[:, 1], c=c, s=9, cmap="viridis", zorder=2)
    fig.colorbar(sc, ax=ax, label=colour_name)
    ev = pca.explained_variance_ratio_
    ax.set_xlabel(f"PC1 ({ev[0]:.0%} of variance)")
    ax.set_ylabel(f"PC2 ({ev[1]:.0%})")
    ax.set_title(f"hidden-state trajectory, layer-direction {k}", fontsize=10)
    fig.tight_layout()
    return save_png(fig, path)


def plot_text_cells(text: str, acts: list[np.ndarray], names: list[str], path: str,
                    width: int = 80) -> str:
    """``text`` once per cell, each character on a background coloured by that cell's
    activation (blue negative, red positive), the famous quote/indentation pictures."""
    from matplotlib import colormaps

    from ._plot import pyplot, save_png

    plt = pyplot()
    lines = []
    for line in text.split("\n"):
        while len(line) > width:
            lines.append(line[:width])
            line = line[width:]
        lines.append(line)
    rows = len(lines)
    fig, axes = plt.subplots(len(acts), 1, figsize=(width * 0.11, (rows * 0.16 + 0.4) * len(acts)),
                             squeeze=False)
    cmap = colormaps["RdBu_r"]
    for ax, a, name in zip(axes[:, 0], acts, names):
        scale = max(float(np.abs(a).max()), 1e-6)
        pos = 0
        for r, line in enumerate(lines):
            for j, ch in enumerate(line):
                v = a[pos + j] / scale if pos + j < len(a) else 0.0
                ax.add_patch(plt.Rectangle((j, rows - r - 1), 1, 1, color=cmap(0.5 + 0.5 * v), lw=0))
                if ch != " ":
                    ax.text(j + 0.5, rows - r - 0.5, ch, ha="center", va="center", fontsize=6.5,
                            family="monospace")
            pos += len(line) + (1 if pos + len(line) < len(text) and text[pos + len(line)] == "\n"
                                else 0)
        ax.set_xlim(0, width)
        ax.set_ylim(0, rows)
        ax.axis("off")
        ax.set_title(name, fontsize=9, loc="left")
    fig.tight_layout()
    return save_png(fig, path, dpi=75)


# -- the jobs' checkpoints ----------------------------------------------------------------------

def _streams(text: str, n_streams: int) -> list[str]:
    step = len(text) // n_streams
    return [text[i * step : (i + 1) * step] for i in range(n_streams)]


def record_lm(model, tokenizer, text: str, n_streams: int = 8) -> tuple[LayerRecord, list[str]]:
    """Run a char LM over ``text`` cut into ``n_streams`` parallel streams; the recording of its
    LSTM (gates, cells, states: (L, T, B, H)) and the streams (each T characters)."""
    from .recording import record

    streams = _streams(text, n_streams)
    T = min(len(s) for s in streams)
    streams = [s[:T] for s in streams]
    ids = torch.tensor([tokenizer.encode(s)[:T] for s in streams], dtype=torch.long)
    if ids.shape[1] != T:
        raise ValueError("text: the tokenizer is not one id per character (a char LM is needed)")
    with torch.no_grad(), record(model) as rec:
        model(ids)
    return rec["lstm"], streams


def _flat(rec_c: torch.Tensor) -> np.ndarray:
    """(L, T, B, H) cell states -> (B*T characters in stream order, L*H units)."""
    L, T, B, H = rec_c.shape
    return rec_c.permute(2, 1, 0, 3).reshape(B * T, L * H).double().numpy()


@dataclass
class LMInspection:
    cells: list[CellMatch]
    saturation: dict
    pictures: list[str]
    chars: int


def inspect_lm(checkpoint: str, out: str, *, chars: int = 16_000, top: int = 1,
               echo=print) -> LMInspection:
    """Pictures and the interpretable-cell search for an ``lstmkit lm train`` folder. Cells are
    chosen on the run's validation text and their correlation re-measured on its test text."""
    import os

    from ..jobs.lm import LMConfig, _read_text, load, split_text

    model, tok, extra = load(checkpoint)
    job = extra.get("job_config") or {}
    cfg = LMConfig(**{**job, "out": out})
    text, about = _read_text(cfg)
    _, val, test = split_text(text, cfg.val_fraction, cfg.test_fraction)
    if not test:
        test = val
    val, test = val[:chars], test[:chars]
    echo(f"inspect: {about}: cells chosen on {len(val):,} validation characters, checked on "
         f"{len(test):,} test characters")
    sel_rec, sel_streams = record_lm(model, tok, val)
    chk_rec, chk_streams = record_lm(model, tok, test)
    H = chk_rec.c.shape[-1]

    def feats(streams):
        per = [code_features(s) for s in streams]
        return {f: np.concatenate([p[f] for p in per]) for f in FEATURES}

    cells = interpretable_cells(_flat(sel_rec.c), feats(sel_streams), _flat(chk_rec.c),
                                feats(chk_streams), H, top)
    sat = saturation(chk_rec)
    os.makedirs(out, exist_ok=True)
    pics = [plot_gates(chk_rec, os.path.join(out, "gates.png"), labels=list(chk_streams[0]),
                       title=f"gate activations of the top LSTM layer over test text "
                             f"({model.config.num_layers} layer(s), {H} units; first 48 shown)"),
            plot_saturation(sat, chk_rec, os.path.join(out, "saturation.png"),
                            "gate saturation over test text (Karpathy et al. 2015, Fig. 3)"),
            plot_pca(chk_rec, os.path.join(out, "pca.png"),
                     colour=code_features(chk_streams[0])["bracket_depth"],
                     colour_name="bracket depth")]
    snippet = chk_streams[0][:480]
    shown = [next(m for m in cells if m.feature == f) for f in
             ("inside_quotes", "bracket_depth_docs", "indentation")]
    acts = [chk_rec.c[m.layer, : len(snippet), 0, m.unit].double().numpy() for m in shown]
    names = [f"layer {m.layer} cell {m.unit}: r = {m.r_check:+.2f} with {m.feature} on test text "
             f"({m.r_select:+.2f} where chosen)" for m in shown]
    pics.append(plot_text_cells(snippet, [np.tanh(a) for a in acts], names,
                                os.path.join(out, "cells.png")))
    return LMInspection(cells, sat, pics, len(test))


def format_cells(cells: list[CellMatch]) -> str:
    lines = [f"{'layer':>5} {'cell':>5}  {'feature':18} {'r (chosen on val)':>17} {'r (test)':>9}"]
    for m in cells:
        lines.append(f"{m.layer:>5} {m.unit:>5}  {m.feature:18} {m.r_select:>+17.3f} "
                     f"{m.r_check:>+9.3f}")
    return "\n".join(lines)


@dataclass
class ForecasterInspection:
    saturation: dict
    pictures: list[str]
    windows: int
    ig_delta: tuple[float, float]  # median and max over windows of |sum of IG attributions -
    #                                (f(x) - f(baseline))| / |f(x) - f(baseline)|
    ig_backend: str


def forecaster_windows(checkpoint: str, max_windows: int = 64):
    """(model, x (W, T, F), future (W, h, K), series name, feature names) from a ``lstmkit
    forecast`` folder: windows of the run's own first series, origins in the first 80% of it
    (before its test part), scaled as the run scales them."""
    from ..data.scaling import StandardScaler
    from ..data.timeseries import Prepared, SeriesSpec
    from ..jobs.forecast import load, load_series

    cfg, models, scalers = load(checkpoint)
    series, _ = load_series(cfg)
    s = series[0]
    spec = SeriesSpec(target=s.name, time=cfg.time, covariates=list(cfg.covariates),
                      input_len=cfg.input_len, horizon=cfg.horizon, season=cfg.season,
                      impute=cfg.impute, freq=s.freq, transform=cfg.transform)
    sc = scalers.get(s.name) or next(iter(scalers.values()))
    prep = Prepared(spec, s.values, s.times, scaler=StandardScaler().load_state_dict(sc),
                    sdiff_stats=sc.get("sdiff"))
    n = len(s.values)
    last = max(2, int(0.8 * n) - cfg.horizon)
    origins = np.unique(np.linspace(min(cfg.input_len, last - 1), last, max_windows).astype(int))
    w = prep.windows(origins, spec.input_len, spec.horizon)
    model = models[0].eval()
    names = [s.name] + [f"feature {j}" for j in range(1, w.x.shape[-1])]
    return model, torch.from_numpy(w.x).float(), torch.from_numpy(w.future).float(), s.name, names


def _attribute(f, x: torch.Tensor):
    """Integrated gradients of ``f`` at ``x`` from a zero baseline, saliency, and the
    completeness error |sum of IG - (f(x) - f(0))| / |f(x) - f(0)| over the batch as (median,
    max): a window whose path crosses a near-step of the model keeps a quadrature error, reported."""
    from .attribution import integrated_gradients, saliency

    base = torch.zeros_like(x)
    ig = integrated_gradients(f, x, base)
    sal = saliency(f, x)
    with torch.no_grad():
        gap = (f(x) - f(base)).abs().clamp_min(1e-6)
    rel_all = ig.delta.abs() / gap
    return ig, sal, (float(rel_all.median()), float(rel_all.max()))


def inspect_forecaster(checkpoint: str, out: str, echo=print) -> ForecasterInspection:
    """Gates, saturation, the hidden-state trajectory and the attributions (integrated gradients
    and saliency) of the first forecast step, for a ``lstmkit forecast`` folder."""
    import os

    from .attribution import plot_attributions
    from .recording import record

    model, x, fut, name, names = forecaster_windows(checkpoint)
    echo(f"inspect: forecaster of {name!r}: {x.shape[0]} windows of {x.shape[1]} steps x "
         f"{x.shape[2]} features from the first 80% of the series")
    with torch.no_grad(), record(model) as rec:
        model(x, fut)
    r = rec.calls["lstm"][0]  # the encoder's pass over the window
    sat = saturation(r)
    os.makedirs(out, exist_ok=True)
    pics = [plot_gates(r, os.path.join(out, "gates.png"), steps=x.shape[1],
                       title=f"gate activations over one input window of {name!r}"),
            plot_saturation(sat, r, os.path.join(out, "saturation.png"),
                            "gate saturation over the windows (Karpathy et al. 2015, Fig. 3)"),
            plot_pca(r, os.path.join(out, "pca.png"), steps=x.shape[1])]
    c = model.config

    def first_step(z):
        o = model(z, fut)
        return o[:, 0, c.median_index] if c.quantiles else o[:, 0]

    ig, sal, rel = _attribute(first_step, x)  # baseline 0: the scaled mean of every feature
    pics.append(plot_attributions(x, ig.attributions, sal, os.path.join(out, "attribution.png"),
                                  feature_names=names, last="the forecast origin",
                                  title=f"{name!r}: what the first forecast step rests on "
                                        f"(integrated gradients via {ig.backend}, baseline = "
                                        f"the scaled mean)\ncompleteness error: median "
                                        f"{rel[0]:.1e}, max {rel[1]:.1e} of |f(x) - f(baseline)|"))
    return ForecasterInspection(sat, pics, x.shape[0], rel, ig.backend)


def is_lm_folder(path: str) -> bool:
    import os

    folder = path if os.path.isdir(path) else os.path.dirname(path)
    return os.path.exists(os.path.join(folder, "tokenizer.json"))


def is_classifier_folder(path: str) -> bool:
    from ..models.checkpoints import resolve
    from ..train.checkpoint import load_checkpoint

    try:
        return load_checkpoint(resolve(path)).get("kind") == "sequence_classifier"
    except (FileNotFoundError, ValueError):
        return False


@dataclass
class ClassifierInspection:
    saturation: dict
    pictures: list[str]
    examples: int
    ig_delta: tuple[float, float] | None  # as ForecasterInspection; None for text (token ids)
    ig_backend: str | None


def inspect_classifier(checkpoint: str, out: str, *, max_examples: int = 64,
                       echo=print) -> ClassifierInspection:
    """Gates, saturation and PCA of an ``lstmkit classify`` run over its training examples (its
    own config's data; the test split is not read), and for series the attribution of each
    example's predicted-class log-probability to its input steps."""
    import json
    import os
    from dataclasses import fields

    from ..jobs.classify import ClassifyConfig, load_data, load_model
    from .attribution import plot_attributions
    from .recording import record

    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    model, enc, kind, classes = load_model(checkpoint)
    with open(os.path.join(folder, "config.json"), encoding="utf-8") as f:
        raw = json.load(f)
    names = {f.name for f in fields(ClassifyConfig)}
    cfg = ClassifyConfig(**{k: v for k, v in raw.items() if k in names})
    train, _, about = load_data(cfg)
    items = train.series if kind == "series" else train.texts
    x, lengths = enc.encode(items[:max_examples])
    echo(f"inspect: {kind} classifier on {about}: {x.shape[0]} training examples")
    with torch.no_grad(), record(model) as rec:
        model(x, lengths)
    r = rec["rnn"]
    mask = (torch.arange(x.shape[1])[:, None] < torch.as_tensor(lengths)[None]).numpy()
    sat = saturation(r, mask)
    os.makedirs(out, exist_ok=True)
    pics = [plot_gates(r, os.path.join(out, "gates.png"), steps=x.shape[1],
                       title=f"gate activations over one training example ({about})"),
            plot_saturation(sat, r, os.path.join(out, "saturation.png"),
                            "gate saturation over training examples (Karpathy et al. 2015, Fig. 3)"),
            plot_pca(r, os.path.join(out, "pca.png"), steps=int(lengths[0]))]
    if kind != "series":
        echo("inspect: attributions need real-valued inputs; a text classifier reads token ids "
             "(not attributed)")
        return ClassifierInspection(sat, pics, x.shape[0], None, None)
    with torch.no_grad():
        target = model(x, lengths).argmax(1)

    def score(z):
        return torch.log_softmax(model(z, lengths), -1).gather(1, target[:, None])[:, 0]

    ig, sal, rel = _attribute(score, x)
    pics.append(plot_attributions(
        x, ig.attributions, sal, os.path.join(out, "attribution.png"), last="the last",
        title=f"what the predicted class ({classes[int(target[0])]}) rests on (integrated "
              f"gradients via {ig.backend}, baseline 0)\ncompleteness error: median "
              f"{rel[0]:.1e}, max {rel[1]:.1e} of |f(x) - f(baseline)|"))
    return ClassifierInspection(sat, pics, x.shape[0], rel, ig.backend)


def inspect_checkpoint(path: str, out: str | None = None, *, chars: int = 16_000, top: int = 1,
                       echo=print):
    """What ``lstmkit inspect`` does: :func:`inspect_lm`, :func:`inspect_classifier` or
    :func:`inspect_forecaster` (by what ``path`` holds) into ``out`` (default:
    ``<folder>/inspect``), then echo the cells or the attribution's completeness error and the
    pictures written. Returns the inspection."""
    import os

    if not os.path.exists(path):
        raise FileNotFoundError(f"checkpoint: {path} not found")
    folder = path if os.path.isdir(path) else os.path.dirname(path)
    out = out or os.path.join(folder, "inspect")
    if is_lm_folder(path):
        res = inspect_lm(path, out, chars=chars, top=top, echo=echo)
        echo(format_cells(res.cells))
    else:
        if is_classifier_folder(path):
            res = inspect_classifier(path, out, echo=echo)
        else:
            try:
                res = inspect_forecaster(path, out, echo=echo)
            except ValueError as e:
                raise ValueError(f"checkpoint: expected an `lstmkit lm train`, `lstmkit forecast` "
                                 f"or `lstmkit classify` folder ({e})") from None
        if res.ig_delta is not None:
            echo(f"integrated gradients ({res.ig_backend}): completeness error median "
                 f"{res.ig_delta[0]:.1e}, max {res.ig_delta[1]:.1e} of |f(x) - f(baseline)|")
    for p in res.pictures:
        echo(f"wrote {p}")
    return res
