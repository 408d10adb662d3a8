"""RAGFlow `search()` arguments -> one Elasticsearch request body (pure, unit-testable).

Scores of a hybrid search (text + dense + `weighted_sum` fusion with weights "t,v"):
  fusion="ragflow" (default, RAGFlow's ES semantics):  score = (1 - v) * text + knn
  fusion="weighted":                                   score = t * text + v * knn
where `text` is the query_string (BM25) score, including the linear `rank_feature` boosts, and
`knn` is Elasticsearch's cosine score (1 + cos) / 2 in [0, 1]. Hits are the union of both legs.
Unlike RAGFlow, the kNN leg is expressed as a `knn` *query* inside the bool, pre-filtered by the
structural conditions only (never by the full-text clause: RAGFlow #17041, #19949), which also lets
search_after/PIT page a hybrid search past 10,000 hits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from essearch.errors import SearchError
from essearch.es.knn import MAX_NUM_CANDIDATES, ragflow_num_candidates
from essearch.ragflow.conditions import condition_clauses
from essearch.ragflow.expressions import expression_kind, order_fields
from essearch.ragflow.mapping import vector_dims

Fusion = Literal["ragflow", "weighted"]
KNN_CAP = MAX_NUM_CANDIDATES
DEFAULT_VECTOR_WEIGHT = 0.5
HIGHLIGHT_OPTIONS = {"fragment_size": 50, "number_of_fragments": 5}
AGG_SIZE = 1_000_000


@dataclass
class SearchPlan:
    """The request body (without from/size) and what the store needs to run it."""

    body: dict[str, Any]
    has_text: bool = False
    has_knn: bool = False
    knn_k: int = 0
    text_weight: float = 1.0
    vector_weight: float = 0.0
    vector_fields: list[str] = field(default_factory=list)

    @property
    def knn_only(self) -> bool:
        return self.has_knn and not self.has_text


def parse_weights(fusion: Any) -> tuple[float, float]:
    """`FusionExpr("weighted_sum", topn, {"weights": "0.05,0.95"})` -> (0.05, 0.95)."""
    params = getattr(fusion, "fusion_params", None) or {}
    raw = params.get("weights")
    if raw is None:
        return 1.0 - DEFAULT_VECTOR_WEIGHT, DEFAULT_VECTOR_WEIGHT
    parts = raw if isinstance(raw, (list, tuple)) else str(raw).split(",")
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise SearchError(f"FusionExpr weights {raw!r}: expected two numbers 't,v'") from exc
    if len(values) != 2:
        raise SearchError(f"FusionExpr weights {raw!r}: expected two numbers 't,v'")
    return values[0], values[1]


def minimum_should_match(value: Any) -> str | int | None:
    """RAGFlow passes 0.3 for "30%"."""
    if value is None:
        return None
    if isinstance(value, float) and 0 <= value <= 1:
        return f"{round(value * 100)}%"
    return value


def text_query(expr: Any) -> dict[str, Any]:
    options = getattr(expr, "extra_options", None) or {}
    qs: dict[str, Any] = {
        "fields": list(expr.fields),
        "type": "best_fields",
        "query": expr.matching_text,
        "boost": 1,
    }
    msm = minimum_should_match(options.get("minimum_should_match"))
    if msm is not None:
        qs["minimum_should_match"] = msm
    return {"query_string": qs}


def query_vector(expr: Any) -> list[float]:
    data = expr.embedding_data
    if hasattr(data, "tolist"):
        data = data.tolist()
    try:
        vector = [float(x) for x in data]
    except (TypeError, ValueError) as exc:
        raise SearchError(
            f"MatchDenseExpr {expr.vector_column_name!r}: embedding_data is not a list of numbers"
        ) from exc
    dims = vector_dims(expr.vector_column_name)
    if dims is not None and dims != len(vector):
        raise SearchError(
            f"MatchDenseExpr {expr.vector_column_name!r}: the column holds {dims}-dim vectors, "
            f"the query vector has {len(vector)}"
        )
    return vector


def knn_query(
    expr: Any, filters: list[dict], must_not: list[dict], *, window: int, boost: float
) -> tuple[dict[str, Any], int]:
    """The kNN leg and its k: pre-filtered by the structural conditions only."""
    options = getattr(expr, "extra_options", None) or {}
    topn = int(getattr(expr, "topn", 10) or 10)
    k = min(max(topn, window, 1), KNN_CAP)
    candidates = ragflow_num_candidates(k, int(options.get("num_candidates") or 0))
    knn: dict[str, Any] = {
        "field": expr.vector_column_name,
        "query_vector": query_vector(expr),
        "k": k,
        "num_candidates": candidates,
    }
    if filters or must_not:
        structural: dict[str, Any] = {}
        if filters:
            structural["filter"] = filters
        if must_not:
            structural["must_not"] = must_not
        knn["filter"] = {"bool": structural}
    if options.get("similarity") is not None:
        knn["similarity"] = float(options["similarity"])
    if boost != 1:
        knn["boost"] = boost
    return {"knn": knn}, k


def rank_feature_clauses(
    rank_feature: dict[str, float] | None, *, supported: bool
) -> list[dict[str, Any]]:
    """Linear boosts: `rank_feature` where the cluster has it, else `field_value_factor`."""
    clauses: list[dict[str, Any]] = []
    for fld, boost in (rank_feature or {}).items():
        if supported:
            clauses.append({"rank_feature": {"field": fld, "linear": {}, "boost": boost}})
        else:
            clauses.append(
                {
                    "function_score": {
                        "query": {"exists": {"field": fld}},
                        "field_value_factor": {"field": fld, "factor": boost, "missing": 0},
                        "boost_mode": "replace",
                    }
                }
            )
    return clauses


def sort_clauses(order_by: Any) -> list[dict[str, Any]]:
    """RAGFlow's sort options: missing fields never fail the search."""
    clauses = []
    for fld, direction in order_fields(order_by):
        order = "asc" if direction == 0 else "desc"
        if fld in ("page_num_int", "top_int"):
            info = {
                "order": order,
                "unmapped_type": "float",
                "mode": "avg",
                "numeric_type": "double",
            }
        elif fld.endswith(("_int", "_flt", "_long", "_short", "_ulong")):
            info = {"order": order, "unmapped_type": "float"}
        else:
            info = {"order": order, "unmapped_type": "keyword"}
        clauses.append({fld: info})
    return clauses


