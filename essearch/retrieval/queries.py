"""Request bodies, one plain function per shape; no I/O, so every body is unit-testable.

Shapes follow the reference (shared/reference/elasticsearch.md sections 2-3): top-level `knn` with a
pre-filter, `multi_match` inside `bool` with the filter as `bool.filter`, and the `rrf` / `linear`
retrievers with a `standard` and a `knn` sub-retriever.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from essearch.errors import SearchError
from essearch.es.knn import MAX_NUM_CANDIDATES as MAX_NUM_CANDIDATES
from essearch.es.knn import default_num_candidates as default_num_candidates
from essearch.index import schema

#: BM25 fields, scored as one combined field (BM25F: `combined_fields`), as if title and text
#: were one document. Measured on SciFact (300 test queries, standard analyzer, chunked index):
#: nDCG@10 0.646 for combined_fields vs 0.557 for best_fields with title^2 (tie 0.3), 0.613 for
#: most_fields, 0.622 for the text field alone. Override with `fields=` / `multi_match_type=`.
DEFAULT_BM25_FIELDS: tuple[str, ...] = (schema.TITLE_FIELD, schema.TEXT_FIELD)
DEFAULT_MULTI_MATCH_TYPE = "combined_fields"
#: Used by `best_fields` / `most_fields` only.
DEFAULT_TIE_BREAKER = 0.3
#: Elasticsearch's result window (its num_candidates limit is `MAX_NUM_CANDIDATES`).
MAX_RESULT_WINDOW = 10_000
#: The server's RRF defaults, used by the client-side RRF too so both rank the same way.
RRF_RANK_CONSTANT = 60
#: How many hits each leg contributes to fusion (at least from+size). SciFact (nDCG@10, client-side
#: fusion): RRF 0.702 / 0.712 / 0.709 / 0.708 and linear 0.706 / 0.718 / 0.721 / 0.723 at windows
#: 10 / 20 / 30 / 50; 20 keeps the quality at about 70% of the latency of 50.
DEFAULT_RANK_WINDOW_SIZE = 20
#: Client-side fusion highlights inside the BM25 leg up to this window; past it, highlighting every
#: window hit costs more than one follow-up request that highlights only the returned page
#: (SciFact, p50 vs one weighted request: window 20 in-leg 1.31-1.35x, follow-up 1.65-1.71x;
#: window 50 in-leg ~3x).
HIGHLIGHT_IN_LEG_MAX_WINDOW = 30
#: Weight of the kNN leg in weighted / linear fusion (BM25 gets 1 - w). Tuned on SciFact only
#: (client-linear nDCG@10: 0.5 -> 0.716, 0.6 -> 0.728, 0.7 -> 0.716, 0.8 -> 0.695).
DEFAULT_KNN_WEIGHT = 0.6
#: Fields returned per hit: vectors are never shipped back.
SOURCE_EXCLUDES: tuple[str, ...] = (schema.VECTOR_FIELD, schema.CJK_FIELD)


def check_num_candidates(k: int, num_candidates: int | None) -> int:
    n = default_num_candidates(k) if num_candidates is None else num_candidates
    if n > MAX_NUM_CANDIDATES:
        raise SearchError(f"num_candidates={n} is above the limit of {MAX_NUM_CANDIDATES:,}")
    if n < k:
        raise SearchError(f"num_candidates={n} must be >= k={k}")
    return n


def bm25_query(
    text: str,
    *,
    fields: Sequence[str] = DEFAULT_BM25_FIELDS,
    operator: str = "or",
    minimum_should_match: str | int | None = None,
    multi_match_type: str = DEFAULT_MULTI_MATCH_TYPE,
    tie_breaker: float | None = DEFAULT_TIE_BREAKER,
    lucene_syntax: bool = False,
    boost: float | None = None,
    cjk_words: str | None = None,
) -> dict[str, Any]:
    """The text clause. User text goes to `combined_fields` / `multi_match` (never parsed as
    query syntax) unless `lucene_syntax`. `cjk_words` (the query's CJK word tokens, see
    essearch.text.cjk) also searches the CJK word field: the two BM25 scores add up."""
    if operator.lower() not in ("or", "and"):
        raise SearchError(f"operator must be 'or' or 'and', got {operator!r}")
    if cjk_words and not lucene_syntax:
        plain = bm25_query(
            text,
            fields=fields,
            operator=operator,
            minimum_should_match=minimum_should_match,
            multi_match_type=multi_match_type,
            tie_breaker=tie_breaker,
        )
        return cjk_words_clause(plain, cjk_words, operator, minimum_should_match, boost)
    if lucene_syntax:
        clause: dict[str, Any] = {
            "query": text,
            "fields": list(fields),
            "default_operator": operator.upper(),
        }
        if minimum_should_match is not None:
            clause["minimum_should_match"] = minimum_should_match
        if boost is not None:
            clause["boost"] = boost
        return {"query_string": clause}
    if multi_match_type == "combined_fields":
        # Its own query type; the fields must share an analyzer (title and text do).
        clause = {"query": text, "fields": list(fields), "operator": operator.lower()}
        if minimum_should_match is not None:
            clause["minimum_should_match"] = minimum_should_match
        if boost is not None:
            clause["boost"] = boost
        return {"combined_fields": clause}
    clause = {
        "query": text,
        "fields": list(fields),
        "type": multi_match_type,
        "operator": operator.lower(),
    }
    if tie_breaker is not None and multi_match_type in ("best_fields", "most_fields"):
        clause["tie_breaker"] = tie_breaker
    if minimum_should_match is not None:
        clause["minimum_should_match"] = minimum_should_match
    if boost is not None:
        clause["boost"] = boost
    return {"multi_match": clause}


def cjk_words_clause(
    plain: dict[str, Any],
    cjk_words: str,
    operator: str = "or",
    minimum_should_match: str | int | None = None,
    boost: float | None = None,
) -> dict[str, Any]:
    """`plain` OR a `match` on the CJK word field: unigram and word matches both score.

    An index made before the field existed simply has no matches there."""
    match: dict[str, Any] = {"query": cjk_words, "operator": operator.lower()}
    if minimum_should_match is not None:
        match["minimum_should_match"] = minimum_should_match
    bool_: dict[str, Any] = {"should": [plain, {"match": {schema.CJK_FIELD: match}}]}
    if boost is not None:
        bool_["boost"] = boost
    return {"bool": bool_}


def filtered(query: dict[str, Any] | None, filter_clause: dict[str, Any] | None) -> dict[str, Any]:
    """`bool` with the text clause in `must` (scores) and the filter in `filter` (no score)."""
    if filter_clause is None:
        return query if query is not None else {"match_all": {}}
    bool_: dict[str, Any] = {"filter": [filter_clause]}
    if query is not None:
        bool_["must"] = [query]
    return {"bool": bool_}


def knn_clause(
    vector: Sequence[float],
    *,
    k: int,
    num_candidates: int | None = None,
    field: str = schema.VECTOR_FIELD,
    filter_clause: dict[str, Any] | None = None,
    similarity: float | None = None,
    oversample: float | None = None,
    boost: float | None = None,
) -> dict[str, Any]:
    """Top-level `knn` / `knn` retriever body. The filter is a pre-filter (k hits still return)."""
    if k < 1:
        raise SearchError(f"k must be >= 1, got {k}")
    clause: dict[str, Any] = {
        "field": field,
        "query_vector": list(vector),
        "k": k,
        "num_candidates": check_num_candidates(k, num_candidates),
    }
    if filter_clause is not None:
        clause["filter"] = filter_clause
    if similarity is not None:
        clause["similarity"] = similarity
    if oversample is not None:
        clause["rescore_vector"] = {"oversample": oversample}
    if boost is not None:
        clause["boost"] = boost
    return clause


def highlight_spec(fields: Sequence[str] = DEFAULT_BM25_FIELDS) -> dict[str, Any]:
    """Highlight the BM25 fields: one ~150-char fragment of the body, the whole title."""
    spec: dict[str, Any] = {}
    for name in fields:
        base = name.split("^", 1)[0]
        spec[base] = (
            {"number_of_fragments": 0}
            if base == schema.TITLE_FIELD
            else {"fragment_size": 150, "number_of_fragments": 1}
        )
    return {"fields": spec, "pre_tags": ["<em>"], "post_tags": ["</em>"]}


def common_body(
    *,
    size: int,
    from_: int = 0,
    highlight: dict[str, Any] | None = None,
    collapse: bool = False,
) -> dict[str, Any]:
    if from_ + size > MAX_RESULT_WINDOW:
        raise SearchError(
            f"from+size={from_ + size} is beyond the {MAX_RESULT_WINDOW:,}-hit result window; "
            "use scan() (search_after + point in time) for deep listing"
        )
    body: dict[str, Any] = {
        "size": size,
        "_source": {"excludes": list(SOURCE_EXCLUDES)},
        "track_total_hits": True,
    }
    if from_:
        body["from"] = from_
    if highlight:
        body["highlight"] = highlight
    if collapse:
        body["collapse"] = {"field": schema.DOC_ID_FIELD}
    return body


def bm25_body(
    query: dict[str, Any] | None,
    *,
    filter_clause: dict[str, Any] | None = None,
    size: int = 10,
    from_: int = 0,
    highlight: dict[str, Any] | None = None,
    collapse: bool = False,
) -> dict[str, Any]:
    body = common_body(size=size, from_=from_, highlight=highlight, collapse=collapse)
    body["query"] = filtered(query, filter_clause)
    return body


def knn_body(
    knn: dict[str, Any], *, size: int = 10, from_: int = 0, collapse: bool = False
) -> dict[str, Any]:
    if from_ + size > knn["k"]:
        raise SearchError(f"from+size={from_ + size} is beyond kNN k={knn['k']}")
    body = common_body(size=size, from_=from_, collapse=collapse)
    body["knn"] = knn
    return body


def document_vectors_body(doc_id: str, *, limit: int = 200) -> dict[str, Any]:
    """The stored chunk vectors of one document (naming the field returns it on 9.2+ too)."""
    return {
        "query": {"term": {schema.DOC_ID_FIELD: doc_id}},
        "size": limit,
        "_source": [schema.VECTOR_FIELD],
        "track_total_hits": False,
    }


def similar_body(
    vector: Sequence[float],
    doc_id: str,
    *,
    k: int = 10,
    filter_clause: dict[str, Any] | None = None,
    num_candidates: int | None = None,
) -> dict[str, Any]:
    """Documents like `doc_id`: kNN from its vector, the document itself excluded (pre-filter),
    collapsed to one hit per document. kNN looks at 5x more chunks than documents wanted, since
    several chunks of one neighbour collapse into one hit."""
    exclude: dict[str, Any] = {"bool": {"must_not": [{"term": {schema.DOC_ID_FIELD: doc_id}}]}}
    if filter_clause is not None:
        exclude["bool"]["filter"] = [filter_clause]
    chunks = min(k * 5, MAX_NUM_CANDIDATES)
    knn = knn_clause(vector, k=chunks, num_candidates=num_candidates, filter_clause=exclude)
    return knn_body(knn, size=k, collapse=True)


def weighted_body(
    query: dict[str, Any],
    knn: dict[str, Any],
    *,
    knn_weight: float = DEFAULT_KNN_WEIGHT,
    filter_clause: dict[str, Any] | None = None,
    size: int = 10,
    from_: int = 0,
    highlight: dict[str, Any] | None = None,
    collapse: bool = False,
) -> dict[str, Any]:
    """One request: `knn` boosted w plus `query` boosted 1-w; ES sums the two (Basic licence).

    The kNN part scores (1 + cos)/2 in [0, 1] (cosine and dot_product similarities) while BM25 is
    unbounded, so w is not a true mixing ratio: the BM25 side dominates when its scores are high.
    Use client-side linear fusion for normalised mixing.
    """
    if not 0.0 <= knn_weight <= 1.0:
        raise SearchError(f"knn_weight must be in [0, 1], got {knn_weight}")
    body = common_body(size=size, from_=from_, highlight=highlight, collapse=collapse)
    body["knn"] = {**knn, "boost": knn_weight}
    inner = filtered(query, filter_clause)
    body["query"] = {"bool": {"must": [inner], "boost": 1.0 - knn_weight}}
    return body


def _standard(query: dict[str, Any], filter_clause: dict[str, Any] | None) -> dict[str, Any]:
    standard: dict[str, Any] = {"query": query}
    if filter_clause is not None:
        standard["filter"] = filter_clause
    return {"standard": standard}


def rrf_retriever_body(
    query: dict[str, Any],
    knn: dict[str, Any],
    *,
    filter_clause: dict[str, Any] | None = None,
    rank_constant: int = RRF_RANK_CONSTANT,
    rank_window_size: int = DEFAULT_RANK_WINDOW_SIZE,
    weights: tuple[float, float] | None = None,
    size: int = 10,
    from_: int = 0,
    highlight: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Server RRF (Enterprise, ES >= 8.16). `weights` (bm25, knn) only where 9.2+ supports them.

    The filter goes into both sub-retrievers (`knn.filter` stays a pre-filter).
    """
    if rank_constant < 1:
        raise SearchError(f"rank_constant must be >= 1, got {rank_constant}")
    if rank_window_size < from_ + size:
        raise SearchError(f"rank_window_size={rank_window_size} must be >= from+size")
    knn_leg = dict(knn)
    if filter_clause is not None:
        knn_leg["filter"] = filter_clause
    text_leg = _standard(query, filter_clause)
    vector_leg = {"knn": knn_leg}
    if weights is None:
        retrievers: list[dict[str, Any]] = [text_leg, vector_leg]
    else:
        retrievers = [
            {"retriever": text_leg, "weight": weights[0]},
            {"retriever": vector_leg, "weight": weights[1]},
        ]
    body = common_body(size=size, from_=from_, highlight=highlight)
    body["retriever"] = {
        "rrf": {
            "retrievers": retrievers,
            "rank_constant": rank_constant,
            "rank_window_size": rank_window_size,
        }
    }
    return body


