"""Ingest: load → chunk → embed → bulk index, streaming, with failure reports and resume."""

from essearch.ingest.chunker import Chunk, Chunker
from essearch.ingest.failures import DeadLetter, Failure
from essearch.ingest.ids import chunk_id, content_hash, doc_id_from_content
from essearch.ingest.loaders import Document, FieldMap, load
from essearch.ingest.pipeline import IngestOptions, IngestReport, ingest

__all__ = [
    "Chunk",
    "Chunker",
    "DeadLetter",
    "Document",
    "Failure",
    "FieldMap",
    "IngestOptions",
    "IngestReport",
    "chunk_id",
    "content_hash",
    "doc_id_from_content",
    "ingest",
    "load",
]
