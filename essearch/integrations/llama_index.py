"""LlamaIndex adapter: essearch search as a `BaseRetriever` returning `NodeWithScore`.

Sync (`retrieve`) runs on `SearchClient`, async (`aretrieve`) on `AsyncSearchClient` natively, so
it needs no `nest_asyncio` and never starts an event loop of its own. Needs the `llama-index`
extra (`llama-index-core`).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from essearch.embedders.base import Embedder
from essearch.integrations._common import hit_metadata
from essearch.retrieval.filters import FilterLike
from essearch.retrieval.results import Hit
from essearch.settings import Settings, load_settings

__all__ = ["EssearchLlamaRetriever"]


def _to_node(hit: Hit) -> NodeWithScore:
    metadata = hit_metadata(hit)
    node = TextNode(
        id_=hit.id,
        text=hit.text or "",
        metadata=metadata,
        # Scores and ids are for the application, not for the LLM prompt or the embedding.
        excluded_llm_metadata_keys=["essearch"],
        excluded_embed_metadata_keys=["essearch"],
    )
    if hit.doc_id:
        node.metadata.setdefault("doc_id", hit.doc_id)
    return NodeWithScore(node=node, score=hit.score)


class EssearchLlamaRetriever(BaseRetriever):
    """BM25 / kNN / hybrid retrieval over an essearch index (`index=` or the settings' alias)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        index: str | None = None,
        mode: str = "hybrid",
        fusion: str = "auto",
        similarity_top_k: int = 4,
        filter: FilterLike = None,
        embedder: Embedder | None = None,
        search_kwargs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.settings = settings if settings is not None else load_settings()
        self.index = index
        self.mode = mode
        self.fusion = fusion
        self.similarity_top_k = similarity_top_k
        self.filter = filter
        self.embedder = embedder
        self.search_kwargs = dict(search_kwargs or {})
        self._sync: Any = None
        self._async: Any = None

    def _options(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "fusion": self.fusion,
            "k": self.similarity_top_k,
            "filter": self.filter,
            "highlight": False,
            **self.search_kwargs,
        }

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        from essearch.retrieval import SearchClient

        if self._sync is None:
            self._sync = SearchClient(self.settings, index=self.index, embedder=self.embedder)
        result = self._sync.search(query_bundle.query_str, **self._options())
        return [_to_node(hit) for hit in result.hits]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        from essearch.retrieval import AsyncSearchClient

        if self._async is None:
            self._async = AsyncSearchClient(self.settings, index=self.index, embedder=self.embedder)
        result = await self._async.search(query_bundle.query_str, **self._options())
        return [_to_node(hit) for hit in result.hits]

    def close(self) -> None:
        if self._sync is not None:
            self._sync.close()
            self._sync = None

    async def aclose(self) -> None:
        if self._async is not None:
            await self._async.close()
            self._async = None
