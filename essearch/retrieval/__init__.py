"""Retrieval: BM25 / kNN / hybrid search with five fusion strategies and one filter language.

`SearchClient` (sync) and `AsyncSearchClient` (asyncio) share one I/O-free core (`_core`), so they
send the same bodies and return the same results.
"""

from essearch.retrieval.aio import AsyncSearchClient
from essearch.retrieval.filters import F, Filter, compile_filter, parse_expression, parse_filters
from essearch.retrieval.params import FUSIONS, MODES, SearchParams
from essearch.retrieval.results import Explain, Hit, LegScore, SearchResult, Timings
from essearch.retrieval.strategies import AUTO_FALLBACK, STRATEGIES
from essearch.retrieval.sync import SearchClient

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
