"""The local backend with the real packaged all-MiniLM-L6-v2, plus prompts and the registry."""

from __future__ import annotations

import asyncio
import math

import pytest

from essearch.embedders import (
    Embedder,
    EmbedderInfo,
    EmptyTextError,
    available_providers,
    create_embedder,
    preset_for,
    resolve_prompts,
)
from essearch.embedders.local import DEFAULT_LOCAL_MODEL, LocalEmbedder, packaged_source
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.settings import EmbedderSettings, Settings


def dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_default_is_packaged_minilm_384_unit_vectors(local_embedder: Embedder) -> None:
    assert packaged_source() is not None  # the [local] extra's model, no torch needed
    info = local_embedder.info
    assert isinstance(info, EmbedderInfo)
    assert (info.provider, info.model, info.dims) == ("local", DEFAULT_LOCAL_MODEL, 384)
    assert info.normalize and info.similarity == "dot_product"
    assert info.query_prompt is None and info.document_prompt is None  # MiniLM: no prompts
    vectors = local_embedder.embed_documents(["The cat sits on the mat.", "Stock markets fell."])
    assert len(vectors) == 2
    for vector in vectors:
        assert type(vector) is list and all(type(x) is float for x in vector)
        assert len(vector) == 384
        assert math.isclose(math.sqrt(dot(vector, vector)), 1.0, abs_tol=1e-4)


def test_paraphrase_scores_above_unrelated(local_embedder: Embedder) -> None:
    query = local_embedder.embed_query("How do I reset my password?")
    paraphrase, unrelated = local_embedder.embed_documents(
        ["Steps to change a forgotten password", "The recipe needs two eggs and flour"]
    )
    assert dot(query, paraphrase) > dot(query, unrelated) + 0.2


def test_same_text_same_vector_and_order_kept(local_embedder: Embedder) -> None:
    texts = [f"sentence number {i} about topic {i % 3}" for i in range(10)]
    batched = local_embedder.embed_documents(texts)
    singles = [local_embedder.embed_documents([t])[0] for t in texts[:3]]
    for a, b in zip(batched[:3], singles, strict=True):
        assert dot(a, b) > 0.9999


def test_prompts_are_applied(local_embedder: Embedder) -> None:
    prompted = LocalEmbedder(query_prompt="query: ", document_prompt="passage: ")
    text = "what is the capital of France"
    plain_q, plain_d = local_embedder.embed_documents([f"query: {text}", f"passage: {text}"])
    assert dot(prompted.embed_query(text), plain_q) > 0.9999
    assert dot(prompted.embed_documents([text])[0], plain_d) > 0.9999
    # and the prompt changes the vector, so the check above is not vacuous
    assert dot(prompted.embed_query(text), local_embedder.embed_query(text)) < 0.999
    assert prompted.info.query_prompt == "query: "
    assert prompted.info.document_prompt == "passage: "


def test_prompt_presets_and_overrides() -> None:
    assert resolve_prompts("intfloat/e5-base-v2") == ("query: ", "passage: ")
    assert resolve_prompts("intfloat/multilingual-e5-small") == ("query: ", "passage: ")
    query, document = resolve_prompts("BAAI/bge-small-en-v1.5")
    assert query.startswith("Represent this sentence") and document is None
    assert resolve_prompts("BAAI/bge-m3") == (None, None)
    query, document = resolve_prompts("Qwen/Qwen3-Embedding-0.6B")
    assert query.startswith("Instruct: ") and query.endswith("Query:") and document is None
    assert resolve_prompts("sentence-transformers/all-MiniLM-L6-v2") == (None, None)
    assert preset_for("some/unknown-model").name == "none"
    # settings win; "" switches a preset off
    assert resolve_prompts("intfloat/e5-base-v2", "q> ", "") == ("q> ", None)


def test_settings_prompts_reach_the_embedder() -> None:
    embedder = create_embedder(
        EmbedderSettings(model="intfloat/e5-small-v2", document_prompt="doc: ")
    )
    assert (embedder.query_prompt, embedder.document_prompt) == ("query: ", "doc: ")


def test_empty_text_rejected_with_position(local_embedder: Embedder) -> None:
    with pytest.raises(EmptyTextError) as caught:
        local_embedder.embed_documents(["fine", "   ", "also fine", ""])
    assert caught.value.positions == [1, 3]
    assert "1, 3" in str(caught.value)
    with pytest.raises(EmbeddingError, match="query"):
        local_embedder.embed_query("\n\t")
    with pytest.raises(EmbeddingError, match="list of texts"):
        local_embedder.embed_documents("not a list")  # type: ignore[arg-type]


async def test_async_twins_match_sync(local_embedder: Embedder) -> None:
    texts = [f"async text {i}" for i in range(70)]  # two batches of 64
    sync_vectors = local_embedder.embed_documents(texts)
    async_vectors, query = await asyncio.gather(
        local_embedder.aembed_documents(texts), local_embedder.aembed_query("async text 3")
    )
    assert len(async_vectors) == 70
    for a, b in zip(sync_vectors, async_vectors, strict=True):
        assert dot(a, b) > 0.9999
    assert dot(query, sync_vectors[3]) > 0.9999


def test_create_embedder_accepts_settings_forms_and_overrides() -> None:
    from_full = create_embedder(Settings(), batch_size=8)
    assert from_full.provider == "local" and from_full.batch_size == 8
    with pytest.raises(ConfigurationError, match="unknown embedder setting"):
        create_embedder(EmbedderSettings(), colour="red")
    with pytest.raises(ConfigurationError, match="batch_size"):
        create_embedder(EmbedderSettings(), batch_size=0)
    assert {"local", "openai", "ollama", "elasticsearch"} <= set(available_providers())


def test_register_a_new_backend_is_one_class() -> None:
    from essearch.embedders import embedder_class, register_embedder
    from essearch.embedders.registry import _REGISTRY

    class Reversed(LocalEmbedder):
        provider = "reversed-local"

        def _embed(self, texts: list[str]) -> list[list[float]]:
            return super()._embed([t[::-1] for t in texts])

    register_embedder("reversed-local", Reversed)
    try:
        assert embedder_class("reversed-local") is Reversed
        embedder = Reversed()
        assert embedder.info.provider == "reversed-local"
        assert len(embedder.embed_query("abc")) == 384
    finally:
        _REGISTRY.pop("reversed-local", None)


def test_unknown_local_model_gives_clear_error() -> None:
    embedder = LocalEmbedder("/nonexistent/model/dir")
    with pytest.raises(EmbeddingError, match="cannot load local model"):
        embedder.embed_query("x")
