"""Mirroring a source: documents the index holds that a run did not read, and deleting chunks.

`essearch ingest docs/ --sync` reads everything under docs/; afterwards, every document of the index
that the run did not see (a file that was deleted or renamed, a record gone from the JSONL) is
deleted, and only after the rest of the run succeeded. The same helpers remove the chunks of an
earlier version when one run reads the same document id twice (the last one wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from essearch.index.schema import DOC_ID_FIELD
from essearch.ingest.failures import Failure, describe_bulk_error
from essearch.ingest.ids import doc_id_of_chunk_id

PAGE = 1_000


def doc_ids_query(after: dict[str, Any] | None = None) -> dict[str, Any]:
    """Search body: one page of the distinct document ids (a composite aggregation, which pages
    without a result window limit and never loads the chunks)."""
    composite: dict[str, Any] = {
        "size": PAGE,
        "sources": [{"doc": {"terms": {"field": DOC_ID_FIELD}}}],
    }
    if after is not None:
        composite["after"] = after
    return {"size": 0, "track_total_hits": False, "aggs": {"docs": {"composite": composite}}}


def indexed_doc_ids(client: Elasticsearch, index: str) -> Iterator[str]:
    """Every document id with chunks in `index`, in id order."""
    after: dict[str, Any] | None = None
    while True:
        response = client.search(index=index, body=doc_ids_query(after))
        aggregation = response["aggregations"]["docs"]
        for bucket in aggregation["buckets"]:
            yield str(bucket["key"]["doc"])
        after = aggregation.get("after_key")
        if not aggregation["buckets"] or after is None:
            return


def vanished(client: Elasticsearch, index: str, seen: Iterable[str]) -> list[str]:
    """Document ids of `index` that are not in `seen`, sorted."""
    keep = set(seen)
    return [doc_id for doc_id in indexed_doc_ids(client, index) if doc_id not in keep]


def delete_chunks(
    client: Elasticsearch, targets: Iterable[tuple[str, str]]
) -> tuple[int, list[Failure]]:
    """Delete (physical index, chunk id) pairs in bulk; (deleted, failures). A chunk already gone
    (404) counts as deleted."""
    actions = ({"_op_type": "delete", "_index": index, "_id": cid} for index, cid in targets)
    deleted, failures = 0, []
    for ok, result in streaming_bulk(client, actions, raise_on_error=False, max_retries=3):
        info = next(iter(result.values()))
        if ok or info.get("status") == 404:
            deleted += 1
            continue
        cid = str(info.get("_id"))
        failures.append(
            Failure(
                "delete",
                describe_bulk_error(info.get("error")),
                id=cid,
                doc_id=doc_id_of_chunk_id(cid),
                status=info.get("status"),
            )
        )
    return deleted, failures
