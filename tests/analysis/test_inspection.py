"""inspection: the code features by hand, the cell search finds a planted cell and re-scores it
on other text, saturation counts, and ``lstmkit inspect`` on a small LM folder."""

import numpy as np
import torch

from lstmkit.analysis.inspection import (
    code_features,
    correlations,
    interpretable_cells,
    saturation,
)
from lstmkit.analysis.recording import LayerRecord


def test_code_features_by_hand():
    text = "a = f('x)', \"\"\"y\n[\"\"\")  # (\n    b[1]\n"
    f = code_features(text)
    # string spans: 'x)' (6..9) and the triple-quoted one (12..20), comment brackets ignored
    assert f["inside_string"][6:10].tolist() == [1, 1, 1, 1] and f["inside_string"][5] == 0
    assert f["inside_string"][12:21].all() and f["inside_string"][21] == 0
    assert f["bracket_depth"][5] == 0 and f["bracket_depth"][6] == 1  # '(' itself is outside
    assert f["bracket_depth"][8] == 1  # the ')' inside the string does not close
    assert f["bracket_depth"][21] == 0  # the real ')' closes; '(' in the comment opens nothing
    line3 = text.index("    b")
    assert f["indentation"][line3 + 5] == 4 and f["position_in_line"][line3 + 5] == 5
    assert f["bracket_depth"][line3 + 6] == 1  # inside b[...]
    esc = code_features("'a\\'b' + c")
    assert esc["inside_string"].tolist()[:6] == [1] * 6 and esc["inside_string"][7] == 0


def test_cell_search_finds_a_planted_cell_and_rescores_it_on_other_text():
    g = np.random.default_rng(0)
    feats = {"a": g.normal(size=2000), "b": g.normal(size=2000)}
    acts = g.normal(size=(2000, 6))
    acts[:, 4] = 3 * feats["b"] + 0.1 * g.normal(size=2000)  # layer 1, unit 1 (3 units a layer)
    chk = {"a": g.normal(size=500), "b": g.normal(size=500)}
    chk_acts = g.normal(size=(500, 6))
    chk_acts[:, 4] = -chk["b"]  # flips sign on the check text: reported, not hidden
    cells = interpretable_cells(acts, feats, chk_acts, chk, units_per_layer=3, top=1)
    best = cells[0]
    assert (best.layer, best.unit, best.feature) == (1, 1, "b")
    assert best.r_select > 0.99 and best.r_check < -0.99
    r = correlations(acts, feats)
    assert abs(r["a"][4]) < 0.1


def test_saturation_counts_steps_below_and_above_the_thresholds():
    gate = torch.tensor([0.05, 0.5, 0.95, 0.99]).reshape(1, 4, 1, 1)  # (L*D, T, B, H)
    rec = LayerRecord("lstm", 1, 1, ("i", "f", "g", "o"),
                      {k: gate for k in "ifgo"}, torch.zeros(1, 4, 1, 1), None, None)
    sat = saturation(rec)
    assert set(sat) == {"i", "f", "o"}
    left, right = sat["f"]
    assert left.tolist() == [[0.25]] and right.tolist() == [[0.5]]


def test_inspect_command_on_a_small_language_model(tmp_path, capsys):
    from lstmkit.cli import main
    from lstmkit.data.text import make_tokenizer, stdlib_corpus
    from lstmkit.models.language_model import (
        LanguageModel,
        LanguageModelConfig,
        save_language_model,
    )

    text = "\n".join(stdlib_corpus(20_000))
    tok = make_tokenizer("char", [text])
    torch.manual_seed(0)
    model = LanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=8, hidden_size=8,
                                              num_layers=2))
    job = {"max_chars": 20_000, "val_fraction": 0.1, "test_fraction": 0.1}
    save_language_model(model, tmp_path / "model.pt", job_config=job)
    tok.save(tmp_path / "tokenizer.json")
    assert main(["inspect", str(tmp_path), "--chars", "1200"]) == 0
    out = capsys.readouterr().out
    for f in ("inside_string", "bracket_depth", "indentation", "position_in_line"):
        assert f in out
    for png in ("gates", "saturation", "pca", "cells"):
        assert (tmp_path / "inspect" / f"{png}.png").stat().st_size > 2000
    assert f"wrote {tmp_path / 'inspect' / 'cells.png'}" in out
    assert main(["inspect", str(tmp_path), "--chars", "999"]) == 2  # an LM needs 1000 characters
    assert "--chars: expected at least 1000, got 999" in capsys.readouterr().err
