"""Pure parts of `essearch serve`: Dify condition mapping, record scores, keys, limits, settings.

The HTTP-level behaviour (auth, bounds, Dify's examples, the browser) is tested against a real
node in test_serve_api.py and test_serve_playground.py.
"""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner

from essearch.cli import main
from essearch.errors import ConfigurationError
from essearch.retrieval import F
from essearch.retrieval.filters import compile_filter
from essearch.retrieval.results import Hit, LegScore, PublicHit, SearchResult
from essearch.serve import dify
from essearch.serve.auth import AuthFailure, KeyRing
from essearch.serve.limits import depth
from essearch.settings import ServeKey, load_settings


def _filter(conditions, logical="and"):
    condition = dify.MetadataCondition.model_validate(
        {"logical_operator": logical, "conditions": conditions}
    )
    node = dify.metadata_filter(condition)
    return node.to_es() if node is not None else None


# -- Dify metadata_condition -> the filter language (every documented operator) ----------------
@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("contains", "ai", {"wildcard": {"metadata.category": {"value": "*ai*"}}}),
        (
            "not contains",
            "ai",
            {"bool": {"must_not": [{"wildcard": {"metadata.category": {"value": "*ai*"}}}]}},
        ),
        ("start with", "s3://", {"prefix": {"metadata.category": {"value": "s3://"}}}),
        ("end with", ".txt", {"wildcard": {"metadata.category": {"value": "*.txt"}}}),
        ("is", "news", {"term": {"metadata.category": "news"}}),
        ("is not", "news", {"bool": {"must_not": [{"term": {"metadata.category": "news"}}]}}),
        ("in", ["a", "b"], {"terms": {"metadata.category": ["a", "b"]}}),
        ("not in", ["a"], {"bool": {"must_not": [{"terms": {"metadata.category": ["a"]}}]}}),
        ("empty", None, {"bool": {"must_not": [{"exists": {"field": "metadata.category"}}]}}),
        ("not empty", None, {"exists": {"field": "metadata.category"}}),
        ("=", "2020", {"term": {"metadata.category": 2020}}),
        ("≠", 2020, {"bool": {"must_not": [{"term": {"metadata.category": 2020}}]}}),
        (">", "1.5", {"range": {"metadata.category": {"gt": 1.5}}}),
        ("<", 3, {"range": {"metadata.category": {"lt": 3}}}),
        ("≥", 3, {"range": {"metadata.category": {"gte": 3}}}),
        ("≤", 3, {"range": {"metadata.category": {"lte": 3}}}),
        ("before", "2024-01-01", {"range": {"metadata.category": {"lt": "2024-01-01"}}}),
        ("after", 1700000000, {"range": {"metadata.category": {"gt": 1700000000}}}),
    ],
)
def test_every_documented_operator_maps_onto_the_filter_language(operator, value, expected):
    assert _filter([{"name": "category", "comparison_operator": operator, "value": value}]) == (
        expected
    )


def test_every_operator_of_dify_is_accepted_by_the_request_model():
    documented = [
        "contains", "not contains", "start with", "end with", "is", "is not", "in", "not in",
        "empty", "not empty", "=", "≠", ">", "<", "≥", "≤", "before", "after",
    ]  # fmt: skip
    for op in documented:
        dify.Condition(name="x", comparison_operator=op, value="1")
    with pytest.raises(ValueError, match="comparison_operator"):
        dify.Condition(name="x", comparison_operator="like", value="1")


def test_logical_operator_and_or_and_name_lists():
    both = [
        {"name": "lang", "comparison_operator": "is", "value": "zh"},
        {"name": "year", "comparison_operator": "≥", "value": 2020},
    ]
    assert _filter(both) == {
        "bool": {
            "filter": [
                {"term": {"metadata.lang": "zh"}},
                {"range": {"metadata.year": {"gte": 2020}}},
            ]
        }
    }
    assert _filter(both, "or")["bool"]["minimum_should_match"] == 1
    # older Dify docs: `name` is a list of fields, any of which may match
    listed = _filter([{"name": ["category", "tag"], "comparison_operator": "is", "value": "ai"}])
    assert listed == {
        "bool": {
            "should": [{"term": {"metadata.category": "ai"}}, {"term": {"metadata.tag": "ai"}}],
            "minimum_should_match": 1,
        }
    }


