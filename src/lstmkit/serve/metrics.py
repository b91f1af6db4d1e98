"""Prometheus text-format metrics (exposition format 0.0.4), kept in-process.

A tiny registry of counters, gauges and histograms with fixed label sets; ``render()`` writes
the text ``GET /metrics`` returns. (``prometheus_client`` is not a dependency: the few metrics
the server keeps fit in this page.)

>>> m = Metrics()
>>> m.count_request("POST", "/v1/predict", 200, 0.004)
>>> m.observe_batch(3)
>>> text = m.render(live_sessions=2)
>>> 'lstmkit_requests_total{method="POST",route="/v1/predict",code="200"} 1' in text
True
>>> "lstmkit_batch_size_bucket{le=\\"4\\"} 1" in text
True
"""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections import defaultdict

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _Histogram:
    def __init__(self, buckets) -> None:
        self.buckets = tuple(buckets)
        self.counts = [0] * (len(self.buckets) + 1)  # last: +Inf
        self.sum = 0.0
        self.n = 0

    def observe(self, v: float) -> None:
        self.counts[bisect_left(self.buckets, v)] += 1
        self.sum += v
        self.n += 1

    def lines(self, name: str, labels: str = "") -> list[str]:
        out, acc = [], 0
        sep = "," if labels else ""
        for le, c in zip(list(self.buckets) + ["+Inf"], self.counts):
            acc += c
            le_s = le if isinstance(le, str) else f"{le:g}"
            out.append(f'{name}_bucket{{{labels}{sep}le="{le_s}"}} {acc}')
        lab = f"{{{labels}}}" if labels else ""
        out += [f"{name}_sum{lab} {self.sum:.6g}", f"{name}_count{lab} {self.n}"]
        return out


def _rss_bytes() -> int:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


class Metrics:
    """Counters and histograms of one server process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency: dict[str, _Histogram] = {}
        self.batch = _Histogram(BATCH_BUCKETS)
        self.steps = 0
        self.evictions: dict[str, int] = defaultdict(int)
        self.sessions_created = 0
        self.tokens_generated = 0

    def count_request(self, method: str, route: str, code: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, str(code))] += 1
            h = self.latency.get(route)
            if h is None:
                h = self.latency[route] = _Histogram(LATENCY_BUCKETS)
            h.observe(seconds)

    def observe_batch(self, size: int, steps: int = 0) -> None:
        with self._lock:
            self.batch.observe(size)
            self.steps += steps

    def count_eviction(self, reason: str, n: int = 1) -> None:
        with self._lock:
            self.evictions[reason] += n

    def render(self, *, live_sessions: int) -> str:
        with self._lock:
            out = ["# HELP lstmkit_requests_total HTTP requests by method, route and status code.",
                   "# TYPE lstmkit_requests_total counter"]
            for (m, r, c), n in sorted(self.requests.items()):
                out.append(f'lstmkit_requests_total{{method="{m}",route="{r}",code="{c}"}} {n}')
            out += ["# HELP lstmkit_request_duration_seconds Time from request to response, by route.",
                    "# TYPE lstmkit_request_duration_seconds histogram"]
            for r, h in sorted(self.latency.items()):
                out += h.lines("lstmkit_request_duration_seconds", f'route="{r}"')
            out += ["# HELP lstmkit_batch_size Session steps stacked into one batched model call.",
                    "# TYPE lstmkit_batch_size histogram"]
            out += self.batch.lines("lstmkit_batch_size")
            out += ["# HELP lstmkit_steps_total Time steps run for sessions.",
                    "# TYPE lstmkit_steps_total counter", f"lstmkit_steps_total {self.steps}",
                    "# HELP lstmkit_sessions_created_total Sessions created.",
                    "# TYPE lstmkit_sessions_created_total counter",
                    f"lstmkit_sessions_created_total {self.sessions_created}",
                    "# HELP lstmkit_live_sessions Sessions held now.",
                    "# TYPE lstmkit_live_sessions gauge", f"lstmkit_live_sessions {live_sessions}",
                    "# HELP lstmkit_session_evictions_total Sessions dropped by the store, by reason "
                    "(lru: max_sessions reached, ttl: idle too long).",
                    "# TYPE lstmkit_session_evictions_total counter"]
            for reason in sorted(set(self.evictions) | {"lru", "ttl"}):
                out.append(f'lstmkit_session_evictions_total{{reason="{reason}"}} {self.evictions[reason]}')
            out += ["# HELP lstmkit_generated_tokens_total Tokens generated by /v1/generate.",
                    "# TYPE lstmkit_generated_tokens_total counter",
                    f"lstmkit_generated_tokens_total {self.tokens_generated}",
                    "# HELP process_resident_memory_bytes Resident memory size in bytes.",
                    "# TYPE process_resident_memory_bytes gauge",
                    f"process_resident_memory_bytes {_rss_bytes()}"]
        return "\n".join(out) + "\n"
