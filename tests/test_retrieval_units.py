"""Pure parts of retrieval: filter language, request bodies, fusion, strategy choice."""

from __future__ import annotations

import pytest

from essearch.errors import CapabilityError, LicenseError, SearchError
from essearch.es.capabilities import Capabilities
from essearch.retrieval import (
    F,
    SearchParams,
    compile_filter,
    fusion,
    parse_expression,
    parse_filters,
)
from essearch.retrieval import queries as q
from essearch.retrieval.strategies import AUTO_FALLBACK, STRATEGIES, choose, is_server_refusal

BASIC = Capabilities(version="9.5.4", license_type="basic", modules=frozenset({"x-pack-rank-rrf"}))
ENTERPRISE = Capabilities(
    version="9.2.0", license_type="enterprise", modules=frozenset({"x-pack-rank-rrf"})
)
OLD_ENTERPRISE = Capabilities(
    version="8.17.0", license_type="trial", modules=frozenset({"x-pack-rank-rrf"})
)
VEC = [0.1, 0.2, 0.3]


# -- filters ----------------------------------------------------------------------------------
def test_bare_names_mean_metadata_and_schema_fields_stay():
    assert F.eq("lang", "zh").to_es() == {"term": {"metadata.lang": "zh"}}
    assert F.eq("doc_id", "d1").to_es() == {"term": {"doc_id": "d1"}}
    assert F.eq("metadata.lang", "zh").to_es() == {"term": {"metadata.lang": "zh"}}
    assert F.eq("title", "deep sea").to_es() == {"match_phrase": {"title": "deep sea"}}


def test_operators_compose_and_flatten():
    expr = F.eq("lang", "zh") & F.gte("year", 2020) & ~F.exists("draft")
    assert expr.to_es() == {
        "bool": {
            "filter": [
                {"term": {"metadata.lang": "zh"}},
                {"range": {"metadata.year": {"gte": 2020}}},
                {"bool": {"must_not": [{"exists": {"field": "metadata.draft"}}]}},
            ]
        }
    }
    either = F.in_("tag", ["a", "b"]) | F.lt("indexed_at", "2024-01-01")
    assert either.to_es() == {
        "bool": {
            "should": [
                {"terms": {"metadata.tag": ["a", "b"]}},
                {"range": {"indexed_at": {"lt": "2024-01-01"}}},
            ],
            "minimum_should_match": 1,
        }
    }
    assert (~~F.exists("x")).to_es() == {"exists": {"field": "metadata.x"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lang=zh", {"term": {"metadata.lang": "zh"}}),
        ("lang == 'zh'", {"term": {"metadata.lang": "zh"}}),
        ("lang!=en", {"bool": {"must_not": [{"term": {"metadata.lang": "en"}}]}}),
        ("year>=2020", {"range": {"metadata.year": {"gte": 2020}}}),
        ("year<2020.5", {"range": {"metadata.year": {"lt": 2020.5}}}),
        ("indexed_at>2024-01-01", {"range": {"indexed_at": {"gt": "2024-01-01"}}}),
        ("tag in a, b", {"terms": {"metadata.tag": ["a", "b"]}}),
        ("tag not in a,b", {"bool": {"must_not": [{"terms": {"metadata.tag": ["a", "b"]}}]}}),
        ("draft", {"exists": {"field": "metadata.draft"}}),
        ("!draft", {"bool": {"must_not": [{"exists": {"field": "metadata.draft"}}]}}),
        (
            '{"year": {"gte": 2000, "lt": 2010}}',
            {"range": {"metadata.year": {"gte": 2000, "lt": 2010}}},
        ),
    ],
)
def test_cli_form(text, expected):
    assert parse_expression(text).to_es() == expected


def test_dict_form_nesting_matches_objects():
    as_dict = {
        "lang": "zh",
        "or": [{"tag": ["a", "b"]}, {"not": {"year": {"lt": 2000}}}],
        "draft": {"exists": False},
    }
    as_objects = (
        F.eq("lang", "zh") & (F.in_("tag", ["a", "b"]) | ~F.lt("year", 2000)) & F.missing("draft")
    )
    assert compile_filter(as_dict) == as_objects.to_es()


