"""Job checkpoints through the server: the language model (sessions, /v1/generate with SSE) and
the forecaster (predict, streaming forecasts)."""

from __future__ import annotations

import json

import httpx
import pytest
import torch
from torch.testing import assert_close

from lstmkit.data.text import EOS_ID, make_tokenizer
from lstmkit.decoding import beam_search, greedy, sample
from lstmkit.models.forecaster import Forecaster, ForecasterConfig
from lstmkit.models.language_model import LanguageModel, LanguageModelConfig, save_language_model
from lstmkit.train.checkpoint import save_checkpoint

TEXT = "the cat sat on the mat. the dog sat on the log. "


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory):
    torch.manual_seed(5)
    tok = make_tokenizer("char", [TEXT])
    model = LanguageModel(LanguageModelConfig(vocab_size=len(tok), embedding_dim=8, hidden_size=8,
                                              num_layers=2)).eval()
    d = tmp_path_factory.mktemp("lm")
    save_language_model(model, d / "model.pt")
    tok.save(d / "tokenizer.json")
    return d, model, tok


def sse(text: str) -> tuple[list[int], dict]:
    """Parse the event stream: the per-token data events and the final 'done' event."""
    tokens, done = [], None
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        if lines.get("event") == "done":
            done = json.loads(lines["data"])
        else:
            tokens.append(json.loads(lines["data"])["token"])
    return tokens, done


def test_generate_equals_lstmkit_decoding_and_streams_the_same_tokens(start, lm_dir):
    d, model, tok = lm_dir
    srv = start(path=d)
    prompt = "the ca"
    with torch.no_grad():
        last, state = model.prime(tok.encode(prompt))
        want_greedy = greedy(model.step, last, state, max_new_tokens=12, eos_id=EOS_ID)[0].tolist()
        want_sample = sample(model.step, last, state, max_new_tokens=12, temperature=0.8, top_k=5,
                             generator=torch.Generator().manual_seed(7), eos_id=EOS_ID)[0].tolist()
        want_beam = list(beam_search(model.step, last, state, beam_width=3, max_new_tokens=6,
                                     eos_id=EOS_ID)[0].tokens)
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        r = c.post("/v1/generate", json={"prompt": prompt, "max_new_tokens": 12, "strategy": "greedy"})
        assert r.status_code == 200, r.text
        assert r.json()["tokens"] == want_greedy and r.json()["text"] == tok.decode(want_greedy)
        body = {"prompt_ids": tok.encode(prompt), "max_new_tokens": 12, "strategy": "sample",
                "temperature": 0.8, "top_k": 5, "seed": 7}
        assert c.post("/v1/generate", json=body).json()["tokens"] == want_sample
        with c.stream("POST", "/v1/generate", json=body | {"stream": True}) as s:
            assert s.headers["content-type"].startswith("text/event-stream")
            streamed, done = sse(s.read().decode())
        assert streamed == want_sample and done["tokens"] == want_sample
        r = c.post("/v1/generate", json={"prompt": prompt, "max_new_tokens": 6, "strategy": "beam",
                                         "beam_width": 3})
        assert r.json()["tokens"] == want_beam
        for bad, field in [({"prompt": "a", "prompt_ids": [5]}, "prompt"),
                           ({"prompt": "a", "strategy": "nucleus"}, "strategy"),
                           ({"prompt": "a", "top_p": 1.5}, "top_p"),
                           ({"prompt": "a", "temperature": 0}, "temperature"),
                           ({"prompt_ids": [10**6]}, "prompt_ids"),
                           ({"prompt": "a", "max_new_tokens": 10**9}, "max_new_tokens")]:
            r = c.post("/v1/generate", json=bad)
            assert r.status_code == 422 and field in r.json()["detail"], (bad, r.text)


