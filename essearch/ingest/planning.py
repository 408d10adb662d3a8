"""What one ingest run decides, without I/O: the chunk documents, what to send, delete and relabel.

The threaded runner (`essearch.ingest.pipeline`) reads, embeds and writes; everything it decides
about a document is made here from values, so it is unit-tested without a cluster: a chunk's ES
document (`chunk_source`), the comparison with what the index holds (`plan_document`, and
`Planner` for a document that arrives in pieces), the bulk actions of a batch (`bulk_actions`),
the checks of precomputed vectors (`vector_problems`) and of metadata against the mapping
(`type_clash`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from essearch.index.definitions import VectorSpec, vector_problem
from essearch.index.schema import (
    CHUNK_FIELD,
    CONTENT_HASH_FIELD,
    DOC_ID_FIELD,
    GAP_FIELD,
    ID_FIELD,
    INDEXED_AT_FIELD,
    METADATA_FIELD,
    OFFSET_FIELD,
    SOURCE_FIELD,
    TEXT_FIELD,
    TITLE_FIELD,
    VECTOR_FIELD,
)
from essearch.ingest.chunker import Chunk
from essearch.ingest.loaders import Document, Vector
from essearch.text.fields import language_fields

#: Chunks fetched per page when looking up what the index already holds.
LOOKUP_PAGE = 10_000


def chunk_source(
    chunk: Chunk, vector: Vector, indexed_at: str, origin: str | None = None
) -> dict[str, Any]:
    """The ES document of one chunk, in the shared schema (`origin`: the input it was read from)."""
    source = {
        ID_FIELD: chunk.id,
        DOC_ID_FIELD: chunk.doc_id,
        CHUNK_FIELD: chunk.position,
        OFFSET_FIELD: chunk.offset,
        GAP_FIELD: chunk.gap,
        TITLE_FIELD: chunk.title,
        TEXT_FIELD: chunk.text,
        METADATA_FIELD: chunk.metadata,
        CONTENT_HASH_FIELD: chunk.content_hash,
        INDEXED_AT_FIELD: indexed_at,
        VECTOR_FIELD: vector,
        **language_fields(chunk.title, chunk.text),
    }
    if origin is not None:
        source[SOURCE_FIELD] = origin
    return source


def existing_chunks_query(doc_ids: list[str], search_after: list[Any] | None = None) -> dict:
    """Search body: the chunks already indexed for these documents (id, doc id, hash)."""
    body: dict[str, Any] = {
        "query": {"terms": {DOC_ID_FIELD: doc_ids}},
        "_source": [DOC_ID_FIELD, CONTENT_HASH_FIELD, SOURCE_FIELD],
        "size": LOOKUP_PAGE,
        "sort": [{ID_FIELD: "asc"}],
        "track_total_hits": False,
    }
    if search_after is not None:
        body["search_after"] = search_after
    return body


def vector_problems(vectors: list[Any], spec: VectorSpec) -> list[str | None]:
    """`vector_problem` for a whole batch: one numpy pass for the common all-good case, the
    per-vector check (with its precise message) only for rows that look wrong."""
    try:
        matrix = np.asarray(vectors, dtype=np.float64)
    except (ValueError, TypeError):
        return [vector_problem(v, spec) for v in vectors]
    if matrix.ndim != 2 or matrix.shape[1] != spec.dims or spec.element_type != "float":
        return [vector_problem(v, spec) for v in vectors]
    finite = np.isfinite(matrix).all(axis=1)
    squared = np.einsum("ij,ij->i", np.where(np.isfinite(matrix), matrix, 0.0), matrix)
    suspicious = ~finite | (squared == 0.0)
    if spec.similarity == "dot_product":
        suspicious |= np.abs(squared - 1.0) > 1e-3
    return [vector_problem(vectors[i], spec) if bad else None for i, bad in enumerate(suspicious)]


#: What a successful bulk item adds to (an update only relabels a chunk's input).
BULK_COUNTER = {"index": "indexed", "delete": "deleted", "update": "relabelled"}


class Indexed(NamedTuple):
    """A chunk already in the index, as the ingest lookup sees it."""

    content_hash: str
    physical: str  # the physical index holding it
    source: str | None = None  # the input it was read from


@dataclass
class Plan:
    """What to do for one document: chunks to embed and index, stale chunk ids to delete, and
    unchanged chunks whose recorded input is not the one they were read from now."""

    doc: Document
    chunks: list[Chunk]
    to_send: list[Chunk]
    stale: list[tuple[str, str]]  # (physical index, chunk id)
    relabel: list[tuple[str, str]] = field(default_factory=list)  # (physical index, chunk id)


def plan_document(
    doc: Document,
    chunks: list[Chunk],
    existing: Mapping[str, Indexed | tuple[str, str]],
    *,
    skip_unchanged: bool = True,
) -> Plan:
    """Compare fresh chunks with those indexed (chunk id -> `Indexed`): changed ones are sent,
    vanished ones are stale, and unchanged ones that record another input are relabelled (a
    moved folder, or an index from before chunks recorded one) without being embedded again."""
    indexed = {cid: Indexed(*found) for cid, found in existing.items()}
    new_ids = {c.id for c in chunks}
    plan = Plan(doc, chunks, to_send=[], stale=[])
    for chunk in chunks:
        found = indexed.get(chunk.id)
        if skip_unchanged and found is not None and found.content_hash == chunk.content_hash:
            if doc.origin is not None and found.source != doc.origin:
                plan.relabel.append((found.physical, chunk.id))
        else:
            plan.to_send.append(chunk)
    plan.stale = sorted((c.physical, cid) for cid, c in indexed.items() if cid not in new_ids)
    return plan


@dataclass
class Piece:
    """Some chunks of one document: a large document is embedded and indexed piece by piece."""

    doc: Document
    chunks: list[Chunk]
    first: bool = True
    last: bool = True


class Planner:
    """`plan_document` for documents that may come in pieces (a large one is cut, embedded and
    indexed piece by piece): what was indexed is looked up at a document's first piece and kept,
    and its stale chunks are known only at its last piece, once every chunk id it has now was
    produced."""

    def __init__(self, *, skip_unchanged: bool = True) -> None:
        self.skip_unchanged = skip_unchanged
        self._open_existing: dict[str, Mapping[str, Indexed]] = {}
        self._open_produced: dict[str, set[str]] = {}

    def existing_for(self, piece: Piece, found: Mapping[str, Indexed]) -> Mapping[str, Indexed]:
        """The indexed chunks of the piece's document: `found` (looked up now) at its first
        piece, the ones kept from then at the later pieces."""
        doc_id = piece.doc.id
        if not piece.first:
            return self._open_existing.get(doc_id, {})
        if not piece.last:
            self._open_existing[doc_id] = found
        return found

    def plan(self, piece: Piece, existing: Mapping[str, Indexed]) -> Plan:
        plan = plan_document(piece.doc, piece.chunks, existing, skip_unchanged=self.skip_unchanged)
        if piece.first and piece.last:
            return plan
        produced = self._open_produced.setdefault(piece.doc.id, set())
        produced.update(c.id for c in piece.chunks)
        if not piece.last:
            plan.stale = []
            return plan
        plan.stale = [(index, cid) for index, cid in plan.stale if cid not in produced]
        self._open_existing.pop(piece.doc.id, None)
        self._open_produced.pop(piece.doc.id, None)
        return plan


def bulk_actions(
    plans: list[Plan],
    vectors: Mapping[str, Sequence[Vector]],
    write_alias: str,
    indexed_at: str,
    *,
    record_source: bool = True,
) -> list[dict[str, Any]]:
    """The bulk actions of a batch: index the chunks to send (with their vectors), delete the
    stale ones, relabel the moved ones. A document without vectors (its embedding failed, and
    was reported) is left out whole; its stale chunks stay until a later run. Without
    `record_source` (the index cannot hold it) no chunk records its input."""
    actions: list[dict[str, Any]] = []
    for plan in plans:
        doc_vectors = vectors.get(plan.doc.id)
        if doc_vectors is None:
            continue
        origin = plan.doc.origin if record_source else None
        for chunk, vector in zip(plan.to_send, doc_vectors, strict=True):
            actions.append(
                {
                    "_op_type": "index",
                    "_index": write_alias,
                    "_id": chunk.id,
                    "_source": chunk_source(chunk, vector, indexed_at, origin),
                }
            )
        for index, cid in plan.stale:
            actions.append({"_op_type": "delete", "_index": index, "_id": cid})
        for index, cid in plan.relabel if record_source else []:
            actions.append(
                {
                    "_op_type": "update",
                    "_index": index,
                    "_id": cid,
                    "doc": {SOURCE_FIELD: plan.doc.origin},
                }
            )
    return actions


NUMERIC_TYPES = frozenset(
    {"long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float"}
)
SCALAR_TYPES = NUMERIC_TYPES | {"keyword", "text", "date", "boolean", "ip", "wildcard"}


def metadata_types_of(mapping: Mapping[str, Any]) -> dict[str, str]:
    """`metadata.<key>` -> ES type for the keys the index mapping already types."""
    properties = mapping.get("properties", {}).get(METADATA_FIELD, {}).get("properties", {})
    return {key: str(spec.get("type", "object")) for key, spec in properties.items()}


def type_clash(es_type: str, value: Any) -> str | None:
    """Why Elasticsearch would refuse `value` for a field of `es_type`, or None."""
    values = value if isinstance(value, list) else [value]
    for item in values:
        if es_type in SCALAR_TYPES and isinstance(item, Mapping):
            return f"an object where the index maps {es_type}"
        if es_type == "object" and item is not None and not isinstance(item, Mapping):
            return f"{type(item).__name__} {item!r} where the index maps an object"
        if es_type in NUMERIC_TYPES:
            if isinstance(item, bool):
                return f"boolean {item!r} where the index maps {es_type}"
            if isinstance(item, str):
                try:
                    float(item)
                except ValueError:
                    return f"{item!r} where the index maps {es_type}"
        if es_type == "boolean" and not isinstance(item, bool) and item not in ("true", "false"):
            return f"{item!r} where the index maps boolean"
    return None
