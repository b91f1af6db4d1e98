"""``lstmkit export CHECKPOINT --format onnx``: a checkpoint to ONNX, checked in onnxruntime."""

from __future__ import annotations

import os


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint to ONNX (checked against PyTorch)",
                       description="Export an lstmkit checkpoint (language model, forecaster or "
                       "layer) to ONNX. The file is written only if onnxruntime matches PyTorch "
                       "within --atol on random inputs and lengths.")
    p.add_argument("checkpoint", help="checkpoint file or folder holding model.pt")
    p.add_argument("--format", choices=["onnx"], default="onnx")
    p.add_argument("--out", default=None, help="output file (default: next to the checkpoint)")
    p.add_argument("--step", action="store_true",
                   help="export one step with explicit state (layers, the LM) for streaming")
    p.add_argument("--lowering", choices=["auto", "native", "scan"], default="auto",
                   help="native: ONNX's LSTM/GRU/RNN operators; scan: a Scan of primitive ops")
    p.add_argument("--no-lengths", action="store_true", help="layers: no lengths input")
    p.add_argument("--atol", type=float, default=1e-5)
    p.set_defaults(func=run)


def run(args) -> int:
    from ..export.checkpoints import load_model, resolve
    from ..export.onnx_export import to_onnx

    model, _ = load_model(args.checkpoint)
    stem = os.path.splitext(resolve(args.checkpoint))[0]
    out = args.out or stem + (".step" if args.step else "") + ".onnx"
    rep = to_onnx(model, out, step=args.step, lengths=not args.no_lengths, lowering=args.lowering,
                  atol=args.atol)
    print(f"wrote {rep.path} ({rep.bytes / 1024:.1f} KiB): {rep.model}, {rep.kind}, lowering "
          f"{rep.lowering}")
    print(f"inputs {rep.inputs} -> outputs {rep.outputs}")
    print(f"parity vs PyTorch: max abs error {rep.max_abs_error:.2e} over {rep.trials} onnxruntime runs "
          f"(atol {args.atol:g})")
    return 0
