"""Split documents into chunks that fit the embedder's input window.

The splitting itself is `semantic-text-splitter` (a kept library): it cuts at the largest semantic
unit that fits (paragraph, then sentence by Unicode rules, which covers `。！？` as well as `.!?`,
then word, then grapheme), so a chunk never ends inside a word, and it can overlap neighbours. For
the local MiniLM the size is counted in the model's own tokens (its `tokenizer.json`); for other
embedders, whose tokenizers we do not ship, it is counted in characters.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from semantic_text_splitter import TextSplitter

from essearch.index.chunking import TITLE_ONLY, ChunkerConfig, default_config
from essearch.ingest.ids import chunk_id, content_hash
from essearch.ingest.loaders import Document

__all__ = ["Chunk", "Chunker", "embed_text"]


@dataclass
class Chunk:
    """One piece of a document: the unit that is embedded and indexed (one ES document)."""

    id: str
    doc_id: str
    position: int
    text: str
    title: str | None
    metadata: dict[str, Any] = field(default_factory=dict)
    content_hash: str = ""  # of the whole document: title, text, metadata
    offset: int = 0  # character offset in the document text; TITLE_ONLY: no text, title stands in
    gap: str = ""  # the document's characters between the previous chunk's end and this offset

    @property
    def embed_text(self) -> str:
        return embed_text(self.title, self.text)


def embed_text(title: str | None, text: str) -> str:
    """What the embedder reads for a chunk: the title gives a short chunk its context. The one
    home: ingest and re-embedding during a migration must give the same text the same vector."""
    return f"{title}\n{text}" if title else text


@functools.lru_cache(maxsize=8)
def _splitter(config: ChunkerConfig) -> TextSplitter:
    if config.unit == "tokens":
        from tokenizers import Tokenizer

        if not config.tokenizer_path:
            raise ValueError("token-sized chunks need a tokenizer_path")
        tokenizer = Tokenizer.from_file(config.tokenizer_path)
        tokenizer.no_truncation()
        tokenizer.no_padding()
        return TextSplitter.from_huggingface_tokenizer(
            tokenizer, config.size, overlap=config.overlap
        )
    return TextSplitter(config.size, overlap=config.overlap)


class Chunker:
    """Splits text into (offset, chunk) pairs and documents into `Chunk`s."""

    def __init__(self, config: ChunkerConfig | None = None) -> None:
        self.config = config or default_config()
        self._splitter = _splitter(self.config)

    def split(self, text: str) -> list[tuple[int, str]]:
        """Character offset and text of each chunk (whitespace trimmed)."""
        stripped = text.strip()
        if len(stripped) <= self.config.size:
            # A token covers at least one character, so this text fits whatever the unit:
            # skip the splitter (most passages in a typical corpus are this short).
            return [(text.index(stripped[0]), stripped)] if stripped else []
        return [(offset, piece) for offset, piece in self._splitter.chunk_indices(text)]

    def chunks(self, doc: Document) -> list[Chunk]:
        """The document's chunks, positions 0..n-1; a title-only document gives one chunk.

        Each chunk keeps its offset and the whitespace `gap` before it, so the document's text can
        be rebuilt from its chunks (`essearch.ops.rebuild`) and cut again with another config.
        """
        digest = content_hash(doc.title, doc.text, doc.metadata)
        pieces = self.split(doc.text) if doc.text.strip() else [(TITLE_ONLY, doc.title or "")]
        chunks, end = [], 0
        for position, (offset, piece) in enumerate(pieces):
            gap = doc.text[end:offset] if offset > end else ""
            end = max(end, offset + len(piece))
            chunks.append(
                Chunk(
                    id=chunk_id(doc.id, position, piece),
                    doc_id=doc.id,
                    position=position,
                    text=piece,
                    title=doc.title,
                    metadata=doc.metadata,
                    content_hash=digest,
                    offset=offset,
                    gap=gap,
                )
            )
        return chunks
