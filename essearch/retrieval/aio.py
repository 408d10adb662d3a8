"""`AsyncSearchClient`: the native asyncio I/O layer over the shared core (`_core.search_flow`).

Same methods as `SearchClient`, awaited; the decisions live in `_core`, so results are identical.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Generator
from typing import Any, Unpack

from elastic_transport import HttpxAsyncHttpNode
from elasticsearch import ApiError, AsyncElasticsearch

from essearch.embedders.base import EmbedderInfo
from essearch.es.capabilities import Capabilities, probe_async
from essearch.es.client import make_async_client
from essearch.es.pit import apit_pages
from essearch.rerank.base import Reranker
from essearch.retrieval import _core
from essearch.retrieval._base import BaseSearchClient
from essearch.retrieval.filters import FilterLike, compile_filter
from essearch.retrieval.params import ModeOptions, SearchOptions, SearchParams
from essearch.retrieval.results import Hit, SearchResult
from essearch.settings import Settings


def _async_client(settings: Settings) -> AsyncElasticsearch:
    """The factory's async client; on the httpx transport when aiohttp (its default) is absent."""
    try:
        return make_async_client(settings)
    except ValueError as exc:
        if "aiohttp" not in str(exc):
            raise
        return make_async_client(settings, node_class=HttpxAsyncHttpNode)


class AsyncSearchClient(BaseSearchClient[AsyncElasticsearch]):
    __doc__ = BaseSearchClient.__doc__

    _new_client = staticmethod(_async_client)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._embedder_info: EmbedderInfo | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    async def __aenter__(self) -> AsyncSearchClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        client, embedder, reranker = self._owned()
        if client is not None:
            await client.close()
        if embedder is not None:
            await embedder.aclose()
        if reranker is not None:
            reranker.close()

    @property
    def reranker(self) -> Reranker:
        """The rerank stage's backend (`rerank` settings), created on the first reranked search."""
        if self._reranker is None:
            from essearch.es.client import make_client

            self._reranker = _core.create_reranker_for(
                self.settings, make_client(self.settings), self.state.index
            )
        return self._reranker

    async def capabilities(self) -> Capabilities:
        """What the cluster can do (probed once, then remembered)."""
        if self.state.caps is None:
            self.state.caps = await probe_async(self.client)
        return self.state.caps

    # -- searching ----------------------------------------------------------------------------
    async def search(
        self,
        query: str | None = None,
        *,
        filter: FilterLike = None,
        **options: Unpack[SearchOptions],
    ) -> SearchResult:
        """Search; the options are `SearchParams` fields (mode, fusion, k, from_, knn_weight...)."""
        params = SearchParams.make(query, filter=filter, **options)
        return await self._drive(_core.search_flow(self.state, params))

    async def similar_to(
        self, doc_id: str, *, k: int = 10, filter: FilterLike = None
    ) -> SearchResult:
        """Documents like the stored document `doc_id` (kNN from its chunk vectors, itself
        excluded, one hit per document); nothing is embedded."""
        flow = _core.similar_flow(self.state, doc_id, k=k, filter=compile_filter(filter))
        return await self._drive(flow)

    async def bm25(self, query: str, **options: Unpack[ModeOptions]) -> SearchResult:
        return await self.search(query, mode="bm25", **options)

    async def knn(self, query: str, **options: Unpack[ModeOptions]) -> SearchResult:
        return await self.search(query, mode="knn", **options)

    async def hybrid(self, query: str, **options: Unpack[ModeOptions]) -> SearchResult:
        return await self.search(query, mode="hybrid", **options)

    async def scan(
        self,
        query: str | None = None,
        *,
        filter: FilterLike = None,
        mode: str = "bm25",
        page_size: int = 1000,
        keep_alive: str = "1m",
        **options: Unpack[ModeOptions],
    ) -> AsyncIterator[Hit]:
        """Every BM25/filtered hit, best first, via point in time + search_after (no 10k limit)."""
        body = self._scan_body(query, filter, mode, page_size, options)
        rank = 0
        pages = apit_pages(self.client, self.state.index, body, keep_alive=keep_alive)
        try:
            async for response in pages:
                hits = _core.scan_hits(response, rank)
                rank += len(hits)
                for hit in hits:
                    yield hit
        except ApiError as exc:
            raise self._scan_error(exc) from None
        finally:
            await pages.aclose()

    # -- the I/O layer --------------------------------------------------------------------------
    async def _perform(self, op: _core.Op) -> Any:
        if isinstance(op, _core.SearchOp):
            return (await self.client.search(index=op.index, body=op.body)).body
        if isinstance(op, _core.MSearchOp):
            return (await self.client.msearch(searches=op.searches())).body
        if isinstance(op, _core.EmbedOp):
            return await self.embedder.aembed_query(op.text)
        if isinstance(op, _core.EmbedderInfoOp):
            if self._embedder_info is None:
                # creating the embedder and probing its dims block: not on the event loop
                self._embedder_info = await asyncio.to_thread(lambda: self.embedder.info)
            return self._embedder_info
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
