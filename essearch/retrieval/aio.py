"""`AsyncSearchClient`: the native asyncio I/O layer over the shared core (`_core.search_flow`).

Same methods as `SearchClient`, awaited; the decisions live in `_core`, so results are identical.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Generator
from typing import Any

from elastic_transport import HttpxAsyncHttpNode
from elasticsearch import ApiError, AsyncElasticsearch, NotFoundError

from essearch.embedders.base import Embedder
from essearch.errors import SearchError
from essearch.es.capabilities import Capabilities, probe_async
from essearch.es.client import client_kwargs, make_async_client
from essearch.rerank.base import Reranker
from essearch.retrieval import _core
from essearch.retrieval import queries as q
from essearch.retrieval.filters import FilterLike, compile_filter
from essearch.retrieval.params import SearchParams
from essearch.retrieval.results import Hit, SearchResult
from essearch.settings import Settings


def _async_client(settings: Settings) -> AsyncElasticsearch:
    """The factory's async client; on the httpx transport when aiohttp (its default) is absent."""
    try:
        return make_async_client(settings)
    except ValueError as exc:
        if "aiohttp" not in str(exc):
            raise
        return AsyncElasticsearch(**client_kwargs(settings.es), node_class=HttpxAsyncHttpNode)


class AsyncSearchClient:
    """BM25 / kNN / hybrid search over `settings.index.name` (the read alias).

    One Elasticsearch client (one connection pool) per SearchClient; pass `client=` to share one.
    The embedder is created on the first kNN/hybrid search unless passed in.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: AsyncElasticsearch | None = None,
        embedder: Embedder | None = None,
        reranker: Reranker | None = None,
        capabilities: Capabilities | None = None,
        index: str | None = None,
        cache_size: int = _core.DEFAULT_CACHE_SIZE,
    ) -> None:
        if settings is None:
            from essearch.settings import load_settings

            settings = load_settings()
        self.settings = settings
        self._owns_client = client is None
        self.client = client if client is not None else _async_client(settings)
        self._owns_embedder = embedder is None
        self._embedder = embedder
        self._owns_reranker = reranker is None
        self._reranker = reranker
        self.state = _core.CoreState(
            index=index or settings.index.name,
            rescore_oversample=settings.index.rescore_oversample,
            rerank_top_n=settings.rerank.top_n,
            caps=capabilities,
            cache=_core.LRUCache(cache_size),
        )

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncSearchClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_client:
            await self.client.close()
        if self._owns_embedder and self._embedder is not None:
            await self._embedder.aclose()
        if self._owns_reranker and self._reranker is not None:
            self._reranker.close()

    @property
    def reranker(self) -> Reranker:
        """The rerank stage's backend (`rerank` settings), created on the first reranked search."""
        if self._reranker is None:
            from essearch.es.client import make_client

            self._reranker = _core.create_reranker_for(
                self.settings, make_client(self.settings), self.state.index
            )
        return self._reranker

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from essearch.embedders import create_embedder

            self._embedder = create_embedder(self.settings.embedder)
        return self._embedder

    async def capabilities(self) -> Capabilities:
        if self.state.caps is None:
            self.state.caps = await probe_async(self.client)
        return self.state.caps

    # -- searching ----------------------------------------------------------------------------
    async def search(
        self, query: str | None = None, *, filter: FilterLike = None, **options: Any
    ) -> SearchResult:
        """Search; options are `SearchParams` fields (mode, fusion, k, from_, knn_weight, ...)."""
        params = SearchParams.make(query, filter=filter, **options)
        return await self._drive(_core.search_flow(self.state, params))

    async def similar_to(
        self, doc_id: str, *, k: int = 10, filter: FilterLike = None
    ) -> SearchResult:
        """Documents like the stored document `doc_id` (kNN from its chunk vectors, itself
        excluded, one hit per document); nothing is embedded."""
        flow = _core.similar_flow(self.state, doc_id, k=k, filter=compile_filter(filter))
        return await self._drive(flow)

    async def bm25(self, query: str, **options: Any) -> SearchResult:
        return await self.search(query, mode="bm25", **options)

    async def knn(self, query: str, **options: Any) -> SearchResult:
        return await self.search(query, mode="knn", **options)

    async def hybrid(self, query: str, **options: Any) -> SearchResult:
        return await self.search(query, mode="hybrid", **options)

    async def scan(
        self,
        query: str | None = None,
        *,
        filter: FilterLike = None,
        mode: str = "bm25",
        page_size: int = 1000,
        keep_alive: str = "1m",
        **options: Any,
    ) -> AsyncIterator[Hit]:
        """Every BM25/filtered hit, best first, via point in time + search_after (no 10k limit)."""
        params = SearchParams.make(query, filter=filter, mode=mode, **options)
        body_query, by_score = _core.scan_query(params)
        try:
            opened = await self.client.open_point_in_time(
                index=self.state.index, keep_alive=keep_alive
            )
            pit_id = opened.body["id"]
        except NotFoundError:
            raise SearchError(f"index {self.state.index!r} not found") from None
        search_after: list[Any] | None = None
        rank = 0
        try:
            while True:
                body = q.pit_page_body(
                    body_query,
                    pit_id=pit_id,
                    keep_alive=keep_alive,
                    size=page_size,
                    search_after=search_after,
                    by_score=by_score,
                )
                try:
                    response = (await self.client.search(body=body)).body
                except ApiError as exc:
                    raise SearchError(f"scan failed: {_core.api_error_message(exc)}") from None
                pit_id = response.get("pit_id", pit_id)
                hits = _core.scan_hits(response, rank)
                if not hits:
                    return
                for hit in hits:
                    yield hit
                rank += len(hits)
                search_after = response["hits"]["hits"][-1]["sort"]
        finally:
            await self.client.options(ignore_status=404).close_point_in_time(id=pit_id)

    # -- the I/O layer --------------------------------------------------------------------------
    async def _perform(self, op: _core.Op) -> Any:
        if isinstance(op, _core.SearchOp):
            return (await self.client.search(index=op.index, body=op.body)).body
        if isinstance(op, _core.MSearchOp):
            return (await self.client.msearch(searches=op.searches())).body
        if isinstance(op, _core.EmbedOp):
            return await self.embedder.aembed_query(op.text)
        if isinstance(op, _core.EmbedderInfoOp):
            return self.embedder.info
        if isinstance(op, _core.MappingOp):
            return (await self.client.indices.get_mapping(index=op.index)).body
        if isinstance(op, _core.ProbeOp):
            return await probe_async(self.client)
        if isinstance(op, _core.RerankOp):
            return await self.reranker.arerank(op.query, op.candidates)
        raise TypeError(f"unknown operation {op!r}")

    async def _drive(self, flow: Generator[_core.Op, Any, SearchResult]) -> SearchResult:
        try:
            op = next(flow)
            while True:
                try:
                    result = await self._perform(op)
                except Exception as exc:  # handed to the core, which decides
                    op = flow.throw(exc)
                else:
                    op = flow.send(result)
        except StopIteration as stop:
            outcome: SearchResult = stop.value
            return outcome
