"""`lstmkit serve`'s flags: the step precisions it offers are the kernels' own."""

import argparse

from lstmkit import kernels
from lstmkit.cli import build_parser


def test_step_weights_choices_are_the_kernels():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    serve = sub.choices["serve"]
    opt = next(a for a in serve._actions if "--step-weights" in a.option_strings)
    assert tuple(opt.choices) == kernels.STEP_WEIGHTS and opt.default == "full"
    args = serve.parse_args(["model.pt", "--step-weights", "int8"])
    assert args.step_weights == "int8"
