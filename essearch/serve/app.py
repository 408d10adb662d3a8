"""The app factory: routers, middlewares (auth, body limit, metrics, optional CORS), errors.

`create_app()` with no arguments reads the settings from the environment; this is what uvicorn
calls in each worker (`essearch.serve.app:create_app`, factory mode). Tests pass settings and a
ready embedder.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError, AsyncElasticsearch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from essearch import __version__
from essearch.embedders.base import Embedder
from essearch.errors import EssearchError
from essearch.serve.auth import AuthMiddleware, KeyRing
from essearch.serve.context import ServeContext
from essearch.serve.dify import validation_message
from essearch.serve.http_errors import message_of, status_of
from essearch.serve.limits import BodyLimitMiddleware
from essearch.serve.metrics import MetricsMiddleware, ServeMetrics
from essearch.serve.routes import documents, health, indices, playground, retrieval, search
from essearch.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None,
    *,
    embedder: Embedder | None = None,
    client: AsyncElasticsearch | None = None,
) -> FastAPI:
    settings = settings or load_settings()
    ctx = ServeContext(settings, embedder=embedder, client=client)
    serve_metrics = ServeMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ctx.start()
        try:
            yield
        finally:
            await ctx.close()

    app = FastAPI(
        title="essearch",
        version=__version__,
        description="Semantic and hybrid search on Elasticsearch. When ESSEARCH_SERVE_API_KEYS "
        "is set, every route but /healthz needs `Authorization: Bearer <key>`.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    app.state.metrics = serve_metrics
    for module in (health, search, documents, indices, retrieval, playground):
        app.include_router(module.router)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = jsonable(exc.errors())
        if request.url.path == "/retrieval":
            return JSONResponse(
                {"error_code": 422, "error_msg": validation_message(errors), "detail": errors},
                status_code=422,
            )
        return JSONResponse({"detail": errors}, status_code=422)

    # Known failures become their status here; anything else is a logged 500.
    for kind in (EssearchError, ApiError, TransportConnectionError, ConnectionTimeout, Exception):
        app.add_exception_handler(kind, on_error)

    # Outermost first at run time: metrics see every request, then the body limit, then auth.
    app.add_middleware(AuthMiddleware, keys=KeyRing(settings.serve.api_keys))
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.serve.max_body_bytes)
    if settings.serve.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.serve.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(MetricsMiddleware, metrics=serve_metrics)
    return app


async def on_error(request: Request, exc: Exception) -> JSONResponse:
    return error_response(exc)


def error_response(exc: Exception) -> JSONResponse:
    status, kind = status_of(exc)
    return JSONResponse({"error": {"type": kind, "message": message_of(exc)}}, status_code=status)


def jsonable(errors: object) -> list[dict[str, object]]:
    """Validation errors without non-JSON parts (exceptions in `ctx`), inputs kept short."""
    out = []
    for err in errors if isinstance(errors, list) else []:
        item = {k: v for k, v in err.items() if k in ("type", "loc", "msg")}
        value = err.get("input")
        if isinstance(value, (str, int, float, bool)) or value is None:
            item["input"] = value if not isinstance(value, str) else value[:200]
        out.append(item)
    return out
