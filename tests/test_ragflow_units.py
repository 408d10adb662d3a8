"""Pure request/response building of the RAGFlow store (no Elasticsearch needed)."""

from __future__ import annotations

import pytest

from essearch.errors import SearchError
from essearch.ragflow import FusionExpr, MatchDenseExpr, MatchTextExpr, OrderByExpr
from essearch.ragflow.conditions import condition_query, with_dataset
from essearch.ragflow.mapping import dynamic_templates, index_body, vector_dims
from essearch.ragflow.request import build_search, parse_weights
from essearch.ragflow.responses import get_fields, get_highlight
from essearch.ragflow.sql import rewrite_sql
from essearch.ragflow.updates import apply_update, needs_source, painless_script


class ForeignText:
    """Stands in for RAGFlow's own MatchTextExpr: same attributes, different class."""

    def __init__(self):
        self.fields = ["content_ltks"]
        self.matching_text = "cats"
        self.topn = 10
        self.extra_options = {"minimum_should_match": 0.3}


def test_conditions_follow_ragflow_rules():
    cond = with_dataset(
        {
            "doc_id": ["d1", "d2"],
            "docnm_kwd": "a.pdf",
            "available_int": 1,
            "empty": [],
            "must_not": {"exists": "removed_kwd"},
            "exists": "q_384_vec",
            "kb_id": "ignored",
        },
        ["kb1"],
    )
    q = condition_query(cond)["bool"]
    assert {"terms": {"doc_id": ["d1", "d2"]}} in q["filter"]
    assert {"term": {"docnm_kwd": "a.pdf"}} in q["filter"]
    assert {"terms": {"kb_id": ["kb1"]}} in q["filter"]
    assert {"bool": {"must_not": [{"range": {"available_int": {"lt": 1}}}]}} in q["filter"]
    assert {"exists": {"field": "q_384_vec"}} in q["filter"]
    assert q["must_not"] == [{"exists": {"field": "removed_kwd"}}]
    assert not any("empty" in str(c) for c in q["filter"])
    zero = condition_query({"available_int": 0})["bool"]["filter"]
    assert zero == [{"range": {"available_int": {"lt": 1}}}]
    assert condition_query({}) == {"match_all": {}}
    assert "must_not" in str(condition_query({"id": []}))  # empty id list matches nothing
    with pytest.raises(SearchError, match="'page'"):
        condition_query({"page": {"a": 1}})


def test_weights_and_fusion_scoring_modes():
    assert parse_weights(FusionExpr("weighted_sum", 10, {"weights": "0.05,0.95"})) == (0.05, 0.95)
    with pytest.raises(SearchError, match=r"0\.5;x"):
        parse_weights(FusionExpr("weighted_sum", 10, {"weights": "0.5;x"}))
    exprs = [
        ForeignText(),
        MatchDenseExpr("q_4_vec", [1, 0, 0, 0], "float", "cosine", 20, {"similarity": 0.3}),
        FusionExpr("weighted_sum", 20, {"weights": "0.05,0.95"}),
    ]
    plan = build_search([], [], {"kb_id": ["kb"]}, exprs, OrderByExpr(), window=64)
    bool_q = plan.body["query"]["bool"]
    text_leg, knn_leg = bool_q["should"]
    assert text_leg["bool"]["boost"] == pytest.approx(0.05)
    assert "boost" not in knn_leg["knn"]  # RAGFlow: knn keeps its implicit boost 1
    assert knn_leg["knn"]["k"] == 64 and knn_leg["knn"]["num_candidates"] == 128
    assert knn_leg["knn"]["similarity"] == 0.3
    # the kNN pre-filter is the structural condition only, never the text query
    assert "query_string" not in str(knn_leg["knn"]["filter"])
    assert text_leg["bool"]["must"][0]["query_string"]["minimum_should_match"] == "30%"
    weighted = build_search([], [], {}, exprs, None, window=10, fusion="weighted")
    text_leg, knn_leg = weighted.body["query"]["bool"]["should"]
    assert text_leg["bool"]["boost"] == 0.05 and knn_leg["knn"]["boost"] == 0.95


def test_knn_k_covers_the_requested_window_up_to_the_cap():
    dense = MatchDenseExpr("q_4_vec", [1, 0, 0, 0], topn=10)
    assert build_search([], [], {}, [dense], None, window=5000).knn_k == 5000
    assert build_search([], [], {}, [dense], None, window=50_000).knn_k == 10_000
    with pytest.raises(SearchError, match="4-dim"):
        build_search([], [], {}, [MatchDenseExpr("q_4_vec", [1, 0])], None)