def linear_retriever_body(
    query: dict[str, Any],
    knn: dict[str, Any],
    *,
    knn_weight: float = DEFAULT_KNN_WEIGHT,
    filter_clause: dict[str, Any] | None = None,
    normalizer: str = "minmax",
    rank_window_size: int = DEFAULT_RANK_WINDOW_SIZE,
    size: int = 10,
    from_: int = 0,
    highlight: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Server linear retriever (Enterprise, ES >= 8.18/9.0): Σ weight·minmax(score)."""
    if not 0.0 <= knn_weight <= 1.0:
        raise SearchError(f"knn_weight must be in [0, 1], got {knn_weight}")
    if rank_window_size < from_ + size:
        raise SearchError(f"rank_window_size={rank_window_size} must be >= from+size")
    knn_leg = dict(knn)
    if filter_clause is not None:
        knn_leg["filter"] = filter_clause
    body = common_body(size=size, from_=from_, highlight=highlight)
    body["retriever"] = {
        "linear": {
            "retrievers": [
                {
                    "retriever": _standard(query, filter_clause),
                    "weight": 1.0 - knn_weight,
                    "normalizer": normalizer,
                },
                {"retriever": {"knn": knn_leg}, "weight": knn_weight, "normalizer": normalizer},
            ],
            "rank_window_size": rank_window_size,
        }
    }
    return body


def pit_page_body(query: dict[str, Any], *, size: int, by_score: bool) -> dict[str, Any]:
    """One page of a point-in-time listing, sorted by score (when there is text) then doc order
    (`essearch.es.pit` adds the PIT and `search_after`)."""
    sort: list[Any] = [{"_score": "desc"}] if by_score else []
    sort.append({"_shard_doc": "asc"})
    body: dict[str, Any] = {
        "size": size,
        "query": query,
        "sort": sort,
        "_source": {"excludes": list(SOURCE_EXCLUDES)},
        "track_total_hits": False,
    }
    return body
