"""Copying with new chunking: every document is rebuilt from its chunks and cut again.

Used by a migration whose chunking changes (a new `--chunk-size`, or a new embedder whose default
chunking differs) and by a rollback across such a migration. The unit is the document (`doc_id`):
the source is read in document order, each document is rebuilt (`rebuild`), re-chunked with the
target's chunker and embedded; chunk ids are those `essearch ingest` would give the same document
with the same chunker, so a later ingest of the original source finds every chunk unchanged.

Vectors: when the embedder does not change, a new chunk with the same id as an old one (same
document, position and text) keeps its vector; only new or changed chunks are embedded.

Resume: before embedding a batch, the target's chunks of those documents are looked up; a document
whose chunks are already there with the same (content hash, indexed_at) is skipped, and target
chunks of a document that the new cut no longer produces are deleted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from essearch.embedders.base import Embedder
from essearch.errors import EmbeddingError
from essearch.index.definitions import vector_problem
from essearch.index.schema import CONTENT_HASH_FIELD, DOC_ID_FIELD, INDEXED_AT_FIELD, VECTOR_FIELD
from essearch.ingest.chunker import Chunk, Chunker
from essearch.ingest.failures import Failure
from essearch.ingest.planning import chunk_source
from essearch.ops.copier import IDS_PER_QUERY, Copier
from essearch.ops.reader import document_signatures, iter_documents, iter_hits
from essearch.ops.rebuild import RebuildError, RebuiltDocument, rebuild_document, rechunk


def doc_ids_query(doc_ids: list[str]) -> dict[str, Any]:
    return {"terms": {DOC_ID_FIELD: doc_ids}}


@dataclass
class _DocumentPlan:
    rebuilt: RebuiltDocument
    chunks: list[Chunk]
    stale: list[str]  # target chunk ids the new cut no longer produces
    vectors: dict[str, list[float]] = field(default_factory=dict)  # reused, by chunk id


class RechunkingCopier(Copier):
    """Copies whole documents into `target`, re-chunked with `chunker`, embedded with `embedder`."""

    def __init__(
        self,
        client: Elasticsearch,
        target: str,
        *,
        chunker: Chunker,
        embedder: Embedder,
        reuse_vectors: bool,
        **kwargs: Any,
    ) -> None:
        super().__init__(client, target, embedder=embedder, **kwargs)
        self.chunker = chunker
        self.reuse_vectors = reuse_vectors

    def _key_of(self, failure: Failure) -> str | None:
        return failure.doc_id

    # -- the catch-up interface ------------------------------------------------------------------
    def snapshot(self, index: str) -> dict[str, tuple[Any, ...]]:
        """`{doc_id: (content hash, newest indexed_at)}`."""
        return document_signatures(self.client, index)

    def copy_keys(self, source: str, ids: Iterable[str], *, newer_only: bool = False) -> Any:
        """Copy the documents with these `doc_id`s."""
        wanted = list(ids)
        for start in range(0, len(wanted), IDS_PER_QUERY):
            self._copy_documents(
                source, doc_ids_query(wanted[start : start + IDS_PER_QUERY]), newer_only
            )
        return self.stats

    def delete_keys(self, ids: Iterable[str]) -> None:
        """Remove every chunk of these documents from the target."""
        wanted = list(ids)
        for start in range(0, len(wanted), IDS_PER_QUERY):
            query = doc_ids_query(wanted[start : start + IDS_PER_QUERY])
            chunk_ids = [
                h["_id"] for h in iter_hits(self.client, self.target, query=query, source=False)
            ]
            super().delete_keys(chunk_ids)

    def copy_index(
        self, source: str, query: dict[str, Any] | None = None, *, newer_only: bool = False
    ) -> Any:
        """Copy every document of `source` with a chunk matching `query` (all by default)."""
        if query is None:
            self._copy_documents(source, None, newer_only)
            return self.stats
        doc_ids = {
            (h.get("_source") or {}).get(DOC_ID_FIELD)
            for h in iter_hits(self.client, source, query=query, source=[DOC_ID_FIELD])
        }
        return self.copy_keys(source, sorted(d for d in doc_ids if d), newer_only=newer_only)

    # -- batches of documents ----------------------------------------------------------------------
    def _copy_documents(self, source: str, query: dict[str, Any] | None, newer_only: bool) -> None:
        # the lookups of target chunks are searches: make a previous (interrupted) run's writes
        # visible to them (the chunk copier's `mget` is realtime and needs no refresh)
        self.client.indices.refresh(index=self.target)
        batch: list[list[dict[str, Any]]] = []
        pending = 0
        for group in iter_documents(
            self.client,
            source,
            size=self.batch_size,
            query=query,
            include_vectors=self.reuse_vectors,
        ):
            batch.append(group)
            pending += len(group)
            if pending >= self.batch_size:
                self.copy_groups(batch, newer_only=newer_only)
                batch, pending = [], 0
        if batch:
            self.copy_groups(batch, newer_only=newer_only)

    def _target_chunks(self, doc_ids: list[str]) -> dict[str, dict[str, tuple[Any, Any]]]:
        """doc id -> {chunk id -> (content hash, indexed_at)} already in the target."""
        found: dict[str, dict[str, tuple[Any, Any]]] = {}
        for hit in iter_hits(
            self.client,
            self.target,
            query=doc_ids_query(doc_ids),
            source=[DOC_ID_FIELD, CONTENT_HASH_FIELD, INDEXED_AT_FIELD],
        ):
            src = hit.get("_source") or {}
            doc_id = src.get(DOC_ID_FIELD)
            if doc_id is None:  # the query asks for these doc ids; a chunk without one is not ours
                continue
            found.setdefault(doc_id, {})[hit["_id"]] = (
                src.get(CONTENT_HASH_FIELD),
                src.get(INDEXED_AT_FIELD),
            )
        return found

    def _plan(
        self,
        group: list[dict[str, Any]],
        existing: dict[str, tuple[Any, Any]],
        newer_only: bool,
    ) -> _DocumentPlan | None:
        sources = [h.get("_source") or {} for h in group]
        doc_id = str(sources[0].get(DOC_ID_FIELD))
        try:
            rebuilt = rebuild_document(sources)
            chunks = rechunk(rebuilt, self.chunker)
        except (RebuildError, ValueError, RuntimeError) as exc:
            self._fail(Failure("chunk", str(exc), doc_id=doc_id))
            return None
        signature = (rebuilt.content_hash, rebuilt.indexed_at)
        new_ids = {c.id for c in chunks}
        if existing and set(existing) == new_ids and set(existing.values()) == {signature}:
            return None  # already copied (a resumed run) or unchanged
        if newer_only and existing:
            newest = max(str(v[1] or "") for v in existing.values())
            if newest >= str(rebuilt.indexed_at or ""):
                return None  # the target holds a write made after the swap: keep it
        plan = _DocumentPlan(rebuilt, chunks, sorted(set(existing) - new_ids))
        if self.reuse_vectors:
            old = {h["_id"]: (h.get("_source") or {}).get(VECTOR_FIELD) for h in group}
            plan.vectors = {c.id: v for c in chunks if (v := old.get(c.id)) is not None}
        return plan

    def copy_groups(self, groups: list[list[dict[str, Any]]], *, newer_only: bool = False) -> None:
        """Rebuild, re-chunk, embed and index these documents (each a list of its chunk hits)."""
        self.stats.read += sum(len(g) for g in groups)
        self.counters.add("documents", len(groups))
        doc_ids = [str((g[0].get("_source") or {}).get(DOC_ID_FIELD)) for g in groups]
        existing = self._target_chunks(doc_ids)
        plans = []
        for doc_id, group in zip(doc_ids, groups, strict=True):
            plan = self._plan(group, existing.get(doc_id, {}), newer_only)
            if plan is None:
                self.stats.skipped += len(group)
                self.counters.add("skipped", len(group))
            else:
                plans.append(plan)
        self.counters.add("chunks", sum(len(p.chunks) for p in plans))
        actions = self._embed_and_build(plans)
        if actions:
            self._bulk(actions)
        self.stats.batches += 1
        if self.on_batch is not None:
            self.on_batch(self.stats)

    def _embed_and_build(self, plans: list[_DocumentPlan]) -> list[dict[str, Any]]:
        todo = [(p, c) for p in plans for c in p.chunks if c.id not in p.vectors]
        if todo:
            assert self.embedder is not None
            vectors = self.embedder.embed_documents([c.embed_text for _, c in todo])
            if len(vectors) != len(todo):
                raise EmbeddingError(
                    f"embedder returned {len(vectors)} vectors for {len(todo)} texts"
                )
            self.stats.embedded += len(vectors)
            self.counters.add("embedded", len(vectors))
            for (plan, chunk), vector in zip(todo, vectors, strict=True):
                plan.vectors[chunk.id] = [float(x) for x in vector]
        actions: list[dict[str, Any]] = []
        for plan in plans:
            problem = next(
                (
                    (c, p)
                    for c in plan.chunks
                    if (p := vector_problem(plan.vectors.get(c.id), self.vector_spec))
                ),
                None,
            )
            if problem is not None:  # the document is left out whole, as ingest does
                chunk, reason = problem
                self._fail(Failure("embed", reason, id=chunk.id, doc_id=chunk.doc_id))
                continue
            indexed_at = plan.rebuilt.indexed_at or ""
            for chunk in plan.chunks:
                actions.append(
                    {
                        "_op_type": "index",
                        "_index": self.target,
                        "_id": chunk.id,
                        "_source": chunk_source(
                            chunk,
                            plan.vectors[chunk.id],
                            indexed_at,
                            plan.rebuilt.document.origin,
                        ),
                    }
                )
            actions += [
                {"_op_type": "delete", "_index": self.target, "_id": cid} for cid in plan.stale
            ]
        return actions
