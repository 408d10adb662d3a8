"""The names of the retrieval modes and fusion strategies (no imports: the CLI's choices)."""

from __future__ import annotations

from typing import Literal

Mode = Literal["bm25", "knn", "hybrid"]
Fusion = Literal["auto", "rrf", "linear", "weighted", "client-rrf", "client-linear"]
MODES: tuple[str, ...] = ("bm25", "knn", "hybrid")
FUSIONS: tuple[str, ...] = ("auto", "rrf", "linear", "weighted", "client-rrf", "client-linear")
