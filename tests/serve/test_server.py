"""The server, against a real uvicorn on a loopback port: streaming == offline, batching,
ordering, eviction/TTL, persistence, malformed requests, auth."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
import torch
from torch.testing import assert_close

from .conftest import FakeClock, H, I


def new_session(c: httpx.Client) -> str:
    r = c.post("/v1/sessions")
    assert r.status_code == 201, r.text
    return r.json()["session_id"]


def step(c: httpx.Client, sid: str, x, **kw) -> httpx.Response:
    return c.post(f"/v1/sessions/{sid}/step", json={"inputs": x.tolist(), **kw})


def metric(c: httpx.Client, name: str) -> float:
    text = c.get("/metrics").text
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def test_streaming_equals_offline_and_predict(start, offline):
    srv = start()
    torch.manual_seed(1)
    x = torch.randn(7, I)  # (T, I)
    with httpx.Client(base_url=srv.url, timeout=10) as c:
        sid = new_session(c)
        assert re.fullmatch(r"[0-9a-f]{32}", sid)
        outs, t = [], 0
        for n in (1, 3, 2, 1):  # chunks of one or more steps
            r = step(c, sid, x[t:t + n])
            assert r.status_code == 200, r.text
            t += n
            assert r.json()["position"] == t
            outs += r.json()["outputs"]
        assert_close(torch.tensor(outs), offline(x), rtol=1e-5, atol=1e-6)
        r = c.post("/v1/predict", json={"inputs": [x.tolist(), (2 * x).tolist()]})
        assert r.status_code == 200, r.text
        got = torch.tensor(r.json()["outputs"])  # (B, T, H)
        assert got.shape == (2, 7, H)
        assert_close(got[0], offline(x), rtol=1e-5, atol=1e-6)
        assert_close(got[1], offline(2 * x), rtol=1e-5, atol=1e-6)
        # reset: back to position 0 and the zero state
        assert c.post(f"/v1/sessions/{sid}/reset").json()["position"] == 0
        again = torch.tensor(step(c, sid, x[:2]).json()["outputs"])
        assert_close(again, offline(x[:2]), rtol=1e-5, atol=1e-6)
        assert c.delete(f"/v1/sessions/{sid}").status_code == 204
        r = step(c, sid, x[:1])
        assert r.status_code == 404 and "deleted" in r.json()["detail"]


async def _stream_all(url: str, xs: list[torch.Tensor], chunks: list[list[int]]):
    """Step every session concurrently (one client task per session); returns outputs per session."""
    async with httpx.AsyncClient(base_url=url, timeout=20) as c:
        sids = [(await c.post("/v1/sessions")).json()["session_id"] for _ in xs]

        async def run(k):
            outs, t = [], 0
            for n in chunks[k]:
                r = await c.post(f"/v1/sessions/{sids[k]}/step", json={"inputs": xs[k][t:t + n].tolist()})
                assert r.status_code == 200, r.text
                outs += r.json()["outputs"]
                t += n
            return torch.tensor(outs)

        return await asyncio.gather(*(run(k) for k in range(len(xs))))


def test_batched_steps_equal_unbatched(start, offline):
    g = torch.Generator().manual_seed(2)
    S = 12
    chunks = [[1, 2, 1] if k % 3 else [1, 1, 1, 1] for k in range(S)]  # mixed T in one batch
    xs = [torch.randn(4, I, generator=g) for _ in range(S)]
    on = start(window_ms=30, max_batch=64)
    got_on = asyncio.run(_stream_all(on.url, xs, chunks))
    with httpx.Client(base_url=on.url) as c:
        batches, steps = metric(c, "lstmkit_batch_size_count"), metric(c, "lstmkit_batch_size_sum")
    assert steps == 3 * S + S // 3 and batches < steps / 2  # steps really were stacked
    off = start(max_batch=1, window_ms=0)
    got_off = asyncio.run(_stream_all(off.url, xs, chunks))
    with httpx.Client(base_url=off.url) as c:
        assert metric(c, "lstmkit_batch_size_count") == metric(c, "lstmkit_batch_size_sum")
    for k in range(S):
        assert_close(got_on[k], got_off[k], rtol=1e-5, atol=1e-6)
        assert_close(got_on[k], offline(xs[k]), rtol=1e-5, atol=1e-6)


def test_same_session_steps_run_in_arrival_order_one_at_a_time(start, offline):
    srv = start(window_ms=5)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(24, I, generator=g)

    async def main():
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as c:
            sid = (await c.post("/v1/sessions")).json()["session_id"]
            rs = await asyncio.gather(*(c.post(f"/v1/sessions/{sid}/step", json={"inputs": [x[i].tolist()]})
                                        for i in range(len(x))))
            return [r.json() for r in rs]

    res = asyncio.run(main())
    positions = [r["position"] for r in res]
    assert sorted(positions) == list(range(1, len(x) + 1))  # each step applied exactly once
    order = sorted(range(len(x)), key=lambda i: positions[i])  # the order the server applied them
    want = offline(x[order])
    for i, r in enumerate(res):
        assert_close(torch.tensor(r["outputs"][0]), want[positions[i] - 1], rtol=1e-5, atol=1e-6)


def test_position_guard_refuses_concurrent_or_replayed_step(start):
    srv = start()
    with httpx.Client(base_url=srv.url) as c:
        sid = new_session(c)
        assert step(c, sid, torch.zeros(1, I), position=0).status_code == 200
        r = step(c, sid, torch.zeros(1, I), position=0)  # a replay of the same step
        assert r.status_code == 409 and "at 1" in r.json()["detail"]
        assert step(c, sid, torch.zeros(1, I), position=1).json()["position"] == 2


def test_lru_eviction_and_ttl_with_a_fake_clock(start):
    clock = FakeClock()
    srv = start(max_sessions=2, ttl=60, clock=clock)
    with httpx.Client(base_url=srv.url) as c:
        a, b = new_session(c), new_session(c)
        clock.t += 1
        assert step(c, a, torch.zeros(1, I)).status_code == 200  # a is now the most recent
        cc = new_session(c)  # full: b (least recently used) goes
        r = step(c, b, torch.zeros(1, I))
        assert r.status_code == 404 and "evicted (least recently used; max_sessions=2)" in r.json()["detail"]
        assert step(c, a, torch.zeros(1, I)).status_code == 200
        clock.t += 61  # both idle past the TTL
        r = step(c, cc, torch.zeros(1, I))
        assert r.status_code == 404 and "expired" in r.json()["detail"]
        assert c.get(f"/v1/sessions/{a}").status_code == 404
        r = c.get("/v1/sessions/" + "0" * 32)
        assert r.status_code == 404 and "not found" in r.json()["detail"]
        text = c.get("/metrics").text
        assert 'lstmkit_session_evictions_total{reason="lru"} 1' in text
        assert 'lstmkit_session_evictions_total{reason="ttl"} 2' in text
        assert metric(c, "lstmkit_live_sessions") == 0


def test_persistence_resumes_every_session_exactly_after_a_restart(start, offline, tmp_path):
    db = str(tmp_path / "sessions.db")
    g = torch.Generator().manual_seed(4)
    xs = [torch.randn(5, I, generator=g) for _ in range(3)]
    srv = start(db=db)
    with httpx.Client(base_url=srv.url) as c:
        sids = [new_session(c) for _ in xs]
        first = [step(c, s, x[:3]).json()["outputs"] for s, x in zip(sids, xs)]
        gone = new_session(c)
        assert c.delete(f"/v1/sessions/{gone}").status_code == 204
    srv.stop()
    srv2 = start(db=db)  # a new process would read the same file
    with httpx.Client(base_url=srv2.url) as c:
        assert c.get("/health").json()["sessions"] == 3
        for s, x, f in zip(sids, xs, first):
            r = step(c, s, x[3:])
            assert r.json()["position"] == 5
            assert_close(torch.tensor(f + r.json()["outputs"]), offline(x), rtol=1e-5, atol=1e-6)
        assert c.get(f"/v1/sessions/{gone}").status_code == 404


def test_a_database_of_another_model_is_refused(tmp_path):
    from lstmkit.serve.store import SessionDB

    SessionDB(str(tmp_path / "s.db"), state_shape=(2, 1, 3), fingerprint="a").close()
    with pytest.raises(ValueError, match="another model"):
        SessionDB(str(tmp_path / "s.db"), state_shape=(2, 1, 3), fingerprint="b")


def test_every_malformed_request_class_gets_its_4xx_and_the_server_stays_healthy(start):
    srv = start(max_steps=4, max_body_bytes=4096)
    with httpx.Client(base_url=srv.url) as c:
        sid = new_session(c)
        url = f"/v1/sessions/{sid}/step"
        ok = [[0.1] * I]
        def post_raw(body: bytes, kind="application/json"):
            return c.post(url, content=body, headers={"content-type": kind})

        cases = {
            "invalid JSON": (post_raw(b'{"inputs": [[1, 2'), 400, "invalid JSON"),
            "wrong feature count": (c.post(url, json={"inputs": [[0.1] * (I + 1)]}), 422, "inputs.0"),
            "ragged steps": (c.post(url, json={"inputs": [[0.1] * I, [0.1]]}), 422, "inputs.1"),
            "not a list": (c.post(url, json={"inputs": 3}), 422, "inputs"),
            "missing field": (c.post(url, json={}), 422, "inputs"),
            "strings as numbers": (c.post(url, json={"inputs": [["1"] * I]}), 422, "inputs.0.0"),
            "booleans as numbers": (c.post(url, json={"inputs": [[True] * I]}), 422, "inputs.0.0"),
            "NaN": (post_raw(b'{"inputs": [[NaN, 1, 2]]}'), 422, "finite"),
            "Infinity": (post_raw(b'{"inputs": [[1, -Infinity, 2]]}'), 422, "finite"),
            "overflow to inf": (post_raw(b'{"inputs": [[1e999, 1, 2]]}'), 422, "finite"),
            "empty sequence": (c.post(url, json={"inputs": []}), 422, "inputs"),
            "over-long input": (c.post(url, json={"inputs": ok * 5}), 422, "inputs"),
            "huge body": (post_raw(b"[" + b"0," * 5000 + b"0]"), 413, "limit"),
            "unknown session": (c.post(f"/v1/sessions/{'f' * 32}/step", json={"inputs": ok}), 404,
                                "not found"),
            "not a session id": (c.post("/v1/sessions/../step", json={"inputs": ok}), 404, ""),
            "replayed position": (c.post(url, json={"inputs": ok, "position": 7}), 409, "position"),
            "unequal predict lengths": (c.post("/v1/predict", json={"inputs": [ok, ok * 2]}), 422,
                                        "inputs.1"),
            "wrong content type": (post_raw(b"inputs=1", kind="text/plain"), 422, ""),
        }
        for name, (r, code, word) in cases.items():
            assert r.status_code == code, (name, r.status_code, r.text)
            assert word in r.text, (name, r.text)
        assert c.get("/health").json()["status"] == "ok"
        r = c.post(url, json={"inputs": ok})
        assert r.status_code == 200 and r.json()["position"] == 1  # nothing bad was applied
        text = c.get("/metrics").text
        assert re.search(r'lstmkit_requests_total\{method="POST",route="/v1/sessions/\{session_id\}/step",'
                         r'code="422"\} 1[0-9]', text)


@pytest.mark.parametrize("auth", [True, False])
def test_api_key(start, monkeypatch, auth):
    monkeypatch.setenv("LSTMKIT_TEST_KEY", "s3cret-key" if auth else "")
    srv = start(api_key_env="LSTMKIT_TEST_KEY")
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/health").json()["auth"] is auth  # health stays open
        no_key = c.post("/v1/sessions")
        wrong = c.post("/v1/sessions", headers={"Authorization": "Bearer nope"})
        right = c.post("/v1/sessions", headers={"Authorization": "Bearer s3cret-key"})
        assert right.status_code == 201
        if auth:
            assert no_key.status_code == 401 and no_key.headers["www-authenticate"] == "Bearer"
            assert wrong.status_code == 401 and "invalid API key" in wrong.text
            assert c.get("/metrics").status_code == 401
            # auth comes before parsing: a bad body with a wrong key is still 401
            bad = c.post("/v1/predict", content=b"{", headers={"Authorization": "Bearer x"})
            assert bad.status_code == 401
        else:
            assert no_key.status_code == 201 and wrong.status_code == 201


def test_openapi_documents_every_field(start):
    srv = start()
    with httpx.Client(base_url=srv.url) as c:
        spec = c.get("/openapi.json").json()
    want = {"/v1/predict", "/v1/sessions", "/v1/sessions/{session_id}/step", "/health", "/metrics"}
    assert want <= set(spec["paths"])
    for name, schema in spec["components"]["schemas"].items():
        if name in ("HTTPValidationError", "ValidationError") or "properties" not in schema:
            continue
        for field, prop in schema["properties"].items():
            assert prop.get("description"), f"{name}.{field} has no description"
