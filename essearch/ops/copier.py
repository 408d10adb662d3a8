"""Copying documents from one version to another: the server's `_reindex`, or client-side.

Which one (`choose_copy_strategy`): the server's `_reindex` only when the cluster has the reindex
module AND no document needs a new vector or new client-made fields (same embedder; only the
mapping or analyzer changed; the source already has the CJK word field).
Otherwise the client reads the source with PIT + `search_after` and writes each chunk to the target
as is (same `_id`, text, metadata, content hash and `indexed_at`), with a vector from the new
embedder. Chunks are re-embedded exactly as ingest embeds them (`title\\ntext`), so keeping chunk
ids is exact: an `essearch ingest` of the same source later finds every chunk unchanged.

Resume: before embedding a batch, one `mget` on the target skips chunks already there with the
same (content hash, indexed_at): a re-run after Ctrl-C or an embedder failure embeds only what is
missing. An embedder that raises aborts the copy (the serving alias is untouched); an item the
embedder or the node refuses goes to the dead-letter file, as in ingest.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from elasticsearch import Elasticsearch
from elasticsearch.helpers import streaming_bulk

from essearch.embedders.base import Embedder, invalid_text_positions
from essearch.errors import EmbeddingError, IngestError
from essearch.es.capabilities import Capabilities
from essearch.index.definitions import VectorSpec, vector_problem
from essearch.index.schema import (
    CJK_FIELD,
    CONTENT_HASH_FIELD,
    DOC_ID_FIELD,
    INDEXED_AT_FIELD,
    TEXT_FIELD,
    TITLE_FIELD,
    VECTOR_FIELD,
)
from essearch.ingest.chunker import embed_text
from essearch.ingest.failures import DeadLetter, Failure, describe_bulk_error
from essearch.ingest.progress import Counters
from essearch.ops.reader import hash_map, iter_pages
from essearch.text.fields import language_fields

log = logging.getLogger(__name__)

Strategy = Literal["server", "client"]
IDS_PER_QUERY = 1000


def choose_copy_strategy(capabilities: Capabilities | None, needs_reembed: bool) -> Strategy:
    """`server` (`_reindex`) only when the cluster has it and vectors can be copied as they are."""
    if capabilities is not None and capabilities.reindex and not needs_reembed:
        return "server"
    return "client"


def reindex_body(source: str, target: str, *, size: int = 500) -> dict[str, Any]:
    """Body of `POST _reindex?wait_for_completion=false` copying every document as is."""
    return {
        "conflicts": "proceed",
        "source": {"index": source, "size": size},
        "dest": {"index": target, "op_type": "index"},
    }


def server_reindex(
    client: Elasticsearch,
    source: str,
    target: str,
    *,
    poll_interval: float = 1.0,
    on_poll: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run `_reindex` as a task and poll the tasks API until it completes; returns its response."""
    started = client.reindex(
        body=reindex_body(source, target), wait_for_completion=False, refresh=True
    )
    task_id = started["task"]
    try:
        while True:
            task = client.tasks.get(task_id=task_id).body
            if on_poll is not None:
                on_poll(task.get("task", {}).get("status", {}))
            if task.get("completed"):
                break
            time.sleep(poll_interval)
    except BaseException:  # Ctrl-C or a lost node: do not leave the task copying on its own
        with contextlib.suppress(Exception):
            client.tasks.cancel(task_id=task_id)
        raise
    if task.get("error"):
        raise IngestError(f"_reindex task {task_id} failed: {task['error']}")
    response = task.get("response", {})
    if response.get("failures"):
        first = response["failures"][0]
        raise IngestError(
            f"_reindex task {task_id}: {len(response['failures'])} failure(s), first: {first}"
        )
    return response


def embed_text_of(source: dict[str, Any]) -> str:
    """What ingest's embedder read for an indexed chunk's `_source`."""
    return embed_text(source.get(TITLE_FIELD), source.get(TEXT_FIELD) or "")


