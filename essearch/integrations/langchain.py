"""LangChain adapters: a retriever, a vector store, and embedders in both directions.

- `EssearchRetriever`: a `BaseRetriever` over essearch's BM25 / kNN / hybrid search (hybrid works
  on the Basic licence; filters pre-filter the kNN leg). Scores and per-leg ranks go into
  `Document.metadata["essearch"]`.
- `EssearchVectorStore`: a `VectorStore` whose writes go through essearch's ingest (chunking,
  idempotent ids, the model recorded on the index) and whose reads are essearch searches.
- `EssearchEmbeddings` wraps an essearch embedder as LangChain `Embeddings`; `LangChainEmbedder`
  wraps any LangChain `Embeddings` as an essearch embedder, so the index records its model name.

Needs the `langchain` extra (`langchain-core`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from elasticsearch import Elasticsearch
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document as LCDocument
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.vectorstores import VectorStore
from langchain_core.vectorstores.utils import maximal_marginal_relevance
from pydantic import ConfigDict, Field, PrivateAttr

from essearch.embedders.base import Embedder
from essearch.ingest.loaders import Document
from essearch.integrations._common import (
    delete_documents,
    get_documents,
    hit_metadata,
    store_documents,
)
from essearch.retrieval.filters import FilterLike
from essearch.retrieval.results import Hit
from essearch.settings import Settings, load_settings

__all__ = ["EssearchEmbeddings", "EssearchRetriever", "EssearchVectorStore", "LangChainEmbedder"]


# -- embedders, both ways ------------------------------------------------------------------------


class EssearchEmbeddings(Embeddings):
    """An essearch embedder seen as LangChain `Embeddings` (prompts, batching, retries kept)."""

    def __init__(self, embedder: Embedder) -> None:
        self.embedder = embedder

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed_query(text)

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return await self.embedder.aembed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await self.embedder.aembed_query(text)


def _model_name(embeddings: Embeddings) -> str:
    """The model a LangChain embeddings object names (`model`, `model_name`), else its class."""
    for attr in ("model", "model_name", "model_id", "deployment"):
        value = getattr(embeddings, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(embeddings).__name__


class LangChainEmbedder(Embedder):
    """Any LangChain `Embeddings` as an essearch embedder.

    The index records `provider="langchain"` and the object's model name, so a later run with
    another model is refused by the model guard like any other mismatch. Vectors are compared by
    cosine (LangChain makes no promise that they are unit length).
    """

    provider = "langchain"

    def __init__(
        self,
        embeddings: Embeddings,
        *,
        model: str | None = None,
        dims: int | None = None,
        batch_size: int = 64,
    ) -> None:
        super().__init__(model or _model_name(embeddings), dims=dims, batch_size=batch_size)
        self.embeddings = embeddings

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return self.embeddings.embed_documents(texts)

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        return await self.embeddings.aembed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        # LangChain models may embed queries differently from documents (instructions).
        self._prepare([text], None, what="query")
        return self._check_vectors([self.embeddings.embed_query(text)], 1, 0)[0]

    async def aembed_query(self, text: str) -> list[float]:
        self._prepare([text], None, what="query")
        return self._check_vectors([await self.embeddings.aembed_query(text)], 1, 0)[0]


def as_essearch_embedder(embedding: Embeddings | Embedder | None) -> Embedder | None:
    """Accept either kind; an `EssearchEmbeddings` is unwrapped instead of wrapped twice."""
    if embedding is None or isinstance(embedding, Embedder):
        return embedding
    if isinstance(embedding, EssearchEmbeddings):
        return embedding.embedder
    return LangChainEmbedder(embedding)


# -- the retriever -------------------------------------------------------------------------------


def _to_document(hit: Hit, *, with_scores: bool = True) -> LCDocument:
    return LCDocument(
        id=hit.doc_id,
        page_content=hit.text or "",
        metadata=hit_metadata(hit, with_scores=with_scores),
    )


class EssearchRetriever(BaseRetriever):
    """essearch search as a LangChain retriever, sync (`invoke`) and native async (`ainvoke`).

    `search_kwargs` passes any other search option (`knn_weight`, `num_candidates`, ...).
    Highlighting is off: a retriever's caller reads `page_content`, not snippets.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    settings: Settings | None = None
    index: str | None = None
    mode: str = "hybrid"
    fusion: str = "auto"
    k: int = 4
    filter: Any = None
    collapse: bool = False
    search_kwargs: dict[str, Any] = Field(default_factory=dict)
    embedding: Any = None  # an essearch Embedder or a LangChain Embeddings

    _sync: Any = PrivateAttr(default=None)
    _async: Any = PrivateAttr(default=None)

    def _options(self, **overrides: Any) -> dict[str, Any]:
        options: dict[str, Any] = {
            "mode": self.mode,
            "fusion": self.fusion,
            "k": self.k,
            "filter": self.filter,
            "collapse": self.collapse,
            "highlight": False,
            **self.search_kwargs,
        }
        options.update(overrides)
        return options

    def _settings(self) -> Settings:
        return self.settings if self.settings is not None else load_settings()

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        from essearch.retrieval import SearchClient

        if self._sync is None:
            self._sync = SearchClient(
                self._settings(), index=self.index, embedder=as_essearch_embedder(self.embedding)
            )
        result = self._sync.search(query, **self._options(**kwargs))
        return [_to_document(hit) for hit in result.hits]

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun, **kwargs: Any
    ) -> list[LCDocument]:
        from essearch.retrieval import AsyncSearchClient

        if self._async is None:
            self._async = AsyncSearchClient(
                self._settings(), index=self.index, embedder=as_essearch_embedder(self.embedding)
            )
        result = await self._async.search(query, **self._options(**kwargs))
        return [_to_document(hit) for hit in result.hits]

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close()
            self._async = None


