"""Session store: states in memory with a TTL, a maximum count and LRU eviction, and optional
persistence to SQLite so that a restarted server resumes every live session exactly.

Symbols: L layers, H hidden. A session holds one float32 state ``(2, L, H)`` (h, c), its
position (steps consumed) and its last-use time. Ids are 128 random bits (``secrets``).

The store is used from the event-loop thread only; the database (:class:`SessionDB`) is used
from the server's single model thread only, so each batched step's new states are committed
in one transaction (atomic: all of the batch or none) before any of its responses is sent.
States are stored as raw little-endian float32 bytes (no pickle anywhere).

>>> import torch
>>> t = [0.0]
>>> store = SessionStore((2, 1, 3), max_sessions=2, ttl=10.0, clock=lambda: t[0])
>>> a, b = store.create(), store.create()
>>> c = store.create()                          # full: the least recently used (a) goes
>>> store.get(a.id)
Traceback (most recent call last):
...
lstmkit.serve.store.SessionGone: session ... was evicted (least recently used; max_sessions=2)
>>> t[0] = 11.0; len(store.sweep()), len(store)  # both idle longer than the TTL
(2, 0)
"""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import Tensor


class SessionGone(LookupError):
    """Unknown, evicted or expired session id (the server answers 404 with this message)."""


class StoreFull(RuntimeError):
    """Every session is busy, so none can be evicted for a new one (503)."""


class Session:
    __slots__ = ("id", "state", "position", "created", "last_used", "lock", "waiting")

    def __init__(self, sid: str, state: Tensor, position: int, created: float, last_used: float) -> None:
        self.id, self.state, self.position = sid, state, position
        self.created, self.last_used = created, last_used
        self.lock: asyncio.Lock | None = None  # made on first use, inside the event loop
        self.waiting = 0  # requests queued or running on this session

    @property
    def busy(self) -> bool:
        return self.waiting > 0


def new_session_id() -> str:
    """128 random bits from the OS CSPRNG, as 32 hex characters."""
    return secrets.token_hex(16)


def _is_id(sid: str) -> bool:
    return len(sid) == 32 and all(ch in "0123456789abcdef" for ch in sid)


class SessionStore:
    """In-memory sessions in LRU order (least recently used first).

    ``ttl``: seconds a session may stay idle (None: forever). ``max_sessions``: when full, a new
    session evicts the least recently used idle one. ``on_evict(reason, n)`` is told of each
    eviction. ``clock`` gives wall-clock seconds (injectable so tests can move time)."""

    def __init__(self, state_shape: tuple[int, ...], *, max_sessions: int = 10_000,
                 ttl: float | None = 3600.0, clock: Callable[[], float] = time.time,
                 on_evict: Callable[[str, int], None] | None = None, remember: int = 65_536) -> None:
        if not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"max_sessions: expected an int >= 1, got {max_sessions!r}")
        if ttl is not None and not ttl > 0:
            raise ValueError(f"ttl: expected seconds > 0 or None, got {ttl!r}")
        self.state_shape = tuple(state_shape)
        self.max_sessions, self.ttl, self.clock = max_sessions, ttl, clock
        self.on_evict = on_evict
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._gone: OrderedDict[str, str] = OrderedDict()  # recent id -> why it is gone (bounded)
        self._remember = remember

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, sid: str) -> bool:
        return sid in self._sessions

    def ids(self) -> list[str]:
        return list(self._sessions)

    def peek(self, sid: str) -> Session | None:
        """The live session ``sid`` or None, without touching it or checking its TTL."""
        return self._sessions.get(sid)

    def drop(self, sid: str, why: str) -> None:
        """Forget ``sid``; later lookups of it say it ``was <why>``."""
        self._forget(sid, why)

    def _forget(self, sid: str, why: str) -> None:
        self._sessions.pop(sid, None)
        self._gone[sid] = why
        while len(self._gone) > self._remember:
            self._gone.popitem(last=False)

    def _expired(self, s: Session, now: float) -> bool:
        return self.ttl is not None and not s.busy and now - s.last_used > self.ttl

    def sweep(self) -> list[str]:
        """Drop sessions idle longer than the TTL; returns their ids."""
        if self.ttl is None:
            return []
        now, dropped = self.clock(), []
        for sid, s in list(self._sessions.items()):  # LRU order: stop at the first fresh one
            if now - s.last_used <= self.ttl:
                break
            if not s.busy:
                self._forget(sid, f"expired (idle longer than the TTL of {self.ttl:g} s)")
                dropped.append(sid)
        if dropped and self.on_evict:
            self.on_evict("ttl", len(dropped))
        return dropped

    def create(self) -> Session:
        return self.create_evicting()[0]

    def create_evicting(self) -> tuple[Session, list[str]]:
        """A new zero-state session; returns it and the ids dropped to make room (TTL or LRU)."""
        dropped = self.sweep()
        while len(self._sessions) >= self.max_sessions:
            victim = next((s for s in self._sessions.values() if not s.busy), None)
            if victim is None:
                raise StoreFull(f"sessions: all {self.max_sessions} sessions are busy; try again")
            self._forget(victim.id, f"evicted (least recently used; max_sessions={self.max_sessions})")
            dropped.append(victim.id)
            if self.on_evict:
                self.on_evict("lru", 1)
        now = self.clock()
        s = Session(new_session_id(), torch.zeros(self.state_shape), 0, now, now)
        self._sessions[s.id] = s
        return s, dropped

    def add(self, s: Session) -> None:
        """Put back a session read from the database (keeps LRU order if added oldest first)."""
        self._sessions[s.id] = s

    def get(self, sid: str, *, touch: bool = True) -> Session:
        """The live session ``sid`` (made most recently used), or ``SessionGone`` saying why not."""
        s = self._sessions.get(sid) if isinstance(sid, str) else None
        if s is None:
            why = self._gone.get(sid) if isinstance(sid, str) else None
            if why:
                raise SessionGone(f"session {sid} was {why}")
            if not isinstance(sid, str) or not _is_id(sid):
                raise SessionGone("session: not a session id (expected 32 hex characters from "
                                  "POST /v1/sessions)")
            raise SessionGone(f"session {sid} not found (never created here, deleted, or dropped "
                              f"long ago)")
        now = self.clock()
        if self._expired(s, now):
            self._forget(sid, f"expired (idle longer than the TTL of {self.ttl:g} s)")
            if self.on_evict:
                self.on_evict("ttl", 1)
            raise SessionGone(f"session {sid} was {self._gone[sid]}")
        if touch:
            s.last_used = now
            self._sessions.move_to_end(sid)
        return s

    def delete(self, sid: str) -> None:
        self.get(sid, touch=False)
        self._forget(sid, "deleted")


