"""The SQLite embedding cache: hits skip the backend, keys separate models and prompts."""

from __future__ import annotations

import threading

import pytest

from essearch.embedders import create_embedder
from essearch.embedders.cache import CachedEmbedder, EmbeddingCache
from essearch.embedders.local import LocalEmbedder
from essearch.errors import EmbeddingError
from essearch.settings import EmbedderSettings


class CountingLocal(LocalEmbedder):
    """The real local model, counting the texts that reach it."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.embedded: list[str] = []

    def _embed(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return super()._embed(texts)


def close_enough(a: list[float], b: list[float]) -> bool:
    return len(a) == len(b) and all(abs(x - y) < 1e-6 for x, y in zip(a, b, strict=True))


def test_hits_skip_the_backend_and_return_the_same_vector(tmp_path) -> None:
    inner = CountingLocal()
    cached = CachedEmbedder(inner, tmp_path / "cache.sqlite")
    first = cached.embed_documents(["alpha", "beta"])
    assert (cached.hits, cached.misses) == (0, 2)
    assert inner.embedded == ["alpha", "beta"]

    again = cached.embed_documents(["beta", "gamma", "alpha"])
    assert (cached.hits, cached.misses) == (2, 3)
    assert inner.embedded == ["alpha", "beta", "gamma"]  # only the miss reached the model
    assert again[0] == first[1] and again[2] == first[0]  # identical, hit or miss
    fresh = inner.embed_documents(["alpha"])[0]
    assert close_enough(again[2], fresh)  # float32 storage loses nothing that matters
    assert cached.info == inner.info and cached.dims == 384
    assert "2 hits" in str(cached.stats)


def test_cache_persists_across_instances(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    CachedEmbedder(CountingLocal(), path).embed_documents(["persisted text"])
    inner = CountingLocal()
    reopened = CachedEmbedder(inner, path)
    reopened.embed_documents(["persisted text"])
    assert (reopened.hits, reopened.misses) == (1, 0)
    assert inner.embedded == []
    assert len(reopened.cache) == 1


def test_keys_separate_prompts_and_models(tmp_path) -> None:
    path = tmp_path / "c.sqlite"
    plain = CachedEmbedder(CountingLocal(), path)
    plain.embed_documents(["same text"])
    prompted_inner = CountingLocal(document_prompt="passage: ")
    prompted = CachedEmbedder(prompted_inner, path)
    prompted.embed_documents(["same text"])
    assert prompted.misses == 1 and prompted_inner.embedded == ["passage: same text"]
    # queries and documents use different prompts, so different entries
    query_inner = CountingLocal(query_prompt="query: ", document_prompt="passage: ")
    query_side = CachedEmbedder(query_inner, path)
    query_side.embed_query("same text")
    assert query_side.misses == 1
    unnormalised = CachedEmbedder(CountingLocal(normalize=False), path)
    unnormalised.embed_documents(["same text"])
    assert unnormalised.misses == 1


def test_query_hits_too(tmp_path) -> None:
    inner = CountingLocal()
    cached = CachedEmbedder(inner, tmp_path / "c.sqlite")
    a = cached.embed_query("a question")
    b = cached.embed_query("a question")
    assert a == b and (cached.hits, cached.misses) == (1, 1)
    assert inner.embedded == ["a question"]


def test_empty_text_rejected_before_lookup(tmp_path) -> None:
    cached = CachedEmbedder(CountingLocal(), tmp_path / "c.sqlite")
    with pytest.raises(EmbeddingError, match="position"):
        cached.embed_documents(["ok", " "])
    assert (cached.hits, cached.misses) == (0, 0)


async def test_async_and_threads(tmp_path) -> None:
    inner = CountingLocal()
    cached = CachedEmbedder(inner, tmp_path / "c.sqlite")
    texts = [f"text {i}" for i in range(20)]
    first = await cached.aembed_documents(texts)
    second = await cached.aembed_documents(texts)
    assert first == second and (cached.hits, cached.misses) == (20, 20)
    assert await cached.aembed_query("text 3") != []

    results: list[list[list[float]]] = []

    def worker() -> None:
        results.append(cached.embed_documents(texts))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(r == first for r in results)
    # MiniLM has no prompts, so the query "text 3" shares the document's entry: a hit
    assert (cached.hits, cached.misses) == (20 + 1 + 80, 20)
    assert len(inner.embedded) == 20


def test_create_embedder_wraps_when_cache_path_set(tmp_path) -> None:
    embedder = create_embedder(EmbedderSettings(cache_path=tmp_path / "sub" / "cache.sqlite"))
    assert isinstance(embedder, CachedEmbedder)
    assert embedder.info.provider == "local"
    embedder.embed_documents(["x"])
    embedder.embed_documents(["x"])
    assert (embedder.hits, embedder.misses) == (1, 1)
    assert (tmp_path / "sub" / "cache.sqlite").exists()


def test_float32_storage_is_compact(tmp_path) -> None:
    store = EmbeddingCache(tmp_path / "c.sqlite")
    store.put_many("space", [("h1", [0.5] * 384)])
    (blob,) = store._conn.execute("SELECT vector FROM embeddings").fetchone()
    assert len(blob) == 384 * 4
    assert store.get_many("space", ["h1", "h2"]) == {"h1": [0.5] * 384}
