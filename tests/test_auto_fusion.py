"""The `auto` hybrid fusion: which strategy each cluster gets, the bodies it sends, and on the real
node (Basic licence) that it ranks exactly like client-side linear fusion."""

from __future__ import annotations

import uuid

import pytest
from elasticsearch import helpers

from essearch.es.capabilities import Capabilities
from essearch.index import IndexManager
from essearch.retrieval import SearchClient, SearchParams
from essearch.retrieval.strategies import (
    AUTO_FALLBACK,
    STRATEGIES,
    auto_strategy_name,
    choose,
    fallback_for,
)
from essearch.settings import Settings

RRF_MODULE = frozenset({"x-pack-rank-rrf"})
VEC = [0.1, 0.2, 0.3]


def caps(version: str, licence: str, *, status: str = "active", module: bool = True):
    return Capabilities(
        version=version,
        license_type=licence,
        license_status=status,
        modules=RRF_MODULE if module else frozenset(),
    )


@pytest.mark.parametrize(
    ("capabilities", "expected"),
    [
        (caps("9.5.4", "basic"), "client-linear"),  # the free licence: client-side min-max
        (caps("9.2.0", "enterprise"), "linear"),  # server linear: the same method
        (caps("8.18.0", "trial"), "linear"),  # linear arrived in 8.18
        (caps("8.17.0", "trial"), "rrf"),  # licensed, no linear yet: server RRF
        (caps("8.16.0", "enterprise"), "rrf"),
        (caps("8.15.0", "enterprise"), "client-linear"),  # no server retrievers at all
        (caps("9.2.0", "enterprise", module=False), "client-linear"),  # module missing
        (caps("9.2.0", "enterprise", status="expired"), "client-linear"),
        (caps("9.2.0", "gold"), "client-linear"),
    ],
)
def test_auto_strategy_per_capability_set(capabilities, expected):
    assert auto_strategy_name(capabilities) == expected
    assert choose(SearchParams.make("q"), capabilities).name == expected
    # once the server refused its fusion, auto stays client-side
    assert auto_strategy_name(capabilities, server_refused=True) == AUTO_FALLBACK == "client-linear"


def test_auto_bodies_on_basic_are_two_legs_fused_with_the_knn_weight():
    params = SearchParams.make("solar", knn_weight=0.3, k=5)
    strategy = choose(params, caps("9.5.4", "basic"))
    bm25, knn = strategy.bodies(params, VEC, caps("9.5.4", "basic"))
    assert "query" in bm25 and "knn" not in bm25
    assert knn["knn"]["query_vector"] == VEC and "query" not in knn
    rankings = {"bm25": [("a", 9.0), ("b", 1.0)], "knn": [("b", 0.9), ("a", 0.8)]}
    # kNN weight 0.3: a = 0.7·1 + 0.3·0 beats b = 0.7·0 + 0.3·1; weight 0.8 flips it
    assert [doc for doc, _ in strategy.fuse(params, rankings)] == ["a", "b"]
    heavy = SearchParams.make("solar", knn_weight=0.8)
    assert [doc for doc, _ in strategy.fuse(heavy, rankings)] == ["b", "a"]


def test_auto_body_on_licensed_cluster_is_the_server_linear_retriever():
    licensed = caps("9.2.0", "enterprise")
    params = SearchParams.make("solar", knn_weight=0.3, rank_window_size=50)
    (body,) = choose(params, licensed).bodies(params, VEC, licensed)
    retrievers = body["retriever"]["linear"]["retrievers"]
    assert [r["weight"] for r in retrievers] == pytest.approx([0.7, 0.3])
    assert {r["normalizer"] for r in retrievers} == {"minmax"}
    assert "knn" in retrievers[1]["retriever"] and "standard" in retrievers[0]["retriever"]
    assert body["retriever"]["linear"]["rank_window_size"] == 50
    old = caps("8.17.0", "trial")
    (rrf_body,) = choose(params, old).bodies(params, VEC, old)
    assert "rrf" in rrf_body["retriever"]


def test_a_refused_server_fusion_falls_back_to_client_linear():
    for name in ("rrf", "linear"):
        assert fallback_for(STRATEGIES[name]).name == "client-linear"


# -- on the real node ---------------------------------------------------------------------------
DOCS = [
    ("solar", "Solar panel efficiency", "Solar panel efficiency improves with cooling."),
    ("heat", "Overheating", "Photovoltaic cells lose output when they get hot."),
    ("wind", "Wind", "Wind turbines convert kinetic energy into electricity."),
    ("cats", "Pets", "Cats often nap on the sofa for hours."),
    ("bread", "Baking", "Knead the dough and let it rise before baking bread."),
    ("panel", "Panels", "A panel discussion on efficiency in public administration."),
]
QUERY = "solar panel efficiency when hot"


@pytest.fixture(scope="module")
def small_index(es_client, es_url, local_embedder):
    name = f"t-auto-fusion-{uuid.uuid4().hex[:8]}"
    settings = Settings(es={"url": es_url}, index={"name": name, "replicas": 0})
    IndexManager(es_client, settings, embedder=local_embedder.info).init()
    vectors = local_embedder.embed_documents([f"{title} {text}" for _, title, text in DOCS])
    helpers.bulk(
        es_client,
        [
            {
                "_index": f"{name}-write",
                "_id": doc_id,
                "_source": {
                    "id": doc_id,
                    "doc_id": doc_id,
                    "chunk": 0,
                    "title": title,
                    "text": text,
                    "vector": vector,
                },
            }
            for (doc_id, title, text), vector in zip(DOCS, vectors, strict=True)
        ],
        refresh=True,
    )
    yield settings
    for index in es_client.indices.get(index=f"{name}*", expand_wildcards="all").body:
        es_client.indices.delete(index=index, ignore_unavailable=True)
    quiet = es_client.options(ignore_status=404)
    for template in quiet.indices.get_index_template(name=f"{name}*").body.get(
        "index_templates", []
    ):
        quiet.indices.delete_index_template(name=template["name"])


def _ranked(result):
    return [(hit.id, round(hit.score, 6)) for hit in result.hits]


def test_auto_on_the_node_ranks_like_client_linear(small_index, local_embedder, es_client):
    with SearchClient(small_index, client=es_client, embedder=local_embedder) as search:
        if search.capabilities().rrf_retriever:
            pytest.skip("this node is licensed for server fusion")
        for weight in (0.6, 0.2):
            auto = search.hybrid(QUERY, k=6, knn_weight=weight, explain=True)
            linear = search.hybrid(QUERY, k=6, knn_weight=weight, fusion="client-linear")
            assert auto.strategy == "client-linear"
            assert _ranked(auto) == _ranked(linear)
            assert any("client-linear" in note for note in auto.explain.notes)


def test_auto_falls_back_to_client_linear_when_the_node_refuses_server_linear(
    small_index, local_embedder, es_client
):
    claims_linear = caps("9.5.0", "enterprise")  # a probe that wrongly claims server linear
    with SearchClient(small_index, client=es_client, embedder=local_embedder) as honest:
        if honest.capabilities().linear_retriever:
            pytest.skip("this node really runs the linear retriever")
        expected = _ranked(honest.hybrid(QUERY, k=6, fusion="client-linear"))
    with SearchClient(
        small_index, client=es_client, embedder=local_embedder, capabilities=claims_linear
    ) as lying:
        result = lying.hybrid(QUERY, k=6, explain=True)
    assert result.strategy == "client-linear"
    assert _ranked(result) == expected
    assert any("refused" in note for note in result.explain.notes)
