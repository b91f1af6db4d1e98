"""The HTTP API (FastAPI): stateless predict, stateful sessions, LM generation, health, metrics.

Symbols: B batch, T steps, I input features, O outputs per step, h horizon, V vocabulary.

Routes (all JSON; ``/v1/*`` and ``/metrics`` need ``Authorization: Bearer KEY`` when the server
was started with an API key in its environment variable):

- ``POST /v1/predict``: whole sequences (B, T, I) -> the model's offline outputs.
- ``POST /v1/sessions`` -> a session id (128 random bits); ``GET``/``DELETE /v1/sessions/{id}``;
  ``POST /v1/sessions/{id}/step`` with T >= 1 new steps -> their outputs; ``.../reset``.
- ``POST /v1/generate`` (language models): decoding with ``lstmkit.decoding``'s options, the
  tokens streamed as server-sent events when ``stream`` is true.
- ``GET /health``, ``GET /metrics`` (Prometheus text), ``GET /openapi.json``, ``GET /docs``.

Errors: 400 invalid JSON, 401 missing/wrong API key, 404 unknown/evicted/expired session,
409 ``position`` does not match the session (a concurrent or replayed step), 413 body too
large, 422 a field has the wrong shape/type/value (the field is named), 429 too many steps
queued on one session, 503 every session busy.

(No ``from __future__ import annotations`` here: FastAPI reads the route annotations, some of
which are built inside ``create_app`` from the model's shapes.)
"""


import asyncio
import hmac
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict, dataclass
from functools import partial
from typing import Annotated, Any, Literal

import torch
from fastapi import Depends, FastAPI, HTTPException, Path
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field, create_model

from .. import __version__
from .adapters import LanguageModelAdapter, StreamingModel
from .batching import DynamicBatcher
from .metrics import Metrics
from .store import Session, SessionDB, SessionGone, SessionStore, StoreFull


@dataclass
class ServeConfig:
    """Server settings (every ``lstmkit serve`` flag is a field of the same name)."""

    window_ms: float = 2.0  # dynamic batching: wait up to this long to fill a batch
    max_batch: int = 64  # most session steps in one batched call (1 = batching off)
    max_sessions: int = 10_000
    ttl: float | None = 3600.0  # seconds a session may stay idle (None: forever)
    db: str | None = None  # SQLite file for session persistence (None: memory only)
    max_body_bytes: int = 1 << 20
    max_steps: int = 1024  # steps per request (session step, predict sequence, prompt tokens)
    max_predict_batch: int = 64
    max_new_tokens: int = 1024
    max_pending: int = 64  # requests queued on one session before 429
    api_key_env: str = "LSTMKIT_API_KEY"  # the bearer token is read from this variable, if set
    threads: int = 1  # torch threads for the model
    model_thread: bool = False  # run the model in its own thread instead of on the event loop
    sweep_s: float = 10.0  # how often idle sessions are swept out

    def __post_init__(self) -> None:
        for name in ("max_batch", "max_sessions", "max_body_bytes", "max_steps", "max_predict_batch",
                     "max_new_tokens", "max_pending", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {v!r}")
        if not self.window_ms >= 0:
            raise ValueError(f"window_ms: expected >= 0, got {self.window_ms!r}")
        if self.ttl is not None and not self.ttl > 0:
            raise ValueError(f"ttl: expected seconds > 0 or None, got {self.ttl!r}")


# -- errors ---------------------------------------------------------------------------------
def _field_error(loc: tuple, msg: str) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", *loc), "msg": msg}])


def _loc(loc) -> str:
    return ".".join(str(p) for p in loc)


async def _validation_handler(request, exc: RequestValidationError):
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()][:20]
    bad_json = next((e for e in errors if e["type"] == "json_invalid"), None)
    if bad_json is not None:
        return JSONResponse({"detail": f"invalid JSON: {bad_json['msg']}", "errors": errors}, 400)
    first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
    return JSONResponse({"detail": f"{_loc(first['loc'])}: {first['msg']}", "errors": errors}, 422)