def test_several_cli_filters_are_anded():
    assert (
        parse_filters(["lang=zh", "year>=2020"]).to_es()
        == (F.eq("lang", "zh") & F.gte("year", 2020)).to_es()
    )
    assert compile_filter(["lang=zh"]) == {"term": {"metadata.lang": "zh"}}
    assert compile_filter(None) is None


@pytest.mark.parametrize("bad", ["year>=", "=zh", "{not json", '{"year": {"about": 3}}', "a b c"])
def test_bad_filters_name_the_input(bad):
    with pytest.raises(SearchError) as err:
        compile_filter(bad)
    assert "filter" in str(err.value)


# -- bodies -----------------------------------------------------------------------------------
def test_num_candidates_default_and_limits():
    assert q.default_num_candidates(10) == 100
    assert q.default_num_candidates(50) == 500
    assert q.default_num_candidates(5_000) == 10_000
    assert q.default_num_candidates(10_000) == 10_000
    with pytest.raises(SearchError, match="10,000"):
        q.default_num_candidates(10_001)
    with pytest.raises(SearchError, match=">= k"):
        q.knn_clause(VEC, k=20, num_candidates=10)


def test_user_text_is_not_lucene_unless_asked():
    text = 'title:(a OR b) AND "c'
    clause = q.bm25_query(text)
    assert clause == {
        "combined_fields": {"query": text, "fields": ["title", "text"], "operator": "or"}
    }
    best = q.bm25_query(text, fields=["title^2", "text"], multi_match_type="best_fields")
    assert best == {
        "multi_match": {
            "query": text,
            "fields": ["title^2", "text"],
            "type": "best_fields",
            "operator": "or",
            "tie_breaker": 0.3,
        }
    }
    lucene = q.bm25_query(text, lucene_syntax=True, operator="and", minimum_should_match="75%")
    assert lucene["query_string"]["default_operator"] == "AND"
    assert lucene["query_string"]["minimum_should_match"] == "75%"


def test_same_filter_in_both_legs_and_never_the_text():
    params = SearchParams.make("solar power", filter="lang=zh", mode="hybrid", fusion="client-rrf")
    bm25, knn = STRATEGIES["client-rrf"].bodies(params, VEC, BASIC)
    flt = {"term": {"metadata.lang": "zh"}}
    assert bm25["query"]["bool"]["filter"] == [flt]
    assert knn["knn"]["filter"] == flt  # pre-filter, and only the filter
    assert "solar" not in str(knn["knn"]["filter"])
    assert "vector" in bm25["_source"]["excludes"] and "vector" in knn["_source"]["excludes"]


def test_rescore_vector_only_where_supported():
    params = SearchParams.make("x", mode="knn", oversample=2.0)
    body = STRATEGIES["knn"].bodies(params, VEC, BASIC)[0]
    assert body["knn"]["rescore_vector"] == {"oversample": 2.0}
    old = Capabilities(version="8.15.0")
    assert "rescore_vector" not in STRATEGIES["knn"].bodies(params, VEC, old)[0]["knn"]


def test_weighted_body_boosts():
    params = SearchParams.make("x", fusion="weighted", knn_weight=0.3, filter="lang=en")
    body = STRATEGIES["weighted"].bodies(params, VEC, BASIC)[0]
    assert body["knn"]["boost"] == 0.3
    assert body["query"]["bool"]["boost"] == pytest.approx(0.7)
    assert body["knn"]["filter"] == {"term": {"metadata.lang": "en"}}
    assert body["query"]["bool"]["must"][0]["bool"]["filter"] == [{"term": {"metadata.lang": "en"}}]


