"""A character-level LSTM language model on the Python standard library's own source.

The job behind ``lstmkit lm train``: the text is split into train / validation / test, the
model trains through the one ``train.Trainer`` (truncated BPTT with the state carried across
batches, validation every few steps, early stopping, the best weights restored), and is
printed beside a Kneser-Ney 5-gram and a unigram model. Then it generates with greedy
decoding, nucleus sampling and beam search.

    python examples/char_lm.py [seconds]
"""

import sys

from lstmkit.jobs import lm

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
result = lm.train(lm.LMConfig(out="runs/char_lm", max_chars=200_000, max_time=seconds))
print(f"best validation {result.metrics['lstm']['val_bpc']:.3f} bits/char after "
      f"{result.metrics['setup']['best_step']} steps; curve in runs/char_lm/loss.png")

prompt = "def __init__(self"
print("greedy:", lm.predict(result.out, prompt, strategy="greedy", max_new_tokens=80))
print("top-p: ", lm.predict(result.out, prompt, temperature=0.8, top_p=0.9, max_new_tokens=80))
print("beam:  ", lm.predict(result.out, prompt, strategy="beam", beam_width=4, max_new_tokens=80,
                            echo=lambda _: None))