async def _http_handler(request, exc: HTTPException):
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))


# -- the guard: API key and body size, before anything is parsed ----------------------------------
class Guard:
    """ASGI middleware: bearer-token check (constant-time), body-size limit, request metrics."""

    def __init__(self, app, *, api_key: str | None, max_body_bytes: int, metrics: Metrics) -> None:
        self.app, self.max_body, self.metrics = app, max_body_bytes, metrics
        self.key = api_key.encode() if api_key else None

    @staticmethod
    async def _reply(send, status: int, detail: str, headers=()) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()), *headers]})
        await send({"type": "http.response.body", "body": body})

    def _authorised(self, scope) -> tuple[bool, str]:
        auth = dict(scope["headers"]).get(b"authorization", b"")
        scheme, _, token = auth.partition(b" ")
        if not auth or scheme.lower() != b"bearer" or not token:
            return False, "missing API key: send 'Authorization: Bearer <key>'"
        if not hmac.compare_digest(token.strip(), self.key):
            return False, "invalid API key"
        return True, ""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = [500]

        async def send_counted(msg):
            if msg["type"] == "http.response.start":
                status[0] = msg["status"]
            await send(msg)

        path = scope["path"]
        try:
            if self.key is not None and (path.startswith("/v1/") or path == "/metrics"):
                ok, why = self._authorised(scope)
                if not ok:
                    return await self._reply(send_counted, 401, why, [(b"www-authenticate", b"Bearer")])
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None:
                try:
                    n = int(length)
                except ValueError:
                    return await self._reply(send_counted, 400, "content-length: not an integer")
                if n > self.max_body:
                    return await self._reply(send_counted, 413, f"body: {n} bytes is over the limit "
                                             f"of {self.max_body} bytes")
            if scope["method"] in ("POST", "PUT", "PATCH"):
                chunks, size, more = [], 0, True
                while more:
                    msg = await receive()
                    if msg["type"] != "http.request":
                        return
                    chunks.append(msg.get("body", b""))
                    size += len(chunks[-1])
                    more = msg.get("more_body", False)
                    if size > self.max_body:
                        return await self._reply(send_counted, 413, f"body: over the limit of "
                                                 f"{self.max_body} bytes")
                body, replayed = b"".join(chunks), [False]

                async def replay():
                    if not replayed[0]:
                        replayed[0] = True
                        return {"type": "http.request", "body": body, "more_body": False}
                    return await receive()

                return await self.app(scope, replay, send_counted)
            return await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "other"
            self.metrics.count_request(scope["method"], label, status[0], time.perf_counter() - t0)


# -- request / response schemas ---------------------------------------------------------------
class SessionInfo(BaseModel):
    session_id: str = Field(description="The session's id: 128 random bits as 32 hex characters. "
                            "Whoever holds it can step, read, reset and delete the session.")
    position: int = Field(description="Steps the session has consumed so far.")
    idle_ttl_s: float | None = Field(description="Seconds of inactivity after which the session "
                                     "expires (null: never).")


class StepResponse(BaseModel):
    session_id: str = Field(description="The session stepped.")
    position: int = Field(description="Steps consumed after this request.")
    outputs: list[list[float]] = Field(description="(T, O): the model's output after each of the "
                                       "T steps (layer: top-layer h; forecaster: the next "
                                       "horizon values; language model: log-probs of the next token).")


class PredictResponse(BaseModel):
    outputs: list = Field(description="The model's offline outputs for each sequence: layer (B, T, H), "
                          "forecaster (B, h), language model (B, T, V) log-probs.")


class GenerateResponse(BaseModel):
    tokens: list[int] = Field(description="The generated token ids (the eos id included if emitted).")
    text: str | None = Field(description="The generated text (null without a tokenizer).")
    strategy: str = Field(description="The decoding strategy used.")


