"""`essearch serve` over HTTP against a real node and the real MiniLM: the native API, Dify's
External Knowledge API (its documented examples replayed), auth, bounds and metrics."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient
from serve_support import CORPUS, cleanup, free_port, unique_name, wait_ready

from essearch.serve import create_app

KEY = "test-key-7f3a9c"  # a fake key for these tests only
LIMITED_KEY = "limited-key-2b8d"
DIFY_KNOWLEDGE_ID = "your-knowledge-id"  # the id in Dify's documented example request


@pytest.fixture(scope="module")
def alias(es_url, es_client):
    name = unique_name("serve")
    yield name
    cleanup(es_client, name)


@pytest.fixture(scope="module")
def open_app(alias, settings_for_module, local_embedder):
    settings = settings_for_module(alias, serve={"knowledge": {DIFY_KNOWLEDGE_ID: alias}})
    with TestClient(create_app(settings, embedder=local_embedder)) as client:
        assert wait_ready(client)["ready"]
        report = client.post(
            f"/v1/indices/{alias}/documents", json={"documents": [*CORPUS, 42, {"id": "x"}]}
        ).json()
        # the two malformed items are reported, the five documents indexed
        assert report["documents"] == 5 and report["indexed"] == 5, report
        assert report["failed"] == 2 and report["failures_by_stage"] == {"load": 2}
        yield client


@pytest.fixture(scope="module")
def keyed_app(alias, open_app, settings_for_module, local_embedder):
    other = unique_name("serve-other")
    settings = settings_for_module(
        alias,
        serve={
            "api_keys": {KEY: "*", LIMITED_KEY: [other]},
            "indices": [alias, other],
            "knowledge": {DIFY_KNOWLEDGE_ID: alias},
            "max_body_bytes": 4096,
        },
    )
    with TestClient(create_app(settings, embedder=local_embedder)) as client:
        wait_ready_with_key(client)
        yield client


@pytest.fixture(scope="module")
def settings_for_module(es_url):
    from essearch.settings import Settings

    def make(index_name, **groups):
        data = {"es": {"url": es_url}, "index": {"name": index_name, "replicas": 0}}
        data.update(groups)
        return Settings(**data)

    return make


def wait_ready_with_key(client, timeout=120.0):
    deadline = time.monotonic() + timeout
    while client.get("/readyz", headers=bearer(KEY)).status_code != 200:
        assert time.monotonic() < deadline, "keyed app never became ready"
        time.sleep(0.2)


def bearer(key):
    return {"Authorization": f"Bearer {key}"}


def doc_ids(hits):
    return [h["doc_id"] for h in hits]


# -- native API -----------------------------------------------------------------------------------
def test_hybrid_search_returns_legs_highlights_and_the_requests_sent(open_app, alias):
    body = open_app.post(
        "/v1/search", json={"query": "zyxquor coating", "index": alias, "explain": True}
    ).json()
    assert body["mode"] == "hybrid" and body["hits"][0]["doc_id"] == "d3"
    top = body["hits"][0]
    assert top["legs"]["bm25"]["rank"] == 1 and "knn" in top["legs"]
    assert "<em>zyxquor</em>" in top["highlights"]["text"][0]
    assert body["explain"]["requests"] and body["explain"]["timings"]["total_ms"] > 0
    plain = open_app.post("/v1/search", json={"query": "zyxquor", "index": alias}).json()
    assert plain["explain"] is None


def test_each_mode_and_the_filter_prefilters_the_knn_leg(open_app, alias):
    knn = open_app.post(
        "/v1/search",
        json={
            "query": "sleepy cats",
            "index": alias,
            "mode": "knn",
            "filter": {"category": "pets", "year": {"gte": 2022}},
            "explain": True,
        },
    ).json()
    assert doc_ids(knn["hits"]) == ["d5"]
    sent = knn["explain"]["requests"][0]
    assert sent["knn"]["filter"] == {
        "bool": {
            "filter": [
                {"term": {"metadata.category": "pets"}},
                {"range": {"metadata.year": {"gte": 2022}}},
            ]
        }
    }
    bm25 = open_app.post(
        "/v1/search", json={"query": "cats", "index": alias, "mode": "bm25", "k": 3}
    ).json()
    assert bm25["strategy"] == "bm25" and doc_ids(bm25["hits"])[0] == "d4"
    listed = open_app.post(
        "/v1/search",
        json={"query": "panels", "index": alias, "filter": [{"tags": "solar"}, {"year": 2019}]},
    ).json()
    assert doc_ids(listed["hits"]) == ["d3"]


def test_query_text_is_never_parsed_as_lucene_or_dsl(open_app, alias):
    for text in ['title:(cats OR "x" AND', '{"match_all": {}}', "cats) OR (*:*", "\\/[]^~"]:
        response = open_app.post("/v1/search", json={"query": text, "index": alias, "mode": "bm25"})
        assert response.status_code == 200, (text, response.text)
    # `*:*` as Lucene would match all five documents; as text it matches none
    match_all = open_app.post("/v1/search", json={"query": "*:*", "index": alias, "mode": "bm25"})
    assert match_all.json()["hits"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": "x", "k": 101}, "k"),
        ({"query": "x", "from": 1001}, "from"),
        ({"query": "x", "k": 0}, "k"),
        ({"query": "x", "mode": "fuzzy"}, "mode"),
        ({"query": "x", "fusion": "magic"}, "fusion"),
        ({"query": "x", "filter": {"year": {"near": 3}}}, "filter"),
        ({"query": "x", "filter": {"or": [{"or": [{"or": [{"or": [{"a": 1}]}]}]}]}}, "filter"),
        ({"query": "x", "lucene_syntax": True}, "lucene_syntax"),
        ({"mode": "knn"}, "query"),
        ({"query": "x", "knn_weight": 2}, "knn_weight"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(open_app, alias, body, field):
    response = open_app.post("/v1/search", json={"index": alias, **body})
    assert response.status_code == 422, response.text
    locations = [err["loc"] for err in response.json()["detail"]]
    assert any(field in loc for loc in locations), locations


def test_unknown_index_is_404_and_nothing_else_is_reachable(open_app):
    response = open_app.post("/v1/search", json={"query": "x", "index": ".security"})
    assert response.status_code == 404
    assert "not served here" in response.json()["error"]["message"]


def test_documents_like_this_one(open_app, alias):
    response = open_app.get(f"/v1/indices/{alias}/documents/d4/similar?k=3")
    assert response.status_code == 200, response.text
    ids = [hit["doc_id"] for hit in response.json()["hits"]]
    assert len(ids) == len(set(ids)) == 3 and "d4" not in ids  # itself left out, one per doc
    assert open_app.get(f"/v1/indices/{alias}/documents/nope/similar").status_code == 404
    assert open_app.get(f"/v1/indices/{alias}/documents/d4/similar?k=0").status_code == 422


def test_documents_get_and_delete(open_app, alias):
    doc = open_app.get(f"/v1/indices/{alias}/documents/d4").json()
    assert doc["text"] == CORPUS[3]["text"] and doc["exact"] and doc["metadata"]["year"] == 2021
    assert open_app.get(f"/v1/indices/{alias}/documents/nope").status_code == 404
    added = open_app.post(
        f"/v1/indices/{alias}/documents", json={"documents": [{"id": "tmp", "text": "Temporary"}]}
    ).json()
    assert added["ok"] and added["indexed"] == 1
    deleted = open_app.delete(f"/v1/indices/{alias}/documents/tmp").json()
    assert deleted["deleted"] == 1
    assert open_app.get(f"/v1/indices/{alias}/documents/tmp").status_code == 404
    assert open_app.delete(f"/v1/indices/{alias}/documents/tmp").status_code == 404


def test_batch_size_is_bounded(open_app, alias):
    many = [{"text": f"doc {i}"} for i in range(1001)]
    response = open_app.post(f"/v1/indices/{alias}/documents", json={"documents": many})
    assert response.status_code == 422 and response.json()["detail"][0]["loc"][-1] == "documents"


def test_indices_health_and_readiness(open_app, alias):
    listed = open_app.get("/v1/indices").json()["indices"]
    assert [entry["name"] for entry in listed] == [alias]
    assert listed[0]["exists"] and listed[0]["versions"][0]["docs"] >= 5
    assert open_app.get("/healthz").json() == {"status": "ok"}
    ready = open_app.get("/readyz").json()
    assert ready["ready"] and ready["model"]["dims"] == 384
    assert "/v1/search" in open_app.get("/openapi.json").json()["paths"]
    assert open_app.get("/docs").status_code == 200


def test_metrics_count_requests_latency_and_ingest(open_app, alias):
    open_app.post("/v1/search", json={"query": "solar", "index": alias, "mode": "knn"})
    open_app.post("/v1/search", json={"query": "x", "index": alias, "k": 5000})
    text = open_app.get("/metrics").text
    assert 'essearch_http_requests_total{method="POST",route="/v1/search",status="200"}' in text
    assert 'essearch_http_requests_total{method="POST",route="/v1/search",status="422"}' in text
    assert 'essearch_search_duration_seconds_count{api="v1",mode="knn"}' in text
    assert "essearch_embedding_duration_seconds_count" in text
    assert 'essearch_es_duration_seconds_count{mode="hybrid"}' in text
    assert "essearch_http_in_flight_requests" in text
    assert 'essearch_ingest_chunks_total{outcome="indexed"}' in text
    assert "essearch_ingest_documents_total" in text


# -- Dify's External Knowledge API: the documented examples, replayed -----------------------------
def test_dify_documented_example_request_and_response(open_app):
    # https://docs.dify.ai/en/use-dify/knowledge/external-knowledge-api, "Example Request"
    request = {
        "knowledge_id": DIFY_KNOWLEDGE_ID,
        "query": "What is Dify?",
        "retrieval_setting": {"top_k": 3, "score_threshold": 0.5},
    }
    response = open_app.post("/retrieval", json=request, headers=bearer("your-api-key"))
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["records"] and 1 <= len(body["records"]) <= 3
    documented = {  # the documented example response's records
        "knowledge.txt": {
            "content": "This is the document for external knowledge.",
            "metadata": {
                "path": "s3://dify/knowledge.txt",
                "description": "dify knowledge document",
            },
        },
        "introduce.txt": {
            "content": "The Innovation Engine for GenAI Applications",
            "metadata": {},
        },
    }
    for record in body["records"]:
        assert set(record) == {"content", "score", "title", "metadata"}
        assert isinstance(record["content"], str) and isinstance(record["title"], str)
        assert isinstance(record["metadata"], dict)  # never null (Dify's warning)
        assert 0.5 <= record["score"] <= 1.0
    top = body["records"][0]
    assert top["title"] in documented
    assert top["content"] == documented[top["title"]]["content"]
    assert documented[top["title"]]["metadata"].items() <= top["metadata"].items()
    scores = [r["score"] for r in body["records"]]
    assert scores == sorted(scores, reverse=True)


def test_dify_older_documented_request_syntax(open_app):
    # the older page's "Request Syntax": top_k 2, score_threshold 0.5
    request = {
        "knowledge_id": DIFY_KNOWLEDGE_ID,
        "query": "your question",
        "retrieval_setting": {"top_k": 2, "score_threshold": 0.5},
    }
    body = open_app.post("/retrieval", json=request).json()
    assert list(body) == ["records"] and len(body["records"]) <= 2


def test_dify_threshold_zero_and_top_k(open_app):
    def ask(threshold, top_k):
        return open_app.post(
            "/retrieval",
            json={
                "knowledge_id": DIFY_KNOWLEDGE_ID,
                "query": "kittens asleep",
                "retrieval_setting": {"top_k": top_k, "score_threshold": threshold},
            },
        ).json()["records"]

    everything = ask(0.0, 10)
    assert len(everything) == 5 and everything[0]["metadata"]["doc_id"] in ("d4", "d5")
    assert len(ask(0.0, 2)) == 2
    strict = ask(0.99, 10)
    assert all(r["score"] >= 0.99 for r in strict) and len(strict) < 5


DIFY_OPERATOR_CASES = [
    ("path", "contains", "dify", {"d1", "d2"}),
    ("path", "not contains", "dify", {"d3", "d4", "d5"}),
    ("path", "start with", "s3://", {"d1", "d2", "d5"}),
    ("path", "end with", ".md", {"d3", "d4", "d5"}),
    ("category", "is", "pets", {"d4", "d5"}),
    ("category", "is not", "pets", {"d1", "d2", "d3"}),
    ("category", "in", ["guide", "energy"], {"d1", "d3"}),
    ("category", "not in", ["guide", "energy"], {"d2", "d4", "d5"}),
    ("tags", "empty", None, {"d4"}),
    ("tags", "not empty", None, {"d1", "d2", "d3", "d5"}),
    ("year", "=", "2023", {"d1"}),
    ("year", "≠", 2023, {"d2", "d3", "d4", "d5"}),
    ("year", ">", 2022, {"d1", "d2"}),
    ("year", "<", 2021, {"d3"}),
    ("year", "≥", 2022, {"d1", "d2", "d5"}),
    ("year", "≤", 2021, {"d3", "d4"}),
    ("published", "before", "2021-01-01", {"d3"}),
    ("published", "after", "2023-01-01", {"d1", "d2"}),
    ("tags", "contains", "dif", {"d1", "d2"}),  # on an array: any element
]


@pytest.mark.parametrize(("name", "operator", "value", "expected"), DIFY_OPERATOR_CASES)
def test_dify_metadata_condition_every_operator(open_app, name, operator, value, expected):
    condition = {"name": name, "comparison_operator": operator}
    if value is not None:
        condition["value"] = value
    response = open_app.post(
        "/retrieval",
        json={
            "knowledge_id": DIFY_KNOWLEDGE_ID,
            # a query every document is near: without the pre-filter kNN would return all five
            "query": "documents about pets, energy and dify",
            "retrieval_setting": {"top_k": 10, "score_threshold": 0.0},
            "metadata_condition": {"logical_operator": "and", "conditions": [condition]},
        },
    )
    assert response.status_code == 200, response.text
    assert {r["metadata"]["doc_id"] for r in response.json()["records"]} == expected


def test_dify_logical_or_and_bad_conditions(open_app):
    def ask(metadata_condition):
        return open_app.post(
            "/retrieval",
            json={
                "knowledge_id": DIFY_KNOWLEDGE_ID,
                "query": "anything at all",
                "retrieval_setting": {"top_k": 10, "score_threshold": 0.0},
                "metadata_condition": metadata_condition,
            },
        )

    either = ask(
        {
            "logical_operator": "or",
            "conditions": [
                {"name": "category", "comparison_operator": "is", "value": "energy"},
                {"name": "lang", "comparison_operator": "is", "value": "zh"},
            ],
        }
    )
    assert {r["metadata"]["doc_id"] for r in either.json()["records"]} == {"d3", "d5"}
    bad = ask({"conditions": [{"name": "year", "comparison_operator": ">", "value": "soon"}]})
    assert bad.status_code == 422
    assert "metadata_condition.conditions.0" in bad.json()["error_msg"]
    unknown_op = ask({"conditions": [{"name": "year", "comparison_operator": "like"}]})
    assert unknown_op.status_code == 422 and "comparison_operator" in unknown_op.json()["error_msg"]


def test_dify_missing_fields_are_422_naming_them(open_app):
    response = open_app.post("/retrieval", json={"knowledge_id": DIFY_KNOWLEDGE_ID, "query": "x"})
    assert response.status_code == 422
    assert "retrieval_setting" in response.json()["error_msg"]


def test_dify_unknown_knowledge_is_2001(open_app):
    response = open_app.post(
        "/retrieval",
        json={"knowledge_id": "AAA-BBB-CCC", "query": "q", "retrieval_setting": {"top_k": 2}},
    )
    assert response.status_code == 404
    assert response.json()["error_code"] == 2001


# -- auth -----------------------------------------------------------------------------------------
def test_every_route_but_healthz_needs_the_key(keyed_app, alias):
    assert keyed_app.get("/healthz").status_code == 200
    for method, path in [
        ("GET", "/readyz"),
        ("GET", "/metrics"),
        ("GET", "/v1/indices"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
        ("GET", "/"),
        ("POST", "/v1/search"),
        ("GET", f"/v1/indices/{alias}/documents/d1"),
        ("DELETE", f"/v1/indices/{alias}/documents/d1"),
    ]:
        response = keyed_app.request(method, path)
        assert response.status_code == 401, (method, path)
        assert "www-authenticate" in response.headers
        wrong = keyed_app.request(method, path, headers=bearer(KEY + "x"))
        assert wrong.status_code == 401, (method, path)
    ok = keyed_app.post("/v1/search", json={"query": "cats", "index": alias}, headers=bearer(KEY))
    assert ok.status_code == 200 and ok.json()["hits"]
    assert keyed_app.get("/", headers=bearer(KEY)).status_code == 200
    assert open_doc_still_there(keyed_app, alias)


def open_doc_still_there(client, alias):
    return client.get(f"/v1/indices/{alias}/documents/d1", headers=bearer(KEY)).status_code == 200


def test_the_playground_accepts_the_key_as_basic_auth_password(keyed_app):
    assert keyed_app.get("/", auth=("me", KEY)).status_code == 200
    challenge = keyed_app.get("/").headers["www-authenticate"]
    assert challenge.startswith("Basic")


def test_per_key_aliases(keyed_app, alias):
    limited = bearer(LIMITED_KEY)
    response = keyed_app.post("/v1/search", json={"query": "cats", "index": alias}, headers=limited)
    assert response.status_code == 403
    names = [i["name"] for i in keyed_app.get("/v1/indices", headers=limited).json()["indices"]]
    assert alias not in names
    dify = keyed_app.post(
        "/retrieval",
        json={"knowledge_id": DIFY_KNOWLEDGE_ID, "query": "q", "retrieval_setting": {"top_k": 1}},
        headers=limited,
    )
    assert dify.status_code == 403 and dify.json()["error_code"] == 1002


def test_dify_auth_errors_use_dify_codes_and_shape(keyed_app):
    request = {"knowledge_id": DIFY_KNOWLEDGE_ID, "query": "q", "retrieval_setting": {"top_k": 1}}
    cases = [
        ({}, 1001),
        ({"Authorization": "Token " + KEY}, 1001),
        ({"Authorization": "Bearer"}, 1001),
        (bearer("not-the-key"), 1002),
    ]
    for headers, code in cases:
        response = keyed_app.post("/retrieval", json=request, headers=headers)
        assert response.status_code == 403, headers
        body = response.json()
        assert set(body) == {"error_code", "error_msg"}  # the documented error response
        assert body["error_code"] == code
        assert KEY not in response.text
    assert keyed_app.post("/retrieval", json=request, headers=bearer(KEY)).status_code == 200


def test_dify_endpoint_check_passes_with_the_right_key_only(keyed_app):
    # Dify checks a new endpoint with POST {endpoint}/retrieval, no body; it rejects 403/404/502
    assert keyed_app.post("/retrieval", headers=bearer(KEY)).status_code not in (403, 404, 502)
    assert keyed_app.post("/retrieval", headers=bearer("wrong")).status_code == 403


def test_body_size_limit(keyed_app, alias):
    big = {"query": "x" * 5000, "index": alias}
    response = keyed_app.post("/v1/search", json=big, headers=bearer(KEY))
    assert response.status_code == 413
    assert "ESSEARCH_SERVE_MAX_BODY_BYTES" in response.json()["error"]["message"]

    def chunked():  # no Content-Length: counted while it streams
        yield b'{"query": "'
        for _ in range(10):
            yield b"x" * 1000
        yield b'"}'

    streamed = keyed_app.post(
        "/v1/search",
        content=chunked(),
        headers={**bearer(KEY), "Content-Type": "application/json"},
    )
    assert streamed.status_code == 413


def test_keys_never_reach_logs_or_responses(keyed_app, alias, caplog):
    caplog.set_level(logging.DEBUG)
    keyed_app.post("/v1/search", json={"query": "x", "index": alias}, headers=bearer(KEY + "zz"))
    keyed_app.post("/v1/search", json={"query": "x", "index": alias}, headers=bearer(KEY))
    keyed_app.post("/v1/search", json={"query": "x", "index": "nope"}, headers=bearer(KEY))
    assert KEY not in caplog.text
    assert KEY not in keyed_app.get("/metrics", headers=bearer(KEY)).text


# -- the command ----------------------------------------------------------------------------------
def test_essearch_serve_runs_from_one_command(es_url, alias, open_app):
    port = free_port()
    env = {
        **os.environ,
        "ESSEARCH_ES_URL": es_url,
        "ESSEARCH_INDEX_NAME": alias,
        "OMP_NUM_THREADS": "1",
    }
    env.pop("ESSEARCH_SERVE_API_KEYS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "essearch", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "essearch serve did not start"
            time.sleep(0.3)
        bm25 = httpx.post(
            f"http://127.0.0.1:{port}/v1/search",
            json={"query": "zyxquor", "mode": "bm25"},
            timeout=30,
        ).json()
        assert bm25["hits"][0]["doc_id"] == "d3"
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    assert "loopback only" in err


def test_cors_is_off_by_default_and_on_for_listed_origins(
    open_app, alias, settings_for_module, local_embedder
):
    preflight = {
        "Origin": "https://evil.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    response = open_app.options("/v1/search", headers=preflight)
    assert "access-control-allow-origin" not in response.headers
    settings = settings_for_module(alias, serve={"cors_origins": "https://app.example"})
    with TestClient(create_app(settings, embedder=local_embedder)) as client:
        allowed = client.options(
            "/v1/search", headers={**preflight, "Origin": "https://app.example"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        refused = client.options("/v1/search", headers=preflight)
        assert "access-control-allow-origin" not in refused.headers


def test_a_long_ingest_never_blocks_the_event_loop(es_url, es_client, local_embedder):
    """While a batch is chunked, embedded and indexed (in a worker thread), the same server
    keeps answering: /healthz replies arrive before the ingest's own reply."""
    import threading

    from serve_support import running_server

    from essearch.settings import Settings

    alias = unique_name("serve-loop")
    settings = Settings(es={"url": es_url}, index={"name": alias, "replicas": 0})
    documents = [
        {"id": f"n{i}", "text": f"Note {i}: " + "solar panels and cooling systems " * 12}
        for i in range(200)
    ]
    order: list[str] = []
    try:
        with running_server(create_app(settings, embedder=local_embedder), free_port()) as base:

            def add() -> None:
                response = httpx.post(
                    f"{base}/v1/indices/{alias}/documents",
                    json={"documents": documents},
                    timeout=600,
                )
                order.append(f"ingest {response.status_code} {response.json()['documents']}")

            ingest_thread = threading.Thread(target=add)
            ingest_thread.start()
            while ingest_thread.is_alive():  # 200 documents: a second or more of work anywhere
                if httpx.get(f"{base}/healthz", timeout=30).status_code == 200:
                    order.append("healthz")
                time.sleep(0.05)
            ingest_thread.join()
    finally:
        cleanup(es_client, alias)
    # The last health poll may race the ingest's reply, so only the replies before it count.
    ingest_reply = next(i for i, event in enumerate(order) if event.startswith("ingest"))
    assert order[ingest_reply] == "ingest 200 200", order
    assert order[:ingest_reply].count("healthz") >= 2, order
