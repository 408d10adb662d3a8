"""A local sentence-transformers `CrossEncoder` (a model directory or name; needs `[torch]`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from essearch.rerank.base import Candidate, Reranker, RerankError


class CrossEncoderReranker(Reranker):
    """Scores pairs on this machine; the model loads on first use."""

    name = "cross-encoder"

    def __init__(self, model: str, *, device: str | None = None, batch_size: int = 32) -> None:
        super().__init__(model)
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import CrossEncoder
            except ImportError:
                raise RerankError(
                    "the cross-encoder reranker needs sentence-transformers: "
                    'pip install "essearch[torch]"'
                ) from None
            try:
                self._model = CrossEncoder(str(self.model), device=self.device)
            except Exception as exc:  # a bad path or an incomplete model directory
                raise RerankError(f"cannot load cross-encoder {self.model!r}: {exc}") from None
        return self._model

    def _score(self, query: str, candidates: list[Candidate]) -> Sequence[float | None]:
        model = self._load()
        pairs = [(query, c.text) for c in candidates]
        return [float(s) for s in model.predict(pairs, batch_size=self.batch_size)]
