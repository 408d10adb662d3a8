"""OpenAI and Ollama backends against a local HTTP server that speaks their APIs.

The fake servers embed with the real MiniLM model (the `local_embedder` fixture), so vectors are
real; what is checked is the client side: batching, `dimensions`, retries, errors.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from essearch.embedders import create_embedder
from essearch.embedders.ollama_backend import OllamaEmbedder
from essearch.embedders.openai_backend import MAX_INPUTS_PER_REQUEST, OpenAIEmbedder
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.settings import EmbedderSettings

API_KEY = "sk-test-0123456789abcdefSECRET"


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class FakeServer:
    """Records requests; answers with real embeddings, scripted failures first."""

    def __init__(self, embedder: Any) -> None:
        self.embedder = embedder
        self.requests: list[dict[str, Any]] = []
        self.failures: list[Response] = []
        self.short_text: str | None = None  # its vector comes back one value short

    def vectors(self, texts: list[str], dimensions: int | None) -> list[list[float]]:
        vectors = self.embedder.embed_documents(texts)
        if dimensions:  # like text-embedding-3: shorten, then renormalise
            vectors = [v[:dimensions] for v in vectors]
            vectors = [[x / math.sqrt(dot(v, v)) for x in v] for v in vectors]
        vectors = [
            v[:-1] if t == self.short_text else v for t, v in zip(texts, vectors, strict=True)
        ]
        return vectors

    def openai(self, request: Request) -> Response:
        body = json.loads(request.data)
        self.requests.append({"body": body, "headers": dict(request.headers)})
        if self.failures:
            return self.failures.pop(0)
        texts = body["input"]
        data = [
            {"object": "embedding", "index": i, "embedding": v}
            for i, v in enumerate(self.vectors(texts, body.get("dimensions")))
        ]
        data.reverse()  # the API does not promise order; the client sorts by index
        answer = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": 3, "total_tokens": 3},
        }
        return Response(json.dumps(answer), content_type="application/json")

    def ollama(self, request: Request) -> Response:
        body = json.loads(request.data)
        self.requests.append({"body": body, "headers": dict(request.headers)})
        if self.failures:
            return self.failures.pop(0)
        if body["model"] == "missing-model":
            error = {"error": f'model "{body["model"]}" not found, try pulling it first'}
            return Response(json.dumps(error), status=404, content_type="application/json")
        answer = {
            "model": body["model"],
            "embeddings": self.vectors(body["input"], body.get("dimensions")),
            "total_duration": 1,
            "load_duration": 1,
            "prompt_eval_count": 3,
        }
        return Response(json.dumps(answer), content_type="application/json")


def json_response(status: int, payload: dict, headers: dict | None = None) -> Response:
    return Response(
        json.dumps(payload), status=status, headers=headers or {}, content_type="application/json"
    )


@pytest.fixture
def fake(local_embedder, httpserver: HTTPServer) -> FakeServer:
    server = FakeServer(local_embedder)
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(server.openai)
    httpserver.expect_request("/api/embed", method="POST").respond_with_handler(server.ollama)
    return server


@pytest.fixture
def openai_embedder(httpserver: HTTPServer, fake: FakeServer) -> OpenAIEmbedder:
    embedder = OpenAIEmbedder(
        "text-embedding-3-small",
        api_key=API_KEY,
        base_url=httpserver.url_for("/v1"),
        batch_size=2,
        concurrency=2,
        max_retries=3,
        retry_base_delay=0.01,
    )
    yield embedder
    embedder.close()


@pytest.fixture
def ollama_embedder(httpserver: HTTPServer, fake: FakeServer) -> OllamaEmbedder:
    embedder = OllamaEmbedder(
        "all-minilm",
        host=httpserver.url_for("/"),
        keep_alive="5m",
        batch_size=2,
        max_retries=3,
        retry_base_delay=0.01,
    )
    yield embedder
    embedder.close()


TEXTS = ["first text", "second text", "third text", "fourth text", "fifth text"]


# -- OpenAI --------------------------------------------------------------------------------
def test_openai_batches_and_returns_real_vectors(openai_embedder, fake, local_embedder) -> None:
    vectors = openai_embedder.embed_documents(TEXTS)
    # two batches in flight at once (concurrency=2), so the server sees them in any order
    assert sorted(len(r["body"]["input"]) for r in fake.requests) == [1, 2, 2]
    assert sorted(t for r in fake.requests for t in r["body"]["input"]) == sorted(TEXTS)
    assert all("dimensions" not in r["body"] for r in fake.requests)
    assert fake.requests[0]["headers"]["Authorization"] == f"Bearer {API_KEY}"
    expected = local_embedder.embed_documents(TEXTS)
    for got, want in zip(vectors, expected, strict=True):  # order kept despite reversed data
        assert dot(got, want) > 0.9999
    assert openai_embedder.dims == 384  # learned from the first answer, no extra call
    assert len(fake.requests) == 3


def test_openai_dimensions_sent(httpserver, fake) -> None:
    embedder = create_embedder(
        EmbedderSettings(
            provider="openai",
            model="text-embedding-3-large",
            base_url=httpserver.url_for("/v1"),
            api_key=API_KEY,
            dimensions=64,
            organization="org-123",
        )
    )
    assert embedder.dims == 64  # declared: no probe request
    assert fake.requests == []
    vector = embedder.embed_query("shortened")
    assert len(vector) == 64
    assert fake.requests[0]["body"]["dimensions"] == 64
    assert fake.requests[0]["body"]["model"] == "text-embedding-3-large"
    assert fake.requests[0]["headers"]["Openai-Organization"] == "org-123"
    assert embedder.info.dims == 64


def test_openai_dims_probe_is_one_call_then_cached(openai_embedder, fake) -> None:
    assert openai_embedder.dims == 384
    assert openai_embedder.dims == 384
    assert len(fake.requests) == 1


def test_openai_429_with_retry_after_is_retried(openai_embedder, fake) -> None:
    error = {"error": {"message": "Rate limit reached", "type": "requests"}}
    fake.failures = [json_response(429, error, {"Retry-After": "1"})]
    started = time.monotonic()
    vectors = openai_embedder.embed_documents(TEXTS[:2])
    assert time.monotonic() - started >= 0.9  # waited as the server asked
    assert len(vectors) == 2 and len(fake.requests) == 2
    assert fake.requests[0]["body"] == fake.requests[1]["body"]


def test_openai_5xx_retried_then_gives_up(openai_embedder, fake) -> None:
    fake.failures = [json_response(503, {"error": {"message": "overloaded"}})] * 4
    with pytest.raises(EmbeddingError, match=r"gave up after 4 tries.*503"):
        openai_embedder.embed_query("x")
    assert len(fake.requests) == 4  # 1 + max_retries, and the SDK added none of its own


def test_openai_401_masks_key(openai_embedder, fake) -> None:
    error = {
        "error": {"message": f"Incorrect API key provided: {API_KEY}", "code": "invalid_api_key"}
    }
    fake.failures = [json_response(401, error)]
    with pytest.raises(EmbeddingError) as caught:
        openai_embedder.embed_query("x")
    message = str(caught.value)
    assert "401" in message and "rejected" in message
    assert API_KEY not in message and API_KEY not in repr(caught.value)
    assert "SECRET" not in message and "0123456789ab" not in message
    assert "**********" in message and API_KEY[-4:] not in message  # not even the tail
    assert len(fake.requests) == 1  # auth errors are not retried


def test_openai_wrong_length_vector_rejected(openai_embedder, fake) -> None:
    openai_embedder.embed_query("learn the dims first")
    fake.short_text = TEXTS[3]
    with pytest.raises(EmbeddingError, match=r"item 3: .*383 dims, expected 384"):
        openai_embedder.embed_documents(TEXTS)


def test_openai_over_long_input_truncated_with_warning(openai_embedder, fake, caplog) -> None:
    long_text = "word " * 20_000  # ~100 kB, far over 8,191 tokens
    with caplog.at_level(logging.WARNING):
        vectors = openai_embedder.embed_documents(["short", long_text])
    assert len(vectors) == 2  # not dropped
    sent = fake.requests[0]["body"]["input"]
    assert sent[0] == "short" and 0 < len(sent[1]) < len(long_text)
    assert any("item 1" in r.getMessage() and "truncated" in r.getMessage() for r in caplog.records)


def test_openai_batch_split_by_input_count() -> None:
    embedder = OpenAIEmbedder(api_key=API_KEY, batch_size=10_000)
    assert embedder.batch_size == MAX_INPUTS_PER_REQUEST
    batches = embedder._batches([f"t{i}" for i in range(2100)])
    assert [(offset, len(batch)) for offset, batch in batches] == [(0, 2048), (2048, 52)]


def test_openai_without_key_is_a_configuration_error(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="ESSEARCH_EMBEDDER_API_KEY"):
        OpenAIEmbedder().embed_query("x")


async def test_openai_async_path(openai_embedder, fake, local_embedder) -> None:
    fake.failures = [json_response(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})]
    vectors = await openai_embedder.aembed_documents(TEXTS)
    query = await openai_embedder.aembed_query("third text")
    await openai_embedder.aclose()
    assert len(vectors) == 5
    assert sorted(len(r["body"]["input"]) for r in fake.requests) == [1, 1, 2, 2, 2]  # + retry
    assert dot(query, vectors[2]) > 0.9999
    for got, want in zip(vectors, local_embedder.embed_documents(TEXTS), strict=True):
        assert dot(got, want) > 0.9999


async def test_openai_async_401_masked(openai_embedder, fake) -> None:
    fake.failures = [json_response(401, {"error": {"message": f"bad key {API_KEY}"}})]
    with pytest.raises(EmbeddingError) as caught:
        await openai_embedder.aembed_query("x")
    await openai_embedder.aclose()
    assert API_KEY not in str(caught.value)


# -- Ollama --------------------------------------------------------------------------------
def test_ollama_batches_and_options(ollama_embedder, fake, local_embedder) -> None:
    vectors = ollama_embedder.embed_documents(TEXTS)
    assert sorted(len(r["body"]["input"]) for r in fake.requests) == [1, 2, 2]  # concurrent
    first = fake.requests[0]["body"]
    assert first["model"] == "all-minilm" and first["keep_alive"] == "5m"
    assert first["truncate"] is True
    for got, want in zip(vectors, local_embedder.embed_documents(TEXTS), strict=True):
        assert dot(got, want) > 0.9999


def test_ollama_from_settings(httpserver, fake) -> None:
    embedder = create_embedder(
        EmbedderSettings(
            provider="ollama", model="all-minilm", base_url=httpserver.url_for("/"), dimensions=32
        )
    )
    assert len(embedder.embed_query("q")) == 32
    assert fake.requests[0]["body"]["dimensions"] == 32


def test_ollama_model_not_pulled(httpserver, fake) -> None:
    embedder = OllamaEmbedder("missing-model", host=httpserver.url_for("/"))
    with pytest.raises(EmbeddingError, match="ollama pull missing-model"):
        embedder.embed_query("x")
    assert len(fake.requests) == 1


def test_ollama_429_with_retry_after(ollama_embedder, fake) -> None:
    fake.failures = [json_response(429, {"error": "busy"}, {"Retry-After": "1"})]
    started = time.monotonic()
    assert len(ollama_embedder.embed_query("x")) == 384
    assert time.monotonic() - started >= 0.9
    assert len(fake.requests) == 2


def test_ollama_wrong_length_rejected(ollama_embedder, fake) -> None:
    ollama_embedder.embed_query("learn dims")
    fake.short_text = TEXTS[2]
    with pytest.raises(EmbeddingError, match="item 2: "):
        ollama_embedder.embed_documents(TEXTS)


def test_ollama_unreachable_is_clear() -> None:
    embedder = OllamaEmbedder("m", host="http://127.0.0.1:9", max_retries=1, retry_base_delay=0.01)
    with pytest.raises(EmbeddingError, match="cannot connect to Ollama"):
        embedder.embed_query("x")


async def test_ollama_async_path(ollama_embedder, fake) -> None:
    fake.failures = [json_response(500, {"error": "oops"})]
    vectors = await ollama_embedder.aembed_documents(TEXTS)
    await ollama_embedder.aclose()
    assert len(vectors) == 5 and all(len(v) == 384 for v in vectors)
    assert len(fake.requests) == 4  # three batches plus one retry