def test_sort_highlight_aggs_and_vector_projection():
    order = OrderByExpr().asc("page_num_int").desc("create_timestamp_flt").asc("docnm_kwd")
    plan = build_search(
        ["q_8_vec", "docnm_kwd"],
        ["content_ltks"],
        {},
        [MatchTextExpr(["a"], "b", 1)],
        order,
        agg_fields=["tag_kwd"],
        source_vectors_option=True,
    )
    body = plan.body
    assert body["sort"][0]["page_num_int"]["mode"] == "avg"
    assert body["sort"][1]["create_timestamp_flt"]["unmapped_type"] == "float"
    assert body["sort"][2]["docnm_kwd"]["unmapped_type"] == "keyword"
    assert body["track_scores"] is True
    assert body["highlight"]["fields"]["content_ltks"]["fragment_size"] == 50
    assert body["aggs"]["aggs_tag_kwd"]["terms"]["field"] == "tag_kwd"
    assert body["_source"] == {"includes": ["q_8_vec", "docnm_kwd"], "exclude_vectors": False}


def test_rank_feature_fallback_without_the_module():
    plan = build_search(
        [],
        [],
        {},
        [MatchTextExpr(["a"], "b", 1)],
        None,
        rank_feature={"pagerank_fea": 10},
        rank_feature_supported=False,
    )
    should = plan.body["query"]["bool"]["should"]
    assert should[0]["function_score"]["field_value_factor"]["factor"] == 10
    native = build_search([], [], {}, [], None, rank_feature={"tag_feas.ai": 2})
    assert native.body["query"]["bool"]["should"][0]["rank_feature"]["boost"] == 2
    assert native.body["query"]["bool"]["minimum_should_match"] == 0


def test_mapping_templates_by_suffix():
    assert vector_dims("q_3072_vec") == 3072 and vector_dims("content_ltks") is None
    names = [next(iter(t)) for t in dynamic_templates(rank_feature=False)]
    assert names.index("feature_values") < names.index("int")  # tag_feas.x_int stays float
    body = index_body(vector_size=1000, rank_feature=True)
    assert body["mappings"]["properties"]["q_1000_vec"]["dims"] == 1000
    sim = body["settings"]["index"]["similarity"]
    assert sim["term_presence"] == {"type": "BM25", "k1": 0, "b": 0}


def test_update_semantics():
    source = {"a": 1, "tags": ["x", "y"], "tag_feas": {"old": 1}, "gone": True}
    new = apply_update(
        source,
        {"a": 2, "tag_feas": {"new": 3}, "remove": "gone", "add": {"tags": "z"}},
    )
    assert new == {"a": 2, "tags": ["x", "y", "z"], "tag_feas": {"new": 3}}
    assert source["tags"] == ["x", "y"]  # input untouched
    assert apply_update(source, {"remove": {"tags": "x"}})["tags"] == ["y"]
    assert needs_source({"tag_feas": {}}) and not needs_source({"available_int": 0})
    script = painless_script({"available_int": 0, "add": {"tags": ["z"]}})
    assert script["params"]["p0"] == 0 and script["params"]["v1_0"] == ["z"]
    assert "addAll" in script["source"]


def test_response_helpers():
    res = {
        "hits": {
            "total": {"value": 1},
            "hits": [
                {
                    "_id": "c1",
                    "_score": 1.5,
                    "_source": {
                        "docnm_kwd": "a.pdf",
                        "page_num_int": [3],
                        "available_int": 1,
                        "create_timestamp_flt": 12.5,
                        "content_with_weight": "Cats purr. Dogs bark. Cats sleep.",
                    },
                    "fields": {"q_2_vec": [[0.1, 0.2]]},
                    "highlight": {"content_ltks": ["<em>cats</em> purr"]},
                }
            ],
        }
    }
    fields = get_fields(
        res, ["id", "page_num_int", "available_int", "create_timestamp_flt", "q_2_vec", "missing"]
    )
    assert fields == {
        "c1": {
            "id": "c1",
            "page_num_int": [3],
            "available_int": 1,
            "create_timestamp_flt": "12.5",
            "q_2_vec": [0.1, 0.2],
        }
    }
    hl = get_highlight(res, ["cats"], "content_with_weight")
    assert hl["c1"] == "<em>Cats</em> purr... <em>Cats</em> sleep"


def test_sql_rewrite():
    out = rewrite_sql("select docnm_kwd from t where content_ltks = 'Green Tea' and x = 1")
    assert "MATCH(content_ltks, 'green tea', 'operator=OR;minimum_should_match=30%')" in out


def test_ragflow_connection_class_subclasses_ragflows_abc(monkeypatch):
    import abc
    import sys
    import types

    from essearch.ragflow import ESDocStore, ragflow_connection_class

    class DocStoreConnection(abc.ABC):
        @abc.abstractmethod
        def db_type(self) -> str: ...

        @abc.abstractmethod
        def some_future_method(self) -> None: ...

    module = types.ModuleType("common.doc_store.doc_store_base")
    module.DocStoreConnection = DocStoreConnection
    monkeypatch.setitem(sys.modules, "common", types.ModuleType("common"))
    monkeypatch.setitem(sys.modules, "common.doc_store", types.ModuleType("common.doc_store"))
    monkeypatch.setitem(sys.modules, "common.doc_store.doc_store_base", module)
    cls = ragflow_connection_class()
    assert issubclass(cls, DocStoreConnection) and issubclass(cls, ESDocStore)
    store = cls(client=object())  # instantiable: no abstract methods left
    assert store.db_type() == "elasticsearch"