class Health(BaseModel):
    status: str = Field(description="'ok' when the server answers.")
    version: str = Field(description="lstmkit version.")
    model: dict = Field(description="What is served: kind, input kind and size, output size, layers, "
                        "hidden size, whether it can stream, the step's weight precision.")
    sessions: int = Field(description="Live sessions.")
    config: dict = Field(description="The server's settings (batching window, limits, TTL, persistence).")
    auth: bool = Field(description="Whether /v1/* needs a bearer API key.")


_ERRORS = {400: {"description": "Invalid JSON"}, 401: {"description": "Missing or wrong API key"},
           413: {"description": "Body over the size limit"},
           422: {"description": "A field has a wrong shape, type or value (named in 'detail')"}}
_SESSION_ERRORS = {**_ERRORS, 404: {"description": "Unknown, evicted, expired or deleted session"}}


def _schemas(model: StreamingModel, cfg: ServeConfig):
    """Request bodies whose shapes come from the model (so /openapi.json states them)."""
    if model.input_kind == "tokens":
        V = model.input_size
        Item = Annotated[int, Field(strict=True, ge=0, lt=V, description=f"a token id in [0, {V})")]
        Steps = Annotated[list[Item], Field(min_length=1, max_length=cfg.max_steps, description=(
            f"(T,): T token ids, 1 <= T <= {cfg.max_steps}"))]
        step_doc = f"(T,) token ids in [0, {V}), 1 <= T <= {cfg.max_steps}, in order."
    else:
        Num = Annotated[float, Field(strict=True, allow_inf_nan=False, description="a finite number")]
        I = model.input_size  # noqa: E741
        Item = Annotated[list[Num], Field(min_length=I, max_length=I, description=f"one step: {I} features")]
        Steps = Annotated[list[Item], Field(min_length=1, max_length=cfg.max_steps, description=(
            f"(T, {I}): T steps of {I} finite numbers, 1 <= T <= {cfg.max_steps}"))]
        step_doc = f"(T, {I}): T new steps of {I} finite input features, 1 <= T <= {cfg.max_steps}, in order."
    Position = Annotated[int | None, Field(default=None, ge=0, description=(
        "Optional: the position the client believes the session is at (its steps so far). When "
        "given and different, the step is refused with 409 (a concurrent or replayed request), "
        "so retries are safe."))]
    StepRequest = create_model("StepRequest", inputs=(Steps, Field(description=step_doc)),
                               position=(Position, None))
    Batch = Annotated[list[Steps], Field(min_length=1, max_length=cfg.max_predict_batch)]
    fut_doc = ("Optional (B, h, K) known-future features (forecasters in recursive/seq2seq mode "
               "with n_future > 0).")
    Num = Annotated[float, Field(strict=True, allow_inf_nan=False)]
    PredictRequest = create_model(
        "PredictRequest",
        inputs=(Batch, Field(description=f"(B, T, ...): B <= {cfg.max_predict_batch} whole sequences of "
                             f"equal length T, each step as in StepRequest.inputs.")),
        future=(list[list[list[Num]]] | None, Field(default=None, description=fut_doc)))
    return StepRequest, PredictRequest, Item


