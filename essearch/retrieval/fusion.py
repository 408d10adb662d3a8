"""Client-side fusion of ranked lists: RRF (the server's formula) and min-max linear fusion.

Inputs are per-leg rankings, best first, as (id, score) pairs; outputs are (id, fused score),
best first, ties broken by the id's best rank in any leg and then by id (deterministic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from essearch.retrieval.queries import DEFAULT_KNN_WEIGHT, RRF_RANK_CONSTANT

Ranking = Sequence[tuple[str, float]]


def _order(fused: dict[str, float], rankings: Mapping[str, Ranking]) -> list[tuple[str, float]]:
    best_rank: dict[str, int] = {}
    for ranking in rankings.values():
        for rank, (doc_id, _score) in enumerate(ranking, start=1):
            best_rank[doc_id] = min(best_rank.get(doc_id, rank), rank)
    return sorted(fused.items(), key=lambda item: (-item[1], best_rank[item[0]], item[0]))


def rrf(
    rankings: Mapping[str, Ranking],
    *,
    rank_constant: int = RRF_RANK_CONSTANT,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """score(d) = Σ_legs weight · 1/(rank_constant + rank_leg(d)); ranks start at 1 like ES."""
    if rank_constant < 1:
        raise ValueError(f"rank_constant must be >= 1, got {rank_constant}")
    fused: dict[str, float] = {}
    for leg, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(leg, 1.0)
        seen: set[str] = set()
        for rank, (doc_id, _score) in enumerate(ranking, start=1):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            fused[doc_id] = fused.get(doc_id, 0.0) + weight / (rank_constant + rank)
    return _order(fused, rankings)


def minmax(scores: Sequence[float]) -> list[float]:
    """(s - min) / (max - min); a list of equal scores maps to all 1.0 (each is the best)."""
    if not scores:
        return []
    low, high = min(scores), max(scores)
    if high == low:
        return [1.0] * len(scores)
    return [(s - low) / (high - low) for s in scores]


def linear(
    rankings: Mapping[str, Ranking],
    *,
    weights: Mapping[str, float],
) -> list[tuple[str, float]]:
    """Per-query min-max normalised weighted sum; a document missing from a leg gets 0 there."""
    fused: dict[str, float] = {}
    for leg, ranking in rankings.items():
        weight = weights.get(leg, 0.0)
        normalised = minmax([score for _id, score in ranking])
        seen: set[str] = set()
        for (doc_id, _score), norm in zip(ranking, normalised, strict=True):
            if doc_id in seen:
                continue
            seen.add(doc_id)
            fused[doc_id] = fused.get(doc_id, 0.0) + weight * norm
    return _order(fused, rankings)


def knn_weights(knn_weight: float = DEFAULT_KNN_WEIGHT) -> dict[str, float]:
    return {"bm25": 1.0 - knn_weight, "knn": knn_weight}
