"""``lstmkit compress CHECKPOINT --method ...``: a smaller model, with its size and agreement."""

from __future__ import annotations

import json
import os
import shutil

METHODS = ("int8", "onnx-int8", "float16", "bfloat16", "magnitude", "prune", "low-rank")


def add_parser(sub) -> None:
    p = sub.add_parser("compress", help="compress a checkpoint (int8, half, pruning, low rank)",
                       description="Compress an lstmkit checkpoint and write the result plus "
                       "compress.json (bytes, parameters, max abs difference of the outputs from "
                       "the original on random inputs). Fine-tuning after pruning or low rank "
                       "needs the task's data: see lstmkit.export.compress.fine_tune.")
    p.add_argument("checkpoint", help="checkpoint file or folder holding model.pt")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--amount", type=float, default=0.5, help="magnitude: fraction of weights zeroed")
    p.add_argument("--keep", type=float, default=0.5,
                   help="prune: hidden units kept (a fraction < 1, or a count)")
    p.add_argument("--rank", type=float, default=0.25,
                   help="low-rank: rank (a fraction <= 1 of full rank, or a count)")
    p.add_argument("--out", required=True, metavar="DIR")
    p.set_defaults(func=run)


def run(args) -> int:
    import torch

    from ..export import compress as C
    from ..export.checkpoints import example_inputs, first_output, load_model, resolve, save_model

    model, extra = load_model(args.checkpoint)
    os.makedirs(args.out, exist_ok=True)
    x = example_inputs(model)
    with torch.no_grad():
        ref = first_output(model(*x))
    src_bytes = os.path.getsize(resolve(args.checkpoint))
    info = {"method": args.method, "source": resolve(args.checkpoint),
            "params_before": C.count_params(model), "weight_bytes_before": C.model_bytes(model)}
    extra = {k: v for k, v in extra.items() if k in ("series_spec", "scaler", "extra")}
    tok = os.path.join(os.path.dirname(resolve(args.checkpoint)), "tokenizer.json")
    if os.path.isfile(tok):  # an LM folder: keep it usable by `lstmkit lm generate`
        shutil.copyfile(tok, os.path.join(args.out, "tokenizer.json"))
    if args.method == "onnx-int8":
        from ..export.onnx_export import to_onnx

        f32 = os.path.join(args.out, "model.onnx")
        rep = to_onnx(model, f32)
        dst = os.path.join(args.out, "model.int8.onnx")
        C.quantize_onnx(f32, dst)
        info.update(file=dst, file_bytes=os.path.getsize(dst), float_onnx_bytes=rep.bytes,
                    float_onnx_parity=rep.max_abs_error)
    else:
        keep = int(args.keep) if args.keep >= 1 else args.keep
        rank = int(args.rank) if args.rank > 1 else args.rank
        small = {
            "int8": lambda: C.quantize_int8(model),
            "float16": lambda: C.cast_weights(model, torch.float16),
            "bfloat16": lambda: C.cast_weights(model, torch.bfloat16),
            "magnitude": lambda: C.magnitude_prune(model, args.amount)[0],
            "prune": lambda: C.prune_hidden(model, keep),
            "low-rank": lambda: C.low_rank(model, rank),
        }[args.method]().eval()
        dst = os.path.join(args.out, "model.pt")
        save_model(dst, small, **extra)
        with torch.no_grad():
            out = first_output(small(*x))
        info.update(file=dst, file_bytes=os.path.getsize(dst), params_after=C.count_params(small),
                    nonzero_params_after=C.count_params(small, nonzero=True),
                    weight_bytes_after=C.model_bytes(small))
        if out.shape == ref.shape:
            info["max_abs_diff_vs_original"] = float((out - ref).abs().max())
    info["source_file_bytes"] = src_bytes
    from .._io import atomic_write_text

    atomic_write_text(os.path.join(args.out, "compress.json"), json.dumps(info, indent=2) + "\n")
    for k, v in info.items():
        print(f"{k:>26}: {v}")
    return 0
