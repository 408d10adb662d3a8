"""`SearchClient`: the synchronous I/O layer over the shared core (`_core.search_flow`)."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any, Unpack

from elasticsearch import ApiError, Elasticsearch

from essearch.es.capabilities import Capabilities, probe
from essearch.es.client import make_client
from essearch.es.pit import pit_pages
from essearch.rerank.base import Reranker
from essearch.retrieval import _core
from essearch.retrieval._base import BaseSearchClient
from essearch.retrieval.filters import FilterLike, compile_filter
from essearch.retrieval.params import ModeOptions, SearchOptions, SearchParams
from essearch.retrieval.results import Hit, SearchResult
from essearch.settings import Settings


class SearchClient(BaseSearchClient[Elasticsearch]):
    __doc__ = BaseSearchClient.__doc__

    @staticmethod
    def _new_client(settings: Settings) -> Elasticsearch:
        return make_client(settings)

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> SearchClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        client, embedder, reranker = self._owned()
        if client is not None:
            client.close()
        if embedder is not None:
            embedder.close()
        if reranker is not None:
            reranker.close()

    @property
    def reranker(self) -> Reranker:
        """The rerank stage's backend (`rerank` settings), created on the first reranked search."""
        if self._reranker is None:
            self._reranker = _core.create_reranker_for(self.settings, self.client, self.state.index)
        return self._reranker

    def capabilities(self) -> Capabilities:
        """What the cluster can do (probed once, then remembered)."""
        if self.state.caps is None:
            self.state.caps = probe(self.client)
        return self.state.caps

    # -- searching ----------------------------------------------------------------------------
    def search(
        self,
        query: str | None = None,
        *,
        filter: FilterLike = None,
        **options: Unpack[SearchOptions],
    ) -> SearchResult:
        """Search; the options are `SearchParams` fields (mode, fusion, k, from_, knn_weight...)."""
        params = SearchParams.make(query, filter=filter, **options)
        return self._drive(_core.search_flow(self.state, params))

    def similar_to(self, doc_id: str, *, k: int = 10, filter: FilterLike = None) -> SearchResult:
        """Documents like the stored document `doc_id` (kNN from its chunk vectors, itself
        excluded, one hit per document); nothing is embedded."""
        flow = _core.similar_flow(self.state, doc_id, k=k, filter=compile_filter(filter))
        return self._drive(flow)

    def bm25(self, query: str, **options: Unpack[ModeOptions]) -> SearchResult:
        return self.search(query, mode="bm25", **options)

    def knn(self, query: str, **options: Unpack[ModeOptions]) -> SearchResult:
        return self.search(query, mode="knn", **options)

    def hybrid(self, query: str, **options: Unpack[ModeOptions]) -> SearchResult:
        return self.search(query, mode="hybrid", **options)

    def scan(
        self,
        query: str | None = None,
        *,
        filter: FilterLike = None,
        mode: str = "bm25",
        page_size: int = 1000,
        keep_alive: str = "1m",
        **options: Unpack[ModeOptions],
    ) -> Iterator[Hit]:
        """Every BM25/filtered hit, best first, via point in time + search_after (no 10k limit)."""
        body = self._scan_body(query, filter, mode, page_size, options)
        rank = 0
        try:
            for response in pit_pages(self.client, self.state.index, body, keep_alive=keep_alive):
                hits = _core.scan_hits(response, rank)
                rank += len(hits)
                yield from hits
        except ApiError as exc:
            raise self._scan_error(exc) from None

    # -- the I/O layer --------------------------------------------------------------------------
    def _perform(self, op: _core.Op) -> Any:
        if isinstance(op, _core.SearchOp):
            return self.client.search(index=op.index, body=op.body).body
        if isinstance(op, _core.MSearchOp):
            return self.client.msearch(searches=op.searches()).body
        if isinstance(op, _core.EmbedOp):
            return self.embedder.embed_query(op.text)
        if isinstance(op, _core.EmbedderInfoOp):
            return self.embedder.info
        if isinstance(op, _core.MappingOp):
            return self.client.indices.get_mapping(index=op.index).body
        if isinstance(op, _core.ProbeOp):
            return probe(self.client)
        if isinstance(op, _core.RerankOp):
            return self.reranker.rerank(op.query, op.candidates)
        raise TypeError(f"unknown operation {op!r}")

    def _drive(self, flow: Generator[_core.Op, Any, SearchResult]) -> SearchResult:
        try:
            op = next(flow)
            while True:
                try:
                    result = self._perform(op)
                except Exception as exc:  # handed to the core, which decides
                    op = flow.throw(exc)
                else:
                    op = flow.send(result)
        except StopIteration as stop:
            outcome: SearchResult = stop.value
            return outcome
