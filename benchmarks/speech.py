"""`lstmkit speech train` on the synthesised digit strings: WER of greedy / beam / beam+LM on
held-out voices, clean and in noise, training time and real-time factor.

    python -m benchmarks.speech [--threads 1] [--utterances 3000] [--max-time 1200] [--out FILE]
                                [-- extra flags for `lstmkit speech train`]
    python -m benchmarks.speech --stream-check RUN_DIR   (a --unidirectional run kept with --keep)

Runs the real command (``python -m lstmkit.cli speech train --no-progress --no-resume``) in a fresh
process with ``OMP_NUM_THREADS=--threads`` and turns its ``metrics.json`` into the markdown table of
``benchmarks/README.md``; the header records the load average at start and end (the box is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def table(m: dict, wall: float, load0, load1, threads: int) -> str:
    s, snr = m["setup"], m["snr"]
    conds = list(snr)
    out = [f"load average {load0[0]:.1f} at start, {load1[0]:.1f} at end; {threads} thread(s); "
           f"{s['train_utterances']} training utterances ({s['train_hours']} h), "
           f"{s['parameters'] / 1e6:.2f} M parameters, {s['steps']} steps in {s['train_seconds']:.0f} s "
           f"of training ({s.get('train_cpu_seconds', 0):.0f} s of CPU), {wall:.0f} s for the whole command",
           "", "| decoder | " + " | ".join(f"WER {c}" for c in conds)
           + " | CER clean | RTF (wall) | RTF (CPU) |",
           "|---|" + "---|" * (len(conds) + 3)]
    for name in ("greedy", "beam", "beam+lm"):
        out.append(f"| {name} | " + " | ".join(f"{100 * snr[c][name]['wer']:.2f} %" for c in conds)
                   + f" | {100 * snr['clean'][name]['cer']:.2f} % | {m['rtf'][name]:.4f} | "
                   + f"{m['rtf'][name + ' cpu']:.4f} |")
    for b in ("baseline_empty", "baseline_majority"):
        out.append(f"| {b.replace('baseline_', 'baseline: ')} | {100 * m[b]['wer']:.2f} % |"
                   + " |" * (len(conds) + 2))
    pv = m["per_voice_wer"]
    worst = sorted(pv.items(), key=lambda kv: -kv[1])[:5]
    out += ["", f"per-voice WER (beam+lm, clean, {len(pv)} test voices): median "
            f"{100 * sorted(pv.values())[len(pv) // 2]:.1f} %, worst " +
            ", ".join(f"{v} {100 * w:.0f} %" for v, w in worst),
            f"chosen on the validation voices: lm_weight {s['chosen'].get('lm_weight')}, "
            f"insertion_bonus {s['chosen'].get('insertion_bonus')}"]
    return "\n".join(out)


def stream_check(run: str, n: int = 40, chunk_ms: int = 100) -> str:
    """Stream ``n`` test utterances of a unidirectional run in ``chunk_ms`` chunks; count how many
    final transcripts equal the offline ones, and time the chunks."""
    import numpy as np

    from lstmkit.data import speech as sd
    from lstmkit.jobs import speech as job

    model, fc, alphabet, dec, ck = job.load(run)
    jc = ck["job_config"]
    utts = [u for u in sd.generate_digits(os.path.join(jc["cache"] or sd.default_cache(), "speech"),
                                          jc["utterances"], seed=jc["seed"]) if u.split == "test"][:n]
    same, chunk_s, audio_s, words = 0, [], 0.0, []
    step = fc.sample_rate * chunk_ms // 1000
    for u in utts:
        y = sd.read_audio(u.path)
        audio_s += len(y) / fc.sample_rate
        offline = job.transcribe(run, [u.path])[0]
        rec = job.StreamingRecognizer(model, fc, alphabet, dec, "beam+lm")
        for i in range(0, len(y), step):
            t = time.process_time()
            rec.accept(y[i:i + step])
            chunk_s.append(time.process_time() - t)
        final = rec.finish()
        same += final == offline
        words.append((u.text, final))
    wer = job.wer_cer([r for r, _ in words], [h for _, h in words])["wer"]
    return (f"streaming ({chunk_ms} ms chunks, beam+LM) on {len(utts)} test utterances: final == offline "
            f"for {same}/{len(utts)}; WER {100 * wer:.2f} %; CPU per chunk median "
            f"{1000 * float(np.median(chunk_s)):.1f} ms, max {1000 * max(chunk_s):.1f} ms "
            f"(RTF {sum(chunk_s) / audio_s:.4f})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--utterances", type=int, default=3000)
    ap.add_argument("--max-time", type=float, default=1200.0)
    ap.add_argument("--out", help="also write the table here")
    ap.add_argument("--keep", metavar="DIR", help="keep the run folder here (default: a temporary one)")
    ap.add_argument("--stream-check", metavar="DIR",
                    help="only stream test utterances through the unidirectional model in DIR")
    ap.add_argument("extra", nargs="*", help="more `lstmkit speech train` flags (after --)")
    a = ap.parse_args(argv)
    if a.stream_check:
        print(stream_check(a.stream_check))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        run = a.keep or tmp
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
        cmd = [sys.executable, "-m", "lstmkit.cli", "speech", "train", "--out", run, "--no-progress",
               "--no-resume", "--utterances", str(a.utterances), "--max-time", str(a.max_time), *a.extra]
        load0, t0 = os.getloadavg(), time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        wall, load1 = time.perf_counter() - t0, os.getloadavg()
        if proc.returncode:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
        print(proc.stdout)
        m = json.loads((Path(run) / "metrics.json").read_text())
    text = f"Command: `{' '.join(cmd[1:])}`\n\n" + table(m, wall, load0, load1, a.threads)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
