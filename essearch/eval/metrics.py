"""IR metrics through ranx (never hand-written), and the run shaping BEIR evaluation needs.

Search hits are chunks; BEIR judges documents. A document's rank is the rank of its best chunk
(the first one the ranked list shows), and a run's scores are derived from those ranks so that ranx
orders documents exactly as the search did (ties in raw scores cannot reorder them).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

#: The depth of every run: Recall@100 needs 100 documents per query.
RUN_DEPTH = 100

Run = dict[str, dict[str, float]]


def metric_names(k: int = 10, depth: int = RUN_DEPTH) -> list[str]:
    """nDCG@k, Recall@depth and MRR@k in ranx's spelling."""
    return [f"ndcg@{k}", f"recall@{depth}", f"mrr@{k}"]


def doc_ranking(
    doc_ids: Iterable[str],
    *,
    query_id: str | None = None,
    drop_self_hits: bool = False,
    depth: int = RUN_DEPTH,
) -> list[str]:
    """Parent document ids in rank order: first (best) chunk wins, self-hits dropped if asked."""
    ranking: list[str] = []
    seen: set[str] = set()
    for doc_id in doc_ids:
        if doc_id in seen or (drop_self_hits and doc_id == query_id):
            continue
        seen.add(doc_id)
        ranking.append(doc_id)
        if len(ranking) >= depth:
            break
    return ranking


def run_from_rankings(rankings: Mapping[str, Sequence[str]]) -> Run:
    """{query: {doc: score}} with score = len - rank, so ranx keeps the given order."""
    return {
        query_id: {doc_id: float(len(docs) - rank) for rank, doc_id in enumerate(docs)}
        for query_id, docs in rankings.items()
    }


def evaluate_run(
    qrels: Mapping[str, Mapping[str, int]],
    run: Mapping[str, Mapping[str, float]],
    metrics: Sequence[str],
) -> dict[str, float]:
    """Mean of each metric over the judged queries; a judged query absent from the run scores 0."""
    from ranx import Qrels, evaluate
    from ranx import Run as RanxRun

    judged = {qid: dict(docs) for qid, docs in qrels.items() if docs}
    ranx_qrels = Qrels(judged)
    ranx_run = RanxRun({qid: dict(run.get(qid, {})) for qid in judged})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numba's "unsafe cast" notices
        scores = evaluate(ranx_qrels, ranx_run, list(metrics), make_comparable=True)
    if isinstance(scores, Mapping):
        return {name: float(value) for name, value in scores.items()}
    return {metrics[0]: float(scores)}


def latency_summary(latencies_ms: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of per-query latencies, in milliseconds."""
    if not latencies_ms:
        return {"p50_ms": 0.0, "p95_ms": 0.0, "mean_ms": 0.0}
    values = np.asarray(latencies_ms, dtype=float)
    return {
        "p50_ms": float(np.percentile(values, 50)),
        "p95_ms": float(np.percentile(values, 95)),
        "mean_ms": float(values.mean()),
    }
