"""--nproc relaunches under torchrun with the same flags minus the launch ones."""

import argparse

from lstmkit.cli import _launch, build_parser


def test_launch_flags_are_stripped_from_the_relaunched_command():
    argv = ["forecast", "train", "--nproc", "2", "--epochs", "3", "--nnodes=1", "--rdzv", "h:1"]
    assert _launch._strip(argv) == ["forecast", "train", "--epochs", "3"]


def test_one_process_runs_in_place():
    args = build_parser().parse_args(["lm", "train", "--out", "x"])
    assert args.nproc == 1 and _launch.maybe_launch(args) is None
    args = argparse.Namespace(nproc=2, nnodes=1, node_rank=0, rdzv=None)
    import os

    os.environ["RANK"] = "0"  # inside torchrun already: never relaunch
    try:
        assert _launch.maybe_launch(args) is None
    finally:
        del os.environ["RANK"]


def test_tune_and_online_parse():
    a = build_parser().parse_args(["tune", "forecast", "--trials", "3", "--set", "horizon=4",
                                   "--set", "csv=x.csv", "--storage", "sqlite:///s.db"])
    assert a.trials == 3 and dict(a.base) == {"horizon": 4, "csv": "x.csv"}
    a = build_parser().parse_args(["forecast", "online", "--warmup", "0.4", "--replay", "0"])
    assert a.action == "online" and a.warmup == 0.4 and a.replay == 0