def _generate_schema(model: StreamingModel, cfg: ServeConfig):
    V = model.input_size
    Tok = Annotated[int, Field(strict=True, ge=0, lt=V)]
    Prob = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
    return create_model(
        "GenerateRequest",
        prompt=(str | None, Field(default=None, min_length=1, max_length=cfg.max_steps * 8, description=(
            "The prompt text (needs the tokenizer.json of the checkpoint); or give prompt_ids."))),
        prompt_ids=(list[Tok] | None, Field(default=None, min_length=1, max_length=cfg.max_steps,
                                            description=f"The prompt as token ids in [0, {V}).")),
        max_new_tokens=(int, Field(default=64, ge=0, le=cfg.max_new_tokens,
                                   description="Most tokens to generate.")),
        min_new_tokens=(int, Field(default=0, ge=0, description="Tokens before eos may be emitted.")),
        strategy=(Literal["greedy", "sample", "beam"], Field(
            default="sample",
            description="lstmkit.decoding: greedy, sample (temperature/top-k/top-p) or beam.")),
        temperature=(float, Field(default=1.0, gt=0, le=100, allow_inf_nan=False,
                                  description="sample: divides the log-probs.")),
        top_k=(int | None, Field(default=None, ge=1, description="sample: keep the k most likely.")),
        top_p=(Prob | None, Field(default=None, description="sample: nucleus mass in (0, 1].")),
        beam_width=(int, Field(default=4, ge=1, le=32, description="beam: hypotheses kept.")),
        seed=(int, Field(default=0, ge=0, lt=2**63,
                         description="sample: the generator's seed (same seed, same text).")),
        stop_at_eos=(bool, Field(default=True, description="Stop when the eos token is generated.")),
        stream=(bool, Field(default=False, description=(
            "Send the tokens as server-sent events (text/event-stream): one 'data: {token, text}' "
            "event per token, then 'event: done' with the whole result. Beam search sends its best "
            "hypothesis once it is found."))),
    )


class _StepJob:
    __slots__ = ("session", "x")

    def __init__(self, session: Session, x: torch.Tensor) -> None:
        self.session, self.x = session, x


