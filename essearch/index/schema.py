"""Field names of the essearch chunk schema, shared by ingest, retrieval and the index manager.

One ES document per chunk; its ``_id`` is the chunk id. Everyone imports these constants instead of
spelling the names, so a rename happens in one place.
"""

from __future__ import annotations

ID_FIELD = "id"
DOC_ID_FIELD = "doc_id"
CHUNK_FIELD = "chunk"
TITLE_FIELD = "title"
TEXT_FIELD = "text"
METADATA_FIELD = "metadata"
CONTENT_HASH_FIELD = "content_hash"
INDEXED_AT_FIELD = "indexed_at"
VECTOR_FIELD = "vector"
#: Client-made word tokens of a chunk's CJK text (folded to one script), searched next to `text`
#: by BM25; absent on chunks without CJK text (see essearch.text.cjk).
CJK_FIELD = "text_cjk"
#: The chunk's language told from its scripts (essearch.text.languages): the embedder guard's data.
LANGUAGE_FIELD = "language"
#: Where the chunk starts in its document's text, and the whitespace before it that no chunk
#: holds: with them the document is rebuilt exactly when a migration re-chunks it.
OFFSET_FIELD = "offset"
GAP_FIELD = "gap"
#: The input a chunk was read from (absolute path of the file, or `<stdin>`): what scopes
#: `ingest --sync` to the inputs it is given.
SOURCE_FIELD = "source"
#: Fields the layout gained after indices were created with it. Elasticsearch adds a field to a
#: live mapping in place, so an older index gets them when ingest first writes to it, and a
#: missing one is not a difference that calls for a new version.
ADDED_FIELDS: dict[str, dict[str, str]] = {SOURCE_FIELD: {"type": "keyword"}}

#: Key under the mapping ``_meta`` where the embedder and schema facts are recorded.
META_KEY = "essearch"
#: Version of the essearch index layout (bump when the default definition changes incompatibly).
SCHEMA_VERSION = 1
#: Suffix of the write alias: ``<name>-write``.
WRITE_ALIAS_SUFFIX = "-write"
#: Physical indices are ``<name>-v<N>``.
VERSION_SEPARATOR = "-v"


def write_alias_for(name: str) -> str:
    """Write alias for the read alias ``name``."""
    return f"{name}{WRITE_ALIAS_SUFFIX}"


def physical_index_for(name: str, version: int) -> str:
    """Physical index name for version ``version`` of the index ``name``."""
    return f"{name}{VERSION_SEPARATOR}{version}"


__all__ = [
    "ADDED_FIELDS",
    "CHUNK_FIELD",
    "CJK_FIELD",
    "CONTENT_HASH_FIELD",
    "DOC_ID_FIELD",
    "GAP_FIELD",
    "ID_FIELD",
    "INDEXED_AT_FIELD",
    "LANGUAGE_FIELD",
    "METADATA_FIELD",
    "META_KEY",
    "OFFSET_FIELD",
    "SCHEMA_VERSION",
    "SOURCE_FIELD",
    "TEXT_FIELD",
    "TITLE_FIELD",
    "VECTOR_FIELD",
    "VERSION_SEPARATOR",
    "WRITE_ALIAS_SUFFIX",
    "physical_index_for",
    "write_alias_for",
]
