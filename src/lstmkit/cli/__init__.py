"""The ``lstmkit`` command: one subcommand per job, each in its own module.

A subcommand module provides ``add_parser(subparsers)``, which registers the parser and
sets ``func`` (called with the parsed args, returns an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

# subcommand modules, imported when the parser is built
SUBCOMMANDS = [
    "lstmkit.cli.compress",
    "lstmkit.cli.datasets",
    "lstmkit.cli.demo",
    "lstmkit.cli.doctor",
    "lstmkit.cli.export",
    "lstmkit.cli.forecast",
    "lstmkit.cli.lm",
    "lstmkit.cli.seq2seq",
    "lstmkit.cli.serve",
    "lstmkit.cli.classify",
    "lstmkit.cli.tag",
    "lstmkit.cli.anomaly",
    "lstmkit.cli.tune",
    "lstmkit.cli.size",
    "lstmkit.cli.gradflow",
    "lstmkit.cli.inspect",
    "lstmkit.cli.ablate",
    "lstmkit.cli.speech",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstmkit", description="The LSTM family from its equations, and the jobs people do with it.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args._argv = list(sys.argv[1:] if argv is None else argv)  # for relaunching (--nproc)
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, FileNotFoundError, PermissionError) as e:
        print(f"lstmkit {args.command}: error: {e}", file=sys.stderr)
        return 2
    except FloatingPointError as e:  # a training diverged (train.trainer's NonFiniteError), any job
        print(f"lstmkit {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
