"""The huggingface backend against local servers speaking TEI's `/embed` and HF feature-extraction.

Includes their errors: 413 (batch too large, split), 429 (Retry-After), 503 (model loading,
`estimated_time`), 401 (token refused, never shown), 422 (validation, not retried).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from fake_embedding_servers import EmbeddingServer, Reply, serving, vector_for

from essearch.embedders import create_embedder
from essearch.embedders.huggingface_backend import HuggingFaceEmbedder
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.settings import EmbedderSettings

TOKEN = "hf_testTOKEN0123456789abcdefXYZ"


class TEIServer(EmbeddingServer):
    """TEI: `POST /embed` -> a list of vectors; 413 above `max_batch` inputs, like TEI's
    `max_client_batch_size` check."""

    def __init__(self, max_batch: int = 1000, token_vectors: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_batch = max_batch
        self.token_vectors = token_vectors

    def answer(self, path: str, body: Any) -> Reply:
        inputs = body["inputs"]
        if len(inputs) > self.max_batch:
            message = f"batch size {len(inputs)} > maximum allowed batch size {self.max_batch}"
            return 413, {}, {"error": message, "error_type": "Validation"}
        if self.token_vectors:  # a plain transformer: one vector per token
            return 200, {}, [[vector_for(t), vector_for(t + "!")] for t in inputs]
        return 200, {}, [vector_for(t) for t in inputs]


def unit(vector: list[float]) -> list[float]:
    norm = math.sqrt(sum(x * x for x in vector))
    return [x / norm for x in vector]


def close(a: list[float], b: list[float]) -> bool:
    return all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))


def tei(url: str, **kwargs: Any) -> HuggingFaceEmbedder:
    options: dict[str, Any] = {"base_url": url, "retry_base_delay": 0.01, "max_retries": 3}
    options.update(kwargs)
    return HuggingFaceEmbedder("BAAI/bge-small-en-v1.5", **options)


def test_tei_embed_request_shape_order_and_normalisation() -> None:
    texts = [f"passage {i}" for i in range(7)]
    with serving(TEIServer()) as server:
        embedder = tei(server.url, batch_size=3, query_prompt_name="query")
        assert embedder.api == "tei" and embedder.url == f"{server.url}/embed"
        vectors = embedder.embed_documents(texts)
        query = embedder.embed_query("a question")
    assert all(close(v, unit(vector_for(t))) for v, t in zip(vectors, texts, strict=True))
    assert close(query, unit(vector_for("a question")))
    bodies = [r["body"] for r in server.requests]
    assert all(r["path"] == "/embed" for r in server.requests)
    assert sorted(len(b["inputs"]) for b in bodies[:-1]) == [1, 3, 3]
    assert all(b["truncate"] is True and b["normalize"] is True for b in bodies)
    assert all("prompt_name" not in b for b in bodies[:-1])
    assert bodies[-1]["prompt_name"] == "query"  # the query's prompt name only
    assert "Authorization" not in server.requests[0]["headers"]  # no token, no header
    assert embedder.info.query_prompt == "[prompt_name=query]"


def test_tei_413_splits_the_batch_and_remembers_the_size() -> None:
    texts = [f"text {i}" for i in range(10)]
    with serving(TEIServer(max_batch=3)) as server:
        embedder = tei(server.url, batch_size=8, concurrency=1)
        vectors = embedder.embed_documents(texts)
        assert all(close(v, unit(vector_for(t))) for v, t in zip(vectors, texts, strict=True))
        refused = [r for r in server.requests if len(r["body"]["inputs"]) > 3]
        assert refused and len(refused) <= 2  # 8, then 4, then never again
        before = len(server.requests)
        embedder.embed_documents(texts)
        assert all(len(r["body"]["inputs"]) <= 3 for r in server.requests[before:])


def test_a_single_input_too_large_is_a_clear_error() -> None:
    server = TEIServer()
    server.fail_when = lambda body: (413, {}, {"error": "payload too large"})
    with serving(server), pytest.raises(EmbeddingError, match=r"413.*one input is too large"):
        tei(server.url).embed_documents(["a very long text"])


def test_429_retry_after_is_honoured() -> None:
    server = TEIServer()
    server.failures.append((429, {"Retry-After": "1"}, {"error": "Model is overloaded"}))
    with serving(server):
        vectors = tei(server.url).embed_documents(["one", "two"])
    assert close(vectors[1], unit(vector_for("two")))
    assert len(server.requests) == 2
    assert server.requests[1]["at"] - server.failed_at[0] >= 0.95


def test_503_model_loading_waits_the_estimated_time() -> None:
    server = TEIServer()
    loading = {"error": "Model BAAI/bge-small-en-v1.5 is currently loading", "estimated_time": 1.5}
    server.failures.append((503, {}, loading))
    with serving(server):
        vector = tei(server.url).embed_query("hello")
    assert close(vector, unit(vector_for("hello")))
    assert server.requests[1]["at"] - server.failed_at[0] >= 1.4


def test_503_that_never_ends_gives_up_with_the_reason() -> None:
    server = TEIServer()
    server.fail_when = lambda body: (503, {"Retry-After": "0"}, {"error": "backend unavailable"})
    with (
        serving(server),
        pytest.raises(EmbeddingError, match=r"gave up after 3 tries.*unavailable"),
    ):
        tei(server.url, max_retries=2).embed_documents(["x"])


def test_422_is_not_retried() -> None:
    server = TEIServer()
    server.fail_when = lambda body: (
        422,
        {},
        {"error": "input is empty", "error_type": "Validation"},
    )
    with serving(server), pytest.raises(EmbeddingError, match="HTTP 422: input is empty"):
        tei(server.url).embed_documents(["x"])
    assert len(server.requests) == 1


def test_inference_api_shape_bearer_token_and_token_vectors_pooled() -> None:
    with serving(TEIServer(token_vectors=True)) as server:
        url = f"{server.url}/hf-inference/models/some/model/pipeline/feature-extraction"
        embedder = tei(url, token=TOKEN)
        assert embedder.api == "inference" and embedder.url == url
        vectors = embedder.embed_documents(["alpha", "beta"])
    request = server.requests[0]
    assert request["path"] == "/hf-inference/models/some/model/pipeline/feature-extraction"
    assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
    assert request["body"]["inputs"] == ["alpha", "beta"]
    mean = [(a + b) / 2 for a, b in zip(vector_for("alpha"), vector_for("alpha!"), strict=True)]
    assert close(vectors[0], unit(mean))


def test_serverless_url_by_default() -> None:
    embedder = HuggingFaceEmbedder("BAAI/bge-small-en-v1.5")
    assert embedder.api == "inference"
    assert embedder.url == (
        "https://router.huggingface.co/hf-inference/models/BAAI/bge-small-en-v1.5"
        "/pipeline/feature-extraction"
    )
    endpoint = HuggingFaceEmbedder(
        "m", base_url="https://xyz.us-east-1.aws.endpoints.huggingface.cloud"
    )
    assert endpoint.api == "inference" and endpoint.url.endswith("huggingface.cloud")


def test_refused_token_is_never_shown(caplog) -> None:
    server = TEIServer()
    server.fail_when = lambda body: (401, {}, {"error": f"Invalid credentials in header {TOKEN}"})
    with serving(server), pytest.raises(EmbeddingError) as caught:
        tei(server.url, token=TOKEN).embed_documents(["x"])
    message = str(caught.value)
    assert "token was refused" in message and "HF_TOKEN" in message
    for text in (message, caplog.text, repr(tei(server.url, token=TOKEN))):
        assert not any(TOKEN[i : i + 6] in text for i in range(len(TOKEN) - 5))


def test_from_settings_and_async() -> None:
    with pytest.raises(ConfigurationError, match="ESSEARCH_EMBEDDER_MODEL"):
        create_embedder(EmbedderSettings(provider="huggingface"))
    with serving(TEIServer()) as server:
        embedder = create_embedder(
            EmbedderSettings(
                provider="huggingface",
                model="BAAI/bge-small-en-v1.5",
                base_url=server.url,
                concurrency=2,
                batch_size=2,
                document_prompt_name="passage",
            )
        )
        assert isinstance(embedder, HuggingFaceEmbedder) and embedder.concurrency == 2
        vectors = asyncio.run(embedder.aembed_documents(["a", "b", "c"]))
        assert close(vectors[2], unit(vector_for("c")))
        assert embedder.query_prompt.startswith("Represent this sentence")  # the bge preset
        assert all(r["body"]["prompt_name"] == "passage" for r in server.requests)
