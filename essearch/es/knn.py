"""How many candidates a kNN search asks each shard for: the one policy, and RAGFlow's variant.

More candidates find more of the true nearest neighbours (recall) at the cost of latency.
Elasticsearch rejects `num_candidates` below `k` or above 10,000.
"""

from __future__ import annotations

from essearch.errors import SearchError

#: Elasticsearch's ceiling for kNN `k` and `num_candidates`.
MAX_NUM_CANDIDATES = 10_000


def default_num_candidates(k: int) -> int:
    """essearch's policy: max(10·k, 100), capped at 10,000 and never below k. Measured on SciFact
    (README, kNN row); used by search, evaluation and the migration's verification searches."""
    if k > MAX_NUM_CANDIDATES:
        raise SearchError(
            f"kNN k={k} is above Elasticsearch's limit of {MAX_NUM_CANDIDATES:,} "
            "(num_candidates cannot exceed it); narrow the query with a filter instead"
        )
    return max(k, min(max(k * 10, 100), MAX_NUM_CANDIDATES))


def ragflow_num_candidates(k: int, requested: int | None = None) -> int:
    """RAGFlow's variant, kept on purpose for `essearch.ragflow`: its own ES connector asks for
    2·k candidates (or the `num_candidates` a MatchDenseExpr passes), so a store behind RAGFlow
    ranks like the one RAGFlow ships."""
    return min(max(2 * k, requested or 0), MAX_NUM_CANDIDATES)


__all__ = ["MAX_NUM_CANDIDATES", "default_num_candidates", "ragflow_num_candidates"]
