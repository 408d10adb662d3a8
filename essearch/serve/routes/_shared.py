"""What the routers share: the context of the app and the alias check for the caller."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request, Response

from essearch.retrieval.results import SearchResult
from essearch.serve.auth import Caller, caller_of
from essearch.serve.context import ServeContext
from essearch.serve.http_errors import Forbidden, ModelNotLoaded, NotServed
from essearch.serve.metrics import ServeMetrics


def context(request: Request) -> ServeContext:
    return request.app.state.ctx


def metrics(request: Request) -> ServeMetrics:
    return request.app.state.metrics


def caller(request: Request) -> Caller:
    return caller_of(request.scope.get("state"))


def resolve_alias(request: Request, alias: str | None) -> str:
    """The alias to use: served by this service and allowed for this key (else 404 / 403)."""
    ctx = context(request)
    name = alias or ctx.settings.index.name
    who = caller(request)
    if not ctx.is_served(name):
        visible = [a for a in ctx.served_indices() if who.may_use(a)]
        raise NotServed(f"index {name!r} is not served here (served: {', '.join(visible) or '-'})")
    if not who.may_use(name):
        raise Forbidden(f"this API key may not use index {name!r}")
    return name


async def run_search(
    request: Request, api: str, alias: str, query: str | None, **options: Any
) -> SearchResult:
    """One search through the alias's AsyncSearchClient, timed into the metrics.

    The client is always asked for its explain record (that is where the embedding and ES times
    come from); it is dropped from the result unless the caller asked for it.
    """
    ctx = context(request)
    mode = options.get("mode", "hybrid")
    if mode != "bm25" and ctx.embedder_info is None:
        raise ModelNotLoaded(
            f"mode {mode!r} needs the embedding model, which is not loaded "
            f"({ctx.model_error or 'still loading'}); BM25 works"
        )
    wanted = bool(options.pop("explain", False))
    result = await ctx.searcher(alias).search(query, explain=True, **options)
    if result.explain is not None:
        metrics(request).observe_search(api, mode, result.explain)
    if not wanted:
        result.explain = None
    return result


def json_response(data: Any, status_code: int = 200) -> Response:
    """JSON via orjson (fast, and what the benchmark's overhead figure assumes)."""
    return Response(orjson.dumps(data), status_code=status_code, media_type="application/json")
