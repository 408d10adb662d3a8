"""Metrics through ranx on hand-made runs whose values are known independently."""

from __future__ import annotations

import math

import pytest

from essearch.eval.metrics import (
    doc_ranking,
    evaluate_run,
    latency_summary,
    metric_names,
    run_from_rankings,
)

QRELS = {"q1": {"a": 1, "b": 1}, "q2": {"c": 1}}
METRICS = metric_names(10, 100)


def test_metric_names() -> None:
    assert METRICS == ["ndcg@10", "recall@100", "mrr@10"]


def test_perfect_run_scores_one() -> None:
    run = run_from_rankings({"q1": ["a", "b", "x"], "q2": ["c", "y"]})
    scores = evaluate_run(QRELS, run, METRICS)
    assert scores == pytest.approx({"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0})


def test_reversed_run_matches_the_formula() -> None:
    # q1: relevant a, b at ranks 3 and 2 of [x, b, a]; q2: c at rank 2 of [y, c]
    run = run_from_rankings({"q1": ["x", "b", "a"], "q2": ["y", "c"]})
    scores = evaluate_run(QRELS, run, METRICS)
    idcg_q1 = 1 + 1 / math.log2(3)
    ndcg_q1 = (1 / math.log2(3) + 1 / math.log2(4)) / idcg_q1
    ndcg_q2 = 1 / math.log2(3)
    assert scores["ndcg@10"] == pytest.approx((ndcg_q1 + ndcg_q2) / 2)
    assert scores["ndcg@10"] < 1.0
    assert scores["mrr@10"] == pytest.approx(0.5)
    assert scores["recall@100"] == pytest.approx(1.0)


def test_missing_query_counts_as_zero() -> None:
    run = run_from_rankings({"q1": ["a", "b"]})
    scores = evaluate_run(QRELS, run, METRICS)
    assert scores["ndcg@10"] == pytest.approx(0.5)
    assert scores["recall@100"] == pytest.approx(0.5)


def test_cutoff_excludes_deep_hits() -> None:
    ranking = [f"n{i}" for i in range(10)] + ["c"]  # c at rank 11
    scores = evaluate_run({"q2": {"c": 1}}, run_from_rankings({"q2": ranking}), METRICS)
    assert scores["ndcg@10"] == 0.0
    assert scores["mrr@10"] == 0.0
    assert scores["recall@100"] == 1.0


def test_run_scores_keep_the_search_order() -> None:
    run = run_from_rankings({"q": ["z", "a", "m"]})
    ordered = sorted(run["q"], key=lambda d: -run["q"][d])
    assert ordered == ["z", "a", "m"]


def test_doc_ranking_keeps_best_chunk_per_document() -> None:
    chunks_doc_ids = ["d2", "d1", "d2", "d3", "d1"]
    assert doc_ranking(chunks_doc_ids) == ["d2", "d1", "d3"]
    assert doc_ranking(chunks_doc_ids, depth=2) == ["d2", "d1"]


def test_self_hits_are_dropped_only_when_asked() -> None:
    hits = ["q7", "d1", "q7", "d2"]
    assert doc_ranking(hits, query_id="q7") == ["q7", "d1", "d2"]
    assert doc_ranking(hits, query_id="q7", drop_self_hits=True) == ["d1", "d2"]


def test_self_hit_dropping_changes_the_metric() -> None:
    qrels = {"q7": {"d1": 1}}
    kept = run_from_rankings({"q7": doc_ranking(["q7", "d1"], query_id="q7")})
    dropped = run_from_rankings(
        {"q7": doc_ranking(["q7", "d1"], query_id="q7", drop_self_hits=True)}
    )
    assert evaluate_run(qrels, kept, ["mrr@10"])["mrr@10"] == pytest.approx(0.5)
    assert evaluate_run(qrels, dropped, ["mrr@10"])["mrr@10"] == pytest.approx(1.0)


def test_latency_percentiles() -> None:
    summary = latency_summary([float(i) for i in range(1, 101)])
    assert summary["p50_ms"] == pytest.approx(50.5)
    assert summary["p95_ms"] == pytest.approx(95.05)
    assert latency_summary([]) == {"p50_ms": 0.0, "p95_ms": 0.0, "mean_ms": 0.0}
