"""Labelled-sequence sources and readers: aeon, fortunes, stdlib tokens, CSV, CoNLL."""

import numpy as np
import pytest

from lstmkit.data import datasets
from lstmkit.data.labelled import (
    Vocab,
    check_series,
    read_conll,
    read_series_rows,
    stratified_split,
    tokenize_source,
    unique_char_ids,
)


def test_catalogue_lists_the_classification_and_tagging_sets():
    assert {"gunpoint", "japanesevowels", "fortunes"} <= set(datasets.names("classify"))
    assert "stdlib_tokens" in datasets.names("tag")


def test_aeon_unequal_length_multivariate_keeps_each_length():
    d = datasets.load("japanesevowels")
    lengths = {len(s) for s in d["train"].series}
    assert len(lengths) > 5 and all(s.shape[1] == 12 for s in d["train"].series)
    assert len(d["train"]) == 270 and len(d["test"]) == 370


def test_fortunes_is_a_forty_odd_class_task():
    f = datasets.load("fortunes")
    assert 40 <= len(set(f.labels.tolist())) <= 45 and len(f) > 10000


def test_tokenize_labels_and_newline_kinds():
    ts = tokenize_source("def f(x):  # hi\n    return (x +\n  1)\n", "demo")
    toks, tags = ts.sentences[0], ts.tags[0]
    pairs = list(zip(toks, tags))
    assert ("def", "KEYWORD") in pairs and ("f", "NAME") in pairs and ("# hi", "COMMENT") in pairs
    assert ("1", "NUMBER") in pairs and ("(", "OP") in pairs
    assert [t for w, t in pairs if w == "\\n"] == ["NEWLINE", "NL", "NEWLINE"]  # NL inside brackets


def test_stdlib_tokens_test_files_are_never_in_training():
    d = datasets.load("stdlib_tokens", train_tokens=20_000, test_tokens=8_000)
    assert not set(d["train"].groups) & set(d["test"].groups)
    assert sum(map(len, d["test"].sentences)) >= 8_000


def test_bad_series_and_conll_inputs(tmp_path):
    with pytest.raises(ValueError, match="series 1 is empty"):
        check_series([np.zeros((3, 1), np.float32), np.zeros((0, 1), np.float32)])
    with pytest.raises(ValueError, match="NaN/Inf at step 2"):
        check_series([np.array([[1.0], [2.0], [np.nan]], np.float32)])
    s = read_series_rows(["label,a,b", "x,1,2,3,,", "y,4"], "f.csv")  # header, ragged = unequal
    assert [len(v) for v in s.series] == [3, 1]
    p = tmp_path / "d.conll"
    p.write_text("a DET\nb\n")
    with pytest.raises(ValueError, match="line 2: expected 'token tag'"):
        read_conll(str(p))
    p.write_text("-DOCSTART-\n\na DET\nb\n\nc\n")  # data to predict on: tags may be missing
    got = read_conll(str(p), require_tags=False)
    assert got.sentences == [["a", "b"], ["c"]] and got.tags == [["DET", ""], [""]]


def test_stratified_split_keeps_singleton_classes_in_training():
    labels = np.array(["a"] * 10 + ["b"] * 10 + ["c"])
    keep, held = stratified_split(labels, 0.2, 0)
    assert 20 in keep and len(held) == 4 and not set(keep) & set(held)
    assert sorted(labels[held].tolist()) == ["a", "a", "b", "b"]


def test_unique_char_ids_read_each_distinct_word_once():
    chars = Vocab.build(["abc"])
    ids, lens, index = unique_char_ids([["ab", "c", "ab"], ["c"]], chars)
    assert lens.tolist() == [0, 2, 1] and index.tolist() == [[1, 2, 1], [2, 0, 0]]
    assert ids.shape == (3, 2)