def ids_query(ids: list[str]) -> dict[str, Any]:
    return {"ids": {"values": ids}}


def since_query(timestamp: str) -> dict[str, Any]:
    """Chunks indexed at or after `timestamp` (ISO 8601)."""
    return {"range": {INDEXED_AT_FIELD: {"gte": timestamp}}}


@dataclass
class CopyStats:
    read: int = 0
    skipped: int = 0
    embedded: int = 0
    indexed: int = 0
    deleted: int = 0
    failed: int = 0
    batches: int = 0
    failed_keys: set[str] = field(default_factory=set)  # chunk ids, or doc ids when re-chunking

    def to_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "skipped": self.skipped,
            "embedded": self.embedded,
            "indexed": self.indexed,
            "deleted": self.deleted,
            "failed": self.failed,
            "batches": self.batches,
        }


class Copier:
    """Copies chunk documents into `target`, re-embedding with `embedder` (None: keep vectors).

    The unit of comparison is the chunk (`_id`): `snapshot`, `copy_keys` and `delete_keys` are what
    the catch-up passes use; `RechunkingCopier` offers the same with the document as the unit.
    """

    def __init__(
        self,
        client: Elasticsearch,
        target: str,
        *,
        embedder: Embedder | None,
        vector_spec: VectorSpec,
        dead: DeadLetter,
        counters: Counters | None = None,
        batch_size: int = 256,
        on_batch: Callable[[CopyStats], None] | None = None,
    ) -> None:
        self.client = client
        self.target = target
        self.embedder = embedder
        self.vector_spec = vector_spec
        self.dead = dead
        self.counters = counters or Counters()
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.stats = CopyStats()

    # -- reading ---------------------------------------------------------------------------------
    def copy_index(
        self, source: str, query: dict[str, Any] | None = None, *, newer_only: bool = False
    ) -> CopyStats:
        """Copy every chunk of `source` matching `query` (all by default)."""
        for page in iter_pages(
            self.client,
            source,
            size=self.batch_size,
            query=query,
            include_vectors=self.embedder is None,
        ):
            self.copy_hits(page, newer_only=newer_only)
        return self.stats

    def copy_keys(self, source: str, ids: Iterable[str]) -> CopyStats:
        """Copy the chunks with these `_id`s (the catch-up pass)."""
        wanted = list(ids)
        for start in range(0, len(wanted), IDS_PER_QUERY):
            self.copy_index(source, ids_query(wanted[start : start + IDS_PER_QUERY]))
        return self.stats

    def snapshot(self, index: str) -> dict[str, tuple[Any, ...]]:
        """`{chunk id: (content hash, indexed_at)}`: what the catch-up passes compare."""
        return hash_map(self.client, index)

    # -- one batch -------------------------------------------------------------------------------
    def _existing(self, ids: list[str]) -> dict[str, tuple[Any, Any]]:
        resp = self.client.mget(
            index=self.target, ids=ids, source=[CONTENT_HASH_FIELD, INDEXED_AT_FIELD]
        )
        return {
            d["_id"]: (d["_source"].get(CONTENT_HASH_FIELD), d["_source"].get(INDEXED_AT_FIELD))
            for d in resp["docs"]
            if d.get("found")
        }

    def copy_hits(self, hits: list[dict[str, Any]], *, newer_only: bool = False) -> None:
        """Skip what the target already has, embed the rest, bulk-index it, count everything.

        `newer_only`: copy a chunk only when the target lacks it or holds an older `indexed_at`
        (used after the swap, when the target may already hold newer writes).
        """
        self.stats.read += len(hits)
        self.counters.add("documents", len(hits))
        self.counters.add("chunks", len(hits))
        existing = self._existing([h["_id"] for h in hits]) if hits else {}
        todo: list[dict[str, Any]] = []
        for hit in hits:
            src = hit.get("_source") or {}
            mine = (src.get(CONTENT_HASH_FIELD), src.get(INDEXED_AT_FIELD))
            theirs = existing.get(hit["_id"])
            if theirs is not None and (
                theirs == mine or (newer_only and str(theirs[1] or "") >= str(mine[1] or ""))
            ):
                continue
            todo.append(hit)
        self.stats.skipped += len(hits) - len(todo)
        self.counters.add("skipped", len(hits) - len(todo))
        actions = self._actions(todo)
        if actions:
            self._bulk(actions)
        self.stats.batches += 1
        if self.on_batch is not None:
            self.on_batch(self.stats)

    def _fail(self, failure: Failure) -> None:
        self.dead.add(failure)
        self.stats.failed += 1
        self.counters.add("failed")
        key = self._key_of(failure)
        if key:
            self.stats.failed_keys.add(key)

    def _key_of(self, failure: Failure) -> str | None:
        return failure.id

    def _actions(self, hits: list[dict[str, Any]]) -> list[dict[str, Any]]:
        sources = [dict(h.get("_source") or {}) for h in hits]
        if self.embedder is not None and hits:
            texts = [embed_text_of(s) for s in sources]
            bad = set(invalid_text_positions(texts))
            for i in sorted(bad):
                self._fail(
                    Failure(
                        "embed",
                        "chunk has no title and no text; nothing to embed",
                        id=hits[i]["_id"],
                        doc_id=sources[i].get(DOC_ID_FIELD),
                    )
                )
            keep = [i for i in range(len(hits)) if i not in bad]
            hits = [hits[i] for i in keep]
            sources = [sources[i] for i in keep]
            vectors = self.embedder.embed_documents([texts[i] for i in keep]) if keep else []
            if len(vectors) != len(keep):
                raise EmbeddingError(
                    f"embedder returned {len(vectors)} vectors for {len(keep)} texts"
                )
            self.stats.embedded += len(vectors)
            self.counters.add("embedded", len(vectors))
            for src, vector in zip(sources, vectors, strict=True):
                src[VECTOR_FIELD] = [float(x) for x in vector]
        actions = []
        for hit, src in zip(hits, sources, strict=True):
            # recomputed on every copy: an index made before the CJK field gets it, and a newer
            # segmenter or folding table takes effect
            src.pop(CJK_FIELD, None)
            src.update(language_fields(src.get(TITLE_FIELD), src.get(TEXT_FIELD)))
            problem = vector_problem(src.get(VECTOR_FIELD), self.vector_spec)
            if problem is not None:
                self._fail(Failure("embed", problem, id=hit["_id"], doc_id=src.get(DOC_ID_FIELD)))
                continue
            actions.append(
                {"_op_type": "index", "_index": self.target, "_id": hit["_id"], "_source": src}
            )
        return actions

    def _bulk(self, actions: list[dict[str, Any]]) -> None:
        for ok, result in streaming_bulk(
            self.client,
            actions,
            chunk_size=500,
            max_chunk_bytes=10 * 1024 * 1024,
            raise_on_error=False,
            max_retries=8,
            initial_backoff=0.5,
            max_backoff=30.0,
        ):
            op, info = next(iter(result.items()))
            if ok:
                if op == "delete":
                    self.stats.deleted += 1
                    self.counters.add("deleted")
                else:
                    self.stats.indexed += 1
                    self.counters.add("indexed")
                continue
            if op == "delete" and info.get("status") == 404:
                continue
            self._fail(
                Failure(
                    "delete" if op == "delete" else "index",
                    describe_bulk_error(info.get("error")),
                    id=str(info.get("_id")),
                    status=info.get("status"),
                )
            )

    def delete_keys(self, ids: Iterable[str]) -> None:
        """Remove chunks from the target (deleted from the source while the copy ran)."""
        actions = [{"_op_type": "delete", "_index": self.target, "_id": i} for i in ids]
        if actions:
            self._bulk(actions)