def build_search(
    select_fields: list[str] | None,
    highlight_fields: list[str] | None,
    condition: dict[str, Any] | None,
    match_expressions: list[Any] | None,
    order_by: Any,
    *,
    window: int = 0,
    agg_fields: list[str] | None = None,
    rank_feature: dict[str, float] | None = None,
    rank_feature_supported: bool = True,
    fusion: Fusion = "ragflow",
    source_vectors_option: bool = False,
    knn_query_supported: bool = True,
) -> SearchPlan:
    """Everything but from/size. `window` is offset+limit (k is raised to cover it).

    `source_vectors_option`: the cluster understands `_source.exclude_vectors` (ES >= 9.1).
    `knn_query_supported`: the `knn` query exists (ES >= 8.12); on 8.11 the kNN leg becomes the
    top-level `knn` section, which Elasticsearch also adds to the query's scores (same sum)."""
    filters, must_not = condition_clauses(condition)
    texts, denses, fusions = [], [], []
    for expr in match_expressions or []:
        kind = expression_kind(expr)
        if kind == "text":
            texts.append(expr)
        elif kind == "dense":
            denses.append(expr)
        elif kind == "fusion":
            fusions.append(expr)
        elif kind == "unknown":
            raise SearchError(f"unknown match expression {type(expr).__name__}")
        # sparse/tensor expressions are ignored, as in RAGFlow's ES connector
    if len(texts) > 1 or len(denses) > 1:
        raise SearchError("at most one MatchTextExpr and one MatchDenseExpr per search")

    text_weight, vector_weight = 1.0, 0.0
    if denses:
        weighted = [f for f in fusions if getattr(f, "method", "") == "weighted_sum"]
        text_weight, vector_weight = (
            parse_weights(weighted[0])
            if weighted
            else (1 - DEFAULT_VECTOR_WEIGHT, DEFAULT_VECTOR_WEIGHT)
        )
    if fusion == "ragflow":
        text_boost, knn_boost = 1.0 - vector_weight, 1.0
    else:
        text_boost, knn_boost = text_weight, vector_weight

    ranks = rank_feature_clauses(rank_feature, supported=rank_feature_supported)
    outer: dict[str, Any] = {}
    if filters:
        outer["filter"] = filters
    if must_not:
        outer["must_not"] = must_not
    plan = SearchPlan(body={}, text_weight=text_weight, vector_weight=vector_weight)
    knn_clause = None
    if denses:
        knn_clause, plan.knn_k = knn_query(
            denses[0], filters, must_not, window=window, boost=knn_boost
        )
        plan.has_knn = True
    top_level_knn: dict[str, Any] | None = None
    if knn_clause is not None and not knn_query_supported:
        top_level_knn, knn_clause = knn_clause["knn"], None
    if texts:
        plan.has_text = True
        text_bool: dict[str, Any] = {"must": [text_query(texts[0])]}
        if ranks:
            text_bool["should"] = ranks
        if top_level_knn is not None:
            text_bool["boost"] = max(text_boost, 0.0)
        if knn_clause is not None:
            text_bool["boost"] = max(text_boost, 0.0)
            outer["should"] = [{"bool": text_bool}, knn_clause]
            outer["minimum_should_match"] = 1
        else:
            outer.update(text_bool)
    elif knn_clause is not None:
        outer["must"] = [knn_clause]
        if ranks:
            outer["should"] = ranks
    elif ranks:
        outer["should"] = ranks
        outer["minimum_should_match"] = 0
    body: dict[str, Any] = {"query": {"bool": outer} if outer else {"match_all": {}}}
    if top_level_knn is not None:
        body["knn"] = top_level_knn
        if not texts and not ranks:
            del body["query"]  # the filters are inside knn.filter; a query would add match-alls

    selected = list(select_fields or [])
    plan.vector_fields = [f for f in selected if f.endswith("_vec")]
    if selected:
        source: dict[str, Any] = {"includes": selected}
        if plan.vector_fields and source_vectors_option:
            source["exclude_vectors"] = False
        body["_source"] = source
    if highlight_fields:
        body["highlight"] = {"fields": {f: dict(HIGHLIGHT_OPTIONS) for f in highlight_fields}}
    if agg_fields:
        body["aggs"] = {f"aggs_{f}": {"terms": {"field": f, "size": AGG_SIZE}} for f in agg_fields}
    sort = sort_clauses(order_by)
    if sort:
        body["sort"] = sort
        if texts or denses:
            body["track_scores"] = True
    body["track_total_hits"] = True
    body["timeout"] = "600s"
    plan.body = body
    return plan
