"""The playground: one static page (HTML + JS + CSS from the package; no build step, no CDN)."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

router = APIRouter(include_in_schema=False)

STATIC = resources.files("essearch.serve") / "static"
ASSETS = {"playground.js": "text/javascript", "playground.css": "text/css"}


@router.get("/")
async def index() -> HTMLResponse:
    return HTMLResponse((STATIC / "index.html").read_text(encoding="utf-8"))


@router.get("/playground")
async def playground() -> RedirectResponse:
    return RedirectResponse("/")


@router.get("/playground/{asset}")
async def asset(asset: str) -> FileResponse:
    if asset not in ASSETS:  # a fixed list: no path is ever built from the request
        raise HTTPException(404, "no such asset")
    return FileResponse(str(STATIC / asset), media_type=ASSETS[asset])
