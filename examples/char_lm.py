"""A character-level LSTM language model on the Python standard library's own source.

Trains for a short while with truncated BPTT (state carried across batches), reports
held-out bits per character against a unigram model, then generates with greedy decoding,
nucleus sampling and beam search.

    python examples/char_lm.py [steps]
"""

import math
import sys
from collections import Counter

import torch

from lstmkit.data.text import CharTokenizer, stdlib_corpus
from lstmkit.decoding import beam_search, greedy, sample
from lstmkit.models.language_model import (
    LanguageModel,
    LanguageModelConfig,
    evaluate_language_model,
    fit_language_model,
    lm_metrics,
)

steps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
torch.manual_seed(0)
train_texts = stdlib_corpus(500_000)
val_text = "\n".join(stdlib_corpus(20_000, skip=len(train_texts) + 5))  # files not trained on
tok = CharTokenizer.fit(train_texts)
train_ids = torch.tensor(tok.encode("\n".join(train_texts)))
val_ids = torch.tensor(tok.encode(val_text))

model = LanguageModel(LanguageModelConfig(len(tok), embedding_dim=64, hidden_size=256, num_layers=1,
                                          dropout=0.0, embedding_dropout=0.0, output_dropout=0.0))
fit = fit_language_model(model, train_ids, batch_size=32, bptt=64, lr=5e-3, max_steps=steps, progress=True)
loss = evaluate_language_model(model, val_ids, batch_size=1, bptt=256)
bpc = lm_metrics(loss, len(val_ids) - 1, len(val_text) - 1)["val_bpc"]
n = len(val_text)
unigram = -sum(c / n * math.log2(c / n) for c in Counter(val_text).values())
print(f"{fit['steps']} steps in {fit['seconds']:.0f} s: held-out {bpc:.3f} bits/char (unigram {unigram:.3f})")

prompt = "def __init__(self"
last, state = model.prime(tok.encode(prompt))
with torch.no_grad():
    print("greedy: ", prompt + tok.decode(greedy(model.step, last, state, max_new_tokens=80)[0]))
    g = torch.Generator().manual_seed(0)
    out = sample(model.step, last, state, max_new_tokens=80, temperature=0.8, top_p=0.9, generator=g)
    print("top-p:  ", prompt + tok.decode(out[0]))
    best = beam_search(model.step, last, state, beam_width=4, max_new_tokens=80)[0]
    print("beam:   ", prompt + tok.decode(best.tokens))
