"""Shared fixtures: tiny seeded checkpoints and a real server on a loopback port."""

from __future__ import annotations

import pytest
import torch

import lstmkit as lk
from lstmkit.models.checkpoints import save_model
from lstmkit.serve import BackgroundServer, ServeConfig, create_app, load_streaming_model
from lstmkit.serve.adapters import checkpoint_fingerprint

I, H, L = 3, 5, 2


class FakeClock:
    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="session")
def layer_path(tmp_path_factory):
    torch.manual_seed(0)
    lstm = lk.LSTM(I, H, L, batch_first=True)
    path = tmp_path_factory.mktemp("ckpt") / "layer.pt"
    save_model(path, lstm)
    return path


@pytest.fixture(scope="session")
def offline(layer_path):
    """The same weights as the served model, loaded independently: x (T, I) -> outputs (T, H)."""
    model = load_streaming_model(layer_path)

    def run(x):
        with torch.no_grad():
            return model.lstm(torch.as_tensor(x, dtype=torch.float32)[None])[0][0]

    return run


@pytest.fixture
def start(layer_path):
    """start(**config) -> a started BackgroundServer for the layer checkpoint (stopped at the end)."""
    servers = []

    def _start(path=None, clock=None, **kw):
        path = path or layer_path
        kw.setdefault("api_key_env", "")
        app = create_app(load_streaming_model(path), ServeConfig(**kw),
                         fingerprint=checkpoint_fingerprint(path), **({"clock": clock} if clock else {}))
        srv = BackgroundServer(app).start()
        servers.append(srv)
        return srv

    yield _start
    for s in servers:
        s.stop()
