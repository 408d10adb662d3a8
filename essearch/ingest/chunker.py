"""Split documents into chunks that fit the embedder's input window.

The splitting itself is `semantic-text-splitter` (a kept library): it cuts at the largest semantic
unit that fits (paragraph, then sentence by Unicode rules, which covers `。！？` as well as `.!?`,
then word, then grapheme), so a chunk never ends inside a word, and it can overlap neighbours. For
the local MiniLM the size is counted in the model's own tokens (its `tokenizer.json`); for other
embedders, whose tokenizers we do not ship, it is counted in characters.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from semantic_text_splitter import TextSplitter

from essearch.index.chunking import TITLE_ONLY, ChunkerConfig, default_config
from essearch.ingest.ids import chunk_id, content_hash
from essearch.ingest.loaders import Document, Vector

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
    vector: Vector | None = None  # precomputed: indexed as is, not embedded

    @property
    def embed_text(self) -> str:
        return embed_text(self.title, self.text)


def embed_text(title: str | None, text: str) -> str:
    """What the embedder reads for a chunk: the title gives a short chunk its context. The one
    home: ingest and re-embedding during a migration must give the same text the same vector."""
    return f"{title}\n{text}" if title else text


_NON_SPACE = re.compile(r"\S")


def content_span(text: str) -> tuple[int, int]:
    """Where the text without its leading and trailing whitespace starts and ends, found
    without copying it (`strip()` would copy a 50 MB document); (0, 0) for a blank text."""
    first = _NON_SPACE.search(text)
    if first is None:
        return 0, 0
    end = len(text)
    while text[end - 1].isspace():
        end -= 1
    return first.start(), end


# Texts longer than this are split block by block (cut at a blank line near this size).
BLOCK_CHARS = 200_000


def text_blocks(text: str, size: int) -> Iterator[tuple[int, str]]:
    """(offset, block) pieces of `text` of about `size` characters, cut at a paragraph break
    (blank line) when one is in the second half of the block, else at a line break, else hard."""
    start = 0
    while len(text) - start > size:
        end = start + size
        cut = text.rfind("\n\n", start + size // 2, end)
        if cut < 0:
            cut = text.rfind("\n", start + size // 2, end)
        cut = end if cut < 0 else cut + 1
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]


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
        return list(self.iter_split(text))

    def iter_split(self, text: str) -> Iterator[tuple[int, str]]:
        """`split`, made block by block: a text longer than `BLOCK_CHARS` is first cut at blank
        lines into blocks of about that size, each split on its own, so the first chunks of a
        50 MB document are ready (and embedded) while the rest is still being cut, and the
        splitter never holds the whole text's chunks at once. Shorter texts (nearly every
        document) are split exactly as before."""
        start, end = content_span(text)
        if end - start <= self.config.size:
            # A token covers at least one character, so this text fits whatever the unit:
            # skip the splitter (most passages in a typical corpus are this short).
            if end > start:
                yield (start, text[start:end])
            return
        for start, block in text_blocks(text, BLOCK_CHARS):
            for offset, piece in self._splitter.chunk_indices(block):
                yield (start + offset, piece)

    def iter_sections(self, doc: Document) -> Iterator[tuple[int, str]]:
        """`iter_split` of each section of the document on its own (the whole text when it has
        no sections), so a chunk's page or heading path is exact."""
        bounds = [offset for offset, _ in doc.sections if 0 < offset < len(doc.text)]
        starts = [0, *bounds]
        ends = [*bounds, len(doc.text)]
        for start, end in zip(starts, ends, strict=True):
            for offset, piece in self.iter_split(doc.text[start:end]):
                yield start + offset, piece

    def chunks(self, doc: Document) -> list[Chunk]:
        """The document's chunks, positions 0..n-1 (see `iter_chunks`)."""
        return list(self.iter_document(doc))

    def iter_document(self, doc: Document, digest: str | None = None) -> Iterator[Chunk]:
        """The document's chunks, positions 0..n-1, made one at a time; a title-only document
        gives one chunk, and so does a document with a precomputed vector (the vector stands for
        the whole text).

        Each chunk keeps its offset and the whitespace `gap` before it, so the document's text can
        be rebuilt from its chunks (`essearch.ops.rebuild`) and cut again with another config.
        A chunk never crosses a section boundary (page, slide, sheet, heading) and carries the
        document's metadata plus that of its section. `digest`: the document's content hash,
        when the caller has it already.
        """
        digest = digest or content_hash(doc.title, doc.text, doc.metadata)
        start, end = content_span(doc.text)
        if doc.vector is not None and end > start:
            pieces: Iterator[tuple[int, str]] | list[tuple[int, str]] = [
                (start, doc.text[start:end])
            ]
        elif end > start:
            pieces = self.iter_sections(doc)
        else:
            pieces = [(TITLE_ONLY, doc.title or "")]
        starts = [offset for offset, _ in doc.sections]
        end = 0
        for position, (offset, piece) in enumerate(pieces):
            gap = doc.text[end:offset] if offset > end else ""
            end = max(end, offset + len(piece))
            metadata = doc.metadata
            if starts:
                where = bisect.bisect_right(starts, max(offset, 0)) - 1
                if where >= 0:
                    metadata = {**doc.metadata, **doc.sections[where][1]}
            yield Chunk(
                id=chunk_id(doc.id, position, piece),
                doc_id=doc.id,
                position=position,
                text=piece,
                title=doc.title,
                metadata=metadata,
                content_hash=digest,
                offset=offset,
                gap=gap,
                vector=doc.vector,
            )
