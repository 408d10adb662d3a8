"""The reranker interface: scores for (query, candidate) pairs, in the candidates' order."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from essearch.errors import EssearchError


class RerankError(EssearchError):
    """The reranker failed or answered something unusable (the search degrades, never fails)."""


@dataclass(frozen=True)
class Candidate:
    """One hit offered to the reranker: its chunk id and the text it reads."""

    id: str
    text: str


class Reranker(ABC):
    """Turns a query and candidates into one relevance score per candidate (higher is better)."""

    name: str = "abstract"

    def __init__(self, model: str | None = None) -> None:
        self.model = model

    def rerank(self, query: str, candidates: Sequence[Candidate]) -> list[float]:
        """Scores in the order of `candidates`; an empty list needs no call."""
        if not candidates:
            return []
        scores = self._score(query, list(candidates))
        return self._checked(scores, len(candidates))

    async def arerank(self, query: str, candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        scores = await self._ascore(query, list(candidates))
        return self._checked(scores, len(candidates))

    def _checked(self, scores: Sequence[float | None], expected: int) -> list[float]:
        if len(scores) != expected or any(s is None for s in scores):
            raise RerankError(
                f"{self.name} reranker returned {sum(s is not None for s in scores)} scores "
                f"for {expected} candidates"
            )
        return [float(s) for s in scores if s is not None]

    @abstractmethod
    def _score(self, query: str, candidates: list[Candidate]) -> Sequence[float | None]:
        """One backend call (or a few) for these candidates."""

    async def _ascore(self, query: str, candidates: list[Candidate]) -> Sequence[float | None]:
        """Async twin; by default the sync call in a worker thread (never blocks the loop)."""
        return await asyncio.to_thread(self._score, query, candidates)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release clients or models."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"