# -- the app --------------------------------------------------------------------------------
def create_app(model: StreamingModel, config: ServeConfig | None = None, *, fingerprint: str = "",
               clock: Callable[[], float] = time.time) -> FastAPI:
    """The FastAPI app serving ``model``. ``fingerprint`` ties a session database to the weights;
    ``clock`` (wall-clock seconds) drives TTLs and can be faked in tests."""
    cfg = config or ServeConfig()
    api_key = (os.environ.get(cfg.api_key_env) or None) if cfg.api_key_env else None  # "" = off
    metrics = Metrics()
    store = SessionStore(model.state_shape, max_sessions=cfg.max_sessions, ttl=cfg.ttl, clock=clock,
                         on_evict=metrics.count_eviction)
    # the model (and the database) run on one thread: the event loop's, or a dedicated one
    executor = ThreadPoolExecutor(1, thread_name_prefix="lstmkit-model") if cfg.model_thread else None
    ctx: dict[str, Any] = {"db": None}

    def run_steps(jobs: list[_StepJob]):
        """Model thread: one batched step for sessions of different clients, then one commit."""
        B = len(jobs)
        Ts = [j.x.shape[0] for j in jobs]
        Tmax = max(Ts)
        if model.input_kind == "tokens":
            x = torch.zeros(B, Tmax, dtype=torch.long)  # (B, T)
        else:
            x = torch.zeros(B, Tmax, model.input_size)  # (B, T, I)
        for b, j in enumerate(jobs):
            x[b, : Ts[b]] = j.x
        state = torch.stack([j.session.state for j in jobs])  # (B, 2, L, H)
        y, new = model.step(x, torch.tensor(Ts), state)  # (B, T, O), (B, 2, L, H)
        now = clock()
        rows, outs = [], []
        for b, j in enumerate(jobs):
            s = j.session
            rows.append((s.id, s.position + Ts[b], s.created, now, new[b].clone()))
            outs.append(y[b, : Ts[b]].tolist())
        if ctx["db"] is not None:
            ctx["db"].save(rows)
        for j, (_, pos, _, _, st) in zip(jobs, rows):  # memory == database from here on
            j.session.state, j.session.position, j.session.last_used = st, pos, now
        metrics.observe_batch(B, sum(Ts))
        return [(o, r[1]) for o, r in zip(outs, rows)]

    batcher = DynamicBatcher(run_steps, executor, window_s=cfg.window_ms / 1000.0, max_batch=cfg.max_batch)

    async def in_model_thread(fn, *args):
        if executor is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(executor, partial(fn, *args))

    async def persist(rows=(), delete=()):
        if ctx["db"] is not None and (rows or delete):
            await in_model_thread(ctx["db"].save, list(rows), list(delete))

    def row(s: Session):
        return (s.id, s.position, s.created, s.last_used, s.state)

    async def sweeper():
        while True:
            await asyncio.sleep(cfg.sweep_s)
            dropped = store.sweep()
            await persist(delete=dropped)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await in_model_thread(torch.set_num_threads, cfg.threads)
        if cfg.db:
            db = await in_model_thread(partial(SessionDB, cfg.db, state_shape=model.state_shape,
                                               fingerprint=fingerprint))
            ctx["db"] = db
            saved = await in_model_thread(db.load)
            now, stale = clock(), []
            for s in saved:
                if cfg.ttl is not None and now - s.last_used > cfg.ttl:
                    stale.append(s.id)
                else:
                    store.add(s)
            while len(store) > cfg.max_sessions:  # restarted with a smaller limit: keep the newest
                stale.append(store.ids()[0])
                store.drop(stale[-1], "evicted (least recently used; max_sessions lowered)")
            await persist(delete=stale)
        batcher.start()
        sweep_task = asyncio.get_running_loop().create_task(sweeper())
        try:
            yield
        finally:
            sweep_task.cancel()
            with suppress(asyncio.CancelledError):
                await sweep_task
            await batcher.stop()
            if ctx["db"] is not None:
                await in_model_thread(ctx["db"].close)
            if executor is not None:
                executor.shutdown(wait=True)

    app = FastAPI(title="lstmkit serve", version=__version__, lifespan=lifespan,
                  description="Stateful streaming inference for lstmkit checkpoints: sessions keep "
                  "their (h, c) between calls; steps of different sessions arriving within a short "
                  "window are stacked into one batched step. Errors: 400 invalid JSON, 401 API key, "
                  "404 unknown/evicted/expired session, 409 position mismatch, 413 body too large, "
                  "422 a named field is invalid, 429 too many requests queued on one session.")
    app.add_middleware(Guard, api_key=api_key, max_body_bytes=cfg.max_body_bytes, metrics=metrics)
    app.add_exception_handler(RequestValidationError, _validation_handler)
    app.add_exception_handler(HTTPException, _http_handler)
    app.state.store, app.state.metrics, app.state.config, app.state.model = store, metrics, cfg, model
    bearer = [Depends(HTTPBearer(auto_error=False, description="Needed only when the server has an "
                                 f"API key (environment variable {cfg.api_key_env})."))]
    StepRequest, PredictRequest, _ = _schemas(model, cfg)
    SessionId = Annotated[str, Path(max_length=64, description="The id returned by POST /v1/sessions.")]

    def info(s: Session) -> SessionInfo:
        return SessionInfo(session_id=s.id, position=s.position, idle_ttl_s=cfg.ttl)

    def get(sid: str) -> Session:
        try:
            return store.get(sid)
        except SessionGone as e:
            raise HTTPException(404, str(e)) from None

    @asynccontextmanager
    async def exclusive(sid: str):
        """Hold session ``sid`` (FIFO per session: requests run in arrival order, one at a time)."""
        s = get(sid)
        if s.waiting >= cfg.max_pending:
            raise HTTPException(429, f"session {sid}: {s.waiting} requests already queued "
                                f"(max_pending={cfg.max_pending})")
        if s.lock is None:
            s.lock = asyncio.Lock()
        s.waiting += 1
        try:
            async with s.lock:
                if store.peek(sid) is not s:  # deleted/evicted while we waited
                    get(sid)
                    raise HTTPException(404, f"session {sid} was deleted")
                yield s
        finally:
            s.waiting -= 1

    @app.get("/health", response_model=Health, tags=["ops"])
    async def health():
        """Liveness and what is served (no API key needed)."""
        return Health(status="ok", version=__version__, model=model.describe(), sessions=len(store),
                      config=asdict(cfg) | {"db": bool(cfg.db)}, auth=api_key is not None)

    @app.get("/metrics", response_class=PlainTextResponse, tags=["ops"], dependencies=bearer)
    async def metrics_text():
        """Prometheus text format: requests, latency histograms, batch sizes, live sessions, evictions."""
        return PlainTextResponse(metrics.render(live_sessions=len(store)),
                                 media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS, tags=["stateless"],
              dependencies=bearer)
    async def predict(body: PredictRequest):
        """Stateless: whole sequences in, the model's offline outputs out (no session touched)."""
        T = len(body.inputs[0])
        for b, seq in enumerate(body.inputs):
            if len(seq) != T:
                raise _field_error(("inputs", b), f"expected every sequence to have T={T} steps "
                                   f"like inputs[0], got {len(seq)}")
        dtype = torch.long if model.input_kind == "tokens" else torch.float32
        x = torch.tensor(body.inputs, dtype=dtype)
        fut = None
        if body.future is not None:
            try:
                fut = torch.tensor(body.future, dtype=torch.float32)
            except ValueError as e:
                raise _field_error(("future",), f"expected a (B, h, K) array: {e}") from None

        def run():
            try:
                return model.predict(x, fut).tolist()
            except ValueError as e:
                return e

        out = await in_model_thread(run)
        if isinstance(out, ValueError):
            raise _field_error(("future" if "future" in str(out) else "inputs",), str(out))
        return JSONResponse({"outputs": out})

    @app.post("/v1/sessions", response_model=SessionInfo, status_code=201, responses=_ERRORS,
              tags=["sessions"], dependencies=bearer)
    async def create_session():
        """A new session starting from the zero state. Keep its id: it is the only handle."""
        if model.streaming_error:
            raise HTTPException(400, model.streaming_error)
        try:
            s, dropped = store.create_evicting()
        except StoreFull as e:
            raise HTTPException(503, str(e)) from None
        metrics.sessions_created += 1
        await persist([row(s)], dropped)
        return JSONResponse(info(s).model_dump(), 201)

    @app.get("/v1/sessions/{session_id}", response_model=SessionInfo, responses=_SESSION_ERRORS,
             tags=["sessions"], dependencies=bearer)
    async def read_session(session_id: SessionId):
        """The session's position (also refreshes its TTL)."""
        return info(get(session_id))

    @app.post("/v1/sessions/{session_id}/step", response_model=StepResponse, tags=["sessions"],
              dependencies=bearer,
              responses={**_SESSION_ERRORS, 409: {"description": "position mismatch"},
                         429: {"description": "too many requests queued on the session"}})
    async def step(session_id: SessionId, body: StepRequest):
        """Feed T >= 1 new steps; get the output after each. Requests on one session run in
        arrival order, never concurrently; requests on different sessions are batched."""
        dtype = torch.long if model.input_kind == "tokens" else torch.float32
        x = torch.tensor(body.inputs, dtype=dtype)  # (T, I) or (T,)
        async with exclusive(session_id) as s:
            if body.position is not None and body.position != s.position:
                raise HTTPException(409, f"position: the session is at {s.position}, the request "
                                    f"says {body.position} (a concurrent or replayed step)")
            fut = batcher.enqueue(_StepJob(s, x))
            try:
                outs, pos = await asyncio.shield(fut)
            except asyncio.CancelledError:  # the client left: still hold the session until done
                await asyncio.wait([fut])
                raise
        return JSONResponse({"session_id": session_id, "position": pos, "outputs": outs})

    @app.post("/v1/sessions/{session_id}/reset", response_model=SessionInfo, responses=_SESSION_ERRORS,
              tags=["sessions"], dependencies=bearer)
    async def reset(session_id: SessionId):
        """Back to the zero state and position 0 (same id)."""
        async with exclusive(session_id) as s:
            s.state, s.position, s.last_used = torch.zeros(model.state_shape), 0, clock()
            await persist([row(s)])
            return info(s)

    @app.delete("/v1/sessions/{session_id}", status_code=204, responses=_SESSION_ERRORS,
                tags=["sessions"], dependencies=bearer)
    async def delete(session_id: SessionId):
        """Forget the session (after any step already queued on it)."""
        async with exclusive(session_id):
            store.delete(session_id)
            await persist(delete=[session_id])
        return PlainTextResponse(status_code=204)

    if isinstance(model, LanguageModelAdapter):
        _add_generate(app, model, cfg, metrics, in_model_thread, bearer)
    return app


