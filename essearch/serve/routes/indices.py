"""`GET /v1/indices`: the status of every alias served to this key (the index manager's view)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response

from essearch.index.manager import IndexManager
from essearch.serve.routes._shared import caller, context, json_response

router = APIRouter(prefix="/v1", tags=["indices"])


@router.get("/indices", summary="Status per served alias: version, docs, size, model")
async def list_indices(request: Request) -> Response:
    ctx = context(request)
    who = caller(request)
    names = [name for name in ctx.served_indices() if who.may_use(name)]

    def status_all() -> list[dict[str, Any]]:
        out = []
        for name in names:
            manager = IndexManager(ctx.sync_client, ctx.settings_for(name), ctx.embedder_info)
            out.append(manager.status().to_dict())
        return out

    return json_response({"indices": await asyncio.to_thread(status_all)})
