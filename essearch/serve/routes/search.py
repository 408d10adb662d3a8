"""`POST /v1/search`: BM25 / kNN / hybrid over one alias, filters in the filter language's JSON.

The query is plain text: it is never parsed as Lucene syntax or query DSL (`lucene_syntax` is not
exposed), and the filter JSON has no raw-clause escape hatch.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from essearch.errors import SearchError
from essearch.retrieval.filters import And, Filter, compile_filter, from_dict
from essearch.retrieval.names import Fusion, Mode
from essearch.retrieval.params import SearchParams
from essearch.retrieval.results import PublicHit
from essearch.serve.limits import check_at_most, check_depth, invalid
from essearch.serve.routes._shared import context, json_response, resolve_alias, run_search

router = APIRouter(prefix="/v1", tags=["search"])

FilterJSON = dict[str, Any] | list[dict[str, Any]]


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    query: str | None = Field(None, max_length=8192, description="Plain text; never parsed.")
    index: str | None = Field(None, description="Alias to search (default: index.name).")
    mode: Mode = "hybrid"
    fusion: Fusion = "auto"
    k: int = Field(10, ge=1)
    from_: int = Field(0, ge=0, alias="from")
    filter: FilterJSON | None = Field(
        None,
        description='Filter language JSON, e.g. {"lang": "zh", "year": {"gte": 2020}}; '
        "a list is ANDed.",
    )
    knn_weight: float | None = Field(None, ge=0.0, le=1.0)
    highlight: bool = True
    explain: bool = False
    collapse: bool = False


class SearchResponse(BaseModel):
    index: str
    query: str | None
    mode: str
    strategy: str
    total: int | None = None
    hits: list[PublicHit]
    explain: dict[str, Any] | None = None


def validated(request: Request, body: SearchRequest) -> tuple[Filter | None, dict[str, Any]]:
    """The filter and the search options, every bound checked (422 naming the field)."""
    limits = context(request).settings.serve
    check_at_most(("k",), body.k, limits.max_k, "MAX_K")
    check_at_most(("from",), body.from_, limits.max_from, "MAX_FROM")
    node: Filter | None = None
    if body.filter is not None:
        check_depth(("filter",), body.filter, limits.max_filter_depth)
        items = body.filter if isinstance(body.filter, list) else [body.filter]
        try:
            nodes = [from_dict(item) for item in items]
            node = None if not nodes else nodes[0] if len(nodes) == 1 else And(tuple(nodes))
            compile_filter(node)  # surfaces bad values (an empty `in`, a bound-less range) here
        except SearchError as exc:
            raise invalid(("filter",), str(exc), body.filter) from None
    options: dict[str, Any] = {
        "mode": body.mode,
        "fusion": body.fusion,
        "k": body.k,
        "from_": body.from_,
        "highlight": body.highlight,
        "explain": body.explain,
        "collapse": body.collapse,
    }
    if body.knn_weight is not None:
        options["knn_weight"] = body.knn_weight
    try:
        SearchParams.make(body.query, filter=node, **options)
    except SearchError as exc:
        raise invalid(("query",), str(exc).removeprefix("invalid search: ")) from None
    return node, options


def response_of(alias: str, result: Any) -> dict[str, Any]:
    hits = [hit.public_json() for hit in result.hits]
    return {
        "index": alias,
        "query": result.query,
        "mode": result.mode,
        "strategy": result.strategy,
        "total": result.total,
        "hits": hits,
        "explain": result.explain.model_dump(mode="json") if result.explain else None,
    }


@router.post("/search", response_model=SearchResponse, summary="Search one alias")
async def search(request: Request, body: SearchRequest) -> Response:
    alias = resolve_alias(request, body.index)
    node, options = validated(request, body)
    result = await run_search(request, "v1", alias, body.query, filter=node, **options)
    return json_response(response_of(alias, result))