def _shape(value):
    """Keys only (values replaced), to compare with the documented shapes."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return [_shape(v) for v in value]
    return None


def test_server_rrf_body_matches_documented_shape():
    # elasticsearch.md section 3, `rrf` (weights need 9.2: the wrapped {retriever, weight} form)
    params = SearchParams.make("q", fusion="rrf", rank_window_size=50, rrf_weights=(1.0, 2.0))
    body = STRATEGIES["rrf"].bodies(params, VEC, ENTERPRISE)[0]
    rrf = body["retriever"]["rrf"]
    assert rrf["rank_constant"] == 60 and rrf["rank_window_size"] == 50
    text_leg, vector_leg = rrf["retrievers"]
    assert set(text_leg) == {"retriever", "weight"} and text_leg["weight"] == 1.0
    assert "combined_fields" in text_leg["retriever"]["standard"]["query"]
    assert vector_leg["weight"] == 2.0
    assert set(vector_leg["retriever"]["knn"]) >= {"field", "query_vector", "k", "num_candidates"}
    # before 9.2 no weights: plain sub-retrievers, as in es-py / the documented 8.x shape
    body = STRATEGIES["rrf"].bodies(params, VEC, OLD_ENTERPRISE)[0]
    legs = body["retriever"]["rrf"]["retrievers"]
    assert _shape(legs[0]) == {
        "standard": {
            "query": {"combined_fields": _shape(legs[0]["standard"]["query"]["combined_fields"])}
        }
    }
    assert set(legs[1]) == {"knn"}


def test_server_linear_body_matches_documented_shape():
    params = SearchParams.make("q", fusion="linear", knn_weight=0.7, rank_window_size=50)
    body = STRATEGIES["linear"].bodies(params, VEC, ENTERPRISE)[0]
    linear = body["retriever"]["linear"]
    assert linear["rank_window_size"] == 50
    text_leg, vector_leg = linear["retrievers"]
    assert set(text_leg) == {"retriever", "weight", "normalizer"}
    assert text_leg["normalizer"] == vector_leg["normalizer"] == "minmax"
    assert text_leg["weight"] == pytest.approx(0.3) and vector_leg["weight"] == 0.7
    assert "standard" in text_leg["retriever"] and "knn" in vector_leg["retriever"]


def test_window_limits():
    with pytest.raises(SearchError, match="10,000"):
        SearchParams.make("x", mode="knn", k=100, from_=9_950)
    with pytest.raises(SearchError, match="scan"):
        SearchParams.make("x", mode="bm25", k=100, from_=9_950)
    with pytest.raises(SearchError, match="needs query text"):
        SearchParams.make(None, mode="knn")
    with pytest.raises(SearchError, match="fusion"):
        SearchParams.make("x", fusion="magic")


# -- fusion -----------------------------------------------------------------------------------
def test_rrf_hand_computed():
    fused = dict(fusion.rrf({"bm25": [("a", 9.0), ("b", 5.0)], "knn": [("b", 0.9), ("c", 0.8)]}))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["c"] == pytest.approx(1 / 62)
    order = [doc for doc, _ in fusion.rrf({"x": [("a", 1), ("b", 1)], "y": [("b", 1)]})]
    assert order == ["b", "a"]


def test_minmax_linear_fusion():
    fused = dict(
        fusion.linear(
            {"bm25": [("a", 10.0), ("b", 4.0), ("c", 2.0)], "knn": [("c", 0.9), ("a", 0.7)]},
            weights={"bm25": 0.5, "knn": 0.5},
        )
    )
    assert fused["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 0.0)
    assert fused["b"] == pytest.approx(0.5 * 0.25)
    assert fused["c"] == pytest.approx(0.5 * 0.0 + 0.5 * 1.0)


# -- strategy choice --------------------------------------------------------------------------
def test_auto_uses_server_fusion_only_when_licensed():
    params = SearchParams.make("x")
    assert choose(params, ENTERPRISE).name == "linear"
    assert choose(params, OLD_ENTERPRISE).name == "rrf"
    assert choose(params, BASIC).name == AUTO_FALLBACK
    assert choose(params, ENTERPRISE, server_refused=True).name == AUTO_FALLBACK


def test_forced_server_fusion_on_basic_is_a_licence_error():
    for fusion_name, feature in (("rrf", "Reciprocal Rank Fusion"), ("linear", "linear")):
        with pytest.raises(LicenseError) as err:
            choose(SearchParams.make("x", fusion=fusion_name), BASIC)
        assert feature in str(err.value) and "Enterprise" in str(err.value)
    # licensed but too old for linear: a capability error, not a licence one
    with pytest.raises(CapabilityError) as err:
        choose(SearchParams.make("x", fusion="linear"), OLD_ENTERPRISE)
    assert not isinstance(err.value, LicenseError)


def test_server_refusals_recognised():
    assert is_server_refusal(
        403,
        {
            "error": {
                "type": "security_exception",
                "reason": "current license is non-compliant for [RRF]",
            }
        },
    )
    assert is_server_refusal(400, {"error": {"reason": "unknown retriever [rrf]"}})
    assert not is_server_refusal(400, {"error": {"reason": "failed to parse [k]"}})