def test_conditions_without_a_value_are_skipped_like_dify_does():
    assert _filter([{"name": "lang", "comparison_operator": "is", "value": None}]) is None
    assert _filter([{"name": "lang", "comparison_operator": "is", "value": ""}]) is None
    assert dify.metadata_filter(dify.MetadataCondition(conditions=None)) is None


def test_bad_condition_values_name_the_condition():
    with pytest.raises(dify.ConditionError, match="needs a number") as info:
        _filter(
            [
                {"name": "lang", "comparison_operator": "is", "value": "zh"},
                {"name": "year", "comparison_operator": ">", "value": "recent"},
            ]
        )
    assert info.value.index == 1
    with pytest.raises(dify.ConditionError, match="takes one value"):
        _filter([{"name": "lang", "comparison_operator": "is", "value": ["a", "b"]}])


def test_wildcard_metacharacters_in_values_are_escaped():
    clause = F.contains("path", "a*b?c").to_es()
    assert clause == {"wildcard": {"metadata.path": {"value": "*a\\*b\\?c*"}}}
    assert compile_filter({"path": {"suffix": ".md"}}) == {
        "wildcard": {"metadata.path": {"value": "*.md"}}
    }


# -- record scores: [0, 1], following the ranking ------------------------------------------------
def _result(strategy, scores, legs=None):
    hits = [
        Hit(id=f"c{i}", rank=i + 1, score=s, text=f"t{i}", doc_id=f"d{i}", legs=legs or {})
        for i, s in enumerate(scores)
    ]
    return SearchResult(query="q", mode="hybrid", strategy=strategy, hits=hits)


def test_rrf_scores_are_normalised_by_the_best_possible_rrf():
    best = 2 / 61  # first in both legs
    one_leg_first = 1 / 61
    result = _result("client-rrf", [best, one_leg_first, 1 / 70])
    scores = [dify.record_score(h, result) for h in result.hits]
    assert scores[0] == 1.0
    assert scores[1] == pytest.approx(0.5)
    assert scores == sorted(scores, reverse=True)
    assert dify.record_score(result.hits[0], _result("rrf", [best])) == 1.0


def test_knn_and_linear_scores_pass_through_and_unbounded_scores_are_relative():
    knn = _result("knn", [0.91, 0.62])
    assert [dify.record_score(h, knn) for h in knn.hits] == [0.91, 0.62]
    bm25 = _result("bm25", [12.0, 6.0])
    assert [dify.record_score(h, bm25) for h in bm25.hits] == [1.0, 0.5]


def test_public_json_is_a_valid_public_hit_without_the_stored_source():
    hit = Hit(
        id="c1", doc_id="d1", index="i", score=0.5, rank=1, text="t", title="T",
        legs={"knn": LegScore(rank=1, score=0.9)}, highlights={"text": ["<em>t</em>"]},
        source={"text": "t", "metadata": {"lang": "en"}, "content_hash": "h"},
    )  # fmt: skip
    shown = hit.public_json()
    assert "source" not in shown and shown["metadata"] == {"lang": "en"}
    assert PublicHit.model_validate(shown).model_dump() == shown
    assert set(shown) == set(PublicHit.model_fields)


def test_records_apply_the_threshold_and_never_send_null_metadata():
    result = _result("client-rrf", [2 / 61, 1 / 61, 1 / 90], {"knn": LegScore(rank=1, score=0.9)})
    records = dify.records(result, score_threshold=0.5, top_k=5)
    assert [r["content"] for r in records] == ["t0", "t1"]
    assert all(isinstance(r["metadata"], dict) for r in records)
    assert records[0]["metadata"]["doc_id"] == "d0"
    assert set(records[0]) == {"content", "score", "title", "metadata"}
    assert len(dify.records(result, score_threshold=0.0, top_k=1)) == 1


