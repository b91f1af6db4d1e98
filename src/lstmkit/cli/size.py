"""``lstmkit size``: parameters, FLOPs, activation memory and latency of a layer configuration
(or of the layers in a checkpoint), predicted and then measured."""

from __future__ import annotations

from ..functional.registry import ENGINES


def _option(text: str):
    name, _, value = text.partition("=")
    if not value or value.lower() == "true":
        return name, True
    if value.lower() == "false":
        return name, False
    return name, value


def add_parser(sub) -> None:
    p = sub.add_parser("size", help="parameters, FLOPs, memory and latency: predicted vs measured",
                       description="Cost of a recurrent layer: parameters, FLOPs per step and per "
                       "sequence (forward and training), activation memory (training: saved for "
                       "backward; inference: peak working set), latency from GEMMs timed at their "
                       "shapes on this machine; then the real layer measured and the ratio "
                       "measured/predicted printed. Without --family: a catalogue of LSTM "
                       "variants, GRU, RNN, IndRNN, stacked, bidirectional, projection, ConvLSTM.")
    p.add_argument("checkpoint", nargs="?", help="a model.pt (or job folder): size its layers")
    p.add_argument("--family", choices=("lstm", "gru", "rnn", "indrnn", "conv_lstm"))
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--hidden-size", type=int, default=128)
    p.add_argument("--num-layers", type=int, default=1)
    p.add_argument("--bidirectional", action="store_true")
    p.add_argument("--proj-size", type=int, default=0)
    p.add_argument("--option", action="append", default=[], metavar="NAME[=VALUE]",
                   help="a family option, e.g. --option peephole --option no_forget_gate")
    p.add_argument("--seq-len", type=int, default=50, help="T")
    p.add_argument("--batch", default="16", help="B, or a comma list (16,64)")
    p.add_argument("--engines", default=",".join(ENGINES), help="comma list of engines to measure")
    p.add_argument("--no-measure", action="store_true", help="predictions only")
    p.add_argument("--min-time", type=float, default=0.2,
                   help="seconds each timed repeat runs at least (median of 3)")
    p.add_argument("--out", metavar="DIR", help="write size.json and size.png here")
    p.set_defaults(func=run)


def run(args) -> int:
    from tqdm import tqdm

    from ..analysis import size as S

    batches = [int(b) for b in str(args.batch).split(",") if b]
    if not batches or min(batches) < 1:
        raise ValueError(f"--batch: expected positive ints, got {args.batch!r}")
    if not args.min_time > 0:
        raise ValueError(f"--min-time: expected seconds > 0, got {args.min_time}")
    if args.seq_len < 1:
        raise ValueError(f"--seq-len: expected a positive int, got {args.seq_len}")
    engines = tuple(e for e in args.engines.split(",") if e)
    bad = [e for e in engines if e not in ENGINES + ("auto",)]
    if bad:
        raise ValueError(f"--engines: expected some of {ENGINES + ('auto',)}, got {bad}")
    if args.checkpoint:
        configs = S.configs_from_checkpoint(args.checkpoint)
    elif args.family or args.num_layers != 1 or args.bidirectional or args.proj_size or args.option:
        args.family = args.family or "lstm"  # a layer flag without --family sizes an LSTM, not the suite
        configs = [S.SizeConfig(args.family, args.input_size, args.hidden_size, args.num_layers,
                                args.bidirectional, args.proj_size,
                                options=dict(_option(o) for o in args.option))]
    else:
        configs = S.default_suite(args.input_size, args.hidden_size)
    results, timer = S.size_configs(
        configs, args.seq_len, batches, engines=engines, measure=not args.no_measure,
        min_time=args.min_time, progress=lambda jobs: tqdm(jobs, desc="size", unit="config", leave=False))
    print(S.rows_table(results))
    if not args.no_measure:
        print(S.measured_note(timer))
    if args.out:
        png = S.save_results(results, args.out, plot=not args.no_measure)
        if png:
            print(f"wrote {png}")
    return 0
