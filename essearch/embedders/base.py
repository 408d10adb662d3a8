"""The embedder interface: one small class per backend.

Method names match LangChain's `Embeddings` (`embed_documents`, `embed_query` and their `a`-prefixed
async twins), so an essearch embedder can be handed to code that expects one.
"""

from __future__ import annotations

import asyncio
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

from essearch.errors import EmbeddingError

if TYPE_CHECKING:
    from essearch.settings import EmbedderSettings, Settings

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
        fields: dict[str, Any] = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**fields)

    def differences(self, other: EmbedderInfo) -> dict[str, tuple[Any, Any]]:
        """Fields whose values differ: {name: (self's, other's)}."""
        mine, theirs = self.to_dict(), other.to_dict()
        return {k: (mine[k], theirs[k]) for k in mine if mine[k] != theirs[k]}


class EmptyTextError(EmbeddingError):
    """Some texts are empty or whitespace-only; `positions` lists them (0-based)."""

    def __init__(self, positions: list[int], what: str = "text") -> None:
        self.positions = positions
        shown = ", ".join(str(p) for p in positions[:10]) + (" ..." if len(positions) > 10 else "")
        super().__init__(
            f"{what} at position(s) {shown} is empty or whitespace-only; nothing to embed"
        )


def invalid_text_positions(texts: Sequence[Any]) -> list[int]:
    """Positions of items that are not non-blank strings (so callers can drop them first)."""
    return [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]


class Embedder(ABC):
    """Turns text into vectors. Subclasses implement `_embed` (and optionally `_aembed`).

    The base class does the common work once for every backend: prompts, the empty-text check,
    batching (`_batches`), bounded async concurrency, the dims check and normalisation.
    """

    provider: str = "abstract"
    #: Parallel batches in `aembed_documents` (a semaphore bounds them).
    concurrency: int = 1
    #: True when the backend already returns unit vectors for `normalize=True`.
    normalizes_itself: bool = False

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

    @classmethod
    def from_settings(
        cls,
        settings: EmbedderSettings,
        *,
        client: Any = None,
        full_settings: Settings | None = None,
    ) -> Self:
        """Build the backend from the `ESSEARCH_EMBEDDER_*` settings: how `create_embedder` builds
        every backend, built-in or plugin.

        `client` (an Elasticsearch client) and `full_settings` are for backends that call the
        cluster; the others ignore them. This default passes the common fields; a backend with
        options of its own or a default model overrides it.
        """
        return cls(
            settings.model or "",
            dims=settings.dimensions,
            normalize=settings.normalize,
            query_prompt=settings.query_prompt,
            document_prompt=settings.document_prompt,
            batch_size=settings.batch_size,
        )

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
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Vectors for `texts` (document prompt applied), in order."""
        prompted = self._prepare(texts, self.document_prompt)
        vectors: list[list[float]] = []
        for offset, batch in self._batches(prompted):
            vectors.extend(self._check_vectors(self._embed(batch), len(batch), offset))
        return vectors

    def embed_query(self, text: str) -> list[float]:
        """One vector for a search query (query prompt applied)."""
        prompted = self._prepare([text], self.query_prompt, what="query")
        return self._check_vectors(self._embed(prompted), 1, 0)[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async twin: batches run concurrently, at most `concurrency` at a time."""
        prompted = self._prepare(texts, self.document_prompt)
        semaphore = asyncio.Semaphore(max(1, self.concurrency))

        async def run(offset: int, batch: list[str]) -> list[list[float]]:
            async with semaphore:
                return self._check_vectors(await self._aembed(batch), len(batch), offset)

        results = await asyncio.gather(*(run(o, b) for o, b in self._batches(prompted)))
        return [vector for batch in results for vector in batch]

    async def aembed_query(self, text: str) -> list[float]:
        prompted = self._prepare([text], self.query_prompt, what="query")
        return self._check_vectors(await self._aembed(prompted), 1, 0)[0]

    # -- shared helpers ----------------------------------------------------------------------
    def _prepare(self, texts: Sequence[str], prompt: str | None, what: str = "text") -> list[str]:
        if isinstance(texts, str):
            raise EmbeddingError("embed_documents takes a list of texts, not one string")
        bad = invalid_text_positions(texts)
        if bad:
            raise EmptyTextError(bad, what)
        return [f"{prompt}{t}" for t in texts] if prompt else list(texts)

    def _batches(self, texts: list[str]) -> list[tuple[int, list[str]]]:
        """(offset, batch) pairs; backends with request limits override this."""
        size = max(1, self.batch_size)
        return [(i, texts[i : i + size]) for i in range(0, len(texts), size)]

    def _check_vectors(self, vectors: Any, expected: int, offset: int) -> list[list[float]]:
        """Plain float lists of the declared dims; a wrong length names the item's position."""
        vectors = vectors.tolist() if hasattr(vectors, "tolist") else vectors
        if len(vectors) != expected:
            raise EmbeddingError(
                f"{self.provider} model {self.model!r} returned {len(vectors)} vectors for "
                f"{expected} texts (items {offset}..{offset + expected - 1})"
            )
        checked: list[list[float]] = []
        for i, vector in enumerate(vectors):
            vector = [float(x) for x in vector]
            if self._dims is None:
                self._dims = len(vector)
            if len(vector) != self._dims:
                raise EmbeddingError(
                    f"item {offset + i}: {self.provider} model {self.model!r} returned a vector "
                    f"of {len(vector)} dims, expected {self._dims}"
                )
            if self.normalize and not self.normalizes_itself:
                norm = math.sqrt(sum(x * x for x in vector))
                if norm == 0.0:
                    raise EmbeddingError(
                        f"item {offset + i}: {self.provider} model {self.model!r} returned a "
                        "zero vector, which cannot be normalised"
                    )
                vector = [x / norm for x in vector]
            checked.append(vector)
        return checked

    # -- what backends implement -------------------------------------------------------------
    @abstractmethod
    def _embed(self, texts: list[str]) -> list[list[float]]:
        """Embed already-prompted texts; one backend call per batch."""

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        """Async version of `_embed`; by default the sync call runs in a worker thread."""
        return await asyncio.to_thread(self._embed, texts)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients or models."""

    async def aclose(self) -> None:
        """Release async clients too (default: `close`)."""
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, dims={self._dims})"