def test_language_model_sessions_give_the_offline_log_probs(start, lm_dir):
    d, model, tok = lm_dir
    srv = start(path=d)
    ids = tok.encode("the dog sat")
    with torch.no_grad():
        want = torch.log_softmax(model(torch.tensor([ids]))[0][0], dim=-1)  # (T, V)
    with httpx.Client(base_url=srv.url, timeout=20) as c:
        sid = c.post("/v1/sessions").json()["session_id"]
        a = c.post(f"/v1/sessions/{sid}/step", json={"inputs": ids[:4]}).json()["outputs"]
        b = c.post(f"/v1/sessions/{sid}/step", json={"inputs": ids[4:]}).json()["outputs"]
        assert_close(torch.tensor(a + b), want, rtol=1e-5, atol=1e-5)
        got = torch.tensor(c.post("/v1/predict", json={"inputs": [ids]}).json()["outputs"][0])
        assert_close(got, want, rtol=1e-5, atol=1e-5)
        r = c.post(f"/v1/sessions/{sid}/step", json={"inputs": [len(tok)]})
        assert r.status_code == 422 and "inputs.0" in r.json()["detail"]


def _forecaster(tmp_path, mode):
    torch.manual_seed(6)
    cfg = ForecasterConfig(input_size=3, horizon=2, mode=mode, hidden_size=6, num_layers=2)
    model = Forecaster(cfg).eval()
    # the layout of `lstmkit forecast`'s model.pt
    save_checkpoint(tmp_path / "model.pt", model=model.state_dict(), model_config=cfg,
                    series_spec={}, scaler={})
    return model


def test_forecaster_streams_the_forecast_of_every_prefix(start, tmp_path):
    model = _forecaster(tmp_path, "direct")
    srv = start(path=tmp_path)
    x = torch.randn(6, 3)
    with torch.no_grad():
        want = torch.stack([model(x[None, : t + 1])[0] for t in range(6)])  # (T, h)
    with httpx.Client(base_url=srv.url) as c:
        sid = c.post("/v1/sessions").json()["session_id"]
        got = c.post(f"/v1/sessions/{sid}/step", json={"inputs": x.tolist()}).json()["outputs"]
        assert_close(torch.tensor(got), want, rtol=1e-5, atol=1e-6)
        pred = c.post("/v1/predict", json={"inputs": [x.tolist()]}).json()["outputs"]
        assert_close(torch.tensor(pred[0]), want[-1], rtol=1e-5, atol=1e-6)


def test_a_recursive_forecaster_predicts_but_does_not_stream(start, tmp_path):
    model = _forecaster(tmp_path, "recursive")
    srv = start(path=tmp_path)
    x = torch.randn(1, 5, 3)
    with httpx.Client(base_url=srv.url) as c:
        r = c.post("/v1/sessions")
        assert r.status_code == 400 and "/v1/predict" in r.json()["detail"]
        pred = c.post("/v1/predict", json={"inputs": x.tolist()}).json()["outputs"]
        with torch.no_grad():
            assert_close(torch.tensor(pred), model(x), rtol=1e-5, atol=1e-6)
        assert c.post("/v1/generate", json={"prompt_ids": [1]}).status_code == 404


def test_a_checkpoint_loads_with_int8_step_weights_and_says_so(tmp_path, need_kernels):
    from lstmkit.serve.adapters import load_streaming_model

    model = _forecaster(tmp_path, "direct")
    full, int8 = (load_streaming_model(tmp_path, w) for w in ("full", "int8"))
    assert full.describe()["step_weights"] == "full" and int8.describe()["step_weights"] == "int8"
    x = torch.randn(2, 6, 3)
    lengths = torch.tensor([6, 6])
    y_full, _ = full.step(x, lengths, full.init_state(2))
    y_int8, _ = int8.step(x, lengths, int8.init_state(2))
    with torch.no_grad():
        want = model(x)  # (B, h): the forecast from the whole prefix
    assert_close(y_full[:, -1], want, rtol=1e-5, atol=1e-6)
    assert 0 < (y_int8[:, -1] - want).abs().max() < 3e-2  # quantised, within the step tolerance
