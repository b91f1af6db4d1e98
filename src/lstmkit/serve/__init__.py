"""The streaming inference server: ``lstmkit serve CHECKPOINT``.

- ``adapters``: a checkpoint -> a :class:`StreamingModel` (``init_state``/``step``/``predict``).
- ``store``: sessions in memory (TTL, max count, LRU eviction) and their SQLite persistence.
- ``batching``: the dynamic batcher (steps of different sessions -> one batched step).
- ``app``: the FastAPI app (``create_app``, ``ServeConfig``); ``metrics``: Prometheus text.
- ``server``: ``serve`` (blocking) and ``BackgroundServer`` (tests, benchmarks).
"""

from .adapters import StreamingModel, load_streaming_model
from .app import ServeConfig, create_app
from .server import BackgroundServer, build_app, serve

__all__ = ["StreamingModel", "load_streaming_model", "ServeConfig",
           "create_app", "BackgroundServer", "build_app", "serve"]
