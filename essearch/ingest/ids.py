"""Stable ids: the same content always gets the same id, so a re-run overwrites instead of adding.

A document id comes from the source (a field, a file path) or, when the source has none, from a hash
of the content. A chunk id is `<doc id>::<position>::<hash of the chunk text>`: readable in the dead
letter file, unique per (document, position, text), and different as soon as the text changes, so
stale chunks of a changed document can be found and removed by id.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

CHUNK_ID_SEPARATOR = "::"
# Elasticsearch caps `_id` at 512 bytes; longer document ids are hashed inside chunk ids.
MAX_DOC_ID_BYTES_IN_CHUNK_ID = 400


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


HASH_SLICE = 1 << 20  # characters of text encoded at a time


def content_hash(title: str | None, text: str, metadata: dict[str, Any] | None = None) -> str:
    """Hash of everything that ends up in a chunk document (title, text, metadata).

    The sha256 of `json.dumps({"title", "text", "metadata"}, sort_keys=True,
    ensure_ascii=False)`, fed a slice of the text at a time, so a 50 MB document is not copied
    twice more (JSON string, then UTF-8 bytes) just to be hashed. JSON escapes each character
    on its own, so the slices give exactly the digest of the whole payload.
    """

    def dumps(value: Any) -> str:
        return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)

    digest = hashlib.sha256()
    digest.update(f'{{"metadata": {dumps(metadata or {})}, "text": "'.encode())
    for start in range(0, len(text), HASH_SLICE):
        digest.update(dumps(text[start : start + HASH_SLICE])[1:-1].encode("utf-8"))
    digest.update(f'", "title": {dumps(title or "")}}}'.encode())
    return digest.hexdigest()


def doc_id_from_content(title: str | None, text: str) -> str:
    """An id for a document whose source has none: the same text gets the same id on a re-run."""
    return "sha256:" + _sha256(f"{title or ''}\n{text}")[:32]


def chunk_id(doc_id: str, position: int, chunk_text: str) -> str:
    """`<doc id>::<position>::<16 hex of sha256(chunk text)>`."""
    prefix = doc_id
    if len(doc_id.encode("utf-8")) > MAX_DOC_ID_BYTES_IN_CHUNK_ID:
        prefix = "sha256:" + _sha256(doc_id)[:32]
    return CHUNK_ID_SEPARATOR.join((prefix, str(position), _sha256(chunk_text)[:16]))


def doc_id_of_chunk_id(chunk: str) -> str:
    """The document part of a chunk id (hashed when the document id was very long)."""
    return chunk.rsplit(CHUNK_ID_SEPARATOR, 2)[0]
