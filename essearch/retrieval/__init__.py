"""Retrieval: BM25 / kNN / hybrid search with five fusion strategies and one filter language.

`SearchClient` (sync) and `AsyncSearchClient` (asyncio) share one I/O-free core (`_core`), so they
send the same bodies and return the same results.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from essearch._lazy import lazy_getattr

# Names load on first use, so importing a submodule (or the CLI) stays cheap.
_LAZY = {
    "AsyncSearchClient": "essearch.retrieval.aio",
    "F": "essearch.retrieval.filters",
    "Filter": "essearch.retrieval.filters",
    "compile_filter": "essearch.retrieval.filters",
    "parse_expression": "essearch.retrieval.filters",
    "parse_filters": "essearch.retrieval.filters",
    "FUSIONS": "essearch.retrieval.names",
    "MODES": "essearch.retrieval.names",
    "SearchParams": "essearch.retrieval.params",
    "Explain": "essearch.retrieval.results",
    "Hit": "essearch.retrieval.results",
    "LegScore": "essearch.retrieval.results",
    "SearchResult": "essearch.retrieval.results",
    "Timings": "essearch.retrieval.results",
    "AUTO_FALLBACK": "essearch.retrieval.strategies",
    "STRATEGIES": "essearch.retrieval.strategies",
    "SearchClient": "essearch.retrieval.sync",
}

if TYPE_CHECKING:
    from essearch.retrieval.aio import AsyncSearchClient
    from essearch.retrieval.filters import (
        F,
        Filter,
        compile_filter,
        parse_expression,
        parse_filters,
    )
    from essearch.retrieval.names import FUSIONS, MODES
    from essearch.retrieval.params import SearchParams
    from essearch.retrieval.results import Explain, Hit, LegScore, SearchResult, Timings
    from essearch.retrieval.strategies import AUTO_FALLBACK, STRATEGIES
    from essearch.retrieval.sync import SearchClient


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "AUTO_FALLBACK",
    "FUSIONS",
    "MODES",
    "STRATEGIES",
    "AsyncSearchClient",
    "Explain",
    "F",
    "Filter",
    "Hit",
    "LegScore",
    "SearchClient",
    "SearchParams",
    "SearchResult",
    "Timings",
    "compile_filter",
    "parse_expression",
    "parse_filters",
]
