"""Tokenizers, vocabulary, corpora and stream batching for language modelling."""

import json

import pytest
import torch

from lstmkit.data.text import (
    BOS_ID,
    EOS_ID,
    UNK_ID,
    CharTokenizer,
    WordTokenizer,
    batchify,
    load_tokenizer,
    make_tokenizer,
    read_corpus,
    stream_batches,
)

TEXT = "def f(x):\n    return x + 1  # ünïcode\n"


def test_char_round_trip_with_unseen_characters_uses_bytes():
    tok = CharTokenizer.fit([TEXT])
    s = "def g(y): return 'λ→∑' + 😀"
    assert tok.decode(tok.encode(s)) == s
    assert set(tok.unknown(s)) == {"g", "y", "'", "λ", "→", "∑", "😀"}
    ids = tok.encode("😀")
    assert len(ids) == 4  # its 4 UTF-8 bytes
    assert tok.decode(tok.encode("ab", add_bos=True, add_eos=True)) == "ab"
    assert tok.encode("a", add_bos=True, add_eos=True)[0] == BOS_ID
    assert tok.encode("a", add_bos=True, add_eos=True)[-1] == EOS_ID


def test_without_byte_fallback_unknown_maps_to_unk():
    tok = CharTokenizer.fit([TEXT], byte_fallback=False)
    assert tok.encode("fλ") == [tok.vocab.stoi["f"], UNK_ID]


def test_word_tokenizer_round_trip_and_vocabulary():
    tok = WordTokenizer.fit([TEXT * 2], min_freq=2)
    s = "return y + 1  # brand new words ✓\n"
    assert tok.decode(tok.encode(s)) == s
    assert "return" in tok.vocab and "brand" not in tok.vocab
    assert tok.encode("return")[0] == tok.vocab.stoi["return"]


@pytest.mark.parametrize("level", ["char", "word"])
def test_save_load_round_trip(tmp_path, level):
    tok = make_tokenizer(level, [TEXT, "more text ∂"])
    tok.save(tmp_path / "tok.json")
    back = load_tokenizer(tmp_path / "tok.json")
    assert type(back) is type(tok)
    assert back.vocab.itos == tok.vocab.itos
    s = TEXT + "unseen Ω"
    assert back.encode(s) == tok.encode(s)
    assert back.decode(back.encode(s)) == s
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_load_rejects_other_json(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(ValueError, match="tokenizer"):
        load_tokenizer(tmp_path / "x.json")


def test_stream_batches_are_contiguous_per_row():
    tokens = torch.arange(103)
    B, T = 4, 7
    rows = batchify(tokens, B)  # (4, 25)
    xs, ys = zip(*stream_batches(tokens, B, T))
    x, y = torch.cat(xs, 1), torch.cat(ys, 1)
    torch.testing.assert_close(x, rows[:, :-1])
    torch.testing.assert_close(y, rows[:, 1:])
    assert all(c.shape == (B, T) for c in xs[:-1]) and xs[-1].shape[1] <= T
    torch.testing.assert_close(xs[1][:, 0], xs[0][:, -1] + 1)  # row b continues itself


def test_batching_bad_input():
    with pytest.raises(ValueError, match="batch_size"):
        batchify(torch.arange(10), 0)
    with pytest.raises(ValueError, match="tokens"):
        batchify(torch.arange(5), 4)
    with pytest.raises(ValueError, match="bptt"):
        list(stream_batches(torch.arange(10), 2, 0))


def test_read_corpus_skips_binary_and_rejects_empty(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    (tmp_path / "b.bin").write_bytes(bytes(range(256)))
    (tmp_path / "c.txt").write_bytes(b"\xff\xfe bad utf8")
    msgs = []
    texts = read_corpus([tmp_path / "a.txt", tmp_path / "b.bin", tmp_path / "c.txt"], echo=msgs.append)
    assert texts == ["hello"]
    assert len(msgs) == 2 and "binary" in msgs[0] and "UTF-8" in msgs[1]
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        read_corpus([tmp_path / "e.txt", tmp_path / "b.bin"], echo=msgs.append)
