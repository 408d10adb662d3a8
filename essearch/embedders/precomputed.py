"""The embedding space of vectors computed elsewhere (`ingest --vector-field --model --dims`).

Vectors made by another system (an OpenAI batch job saved to CSV or Parquet) are indexed as they
are; this embedder only declares which model made them, so the index records that model and the
model guard refuses an index built for another. It cannot embed text: a search on such an index
passes `query_vector=`, or configures the real model for queries.
"""

from __future__ import annotations

from essearch.embedders.base import Embedder
from essearch.errors import EmbeddingError


class PrecomputedEmbedder(Embedder):
    """Stands for `model` (`dims` dimensions) without being able to run it."""

    provider = "precomputed"

    def __init__(self, model: str, dims: int, *, normalize: bool = False) -> None:
        if dims < 1:
            raise EmbeddingError(f"--dims must be a positive number of dimensions, got {dims}")
        super().__init__(model, dims=dims, normalize=normalize)

    def _embed(self, texts: list[str]) -> list[list[float]]:
        raise EmbeddingError(
            f"vectors of {self.model!r} are precomputed: every record needs its vector (or give "
            "the search a query_vector=); this embedder cannot embed text"
        )
