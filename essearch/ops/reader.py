"""Read every document of an index with a point-in-time and `search_after`.

PIT + `search_after` works on every distribution (no `_reindex`, no scroll limits) and gives a
consistent snapshot: documents written after the PIT was opened are not seen, which is exactly what
the catch-up pass of a migration relies on (it diffs again afterwards). Sorting on `_shard_doc` is
the cheapest order Elasticsearch offers for a full scan.

Elasticsearch 9.1+ leaves `dense_vector` values out of `_source` by default
(`index.mapping.exclude_source_vectors`); ask for them with `include_vectors=True`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from elasticsearch import Elasticsearch

from essearch.es.pit import PitCursor, pit_pages
from essearch.index.schema import CHUNK_FIELD, CONTENT_HASH_FIELD, DOC_ID_FIELD, INDEXED_AT_FIELD

DEFAULT_PAGE_SIZE = 500
DEFAULT_KEEP_ALIVE = "5m"


def read_body(
    *,
    size: int = DEFAULT_PAGE_SIZE,
    query: dict[str, Any] | None = None,
    source: list[str] | bool | None = None,
    include_vectors: bool = False,
    sort: list[Any] | None = None,
) -> dict[str, Any]:
    """A page of a full read, before the pager adds the PIT and `search_after`."""
    body: dict[str, Any] = {
        "size": size,
        "sort": sort or [{"_shard_doc": "asc"}],
        "track_total_hits": False,
    }
    if query is not None:
        body["query"] = query
    if include_vectors:
        source_spec: dict[str, Any] = {"exclude_vectors": False}
        if isinstance(source, list):
            source_spec["includes"] = source
        body["_source"] = source_spec
    elif source is not None:
        body["_source"] = source
    return body


def _needs_exclude_vectors_option(client: Elasticsearch) -> bool:
    """`_source.exclude_vectors` exists from 9.1 (vectors may be left out of `_source` there);
    older servers reject the key and always return vectors in `_source`."""
    from essearch.es.capabilities import parse_version
    from essearch.es.client import server_version

    version = server_version(client)
    return version is None or parse_version(version) >= (9, 1, 0)


def pit_search_body(
    pit_id: str,
    *,
    search_after: list[Any] | None = None,
    keep_alive: str = DEFAULT_KEEP_ALIVE,
    **read: Any,
) -> dict[str, Any]:
    """One page of a full read as sent (no index in the request: the PIT names it)."""
    return PitCursor(pit_id, keep_alive, search_after).request(read_body(**read))


def iter_pages(
    client: Elasticsearch,
    index: str,
    *,
    size: int = DEFAULT_PAGE_SIZE,
    query: dict[str, Any] | None = None,
    source: list[str] | bool | None = None,
    include_vectors: bool = False,
    keep_alive: str = DEFAULT_KEEP_ALIVE,
    sort: list[Any] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Pages of raw hits (`_id`, `_source`, ...) over `index`; the PIT is closed at the end.

    `sort` defaults to `_shard_doc` (the cheapest); with another sort the PIT's own tiebreaker
    keeps `search_after` exact."""
    body = read_body(
        size=size,
        query=query,
        source=source,
        include_vectors=include_vectors and _needs_exclude_vectors_option(client),
        sort=sort,
    )
    for response in pit_pages(client, index, body, keep_alive=keep_alive):
        if hits := response["hits"]["hits"]:
            yield hits


def iter_hits(client: Elasticsearch, index: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Every hit of `iter_pages`, one at a time."""
    for page in iter_pages(client, index, **kwargs):
        yield from page


def hash_map(
    client: Elasticsearch, index: str, *, fields: tuple[str, ...] = ("content_hash", "indexed_at")
) -> dict[str, tuple[Any, ...]]:
    """`{_id: (field values...)}` for the whole index, vectors and text left out (cheap)."""
    found: dict[str, tuple[Any, ...]] = {}
    for hit in iter_hits(client, index, size=5000, source=list(fields)):
        src = hit.get("_source") or {}
        found[hit["_id"]] = tuple(src.get(f) for f in fields)
    return found


DOCUMENT_ORDER = [{DOC_ID_FIELD: "asc"}, {CHUNK_FIELD: "asc"}]


def iter_documents(
    client: Elasticsearch, index: str, *, size: int = DEFAULT_PAGE_SIZE, **kwargs: Any
) -> Iterator[list[dict[str, Any]]]:
    """The hits of `index` grouped by document (all chunks of one `doc_id`, in position order).

    Sorted by `doc_id` then `chunk`, so a document's chunks are consecutive; one that spans two
    pages is held until the next page completes it. Memory: one page plus one document.
    """
    current: list[dict[str, Any]] = []
    for page in iter_pages(client, index, size=size, sort=DOCUMENT_ORDER, **kwargs):
        for hit in page:
            doc_id = (hit.get("_source") or {}).get(DOC_ID_FIELD)
            if current and (current[0].get("_source") or {}).get(DOC_ID_FIELD) != doc_id:
                yield current
                current = []
            current.append(hit)
    if current:
        yield current


def document_signatures(client: Elasticsearch, index: str) -> dict[str, tuple[Any, Any]]:
    """`{doc_id: (content hash, newest indexed_at)}` of the document's current chunks.

    All chunks of a document share its content hash; while an ingest replaces a changed
    document, the hash of the newest chunk wins (as in `rebuild.rebuild_document`).
    """
    fields = (DOC_ID_FIELD, CONTENT_HASH_FIELD, INDEXED_AT_FIELD)
    newest: dict[str, tuple[Any, Any]] = {}
    for doc_id, digest, indexed_at in hash_map(client, index, fields=fields).values():
        seen = newest.get(doc_id)
        if seen is None or str(indexed_at or "") > str(seen[1] or ""):
            newest[doc_id] = (digest, indexed_at)
    return newest
