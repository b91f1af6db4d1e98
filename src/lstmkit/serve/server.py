"""Running the app: ``serve`` (blocking, what ``lstmkit serve`` calls) and ``BackgroundServer``
(a real uvicorn server on a loopback port in a thread, for tests and benchmarks).

>>> import torch, lstmkit as lk, httpx
>>> from lstmkit.serve.adapters import LayerModel
>>> with BackgroundServer(create_app(LayerModel(lk.LSTM(2, 3, batch_first=True)))) as srv:
...     httpx.get(srv.url + "/health").json()["status"]
'ok'
"""

from __future__ import annotations

import threading
import time

import uvicorn

from .adapters import checkpoint_fingerprint, load_streaming_model
from .app import ServeConfig, create_app

# idle keep-alive connections are closed after this long (uvicorn's 5 s default races clients
# whose own pool expiry is also 5 s, e.g. httpx: a request then meets a closing socket)
KEEP_ALIVE_S = 30


def build_app(checkpoint: str, config: ServeConfig | None = None, step_weights: str = "full"):
    """Load ``checkpoint`` (weights_only) and make its app (steps in ``step_weights`` precision)."""
    model = load_streaming_model(checkpoint, step_weights)
    return create_app(model, config, fingerprint=checkpoint_fingerprint(checkpoint))


def serve(checkpoint: str, host: str = "127.0.0.1", port: int = 8000,
          config: ServeConfig | None = None, *, log_level: str = "warning", access_log: bool = False,
          step_weights: str = "full") -> None:
    """Serve ``checkpoint`` until interrupted (uvicorn, one process)."""
    app = build_app(checkpoint, config, step_weights)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log,
                timeout_graceful_shutdown=5, timeout_keep_alive=KEEP_ALIVE_S)


class BackgroundServer:
    """A uvicorn server for ``app`` on ``host`` and a free port, in a daemon thread.

    ``with BackgroundServer(app) as srv: httpx.get(srv.url + "/health")``; leaving the block
    shuts it down (sessions persisted to the app's database survive into the next one)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, *, start_timeout: float = 20.0) -> None:
        self.config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                     lifespan="on", timeout_graceful_shutdown=2,
                                     timeout_keep_alive=KEEP_ALIVE_S)
        self.server = uvicorn.Server(self.config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="lstmkit-serve")
        self.start_timeout = start_timeout
        self.url = ""

    def start(self) -> BackgroundServer:
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() - t0 > self.start_timeout:
                raise RuntimeError("server: did not start (see the log above)")
            time.sleep(0.01)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
