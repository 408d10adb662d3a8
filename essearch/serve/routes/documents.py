"""Documents of one alias: add a batch through the ingest pipeline, read one, delete one.

`POST` runs `essearch.ingest.ingest` (same ids, chunking, model guard, dead-letter semantics as
`essearch ingest`) in a worker thread; a malformed document is reported in the ingest report and
never stops the others. `GET` rebuilds the document from its chunks; `DELETE` removes every chunk
of it (bulk deletes by id, so it works without `_delete_by_query`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from elasticsearch import NotFoundError
from elasticsearch.helpers import async_bulk
from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from essearch.index import schema
from essearch.ingest import IngestOptions, ingest
from essearch.ops.rebuild import rebuild_document
from essearch.serve.http_errors import NotServed
from essearch.serve.limits import check_at_most, invalid
from essearch.serve.routes._shared import context, json_response, metrics, resolve_alias
from essearch.serve.routes.search import response_of

router = APIRouter(prefix="/v1/indices/{name}/documents", tags=["documents"])

#: Chunks of one document read per request (a document is rarely more than a few hundred).
MAX_CHUNKS = 10_000


class DocumentsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    documents: list[Any] = Field(
        min_length=1,
        description="Objects like JSONL records: text (or content/body), optional id, title, "
        "metadata. A malformed one is reported, the others are indexed.",
    )


@router.post("", summary="Index a batch of documents (the ingest pipeline); the ingest report")
async def add_documents(
    request: Request, body: DocumentsRequest, name: str = Path(description="alias")
) -> Response:
    alias = resolve_alias(request, name)
    ctx = context(request)
    check_at_most(("documents",), len(body.documents), ctx.settings.serve.max_batch, "MAX_BATCH")
    if ctx.embedder_info is None:
        raise invalid(("documents",), "the embedding model is not loaded (see /readyz)")
    options = IngestOptions(dead_letter=ctx.settings.serve.dead_letter, init_index=True)
    report = await asyncio.to_thread(
        ingest,
        list(body.documents),
        settings=ctx.settings_for(alias),
        client=ctx.sync_client,
        embedder=ctx.embedder,
        options=options,
    )
    data = report.to_dict()
    metrics(request).observe_ingest(data)
    return json_response(data, status_code=200 if report.interrupted is None else 502)


async def _chunks(request: Request, alias: str, doc_id: str, source: Any) -> list[dict[str, Any]]:
    ctx = context(request)
    try:
        response = await ctx.client.search(
            index=alias,
            query={"term": {schema.DOC_ID_FIELD: doc_id}},
            sort=[{schema.CHUNK_FIELD: "asc"}],
            size=MAX_CHUNKS,
            source=source,
        )
    except NotFoundError:
        raise NotServed(f"index {alias!r} does not exist") from None
    hits = response.body["hits"]["hits"]
    if not hits:
        raise NotServed(f"document {doc_id!r} not found in {alias!r}")
    return hits


@router.get("/{doc_id}", summary="One document, rebuilt from its chunks")
async def get_document(
    request: Request, name: str = Path(description="alias"), doc_id: str = Path()
) -> Response:
    alias = resolve_alias(request, name)
    hits = await _chunks(request, alias, doc_id, {"excludes": [schema.VECTOR_FIELD]})
    sources = [hit["_source"] for hit in hits]
    rebuilt = rebuild_document(sources)
    doc = rebuilt.document
    return json_response(
        {
            "index": alias,
            "doc_id": doc.id,
            "title": doc.title,
            "text": doc.text,
            "metadata": doc.metadata,
            "exact": rebuilt.exact,
            "indexed_at": rebuilt.indexed_at,
            "chunks": [
                {
                    "id": hit["_id"],
                    "chunk": hit["_source"].get(schema.CHUNK_FIELD),
                    "text": hit["_source"].get(schema.TEXT_FIELD),
                }
                for hit in hits
            ],
        }
    )


@router.get("/{doc_id}/similar", summary="Documents like this one (kNN from its stored vectors)")
async def similar_documents(
    request: Request,
    name: str = Path(description="alias"),
    doc_id: str = Path(),
    k: int = Query(10, ge=1, le=100, description="Documents to return."),
) -> Response:
    """`SearchClient.similar_to`: nothing is embedded, the document itself is left out, one hit
    per document; an unknown document is a 404."""
    alias = resolve_alias(request, name)
    result = await context(request).searcher(alias).similar_to(doc_id, k=k)
    return json_response(response_of(alias, result))


@router.delete("/{doc_id}", summary="Delete every chunk of one document")
async def delete_document(
    request: Request, name: str = Path(description="alias"), doc_id: str = Path()
) -> Response:
    alias = resolve_alias(request, name)
    ctx = context(request)
    write_alias = schema.write_alias_for(alias)
    exists = await ctx.client.indices.exists_alias(name=write_alias)
    hits = await _chunks(request, write_alias if exists else alias, doc_id, False)
    actions = [{"_op_type": "delete", "_index": h["_index"], "_id": h["_id"]} for h in hits]
    deleted, errors = await async_bulk(
        ctx.client, actions, raise_on_error=False, refresh="wait_for"
    )
    problems = [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
    return json_response(
        {"index": alias, "doc_id": doc_id, "deleted": deleted, "errors": problems[:20]},
        status_code=200 if not problems else 502,
    )
