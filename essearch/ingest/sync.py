"""Mirroring a source: documents the index holds that a run did not read, and deleting chunks.

`essearch ingest docs/ --sync` reads everything under docs/; afterwards, every document of the index
that came from under docs/ and that the run did not see (a file that was deleted or renamed, a
record gone from a JSONL file there) is deleted, and only after the rest of the run succeeded.
Documents read from other inputs (`corpus.jsonl` beside docs/, another folder) are outside the
run's `SyncScope` and stay: each chunk records the input it came from (`source`). The same
helpers remove the chunks of an earlier version when one run reads the same document id twice
(the last one wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from essearch.index.schema import DOC_ID_FIELD, SOURCE_FIELD
from essearch.ingest.failures import Failure, describe_bulk_error
from essearch.ingest.ids import doc_id_of_chunk_id
from essearch.ingest.loaders import STDIN, STDIN_ORIGIN, origin_of

PAGE = 1_000


@dataclass
class SyncScope:
    """The indexed documents a `--sync` run answers for: those read from its inputs.

    A directory given covers every input under it (the files deleted since included), a file or
    stdin covers itself, and documents handed over in memory cover those indexed with no input.
    """

    directories: set[str] = field(default_factory=set)  # absolute paths, `/`-separated
    inputs: set[str] = field(default_factory=set)  # exact origins: files, `<stdin>`
    unsourced: bool = False

    @classmethod
    def of(cls, sources: Iterable[Any]) -> SyncScope:
        """The scope of a run's inputs (paths, `-`, Documents or dicts)."""
        scope = cls()
        for item in sources:
            scope.add_source(item)
        return scope

    def add_source(self, item: Any) -> None:
        """One input of the run: a path, `-`, or a document handed over in memory."""
        if isinstance(item, (str, Path)):
            if str(item) == STDIN:
                self.inputs.add(STDIN_ORIGIN)
            elif Path(item).is_dir():
                self.directories.add(origin_of(Path(item)).rstrip("/"))
            else:
                self.inputs.add(origin_of(Path(item)))
        elif getattr(item, "origin", None) is not None:
            self.inputs.add(item.origin)
        else:
            self.unsourced = True

    def track(self, sources: list[Any] | Iterator[Any]) -> list[Any] | Iterator[Any]:
        """`sources`, adding each input to the scope: a list at once, an iterator as it is read."""
        if isinstance(sources, list):
            for item in sources:
                self.add_source(item)
            return sources
        return self._tracking(sources)

    def _tracking(self, sources: Iterator[Any]) -> Iterator[Any]:
        for item in sources:
            self.add_source(item)
            yield item

    def query(self) -> dict[str, Any]:
        """The filter matching the chunks in scope (nothing, when the scope is empty)."""
        should: list[dict[str, Any]] = [
            {"prefix": {SOURCE_FIELD: f"{directory}/"}} for directory in sorted(self.directories)
        ]
        if self.inputs:
            should.append({"terms": {SOURCE_FIELD: sorted(self.inputs)}})
        if self.unsourced:
            should.append({"bool": {"must_not": [{"exists": {"field": SOURCE_FIELD}}]}})
        if not should:
            return {"match_none": {}}
        return {"bool": {"should": should, "minimum_should_match": 1}}


def unsourced_query() -> dict[str, Any]:
    """Chunks that record no input: indexed before essearch kept one, or given in memory."""
    return {"bool": {"must_not": [{"exists": {"field": SOURCE_FIELD}}]}}


def doc_ids_query(
    after: dict[str, Any] | None = None, scope: SyncScope | None = None
) -> dict[str, Any]:
    """Search body: one page of the distinct document ids (a composite aggregation, which pages
    without a result window limit and never loads the chunks), within `scope` when given."""
    composite: dict[str, Any] = {
        "size": PAGE,
        "sources": [{"doc": {"terms": {"field": DOC_ID_FIELD}}}],
    }
    if after is not None:
        composite["after"] = after
    body: dict[str, Any] = {
        "size": 0,
        "track_total_hits": False,
        "aggs": {"docs": {"composite": composite}},
    }
    if scope is not None:
        body["query"] = scope.query()
    return body


def indexed_doc_ids(
    client: Elasticsearch, index: str, scope: SyncScope | None = None
) -> Iterator[str]:
    """Every document id with chunks in `index` (within `scope`), in id order."""
    after: dict[str, Any] | None = None
    while True:
        response = client.search(index=index, body=doc_ids_query(after, scope))
        aggregation = response["aggregations"]["docs"]
        for bucket in aggregation["buckets"]:
            yield str(bucket["key"]["doc"])
        after = aggregation.get("after_key")
        if not aggregation["buckets"] or after is None:
            return


def vanished(
    client: Elasticsearch, index: str, seen: Iterable[str], scope: SyncScope | None = None
) -> list[str]:
    """Document ids of `index` (within `scope`) that are not in `seen`, sorted."""
    keep = set(seen)
    return [doc_id for doc_id in indexed_doc_ids(client, index, scope) if doc_id not in keep]


def count_unsourced(client: Elasticsearch, index: str) -> int:
    """How many chunks of `index` record no input, so no path-scoped `--sync` reaches them."""
    return int(client.count(index=index, query=unsourced_query())["count"])


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
