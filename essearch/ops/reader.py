"""Read every document of an index with a point-in-time and `search_after`.

PIT + `search_after` works on every distribution (no `_reindex`, no scroll limits) and gives a
consistent snapshot: documents written after the PIT was opened are not seen, which is exactly what
the catch-up pass of a migration relies on (it diffs again afterwards). Sorting on `_shard_doc` is
the cheapest order Elasticsearch offers for a full scan.

Elasticsearch 9.1+ leaves `dense_vector` values out of `_source` by default
(`index.mapping.exclude_source_vectors`); ask for them with `include_vectors=True`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from elasticsearch import Elasticsearch

DEFAULT_PAGE_SIZE = 500
DEFAULT_KEEP_ALIVE = "5m"


def pit_search_body(
    pit_id: str,
    *,
    size: int = DEFAULT_PAGE_SIZE,
    query: dict[str, Any] | None = None,
    source: list[str] | bool | None = None,
    include_vectors: bool = False,
    search_after: list[Any] | None = None,
    keep_alive: str = DEFAULT_KEEP_ALIVE,
) -> dict[str, Any]:
    """One page of a PIT scan (no index in the request: the PIT names it)."""
    body: dict[str, Any] = {
        "pit": {"id": pit_id, "keep_alive": keep_alive},
        "size": size,
        "sort": [{"_shard_doc": "asc"}],
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
    if search_after is not None:
        body["search_after"] = search_after
    return body


def iter_pages(
    client: Elasticsearch,
    index: str,
    *,
    size: int = DEFAULT_PAGE_SIZE,
    query: dict[str, Any] | None = None,
    source: list[str] | bool | None = None,
    include_vectors: bool = False,
    keep_alive: str = DEFAULT_KEEP_ALIVE,
) -> Iterator[list[dict[str, Any]]]:
    """Pages of raw hits (`_id`, `_source`, ...) over `index`; the PIT is closed at the end."""
    pit_id = client.open_point_in_time(index=index, keep_alive=keep_alive)["id"]
    try:
        search_after: list[Any] | None = None
        while True:
            body = pit_search_body(
                pit_id,
                size=size,
                query=query,
                source=source,
                include_vectors=include_vectors,
                search_after=search_after,
                keep_alive=keep_alive,
            )
            resp = client.search(body=body)
            pit_id = resp.get("pit_id", pit_id)  # the id may change between pages
            hits = resp["hits"]["hits"]
            if not hits:
                return
            yield hits
            if len(hits) < size:
                return
            search_after = hits[-1]["sort"]
    finally:
        # the node may be gone (that is often why we stopped)
        with contextlib.suppress(Exception):
            client.close_point_in_time(id=pit_id)


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
