"""Rerank backends against local servers that speak their APIs, and the rerank stage on the node."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from essearch.rerank import Candidate, RerankError, create_reranker
from essearch.rerank.elasticsearch import text_similarity_reranker_body
from essearch.rerank.http import CohereReranker, TEIReranker
from essearch.settings import RerankSettings

CANDIDATES = [Candidate("a", "apples are red"), Candidate("b", "bananas are yellow")]


def _keyword_scores(query: str, texts: list[str]) -> list[float]:
    """What the fake servers score by: shared words with the query (a real, checkable order)."""
    words = set(query.lower().split())
    return [
        len(words & set(t.lower().split())) + 1.0 / (1 + i) * 0.001 for i, t in enumerate(texts)
    ]


def tei_handler(request: Request) -> Response:
    body = request.get_json()
    assert set(body) >= {"query", "texts"}
    scores = _keyword_scores(body["query"], body["texts"])
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])  # TEI answers best first
    return Response(
        json.dumps([{"index": i, "score": scores[i]} for i in ranked]),
        content_type="application/json",
    )


def cohere_handler(request: Request) -> Response:
    body = request.get_json()
    assert request.headers.get("Authorization") == "Bearer sk-rerank-secret"
    assert body["model"] == "bge-reranker-v2-m3" and body["top_n"] == len(body["documents"])
    scores = _keyword_scores(body["query"], body["documents"])
    ranked = sorted(range(len(scores)), key=lambda i: -scores[i])
    results = [{"index": i, "relevance_score": scores[i]} for i in ranked]
    return Response(json.dumps({"id": "x", "results": results}), content_type="application/json")


def test_tei_scores_come_back_in_candidate_order(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/rerank", method="POST").respond_with_handler(tei_handler)
    reranker = TEIReranker(httpserver.url_for(""))
    scores = reranker.rerank("yellow bananas", CANDIDATES)
    assert scores[1] > scores[0]  # put back in candidate order, not the server's order
    assert reranker.rerank("anything", []) == []  # nothing to score: no call


def test_cohere_compatible_sends_model_and_key(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/rerank", method="POST").respond_with_handler(cohere_handler)
    reranker = CohereReranker(
        httpserver.url_for(""), model="bge-reranker-v2-m3", api_key="sk-rerank-secret"
    )
    scores = reranker.rerank("red apples", CANDIDATES)
    assert scores[0] > scores[1]


def test_429_is_retried_with_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_ordered_request("/rerank").respond_with_response(
        Response("slow down", status=429, headers={"Retry-After": "0"})
    )
    httpserver.expect_ordered_request("/rerank").respond_with_handler(tei_handler)
    assert len(TEIReranker(httpserver.url_for(""), max_retries=2).rerank("q", CANDIDATES)) == 2


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (Response("bad input", status=413), "HTTP 413"),
        (Response("[]", content_type="application/json"), "0 scores for 2"),
        (Response('[{"idx": 0}]', content_type="application/json"), "unexpected shape"),
        (Response("<html>", content_type="text/html"), "did not answer JSON"),
    ],
)
def test_errors_are_rerank_errors(httpserver: HTTPServer, response: Response, message: str) -> None:
    httpserver.expect_request("/rerank").respond_with_response(response)
    with pytest.raises(RerankError, match=message):
        TEIReranker(httpserver.url_for(""), max_retries=0).rerank("q", CANDIDATES)


def test_timeout_gives_up_after_retries(httpserver: HTTPServer) -> None:
    def slow(request: Request) -> Response:
        time.sleep(0.5)
        return tei_handler(request)

    httpserver.expect_request("/rerank").respond_with_handler(slow)
    reranker = TEIReranker(httpserver.url_for(""), timeout=0.1, max_retries=1)
    with pytest.raises(RerankError, match="timed out"):
        reranker.rerank("q", CANDIDATES)


def test_settings_choose_the_backend_and_hide_the_key() -> None:
    settings = RerankSettings(provider="cohere", base_url="http://127.0.0.1:1", api_key="sk-123456")
    reranker = create_reranker(settings)
    assert isinstance(reranker, CohereReranker)
    assert "sk-123456" not in repr(reranker) and "sk-123456" not in repr(settings)
    with pytest.raises(Exception, match="ESSEARCH_RERANK_BASE_URL"):
        create_reranker(RerankSettings(provider="tei"))


def test_text_similarity_reranker_body_has_the_documented_shape() -> None:
    body = text_similarity_reranker_body("q", ["c1", "c2"], inference_id="my-rerank")
    inner = body["retriever"]["text_similarity_reranker"]
    assert inner["retriever"] == {"standard": {"query": {"ids": {"values": ["c1", "c2"]}}}}
    assert (inner["field"], inner["inference_id"], inner["inference_text"]) == (
        "text",
        "my-rerank",
        "q",
    )
    assert inner["rank_window_size"] == 2 and body["size"] == 2


# -- on the real node ----------------------------------------------------------------------------

CORPUS = [
    {"id": f"d{i}", "title": title, "text": text}
    for i, (title, text) in enumerate(
        [
            ("Refunds", "Refunds are paid back to the card within five days."),
            ("Shipping", "Parcels ship from the warehouse in two days."),
            ("Returns", "Items can be returned within thirty days for a refund."),
            ("Warranty", "The warranty covers defects for two years."),
            ("Payments", "We accept cards, bank transfers and vouchers."),
        ]
    )
]


@pytest.fixture(scope="module")
def rerank_index(es_client: Any, es_url: str, local_embedder: Any) -> Iterator[Any]:
    from conftest import cleanup_indices

    from essearch.ingest import IngestOptions, ingest
    from essearch.settings import Settings

    name = f"t-rr-{uuid.uuid4().hex[:8]}"
    settings = Settings(es={"url": es_url}, index={"name": name, "replicas": 0})
    report = ingest(
        CORPUS, settings=settings, embedder=local_embedder, options=IngestOptions(dead_letter=None)
    )
    assert report.ok
    yield settings
    cleanup_indices(es_client, name)


def _with_rerank(settings: Any, url: str, provider: str = "tei") -> Any:
    return settings.model_copy(
        update={"rerank": RerankSettings(provider=provider, base_url=url, max_retries=0)}
    )


def test_search_reorders_as_the_server_says(
    rerank_index: Any, local_embedder: Any, httpserver: HTTPServer
) -> None:
    from essearch.retrieval import SearchClient

    httpserver.expect_request("/rerank").respond_with_handler(tei_handler)
    settings = _with_rerank(rerank_index, httpserver.url_for(""))
    query = "warranty defects years"
    with SearchClient(settings, embedder=local_embedder) as search:
        plain = search.search(query, k=3, explain=True)
        reranked = search.search(query, k=3, rerank=True, rerank_top_n=5, explain=True)
    sent = json.loads(httpserver.log[-1][0].data)
    assert len(sent["texts"]) == 5  # the whole window went to the reranker
    expected = sorted(sent["texts"], key=lambda t: -_keyword_scores(query, [t])[0])
    got = [hit.text for hit in reranked.hits]
    assert got == expected[:3]
    assert [hit.rank for hit in reranked.hits] == [1, 2, 3]
    assert all(hit.rerank_score is not None for hit in reranked.hits)
    assert all(hit.rerank_score is None for hit in plain.hits)
    assert reranked.hits[0].legs  # leg scores stay next to the rerank score
    assert reranked.explain is not None and reranked.explain.timings.rerank_ms > 0


async def test_async_rerank_matches_sync(
    rerank_index: Any, local_embedder: Any, httpserver: HTTPServer
) -> None:
    from essearch.retrieval import AsyncSearchClient, SearchClient

    httpserver.expect_request("/rerank").respond_with_handler(tei_handler)
    settings = _with_rerank(rerank_index, httpserver.url_for(""))
    with SearchClient(settings, embedder=local_embedder) as search:
        sync_ids = [h.id for h in search.search("refund card", k=3, rerank=True).hits]
    async with AsyncSearchClient(settings, embedder=local_embedder) as search:
        async_ids = [h.id for h in (await search.search("refund card", k=3, rerank=True)).hits]
    assert async_ids == sync_ids


def test_a_failing_reranker_degrades_with_a_warning(
    rerank_index: Any, local_embedder: Any, httpserver: HTTPServer, caplog: Any
) -> None:
    from essearch.retrieval import SearchClient

    httpserver.expect_request("/rerank").respond_with_response(Response("down", status=503))
    settings = _with_rerank(rerank_index, httpserver.url_for(""))
    with SearchClient(settings, embedder=local_embedder) as search:
        plain = search.search("refund card", k=3)
        with caplog.at_level(logging.WARNING, logger="essearch.retrieval"):
            degraded = search.search("refund card", k=3, rerank=True, explain=True)
    assert [h.id for h in degraded.hits] == [h.id for h in plain.hits]
    assert "rerank failed" in caplog.text
    assert degraded.explain is not None
    assert any("retrieval order kept" in n for n in degraded.explain.notes)


def test_elasticsearch_reranker_needs_inference(rerank_index: Any, local_embedder: Any) -> None:
    """The test node has no inference API: the server reranker is refused, the search degrades."""
    from essearch.retrieval import SearchClient

    settings = rerank_index.model_copy(
        update={"rerank": RerankSettings(provider="elasticsearch", inference_id="my-rerank")}
    )
    with SearchClient(settings, embedder=local_embedder) as search:
        if search.capabilities().inference:
            pytest.skip("this cluster has the inference API")
        result = search.search("refund", k=2, rerank=True, explain=True)
    assert len(result.hits) == 2
    assert result.explain is not None and any("inference API" in n for n in result.explain.notes)


def test_similar_to_excludes_itself_and_collapses(rerank_index: Any, local_embedder: Any) -> None:
    from essearch.errors import SearchError
    from essearch.retrieval import SearchClient

    with SearchClient(rerank_index, embedder=local_embedder) as search:
        result = search.similar_to("d0", k=3)  # Refunds
        filtered = search.similar_to("d0", k=3, filter={"title": "Shipping"})
        with pytest.raises(SearchError, match="nope"):
            search.similar_to("nope")
    ids = [hit.doc_id for hit in result.hits]
    assert "d0" not in ids and len(ids) == len(set(ids)) == 3
    assert ids[0] == "d2"  # Returns ("... for a refund") is the nearest neighbour of Refunds
    assert [hit.doc_id for hit in filtered.hits] == ["d1"]


def test_cli_rerank_and_like(rerank_index: Any, httpserver: HTTPServer, monkeypatch: Any) -> None:
    from essearch.cli import main

    httpserver.expect_request("/rerank").respond_with_handler(tei_handler)
    env = {
        "ESSEARCH_ES_URL": rerank_index.es.url[0],
        "ESSEARCH_INDEX_NAME": rerank_index.index.name,
        "ESSEARCH_RERANK_PROVIDER": "tei",
        "ESSEARCH_RERANK_BASE_URL": httpserver.url_for(""),
    }
    runner = CliRunner()
    out = runner.invoke(
        main, ["search", "warranty years", "--rerank", "-k", "2", "--json"], env=env
    )
    assert out.exit_code == 0, out.output
    hits = json.loads(out.output)["hits"]
    assert hits[0]["doc_id"] == "d3" and hits[0]["rerank_score"] is not None
    like = runner.invoke(main, ["search", "--like", "d0", "-k", "2", "--json"], env=env)
    assert like.exit_code == 0, like.output
    assert "d0" not in [h["doc_id"] for h in json.loads(like.output)["hits"]]
