"""LangChain adapters on the real node: LangChain's own standard suites, plus essearch's extras."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import (
    RetrieversIntegrationTests,
    VectorStoreIntegrationTests,
)

from essearch.errors import ModelMismatchError
from essearch.integrations.langchain import (
    EssearchEmbeddings,
    EssearchRetriever,
    EssearchVectorStore,
    LangChainEmbedder,
)

CORPUS = [
    {"id": "cats", "text": "Cats are small domesticated felines that purr and hunt mice."},
    {"id": "dogs", "text": "Dogs are loyal companions, descended from wolves, that bark."},
    {"id": "ocean", "text": "The Pacific is the largest and deepest of Earth's oceans."},
    {"id": "python", "text": "Python is a programming language with dynamic typing."},
    {"id": "tea", "text": "Green tea is made from unoxidised leaves of Camellia sinensis."},
]


class TestEssearchVectorStoreStandard(VectorStoreIntegrationTests):
    """LangChain's vector-store contract, with its deterministic fake embeddings (6 dims)."""

    @pytest.fixture
    def vectorstore(self, index_name: str, settings_for: Any) -> Iterator[VectorStore]:
        store = EssearchVectorStore(self.get_embeddings(), settings=settings_for(index_name))
        try:
            yield store
        finally:
            store.close()


@pytest.fixture(scope="module")
def populated(es_client: Any, es_url: str, local_embedder: Any) -> Iterator[dict[str, Any]]:
    """An index of CORPUS, embedded by the real MiniLM, shared by this module's retriever tests."""
    from conftest import cleanup_indices

    from essearch.ingest import IngestOptions, ingest
    from essearch.settings import Settings

    name = f"t-lc-{uuid.uuid4().hex[:8]}"
    settings = Settings(es={"url": es_url}, index={"name": name, "replicas": 0})
    report = ingest(
        CORPUS, settings=settings, embedder=local_embedder, options=IngestOptions(dead_letter=None)
    )
    assert report.ok and report.documents == len(CORPUS)
    yield {"settings": settings, "index": name, "embedding": local_embedder}
    cleanup_indices(es_client, name)


class TestEssearchRetrieverStandard(RetrieversIntegrationTests):
    """LangChain's retriever contract (k in the constructor and in invoke; sync and async)."""

    params: ClassVar[dict[str, Any]] = {}

    @pytest.fixture(autouse=True)
    def _index(self, populated: dict[str, Any]) -> None:
        type(self).params = populated

    @property
    def retriever_constructor(self) -> type[EssearchRetriever]:
        return EssearchRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return dict(self.params)

    @property
    def retriever_query_example(self) -> str:
        return "animals that are kept as pets"


def test_retriever_hybrid_scores_and_filters(populated: dict[str, Any]) -> None:
    retriever = EssearchRetriever(**populated, k=3)
    docs = retriever.invoke("cats that purr")
    assert docs[0].id == "cats"
    meta = docs[0].metadata["essearch"]
    assert meta["rank"] == 1 and meta["doc_id"] == "cats"
    assert set(meta["legs"]) == {"bm25", "knn"}  # per-leg scores and ranks of the hybrid
    assert meta["legs"]["knn"]["rank"] >= 1
    only = EssearchRetriever(**populated, k=3, filter={"doc_id": "ocean"})
    assert [d.id for d in only.invoke("cats that purr")] == ["ocean"]
    retriever.close()


async def test_retriever_async_is_native(populated: dict[str, Any]) -> None:
    retriever = EssearchRetriever(**populated, k=2, mode="knn")
    sync_ids = [d.id for d in retriever.invoke("a language for writing software")]
    async_ids = [d.id for d in await retriever.ainvoke("a language for writing software")]
    assert async_ids == sync_ids and async_ids[0] == "python"
    await retriever.aclose()
    retriever.close()


def test_essearch_embedder_as_langchain_embeddings(local_embedder: Any) -> None:
    embeddings = EssearchEmbeddings(local_embedder)
    doc = embeddings.embed_documents(["a cat on a mat"])[0]
    query = embeddings.embed_query("a cat on a mat")
    assert len(doc) == len(query) == local_embedder.dims == 384


def test_langchain_embeddings_record_their_model(index_name: str, settings_for: Any) -> None:
    """A LangChain model's name goes on the index; another model is refused by the guard."""
    from essearch.es.client import make_client
    from essearch.index import IndexManager

    class NamedFake(DeterministicFakeEmbedding):
        model: str = "fake-embedding-v1"

    settings = settings_for(index_name)
    store = EssearchVectorStore(NamedFake(size=8), settings=settings)
    store.add_texts(["one text", "another text"], ids=["a", "b"])
    with make_client(settings) as client:
        recorded = IndexManager(client, settings).recorded_model()
    assert recorded is not None
    assert (recorded.provider, recorded.model, recorded.dims) == (
        "langchain",
        "fake-embedding-v1",
        8,
    )
    other = EssearchVectorStore(
        LangChainEmbedder(DeterministicFakeEmbedding(size=8), model="other-model"),
        settings=settings,
    )
    with pytest.raises(ModelMismatchError, match="other-model"):
        other.add_texts(["third text"], ids=["c"])
    store.close()
    other.close()


def test_vector_store_with_real_model_mmr_and_long_documents(
    index_name: str, settings_for: Any, local_embedder: Any
) -> None:
    store = EssearchVectorStore(local_embedder, settings=settings_for(index_name))
    near_duplicates = [
        "Cats purr when they are content.",
        "Cats purr when they are happy and content.",
        "Dogs wag their tails when they are happy.",
    ]
    store.add_texts(near_duplicates, ids=["c1", "c2", "d1"])
    plain = [d.id for d in store.similarity_search("happy pets", k=2)]
    diverse = [d.id for d in store.max_marginal_relevance_search("happy cats", k=2, fetch_k=3)]
    assert len(plain) == 2
    assert diverse[0] in {"c1", "c2"} and "d1" in diverse  # MMR skips the near-duplicate
    long_text = " ".join(f"Sentence number {i} talks about tea and oceans." for i in range(400))
    store.add_documents([Document(page_content=long_text, metadata={"kind": "long"}, id="big")])
    hits = store.similarity_search("tea and oceans", k=5, filter={"metadata.kind": "long"})
    assert [d.id for d in hits] == ["big"]  # chunked by essearch, collapsed to one document
    (rebuilt,) = store.get_by_ids(["big"])
    assert rebuilt.page_content == long_text and rebuilt.metadata == {"kind": "long"}
    store.close()
