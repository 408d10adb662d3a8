"""What `SearchClient` and `AsyncSearchClient` share apart from the search flow (`_core`):
construction, the lazily created embedder, what `close` releases, and the pieces of `scan`.

Only the calls that differ (`x()` versus `await x()`) are written twice, in `sync.py` and
`aio.py`; everything they decide is here or in `_core`, so the two clients cannot drift.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from elasticsearch import ApiError

from essearch.embedders.base import Embedder
from essearch.errors import SearchError
from essearch.es.capabilities import Capabilities
from essearch.rerank.base import Reranker
from essearch.retrieval import _core
from essearch.retrieval.filters import FilterLike
from essearch.retrieval.params import SearchParams
from essearch.settings import Settings

ClientT = TypeVar("ClientT")


class BaseSearchClient(Generic[ClientT]):
    """BM25 / kNN / hybrid search over `settings.index.name` (the read alias).

    One Elasticsearch client (one connection pool) per search client; pass `client=` to share
    one. The embedder (and the reranker) is created on first use unless passed in. `close()`
    releases only what the search client created itself.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: ClientT | None = None,
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
        self.client: ClientT = client if client is not None else self._new_client(settings)
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

    @staticmethod
    def _new_client(settings: Settings) -> ClientT:
        raise NotImplementedError

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            from essearch.embedders import create_embedder

            self._embedder = create_embedder(self.settings.embedder)
        return self._embedder

    def _owned(self) -> tuple[ClientT | None, Embedder | None, Reranker | None]:
        """What `close()` releases: the client, embedder and reranker this search client made."""
        return (
            self.client if self._owns_client else None,
            self._embedder if self._owns_embedder else None,
            self._reranker if self._owns_reranker else None,
        )

    # -- scan ---------------------------------------------------------------------------------
    @staticmethod
    def _scan_body(
        query: str | None, filter: FilterLike, mode: str, page_size: int, options: Mapping[str, Any]
    ) -> dict[str, Any]:
        params = SearchParams.make(query, filter=filter, mode=mode, **options)
        return _core.scan_body(params, page_size)

    def _scan_error(self, exc: ApiError) -> SearchError:
        return _core.search_error(self.state.index, exc, "scan")
