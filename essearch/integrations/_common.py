"""What every framework adapter shares: hit metadata, document storage and lookup by document id.

The adapters differ only in the objects they hand back (LangChain `Document`, LlamaIndex
`NodeWithScore`); reading and writing the index is done here once, on essearch's own pieces
(ingest, the PIT reader, the document rebuild), so every adapter keeps the model guard,
idempotent chunk ids and the Basic-licence hybrid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from elasticsearch import Elasticsearch, helpers

from essearch.embedders.base import Embedder
from essearch.errors import IngestError
from essearch.index import schema
from essearch.ingest.loaders import Document
from essearch.retrieval.results import Hit
from essearch.settings import Settings


def hit_metadata(hit: Hit, *, with_scores: bool = True) -> dict[str, Any]:
    """A hit's own metadata plus where it came from and how it scored (per leg)."""
    metadata = dict(hit.metadata)
    if not with_scores:
        return metadata
    metadata["essearch"] = {
        "id": hit.id,
        "doc_id": hit.doc_id,
        "index": hit.index,
        "score": hit.score,
        "rank": hit.rank,
        "legs": {name: leg.model_dump() for name, leg in hit.legs.items()},
        "rerank_score": hit.rerank_score,
    }
    return metadata


def store_documents(
    documents: Sequence[Document],
    *,
    settings: Settings,
    client: Elasticsearch,
    embedder: Embedder,
) -> None:
    """Ingest `documents` (chunked, embedded, idempotent ids); any failed item raises."""
    from essearch.ingest import IngestOptions, ingest

    if not documents:
        return
    report = ingest(
        list(documents),
        settings=settings,
        client=client,
        embedder=embedder,
        options=IngestOptions(dead_letter=None),
    )
    if not report.ok:
        first = report.failures[0].to_dict() if report.failures else {}
        raise IngestError(
            f"{report.failed} of {len(documents)} documents failed to index into "
            f"{report.index!r}: {first.get('reason') or report.interrupted}"
        )


def _doc_id_query(doc_ids: Iterable[str]) -> dict[str, Any]:
    return {"terms": {schema.DOC_ID_FIELD: list(doc_ids)}}


def delete_documents(client: Elasticsearch, settings: Settings, doc_ids: Sequence[str]) -> int:
    """Delete every chunk of these documents (no `_delete_by_query`: it needs the reindex module).

    Unknown ids are not an error; returns the number of chunks deleted.
    """
    from essearch.ops.reader import iter_hits

    if not doc_ids:
        return 0
    index = settings.index.name
    if not client.indices.exists_alias(name=index) and not client.indices.exists(index=index):
        return 0
    actions = (
        {"_op_type": "delete", "_index": hit["_index"], "_id": hit["_id"]}
        for hit in iter_hits(client, index, query=_doc_id_query(doc_ids), source=False)
    )
    deleted, _ = helpers.bulk(client, actions, refresh="wait_for", raise_on_error=False)
    return int(deleted)


def get_documents(
    client: Elasticsearch, settings: Settings, doc_ids: Sequence[str]
) -> list[Document]:
    """The documents with these ids, rebuilt exactly from their chunks, in the order asked."""
    from essearch.ops.reader import iter_documents
    from essearch.ops.rebuild import rebuild_document

    index = settings.index.name
    if not doc_ids or not (
        client.indices.exists_alias(name=index) or client.indices.exists(index=index)
    ):
        return []
    found: dict[str, Document] = {}
    for hits in iter_documents(client, index, query=_doc_id_query(doc_ids)):
        rebuilt = rebuild_document([hit.get("_source") or {} for hit in hits])
        found[rebuilt.document.id] = rebuilt.document
    return [found[doc_id] for doc_id in doc_ids if doc_id in found]