# -- the vector store ----------------------------------------------------------------------------


class EssearchVectorStore(VectorStore):
    """A LangChain vector store on an essearch index (`settings.index.name` or `index=`).

    Each LangChain `Document` is one essearch document (its id is the document id; long texts are
    chunked by essearch, and searches collapse to the best chunk per document). `similarity_search`
    is kNN; `as_retriever()` gives LangChain's retriever over it, while `EssearchRetriever` gives
    essearch's hybrid search.
    """

    def __init__(
        self,
        embedding: Embeddings | Embedder | None = None,
        *,
        settings: Settings | None = None,
        index: str | None = None,
        client: Elasticsearch | None = None,
    ) -> None:
        from essearch.es.client import make_client

        settings = settings if settings is not None else load_settings()
        if index is not None:
            settings = settings.model_copy(
                update={"index": settings.index.model_copy(update={"name": index})}
            )
        self.settings = settings
        self._owns_client = client is None
        self.client = client if client is not None else make_client(settings)
        embedder = as_essearch_embedder(embedding)
        if embedder is None:
            from essearch.embedders import create_embedder

            embedder = create_embedder(settings.embedder)
        self.embedder = embedder
        self._search: Any = None

    # -- identity
    @property
    def embeddings(self) -> Embeddings:
        if isinstance(self.embedder, LangChainEmbedder):
            return self.embedder.embeddings
        return EssearchEmbeddings(self.embedder)

    def _searcher(self) -> Any:
        from essearch.retrieval import SearchClient

        if self._search is None:
            self._search = SearchClient(self.settings, client=self.client, embedder=self.embedder)
        return self._search

    def close(self) -> None:
        if self._search is not None:
            self._search.close()
        if self._owns_client:
            self.client.close()

    # -- writes
    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        metadatas = metadatas or [{} for _ in texts]
        ids = [str(i) if i is not None else "" for i in ids] if ids else []
        ids = [ids[i] if i < len(ids) and ids[i] else uuid.uuid4().hex for i in range(len(texts))]
        documents = [
            Document(id=doc_id, text=text, metadata=dict(meta or {}))
            for doc_id, text, meta in zip(ids, texts, metadatas, strict=True)
        ]
        last: dict[str, Document] = {d.id: d for d in documents}  # the same id twice: last wins
        store_documents(
            list(last.values()), settings=self.settings, client=self.client, embedder=self.embedder
        )
        return ids

    def add_documents(self, documents: list[LCDocument], **kwargs: Any) -> list[str]:
        ids = kwargs.pop("ids", None) or [doc.id for doc in documents]
        return self.add_texts(
            [doc.page_content for doc in documents],
            [dict(doc.metadata) for doc in documents],
            ids=list(ids),
            **kwargs,
        )

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        if not ids:
            return None
        delete_documents(self.client, self.settings, [str(i) for i in ids])
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[LCDocument]:
        return [
            LCDocument(id=doc.id, page_content=doc.text, metadata=doc.metadata)
            for doc in get_documents(self.client, self.settings, [str(i) for i in ids])
        ]

    # -- reads
    def _knn(self, query: str, k: int, filter: FilterLike, **kwargs: Any) -> list[Hit]:
        if not self._index_exists():
            return []
        result = self._searcher().search(
            query, mode="knn", k=k, filter=filter, collapse=True, highlight=False, **kwargs
        )
        return list(result.hits)

    def _index_exists(self) -> bool:
        name = self.settings.index.name
        return bool(self.client.indices.exists_alias(name=name)) or bool(
            self.client.indices.exists(index=name)
        )

    def similarity_search(
        self, query: str, k: int = 4, filter: FilterLike = None, **kwargs: Any
    ) -> list[LCDocument]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: FilterLike = None, **kwargs: Any
    ) -> list[tuple[LCDocument, float]]:
        return [
            (_to_document(hit, with_scores=False), float(hit.score or 0.0))
            for hit in self._knn(query, k, filter, **kwargs)
        ]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        # Elasticsearch already maps cosine / dot product into [0, 1]: (1 + cos) / 2.
        return lambda score: score

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: FilterLike = None,
        **kwargs: Any,
    ) -> list[LCDocument]:
        """kNN for `fetch_k` candidates, then MMR on their stored vectors (no re-embedding)."""
        hits = self._knn(query, max(fetch_k, k), filter, **kwargs)
        if not hits:
            return []
        vectors = self._vectors([hit.id for hit in hits])
        usable = [hit for hit in hits if hit.id in vectors]
        query_vector = self.embedder.embed_query(query)
        import numpy as np

        chosen = maximal_marginal_relevance(
            np.array(query_vector),
            [vectors[hit.id] for hit in usable],
            lambda_mult=lambda_mult,
            k=k,
        )
        return [_to_document(usable[i], with_scores=False) for i in chosen]

    def _vectors(self, chunk_ids: list[str]) -> dict[str, list[float]]:
        """The stored vectors of these chunks, by chunk id."""
        from essearch.index import schema

        body: dict[str, Any] = {
            "query": {"ids": {"values": chunk_ids}},
            "size": len(chunk_ids),
            # Naming the field returns it even where vectors leave `_source` by default (9.2+).
            "_source": [schema.VECTOR_FIELD],
        }
        response = self.client.search(index=self.settings.index.name, body=body).body
        found: dict[str, list[float]] = {}
        for hit in response["hits"]["hits"]:
            vector = (hit.get("_source") or {}).get(schema.VECTOR_FIELD)
            if vector:
                found[hit["_id"]] = [float(x) for x in vector]
        return found

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> EssearchVectorStore:
        store = cls(embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store
