"""Rebuild a document from its indexed chunks, so a migration can cut it again another way.

Every chunk stores where it starts in its document's text (`offset`) and the whitespace before it
that no chunk holds (`gap`), so laying the chunks back at their offsets gives the document's text
exactly (overlaps are laid over themselves; only whitespace after the last chunk is lost, and no
chunker keeps that). Chunks indexed before these fields existed are joined by removing the
longest overlap between neighbours and a paragraph break between them: close, not exact, and said
so in `RebuiltDocument.exact`.

Chunks of a page, slide, sheet or heading carry its metadata on top of the document's: the keys
every chunk shares become the document's metadata again, and where the rest changes a section
starts, so the new chunks never cross a page and each keeps its own page and headings.

The rebuilt document keeps the content hash and `indexed_at` of its chunks (not a hash of the
rebuilt text): the new chunks then look to `essearch ingest` exactly like chunks it wrote itself
from the original source, and the migration's catch-up passes can compare documents by them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from essearch.index.chunking import TITLE_ONLY
from essearch.index.schema import (
    CHUNK_FIELD,
    CONTENT_HASH_FIELD,
    DOC_ID_FIELD,
    GAP_FIELD,
    INDEXED_AT_FIELD,
    METADATA_FIELD,
    OFFSET_FIELD,
    SOURCE_FIELD,
    TEXT_FIELD,
    TITLE_FIELD,
)
from essearch.ingest.chunker import Chunk, Chunker
from essearch.ingest.converters import Section
from essearch.ingest.loaders import Document

LEGACY_SEPARATOR = "\n\n"


class RebuildError(ValueError):
    """The chunks of a document do not fit together (named in the message)."""


@dataclass
class RebuiltDocument:
    document: Document
    content_hash: str
    indexed_at: str | None
    exact: bool  # False: joined by overlap matching (chunks without offsets)


def _current_chunks(sources: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The chunks of the document's newest version, in position order.

    While an ingest replaces a changed document, its old and new chunks can briefly coexist;
    only the chunks sharing the content hash of the newest `indexed_at` belong together.
    """
    newest = max(sources, key=lambda s: str(s.get(INDEXED_AT_FIELD) or ""))
    digest = newest.get(CONTENT_HASH_FIELD)
    current = [s for s in sources if s.get(CONTENT_HASH_FIELD) == digest]
    return sorted(current, key=lambda s: int(s.get(CHUNK_FIELD) or 0))


def _overlap(left: str, right: str) -> int:
    """Length of the longest suffix of `left` that is a prefix of `right`."""
    for size in range(min(len(left), len(right)), 0, -1):
        if left.endswith(right[:size]):
            return size
    return 0


def _lay_out(doc_id: str, chunks: Sequence[Mapping[str, Any]]) -> str:
    text = ""
    for chunk in chunks:
        piece = chunk.get(TEXT_FIELD) or ""
        offset = int(chunk[OFFSET_FIELD])
        if offset >= len(text):
            gap = chunk.get(GAP_FIELD) or ""
            if len(text) + len(gap) != offset:
                raise RebuildError(
                    f"document {doc_id!r}: chunk {chunk.get(CHUNK_FIELD)} starts at {offset} but "
                    f"the text before it ends at {len(text) + len(gap)}"
                )
            text += gap + piece
            continue
        if not piece.startswith(text[offset:]) and not text[offset:].startswith(piece):
            raise RebuildError(
                f"document {doc_id!r}: chunk {chunk.get(CHUNK_FIELD)} at offset {offset} does not "
                "match the text that overlaps it"
            )
        text = text[:offset] + piece if len(piece) >= len(text) - offset else text
    return text


def _join_legacy(chunks: Sequence[Mapping[str, Any]]) -> str:
    text = ""
    for chunk in chunks:
        piece = chunk.get(TEXT_FIELD) or ""
        if not text:
            text = piece
            continue
        shared = _overlap(text, piece)
        text += piece[shared:] if shared else LEGACY_SEPARATOR + piece
    return text


def _metadata_and_sections(
    chunks: Sequence[Mapping[str, Any]],
) -> tuple[dict[str, Any], list[Section]]:
    """The document's own metadata (what every chunk shares) and the sections where the rest of
    a chunk's metadata (page, slide, sheet, headings) changes, each starting at its first chunk."""
    metas = [dict(c.get(METADATA_FIELD) or {}) for c in chunks]
    shared = {k: v for k, v in metas[0].items() if all(k in m and m[k] == v for m in metas[1:])}
    sections: list[Section] = []
    previous: dict[str, Any] | None = None
    for chunk, meta in zip(chunks, metas, strict=True):
        own = {k: v for k, v in meta.items() if k not in shared}
        if own != previous:
            sections.append((max(int(chunk[OFFSET_FIELD]), 0), own))
            previous = own
    if len(sections) == 1 and not sections[0][1]:
        sections = []
    return shared, sections


def rebuild_document(sources: Sequence[Mapping[str, Any]]) -> RebuiltDocument:
    """The document the chunk sources (`_source` of every chunk of one doc_id) were cut from."""
    if not sources:
        raise RebuildError("no chunks to rebuild a document from")
    chunks = _current_chunks(sources)
    first = chunks[0]
    doc_id = str(first.get(DOC_ID_FIELD))
    title = first.get(TITLE_FIELD)
    exact = all(c.get(OFFSET_FIELD) is not None for c in chunks)
    if exact and int(first[OFFSET_FIELD]) == TITLE_ONLY:
        text = ""
    elif exact:
        text = _lay_out(doc_id, chunks)
    else:
        text = _join_legacy(chunks)
    indexed_at = max((str(c.get(INDEXED_AT_FIELD) or "") for c in chunks), default="") or None
    if exact:
        metadata, sections = _metadata_and_sections(chunks)
    else:  # no offsets to place sections at: the first chunk's metadata, as before
        metadata, sections = dict(first.get(METADATA_FIELD) or {}), []
    return RebuiltDocument(
        document=Document(
            id=doc_id,
            text=text,
            title=title,
            metadata=metadata,
            origin=first.get(SOURCE_FIELD),
            sections=sections,
        ),
        content_hash=str(first.get(CONTENT_HASH_FIELD) or ""),
        indexed_at=indexed_at,
        exact=exact,
    )


def rechunk(rebuilt: RebuiltDocument, chunker: Chunker) -> list[Chunk]:
    """The rebuilt document cut with `chunker`, carrying the original content hash."""
    chunks = chunker.chunks(rebuilt.document)
    for chunk in chunks:
        chunk.content_hash = rebuilt.content_hash
    return chunks
