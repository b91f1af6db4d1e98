"""Load test of ``lstmkit serve``: a real HTTP client (httpx, async) against the server on loopback.

    python -m benchmarks.serve [--quick] [--duration 4] [--sections load,engine,soak,memory,malformed]
                               [--out FILE]

The server runs in its own process (``python -m lstmkit.cli serve``) for a 2-layer H=256 LSTM
(input 32 features, a bare ``lstmkit.LSTM`` checkpoint, seeded); the client runs in this process.

- ``load``: closed loop: C sessions (C in 1, 8, 64, 256), each sending one step, waiting for the
  answer, sending the next, for ``--duration`` seconds after a 1 s warm-up; throughput (steps/s)
  and p50/p99 latency, batching on (window 2 ms, max batch 64) and off (max batch 1). Plus an
  open-loop row: 64 sessions each streaming at a fixed rate (a sensor), latency only.
- ``engine``: the same batched step without HTTP (``StreamingModel.step`` in-process): 64 sessions
  as one batch vs 64 calls of one session, steps/s.
- ``soak``: 10,000 steps over 256 streams (1-3 steps per request, 64 requests in flight) with
  persistence on, ``--max-sessions 224`` so that LRU evictions happen throughout (an evicted
  stream starts again in a new session), random closes, and the server killed with SIGKILL
  half-way and restarted on the same database; at the end every stream's outputs are compared
  with an offline run over the same inputs.
- ``memory``: the server's resident memory after rounds of opening 1,000 sessions, stepping each
  and closing them all.
- ``malformed``: every malformed request class sent 10 times to a server with an API key; the
  codes received are counted, and /health is checked after each class.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch

import lstmkit as lk
from lstmkit.models.checkpoints import save_model
from lstmkit.serve import load_streaming_model

I, H, L = 32, 256, 2
KEY = "bench-key-0123456789"


# -- the server process ---------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, ckpt: str, *args: str, env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        src = str(Path(__file__).resolve().parents[1] / "src")
        e = dict(os.environ, PYTHONPATH=src + os.pathsep + os.environ.get("PYTHONPATH", ""),
                 OMP_NUM_THREADS="1", **(env or {}))
        self.proc = subprocess.Popen([sys.executable, "-m", "lstmkit.cli", "serve", ckpt, "--port",
                                      str(self.port), *args], env=e, stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() - t0 > 120:
                raise RuntimeError(f"server did not start: {args}")
            time.sleep(0.1)

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def metric(url: str, name: str, headers=None) -> float:
    for line in httpx.get(url + "/metrics", headers=headers).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


# -- load ------------------------------------------------------------------------------------
class RawConnection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams (the ``--client raw`` load
    generator: far less CPU per request than httpx, so the client stops being the bottleneck)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader = self.writer = None

    async def post(self, path: str, body: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.writer.write(f"POST {path} HTTP/1.1\r\nhost: {self.host}\r\ncontent-type: application/json"
                          f"\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return status, await self.reader.readexactly(length)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (Linux /proc), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")


async def closed_loop(url: str, sessions: int, duration: float, *, client: str = "httpx",
                      server_pid: int | None = None, warmup: float = 1.0, seed: int = 0):
    limits = httpx.Limits(max_connections=sessions, max_keepalive_connections=sessions)
    g = torch.Generator().manual_seed(seed)
    hdr = {"content-type": "application/json"}
    host, port = url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as c:
        sids = []
        for k in range(0, sessions, 64):
            rs = await asyncio.gather(*(c.post("/v1/sessions") for _ in range(min(64, sessions - k))))
            sids += [r.json()["session_id"] for r in rs]
        bodies = [json.dumps({"inputs": torch.randn(1, I, generator=g).tolist()}).encode() for _ in sids]
        loop = asyncio.get_running_loop()
        t_start = loop.time()
        t_measure, t_end = t_start + warmup, t_start + warmup + duration
        lat, errors, cpu = [], 0, {}

        async def worker(sid, body):
            nonlocal errors
            raw = RawConnection(host, int(port)) if client == "raw" else None
            path = f"/v1/sessions/{sid}/step"
            try:
                while True:
                    t0 = loop.time()
                    if t0 >= t_end:
                        return
                    if raw is not None:
                        code = (await raw.post(path, body))[0]
                    else:
                        code = (await c.post(path, content=body, headers=hdr)).status_code
                    t1 = loop.time()
                    if code != 200:
                        errors += 1
                    elif t_measure <= t1 <= t_end:  # completions inside the measured window
                        lat.append(t1 - t0)
            finally:
                if raw is not None:
                    raw.close()

        async def meter():  # CPU of client and server over the measured window
            await asyncio.sleep(max(0.0, t_measure - loop.time()))
            cpu["c0"], cpu["s0"] = time.process_time(), cpu_seconds(server_pid) if server_pid else 0.0
            await asyncio.sleep(max(0.0, t_end - loop.time()))
            cpu["c1"], cpu["s1"] = time.process_time(), cpu_seconds(server_pid) if server_pid else 0.0

        b0 = metric(url, "lstmkit_batch_size_count"), metric(url, "lstmkit_batch_size_sum")
        await asyncio.gather(meter(), *(worker(s, b) for s, b in zip(sids, bodies)))
        b1 = metric(url, "lstmkit_batch_size_count"), metric(url, "lstmkit_batch_size_sum")
        for k in range(0, len(sids), 64):
            await asyncio.gather(*(c.delete(f"/v1/sessions/{s}") for s in sids[k:k + 64]))
    lat_ms = np.array(lat) * 1000
    n = max(len(lat), 1)
    return {"steps_s": len(lat) / duration, "p50": float(np.percentile(lat_ms, 50)),
            "p99": float(np.percentile(lat_ms, 99)), "errors": errors,
            "mean_batch": (b1[1] - b0[1]) / max(b1[0] - b0[0], 1),
            "client_ms": 1000 * (cpu["c1"] - cpu["c0"]) / n, "server_ms": 1000 * (cpu["s1"] - cpu["s0"]) / n}


async def open_loop(url: str, sessions: int, rate_hz: float, duration: float, seed: int = 0):
    """Each session (a sensor) is due to send one step every 1/rate_hz seconds, phases spread; a
    late answer delays its next send. Latency is from the due time (queueing included). Raw client."""
    g = torch.Generator().manual_seed(seed)
    host, port = url.removeprefix("http://").split(":")
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        sids = [r.json()["session_id"] for r in await asyncio.gather(*(c.post("/v1/sessions")
                                                                       for _ in range(sessions)))]
        body = json.dumps({"inputs": torch.randn(1, I, generator=g).tolist()}).encode()
        loop = asyncio.get_running_loop()
        t_start = loop.time() + 0.5
        lat = []

        async def session(k, sid):
            conn, n = RawConnection(host, int(port)), 0
            try:
                while True:
                    due = t_start + (k / sessions + n) / rate_hz
                    if due > t_start + duration:
                        return
                    await asyncio.sleep(max(0.0, due - loop.time()))
                    code, _ = await conn.post(f"/v1/sessions/{sid}/step", body)
                    if code == 200:
                        lat.append(loop.time() - due)
                    n += 1
            finally:
                conn.close()

        await asyncio.gather(*(session(k, s) for k, s in enumerate(sids)))
        await asyncio.gather(*(c.delete(f"/v1/sessions/{s}") for s in sids))
    lat_ms = np.array(lat) * 1000
    return {"steps_s": len(lat) / duration, "p50": float(np.percentile(lat_ms, 50)),
            "p99": float(np.percentile(lat_ms, 99))}


def section_load(ckpt: str, args, out: list[str]) -> None:
    rows = {}
    for mode, flags in (("on", ["--max-batch", "64", "--window-ms", "2"]),
                        ("off", ["--max-batch", "1", "--window-ms", "0"])):
        srv = Server(ckpt, *flags)
        try:
            for client in args.clients:
                for conc in args.concurrency:
                    rows[(client, mode, conc)] = r = asyncio.run(closed_loop(
                        srv.url, conc, args.duration, client=client, server_pid=srv.proc.pid))
                    print(f"  {client:5} batching {mode:3} C={conc:3}: {r['steps_s']:6.0f} steps/s  "
                          f"p50 {r['p50']:6.1f} ms  p99 {r['p99']:6.1f} ms  batch {r['mean_batch']:5.1f}  "
                          f"CPU ms/step client {r['client_ms']:.2f} server {r['server_ms']:.2f}  "
                          f"errors {r['errors']}", flush=True)
            if mode == "on":
                rows["open"] = r = asyncio.run(open_loop(srv.url, 64, args.rate, args.duration))
                print(f"  open loop 64 x {args.rate:g} Hz: {r['steps_s']:.0f} steps/s p50 {r['p50']:.1f} ms "
                      f"p99 {r['p99']:.1f} ms", flush=True)
        finally:
            srv.stop()
    for client in args.clients:
        what = ("httpx.AsyncClient, one connection per session" if client == "httpx"
                else "a minimal HTTP/1.1 keep-alive client on asyncio streams")
        out += ["", f"Client: {client} ({what})",
                "", "| sessions | on: steps/s | p50 ms | p99 ms | mean batch | server CPU ms/step | "
                "off: steps/s | p50 ms | p99 ms | server CPU ms/step | client CPU ms/step (on) | on / off |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for conc in args.concurrency:
            a, b = rows[(client, "on", conc)], rows[(client, "off", conc)]
            ratio = a["steps_s"] / max(b["steps_s"], 1e-9)
            out.append(f"| {conc} | {a['steps_s']:.0f} | {a['p50']:.1f} | {a['p99']:.1f} | "
                       f"{a['mean_batch']:.1f} | {a['server_ms']:.2f} | {b['steps_s']:.0f} | "
                       f"{b['p50']:.1f} | {b['p99']:.1f} | {b['server_ms']:.2f} | {a['client_ms']:.2f} | "
                       f"{ratio:.2f}x |")
    r = rows["open"]
    out += ["", f"Open loop, batching on, raw client: 64 sessions each sending one step every "
            f"{1000 / args.rate:.0f} ms ({r['steps_s']:.0f} steps/s served): p50 {r['p50']:.1f} ms, "
            f"p99 {r['p99']:.1f} ms."]


def section_engine(ckpt: str, args, out: list[str]) -> None:
    torch.set_num_threads(1)
    model = load_streaming_model(ckpt)
    B = 64
    x = torch.randn(B, 1, I)
    state = model.init_state(B)
    one = torch.ones(1, dtype=torch.long)

    def batched():
        model.step(x, torch.ones(B, dtype=torch.long), state)

    def single():
        for b in range(B):
            model.step(x[b:b + 1], one, state[b:b + 1])

    res = {}
    for name, fn in (("batched", batched), ("single", single)):
        fn()
        times = []
        for _ in range(5):
            t0, n = time.perf_counter(), 0
            while time.perf_counter() - t0 < 0.2:
                fn()
                n += 1
            times.append((time.perf_counter() - t0) / n)
        res[name] = B / float(np.median(times))
    print(f"  engine: 64 sessions batched {res['batched']:.0f} steps/s, one by one {res['single']:.0f} "
          f"steps/s ({res['batched'] / res['single']:.1f}x)", flush=True)
    out.append(f"In-process, no HTTP (`StreamingModel.step`, 1 thread): 64 sessions as one batched step "
               f"{res['batched']:.0f} steps/s vs one session at a time {res['single']:.0f} steps/s "
               f"(**{res['batched'] / res['single']:.1f}x**).")


# -- soak ------------------------------------------------------------------------------------
def section_soak(ckpt: str, args, out: list[str]) -> None:
    tmp = tempfile.mkdtemp(prefix="lstmkit-soak-")
    db = os.path.join(tmp, "sessions.db")
    flags = ["--db", db, "--max-sessions", "224", "--window-ms", "2"]
    srv = Server(ckpt, *flags)
    rng = random.Random(0)
    g = torch.Generator().manual_seed(1)
    S, total, inflight = 256, args.soak_steps, 64
    streams = [{"sid": None, "x": [], "y": []} for _ in range(S)]
    stats = {"steps": 0, "evicted": 0, "closed": 0, "restarts": 0, "requests": 0, "transport_errors": 0}

    async def run(url: str, until: int) -> None:
        limits = httpx.Limits(max_connections=inflight, keepalive_expiry=2.0)
        async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as c:
            async def fresh(st):
                st["sid"] = (await c.post("/v1/sessions")).json()["session_id"]
                st["x"], st["y"] = [], []

            for st in streams:
                if st["sid"] is None:
                    await fresh(st)
            while stats["steps"] < until:
                picked = rng.sample(range(S), inflight)

                async def go(k):
                    st = streams[k]
                    if rng.random() < 0.02:  # the client closes its stream and opens another
                        await c.delete(f"/v1/sessions/{st['sid']}")
                        stats["closed"] += 1
                        await fresh(st)
                    x = torch.randn(rng.randint(1, 3), I, generator=g)
                    try:
                        r = await c.post(f"/v1/sessions/{st['sid']}/step",
                                         json={"inputs": x.tolist(), "position": len(st["x"])})
                    except httpx.TransportError:  # outcome unknown: this stream starts again
                        stats["transport_errors"] += 1
                        await fresh(st)
                        return
                    stats["requests"] += 1
                    if r.status_code == 404 and "evicted" in r.json()["detail"]:
                        stats["evicted"] += 1
                        await fresh(st)
                        return
                    if r.status_code != 200:
                        raise RuntimeError(f"soak: unexpected {r.status_code} {r.text[:200]}")
                    st["x"] += x.tolist()
                    st["y"] += r.json()["outputs"]
                    stats["steps"] += len(x)

                await asyncio.gather(*(go(k) for k in picked))

    t0 = time.perf_counter()
    asyncio.run(run(srv.url, total // 2))
    live_before = metric(srv.url, "lstmkit_live_sessions")
    # which of the streams' sessions are live now (the others were evicted since their last step)
    live = {}
    with httpx.Client(base_url=srv.url) as c:
        for k, st in enumerate(streams):
            r = c.get(f"/v1/sessions/{st['sid']}")
            if r.status_code == 200:
                live[k] = r.json()["position"]
            else:
                st["sid"] = None  # evicted: the stream starts again in a new session
                stats["evicted"] += 1
    srv.kill()  # SIGKILL: nothing graceful
    stats["restarts"] += 1
    srv = Server(ckpt, *flags)
    live_after = metric(srv.url, "lstmkit_live_sessions")
    resumed = 0
    with httpx.Client(base_url=srv.url) as c:
        for k, pos in live.items():
            r = c.get(f"/v1/sessions/{streams[k]['sid']}")
            resumed += r.status_code == 200 and r.json()["position"] == pos == len(streams[k]["x"])
    asyncio.run(run(srv.url, total))
    secs = time.perf_counter() - t0
    evictions = metric(srv.url, 'lstmkit_session_evictions_total{reason="lru"}')
    # every stream vs an offline run of the same weights over the same inputs
    model = load_streaming_model(ckpt)
    ok = bad = 0
    worst = 0.0
    with httpx.Client(base_url=srv.url) as c:
        for st in streams:
            r = c.get(f"/v1/sessions/{st['sid']}")
            pos = r.json()["position"] if r.status_code == 200 else len(st["x"])  # 404: evicted since
            if not st["x"]:
                ok += pos == 0
                continue
            with torch.no_grad():
                want = model.lstm(torch.tensor(st["x"])[None])[0][0]
            diff = float((torch.tensor(st["y"]) - want).abs().max())
            worst = max(worst, diff)
            if diff <= 1e-4 and pos == len(st["x"]):
                ok += 1
            else:
                bad += 1
    srv.stop()
    line = (f"{stats['steps']:,} steps in {stats['requests']:,} requests over {S} streams in {secs:.0f} s; "
            f"{stats['evicted']} streams found their session evicted (the server counted "
            f"{evictions:.0f} LRU evictions after the restart), {stats['closed']} closed and reopened, "
            f"server SIGKILLed and restarted once ({live_before:.0f} live sessions before, "
            f"{live_after:.0f} after; the clients' {len(live)} live sessions resumed at their exact "
            f"position: {resumed}/{len(live)}); streams equal to the offline run: **{ok}/{S}**, "
            f"mismatched {bad}, largest difference {worst:.1e}; transport errors "
            f"{stats['transport_errors']}.")
    print("  soak: " + line, flush=True)
    out.append(line)


def section_memory(ckpt: str, args, out: list[str]) -> None:
    srv = Server(ckpt, "--window-ms", "2")
    rss = [srv.rss_mb()]

    async def cycle():
        async with httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
            for _ in range(10):
                sids = [r.json()["session_id"] for r in await asyncio.gather(*(c.post("/v1/sessions")
                                                                              for _ in range(100)))]
                body = {"inputs": [[0.5] * I] * 3}
                await asyncio.gather(*(c.post(f"/v1/sessions/{s}/step", json=body) for s in sids))
                await asyncio.gather(*(c.delete(f"/v1/sessions/{s}") for s in sids))

    for _ in range(args.memory_rounds):
        asyncio.run(cycle())
        rss.append(srv.rss_mb())
    live = metric(srv.url, "lstmkit_live_sessions")
    srv.stop()
    line = ("Server RSS (MB) at start, then after each round of 1,000 sessions opened, stepped 3 times "
            f"and closed: {', '.join(f'{r:.0f}' for r in rss)} (live sessions at the end: {live:.0f}).")
    print("  memory: " + line, flush=True)
    out.append(line)


# -- malformed ------------------------------------------------------------------------------
def section_malformed(ckpt: str, args, out: list[str]) -> None:
    srv = Server(ckpt, "--max-steps", "64", "--max-body-bytes", "65536", "--ttl", "1",
                 env={"LSTMKIT_API_KEY": KEY})
    auth = {"Authorization": f"Bearer {KEY}"}
    js = dict(auth, **{"content-type": "application/json"})
    ok_row = [0.1] * I
    rows = []
    with httpx.Client(base_url=srv.url, headers=auth, timeout=30) as c:
        def sid():
            return c.post("/v1/sessions").json()["session_id"]

        def expired():
            s = sid()
            time.sleep(2.2)  # the server's TTL is 1 s; its sweep or the next touch drops it
            return c.post(f"/v1/sessions/{s}/step", json={"inputs": [ok_row]})

        def concurrent():
            s = sid()

            async def two():
                async with httpx.AsyncClient(base_url=srv.url, headers=auth) as ac:
                    body = {"inputs": [ok_row], "position": 0}
                    url = f"/v1/sessions/{s}/step"
                    return await asyncio.gather(*(ac.post(url, json=body) for _ in range(2)))

            rs = asyncio.run(two())
            return sorted(rs, key=lambda r: r.status_code)[-1]  # one 200, one 409

        def step(json_body=None, raw=None, sid_=None):
            url = f"/v1/sessions/{sid_ or sid()}/step"
            if raw is not None:
                return c.post(url, content=raw, headers=js)
            return c.post(url, json=json_body)

        nan = json.dumps({"inputs": [[float("nan")] * I]}).encode()
        inf = json.dumps({"inputs": [[float("inf")] * I]}).encode()
        classes = [
            ("invalid JSON", 400, lambda: step(raw=b'{"inputs": [[1,')),
            ("wrong shape (features)", 422, lambda: step({"inputs": [[0.1] * (I + 1)]})),
            ("wrong shape (ragged)", 422, lambda: step({"inputs": [ok_row, [1.0]]})),
            ("wrong dtype (strings)", 422, lambda: step({"inputs": [["1"] * I]})),
            ("NaN", 422, lambda: step(raw=nan)),
            ("Inf", 422, lambda: step(raw=inf)),
            ("over-long input (65 steps)", 422, lambda: step({"inputs": [ok_row] * 65})),
            ("unknown session", 404, lambda: step({"inputs": [ok_row]}, sid_="0" * 32)),
            ("expired session", 404, expired),
            ("wrong API key", 401, lambda: c.post("/v1/sessions", headers={"Authorization": "Bearer no"})),
            ("missing API key", 401, lambda: httpx.post(srv.url + "/v1/sessions")),
            ("concurrent steps on one session (same position)", 409, concurrent),
            ("huge body (2 MB)", 413, lambda: step(raw=b"[" + b"0," * 1_000_000 + b"0]")),
        ]
        total = 0
        for name, want, fn in classes:
            codes: dict[int, int] = {}
            n = 3 if name == "expired session" else 10
            for _ in range(n):
                code = fn().status_code
                codes[code] = codes.get(code, 0) + 1
            healthy = c.get("/health").json()["status"] == "ok"
            right = codes.get(want, 0)
            total += right
            rows.append(f"| {name} | {want} | {', '.join(f'{k}: {v}' for k, v in sorted(codes.items()))} | "
                        f"{right}/{n} | {'yes' if healthy else 'NO'} |")
            print(f"  malformed {name}: {codes} healthy={healthy}", flush=True)
        good = c.post(f"/v1/sessions/{sid()}/step", json={"inputs": [ok_row]}).status_code
    srv.stop()
    out += ["| request class | expected | codes received | right | healthy after |",
            "|---|---:|---|---:|---|", *rows,
            f"\n{total} malformed requests answered with the expected code; a normal step afterwards: "
            f"{good}."]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="short cells (1 s), soak of 2,000 steps")
    p.add_argument("--duration", type=float, default=4.0, help="seconds measured per load cell")
    p.add_argument("--rate", type=float, default=5.0, help="open loop: steps per second per session")
    p.add_argument("--sections", default="load,engine,soak,memory,malformed")
    p.add_argument("--clients", default="httpx,raw", help="load generators: httpx and/or raw")
    p.add_argument("--soak-steps", type=int, default=10_000)
    p.add_argument("--memory-rounds", type=int, default=4)
    p.add_argument("--out", default=None, help="also write the markdown tables here")
    args = p.parse_args(argv)
    args.concurrency = [1, 8, 64, 256]
    args.clients = args.clients.split(",")
    if args.quick:
        args.duration, args.soak_steps, args.memory_rounds = 1.0, 2000, 2
    tmp = tempfile.mkdtemp(prefix="lstmkit-bench-serve-")
    ckpt = os.path.join(tmp, "lstm.pt")
    torch.manual_seed(0)
    save_model(ckpt, lk.LSTM(I, H, L, batch_first=True))
    load = os.getloadavg()
    head = (f"lstmkit serve load test: 2-layer LSTM H={H}, I={I}; {os.cpu_count()} CPUs; load average "
            f"{load[0]:.1f} at start; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    print(head, flush=True)
    out = [head, ""]
    sections = {"load": section_load, "engine": section_engine, "soak": section_soak,
                "memory": section_memory, "malformed": section_malformed}
    for name in args.sections.split(","):
        print(f"[{name}]", flush=True)
        out.append(f"### {name}\n")
        sections[name](ckpt, args, out)
        out.append("")
    out.append(f"Load average at the end: {os.getloadavg()[0]:.1f}.")
    text = "\n".join(out)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
