"""Dify's External Knowledge API: `POST /retrieval`, as Dify documents it.

Request: knowledge_id (an alias, or a key of `ESSEARCH_SERVE_KNOWLEDGE`), query,
retrieval_setting {top_k, score_threshold}, optional metadata_condition. Response:
{"records": [{content, score, title, metadata}]}. Errors: {"error_code", "error_msg"} with
1001 (bad Authorization header) and 1002 (authorization failed) as HTTP 403, 2001 (knowledge
does not exist) as HTTP 404, anything else HTTP 500 (Dify's InternalServerException).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from essearch.serve import dify
from essearch.serve.http_errors import Forbidden, NotServed, message_of, status_of
from essearch.serve.limits import check_at_most, check_depth, invalid
from essearch.serve.routes._shared import context, json_response, resolve_alias, run_search

router = APIRouter(tags=["dify"])


class Record(BaseModel):
    content: str
    score: float
    title: str
    metadata: dict[str, object]


class RetrievalResponse(BaseModel):
    records: list[Record]


class DifyError(BaseModel):
    error_code: int
    error_msg: str


def dify_error(code: int, status: int, message: str) -> Response:
    return json_response({"error_code": code, "error_msg": message}, status_code=status)


@router.post(
    "/retrieval",
    response_model=RetrievalResponse,
    responses={403: {"model": DifyError}, 404: {"model": DifyError}, 500: {"model": DifyError}},
    summary="Dify External Knowledge API",
)
async def retrieval(request: Request, body: dify.RetrievalRequest) -> Response:
    ctx = context(request)
    limits = ctx.settings.serve
    alias_name = limits.knowledge.get(body.knowledge_id, body.knowledge_id)
    try:
        alias = resolve_alias(request, alias_name)
    except NotServed:
        return dify_error(2001, 404, f"the knowledge {body.knowledge_id!r} does not exist")
    except Forbidden:
        return dify_error(1002, 403, f"authorization failed for knowledge {body.knowledge_id!r}")
    check_at_most(
        ("retrieval_setting", "top_k"), body.retrieval_setting.top_k, limits.max_k, "MAX_K"
    )
    condition = body.metadata_condition
    if condition is not None and condition.conditions:
        check_depth(
            ("metadata_condition",), condition.model_dump()["conditions"], limits.max_filter_depth
        )
    try:
        node = dify.metadata_filter(condition)
    except dify.ConditionError as exc:
        raise invalid(("metadata_condition", "conditions", exc.index), str(exc)) from None
    try:
        result = await run_search(
            request,
            "dify",
            alias,
            body.query,
            filter=node,
            mode=limits.dify_mode,
            fusion=limits.dify_fusion,
            k=body.retrieval_setting.top_k,
            highlight=False,
        )
    except Exception as exc:
        status, _kind = status_of(exc)
        if status == 404:
            return dify_error(2001, 404, f"the knowledge {body.knowledge_id!r} does not exist")
        if status == 422:
            raise invalid(("query",), message_of(exc)) from None
        return dify_error(500, 500, message_of(exc))
    records = dify.records(
        result, body.retrieval_setting.score_threshold, body.retrieval_setting.top_k
    )
    return json_response({"records": records})