class SessionDB:
    """SQLite persistence of sessions (WAL journal; each call is one transaction).

    The database remembers the checkpoint fingerprint and state shape it was made for and refuses
    to resume sessions of another model."""

    def __init__(self, path: str, *, state_shape: tuple[int, ...], fingerprint: str) -> None:
        self.path, self.state_shape = str(path), tuple(state_shape)
        self.conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        with self.conn:
            self.conn.execute("BEGIN")
            self.conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.conn.execute("CREATE TABLE IF NOT EXISTS sessions (id TEXT PRIMARY KEY, "
                              "position INTEGER NOT NULL, created REAL NOT NULL, last_used REAL NOT NULL, "
                              "state BLOB NOT NULL)")
            want = {"fingerprint": fingerprint, "state_shape": ",".join(map(str, self.state_shape))}
            have = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
            for k, v in want.items():
                if k in have and have[k] != v:
                    raise ValueError(f"--db {self.path}: holds sessions of another model ({k} "
                                     f"{have[k][:16]} != {v[:16]}); use a new file")
                self.conn.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (k, v))

    def _blob(self, state: Tensor) -> bytes:
        return state.detach().to(torch.float32).contiguous().numpy().astype("<f4", copy=False).tobytes()

    def save(self, rows: Iterable[tuple], delete: Iterable[str] = ()) -> None:
        """Upsert ``rows`` (id, position, created, last_used, state) and delete the ids in
        ``delete``, in one transaction."""
        rows = list(rows)
        gone = [(sid,) for sid in delete]
        with self.conn:
            self.conn.execute("BEGIN")
            if gone:
                self.conn.executemany("DELETE FROM sessions WHERE id = ?", gone)
            if rows:
                self.conn.executemany("INSERT OR REPLACE INTO sessions VALUES (?, ?, ?, ?, ?)",
                                      [(i, p, c, u, self._blob(st)) for i, p, c, u, st in rows])

    def load(self) -> list[Session]:
        """Every stored session, least recently used first."""
        n = int(np.prod(self.state_shape))
        out = []
        for sid, pos, created, used, blob in self.conn.execute(
                "SELECT id, position, created, last_used, state FROM sessions ORDER BY last_used, id"):
            arr = np.frombuffer(blob, dtype="<f4")
            if arr.size != n:
                raise ValueError(f"--db {self.path}: session {sid} has {arr.size} state values, "
                                 f"expected {n}")
            out.append(Session(sid, torch.from_numpy(arr.reshape(self.state_shape).astype(np.float32)),
                               int(pos), float(created), float(used)))
        return out

    def close(self) -> None:
        self.conn.close()