# -- keys ----------------------------------------------------------------------------------------
def test_keys_bearer_basic_and_per_key_indices():
    import base64

    ring = KeyRing([ServeKey(key="alpha"), ServeKey(key="beta", indices=["docs"])])
    assert ring.authenticate("Bearer alpha").indices is None
    beta = ring.authenticate("bearer beta")
    assert beta.may_use("docs") and not beta.may_use("other")
    basic = "Basic " + base64.b64encode(b"anyone:alpha").decode()
    assert ring.authenticate(basic).authenticated
    with pytest.raises(AuthFailure) as missing:
        ring.authenticate(None)
    assert missing.value.malformed
    with pytest.raises(AuthFailure) as wrong:
        ring.authenticate("Bearer alphax")
    assert not wrong.value.malformed and "alpha" not in str(wrong.value)
    with pytest.raises(AuthFailure) as scheme:
        ring.authenticate("Token alpha")
    assert scheme.value.malformed
    with pytest.raises(AuthFailure):
        ring.authenticate(basic, allow_basic=False)
    assert not KeyRing([]).enabled and not KeyRing([]).authenticate(None).authenticated


def test_key_settings_parse_both_forms_and_are_masked(monkeypatch):
    monkeypatch.setenv("ESSEARCH_SERVE_API_KEYS", "s3cr3t-one, s3cr3t-two")
    settings = load_settings()
    assert [k.key.get_secret_value() for k in settings.serve.api_keys] == [
        "s3cr3t-one",
        "s3cr3t-two",
    ]
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in str(settings.masked())
    monkeypatch.setenv("ESSEARCH_SERVE_API_KEYS", '{"s3cr3t-one": ["docs"], "s3cr3t-two": "*"}')
    keys = load_settings().serve.api_keys
    assert keys[0].indices == ["docs"] and keys[1].indices is None
    monkeypatch.setenv("ESSEARCH_SERVE_API_KEYS", '{"s3cr3t-one": ')
    with pytest.raises(ConfigurationError) as info:
        load_settings()
    assert "ESSEARCH_SERVE_API_KEYS" in str(info.value) and "s3cr3t" not in str(info.value)


def test_depth_of_json_values():
    assert depth(3) == 0
    assert depth({"a": 1}) == 1
    assert depth({"or": [{"a": {"gte": 1}}]}) == 4
    deep: object = 1
    for _ in range(5000):  # iterative: no RecursionError on hostile input
        deep = [deep]
    assert depth(deep) == 5000


def test_cli_refuses_a_public_address_without_keys(monkeypatch, caplog):
    monkeypatch.delenv("ESSEARCH_SERVE_API_KEYS", raising=False)
    caplog.set_level(logging.DEBUG)
    result = CliRunner().invoke(main, ["serve", "--host", "0.0.0.0", "--port", "8099"])
    assert result.exit_code == 1
    assert "refusing to listen on 0.0.0.0" in result.output
    assert "Traceback" not in result.output


def test_compose_has_the_serve_service():
    from pathlib import Path

    import yaml

    spec = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text()
    )
    service = spec["services"]["essearch"]
    assert "essearch" in service["build"]["dockerfile_inline"]
    assert '"serve", "--host", "0.0.0.0"' in service["build"]["dockerfile_inline"]
    assert service["environment"]["ESSEARCH_ES_URL"] == "http://elasticsearch:9200"
    assert "ESSEARCH_SERVE_API_KEYS" in service["environment"]
    assert service["depends_on"]["elasticsearch"]["condition"] == "service_healthy"
    assert "/healthz" in " ".join(service["healthcheck"]["test"])
