"""`lstmkit lm train` with its defaults on real texts of 30-300 KB that ship with the machine.

    python -m benchmarks.lm [--threads 1] [--texts NAME ...] [--out FILE]

Each text runs the real command (``python -m lstmkit.cli lm train --text FILE --out TMP``, all
defaults) in a fresh process with ``OMP_NUM_THREADS=--threads``; the wall time counts the whole
command (start-up, tokenizer, training, baselines, plot). The table gives the validation bits per
character of the LSTM and of the Kneser-Ney 5-gram and the unigram model fitted on the same
training part, the test bits per character, the ratio of the LSTM's validation bits/char to the
unigram entropy of the validation text (the target is <= 0.70), steps and seconds.
The texts are read where their packages put them (Debian fortunes, the Python standard library,
numpy's licence); a text that is missing is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path


def _texts() -> dict[str, tuple[Path, str]]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    import numpy

    numpy_licence = next(Path(numpy.__file__).parent.parent.glob("numpy-*.dist-info/LICENSE.txt"), None)
    return {
        "platitudes": (Path("/usr/share/games/fortunes/platitudes"), "English (Debian fortunes)"),
        "people": (Path("/usr/share/games/fortunes/people"), "English (Debian fortunes)"),
        "computers": (Path("/usr/share/games/fortunes/computers"), "English (Debian fortunes)"),
        "argparse.py": (stdlib / "argparse.py", "Python code (stdlib)"),
        "numpy LICENSE": (numpy_licence or Path("-"), "legal English (numpy)"),
    }


def run_one(path: Path, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
        cmd = [sys.executable, "-m", "lstmkit.cli", "lm", "train", "--text", str(path),
               "--out", tmp, "--no-progress", "--no-resume"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
        m = json.loads((Path(tmp) / "metrics.json").read_text())
    s = m["setup"]
    return dict(kb=path.stat().st_size / 1000, entropy=s["val_unigram_entropy"],
                lstm=m["lstm"]["val_bpc"], kn=m["kn5"]["val_bpc"], uni=m["unigram"]["val_bpc"],
                lstm_test=m["lstm"].get("test_bpc"), kn_test=m["kn5"].get("test_bpc"),
                ratio=s["ratio_to_unigram_entropy"], steps=s["steps"], best=s["best_step"],
                stopped=s["stopped"], train_s=s["train_seconds"], wall=wall, table=proc.stdout)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--texts", nargs="+", default=None)
    ap.add_argument("--out", default=None, help="also write the markdown table here")
    args = ap.parse_args(argv)
    texts = _texts()
    names = args.texts or list(texts)
    load0 = os.getloadavg()[0]
    lines = [f"threads={args.threads}, load average at start {load0:.1f}",
             "| text | kind | KB | unigram entropy | LSTM val | ratio | KN 5-gram val | unigram val "
             "| LSTM test | KN5 test | steps (best) | stopped | train s | wall s |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for name in names:
        path, kind = texts[name]
        if not path.is_file():
            print(f"skipping {name}: {path} not found", file=sys.stderr)
            continue
        r = run_one(path, args.threads)
        print(r["table"], file=sys.stderr)
        lines.append(f"| {name} | {kind} | {r['kb']:.0f} | {r['entropy']:.3f} | **{r['lstm']:.3f}** | "
                     f"{r['ratio']:.2f} | {r['kn']:.3f} | {r['uni']:.3f} | {r['lstm_test']:.3f} | "
                     f"{r['kn_test']:.3f} | {r['steps']} ({r['best']}) | {r['stopped']} | "
                     f"{r['train_s']:.0f} | {r['wall']:.0f} |")
        print(lines[-1], flush=True)
    lines.append(f"load average at end {os.getloadavg()[0]:.1f}")
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
