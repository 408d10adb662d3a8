"""`/healthz` (the process answers), `/readyz` (cluster reachable, model loaded), `/metrics`."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from essearch.serve.routes._shared import context, metrics

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive (no key needed)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready: the cluster answers and the embedding model is loaded")
async def readyz(request: Request) -> JSONResponse:
    ctx = context(request)
    body: dict[str, Any] = {"ready": True}
    try:
        body["cluster"] = await ctx.ping()
    except Exception as exc:
        body["ready"] = False
        body["cluster"] = {"error": f"not reachable ({type(exc).__name__})"}
    if ctx.embedder_info is not None:
        body["model"] = {
            "provider": ctx.embedder_info.provider,
            "model": ctx.embedder_info.model,
            "dims": ctx.embedder_info.dims,
        }
    else:
        body["ready"] = False
        body["model"] = {"error": ctx.model_error or "not loaded yet"}
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


@router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def prometheus(request: Request) -> Response:
    payload, content_type = metrics(request).render()
    return Response(payload, media_type=content_type)