def _add_generate(app: FastAPI, model: LanguageModelAdapter, cfg: ServeConfig, metrics: Metrics,
                  in_model_thread, bearer) -> None:
    from ..data.text import EOS_ID
    from ..decoding import beam_search, greedy, sample

    GenerateRequest = _generate_schema(model, cfg)
    lm, tok = model.model, model.tokenizer

    def text_of(ids: list[int]) -> str | None:
        return tok.decode(ids) if tok is not None else None

    @app.post("/v1/generate", response_model=GenerateResponse, responses=_ERRORS, tags=["generate"],
              dependencies=bearer)
    async def generate(body: GenerateRequest):
        """Decode from a prompt with lstmkit.decoding (greedy, sampling, beam); optionally streamed
        as server-sent events."""
        if (body.prompt is None) == (body.prompt_ids is None):
            raise _field_error(("prompt",), "expected exactly one of prompt (text) and prompt_ids")
        if body.prompt is not None:
            if tok is None:
                raise _field_error(("prompt",), "this checkpoint has no tokenizer.json; send prompt_ids")
            ids = tok.encode(body.prompt)
            if len(ids) > cfg.max_steps:
                raise _field_error(("prompt",), f"{len(ids)} tokens is over max_steps={cfg.max_steps}")
        else:
            ids = list(body.prompt_ids)
        if body.min_new_tokens > body.max_new_tokens:
            raise _field_error(("min_new_tokens",), f"expected <= max_new_tokens={body.max_new_tokens}, "
                               f"got {body.min_new_tokens}")
        eos = EOS_ID if body.stop_at_eos else None
        gen = torch.Generator().manual_seed(body.seed)

        def start():
            with torch.no_grad():
                return lm.prime(ids)

        def one(last, state, t):
            """One token with lstmkit.decoding (max_new_tokens=1), carrying the state on."""
            kept = {}

            def step_fn(tokens, hx):
                lp, hx = lm.step(tokens, hx)
                kept["state"] = hx
                return lp, hx

            hold = t < body.min_new_tokens and eos is not None  # eos not allowed yet
            kw = dict(max_new_tokens=1, eos_id=eos, min_new_tokens=1 if hold else 0)
            with torch.no_grad():
                if body.strategy == "greedy":
                    nxt = greedy(step_fn, last, state, **kw)
                else:
                    nxt = sample(step_fn, last, state, temperature=body.temperature, top_k=body.top_k,
                                 top_p=body.top_p, generator=gen, **kw)
            return nxt[:, 0], kept["state"]  # (1,)

        def beam(last, state):
            with torch.no_grad():
                hyps = beam_search(lm.step, last, state, beam_width=body.beam_width,
                                   max_new_tokens=body.max_new_tokens, eos_id=eos,
                                   min_new_tokens=body.min_new_tokens)
            return list(hyps[0].tokens)

        async def tokens():
            last, state = await in_model_thread(start)
            if body.strategy == "beam":
                for t in await in_model_thread(beam, last, state):
                    yield int(t)
                return
            for t in range(body.max_new_tokens):
                last, state = await in_model_thread(one, last, state, t)
                yield int(last[0])
                if eos is not None and int(last[0]) == eos:
                    return

        if not body.stream:
            out = [t async for t in tokens()]
            metrics.tokens_generated += len(out)
            return JSONResponse({"tokens": out, "text": text_of(out), "strategy": body.strategy})

        async def events():
            out = []
            async for t in tokens():
                out.append(t)
                metrics.tokens_generated += 1
                yield f"data: {json.dumps({'token': t, 'text': text_of([t])})}\n\n"
            done = {"tokens": out, "text": text_of(out), "strategy": body.strategy}
            yield f"event: done\ndata: {json.dumps(done)}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})
