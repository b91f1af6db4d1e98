import pytest

from lstmkit.cli.demo import train_adding


@pytest.mark.slow
def test_two_layer_lstm_learns_the_adding_problem_with_the_hand_bptt():
    """T=50 adding problem: predicting the mean scores ~0.167; a trained LSTM goes far below."""
    before, after = train_adding(steps=50, iters=900, seed=0, engine="reference",
                                 echo=lambda *_: None)
    assert before > 0.1
    assert after < 0.01
