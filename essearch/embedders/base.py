"""The embedder interface: one small class per backend.

Method names match LangChain's `Embeddings` (`embed_documents`, `embed_query` and their `a`-prefixed
async twins), so an essearch embedder can be handed to code that expects one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import Any, Literal

Similarity = Literal["cosine", "dot_product", "l2_norm", "max_inner_product"]


@dataclass(frozen=True)
class EmbedderInfo:
    """What identifies an embedding space; recorded in the index's `_meta` and compared on use."""

    provider: str
    model: str
    dims: int
    similarity: Similarity = "cosine"
    normalize: bool = False
    query_prompt: str | None = None
    document_prompt: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EmbedderInfo:
        fields = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)

    def differences(self, other: EmbedderInfo) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ: {name: (self's, other's)}."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


class Embedder(ABC):
    """Turns text into vectors. Subclasses implement `_embed` (and optionally `_aembed`)."""

    provider: str = "abstract"

    def __init__(
        self,
        model: str,
        *,
        dims: int | None = None,
        normalize: bool = False,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.model = model
        self._dims = dims
        self.normalize = normalize
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.batch_size = batch_size

    # -- identity ----------------------------------------------------------------------------
    @property
    def dims(self) -> int:
        """Output dimensions; found by one probe call when not declared, then cached."""
        if self._dims is None:
            self._dims = len(self._embed(["dimension probe"])[0])
        return self._dims

    @property
    def similarity(self) -> Similarity:
        """`dot_product` for unit-length vectors (cheaper, same ranking), else `cosine`."""
        return "dot_product" if self.normalize else "cosine"

    @property
    def info(self) -> EmbedderInfo:
        return EmbedderInfo(
            provider=self.provider,
            model=self.model,
            dims=self.dims,
            similarity=self.similarity,
            normalize=self.normalize,
            query_prompt=self.query_prompt,
            document_prompt=self.document_prompt,
        )

    # -- the LangChain-compatible surface ----------------------------------------------------
    @abstractmethod
    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...

    @abstractmethod
    def embed_query(self, text: str) -> list[float]: ...

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        raise NotImplementedError

    async def aembed_query(self, text: str) -> list[float]:
        raise NotImplementedError

    # -- what backends implement -------------------------------------------------------------
    @abstractmethod
    def _embed(self, texts: list[str]) -> list[list[float]]:
        """Embed already-prompted texts; one backend call per batch."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients or models."""
