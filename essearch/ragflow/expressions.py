"""RAGFlow's match-expression classes, for callers without RAGFlow installed.

RAGFlow passes its own classes (`common.doc_store.doc_store_base`); the store never checks their
type but reads them by shape (`expression_kind`), so RAGFlow's instances and these work alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ExpressionKind = Literal["text", "dense", "sparse", "tensor", "fusion", "unknown"]


@dataclass
class SparseVector:
    indices: list[int]
    values: list[float] | None = None

    def to_dict(self) -> dict[str, float]:
        values = self.values or [1.0] * len(self.indices)
        return {str(i): v for i, v in zip(self.indices, values, strict=True)}


class MatchTextExpr:
    """Full-text leg: Lucene `query_string` over `fields` (which may carry `^boost`)."""

    def __init__(
        self,
        fields: list[str],
        matching_text: str,
        topn: int,
        extra_options: dict[str, Any] | None = None,
    ) -> None:
        self.fields = fields
        self.matching_text = matching_text
        self.topn = topn
        self.extra_options = extra_options if extra_options is not None else {}


class MatchDenseExpr:
    """Vector leg: `vector_column_name` is `q_<dim>_vec`; `extra_options["similarity"]` is the
    minimum raw cosine a hit must reach."""

    def __init__(
        self,
        vector_column_name: str,
        embedding_data: Any,
        embedding_data_type: str = "float",
        distance_type: str = "cosine",
        topn: int = 10,
        extra_options: dict[str, Any] | None = None,
    ) -> None:
        self.vector_column_name = vector_column_name
        self.embedding_data = embedding_data
        self.embedding_data_type = embedding_data_type
        self.distance_type = distance_type
        self.topn = topn
        self.extra_options = extra_options if extra_options is not None else {}


class MatchSparseExpr:
    """Accepted for signature parity; Elasticsearch ignores it, as RAGFlow's connector does."""

    def __init__(
        self,
        vector_column_name: str,
        sparse_data: SparseVector | dict,
        distance_type: str,
        topn: int,
        opt_params: dict | None = None,
    ) -> None:
        self.vector_column_name = vector_column_name
        self.sparse_data = sparse_data
        self.distance_type = distance_type
        self.topn = topn
        self.opt_params = opt_params


class MatchTensorExpr:
    """Accepted for signature parity; ignored."""

    def __init__(
        self,
        column_name: str,
        query_data: Any,
        query_data_type: str,
        topn: int,
        extra_option: dict | None = None,
    ) -> None:
        self.column_name = column_name
        self.query_data = query_data
        self.query_data_type = query_data_type
        self.topn = topn
        self.extra_option = extra_option


class FusionExpr:
    """`weighted_sum` with `fusion_params={"weights": "<text>,<vector>"}`."""

    def __init__(self, method: str, topn: int, fusion_params: dict | None = None) -> None:
        self.method = method
        self.topn = topn
        self.fusion_params = fusion_params


class OrderByExpr:
    """Sort keys as `(field, 0)` for ascending and `(field, 1)` for descending."""

    def __init__(self) -> None:
        self.fields: list[tuple[str, int]] = []

    def asc(self, field: str) -> OrderByExpr:
        self.fields.append((field, 0))
        return self

    def desc(self, field: str) -> OrderByExpr:
        self.fields.append((field, 1))
        return self


MatchExpr = MatchTextExpr | MatchDenseExpr | MatchSparseExpr | MatchTensorExpr | FusionExpr


def expression_kind(expr: Any) -> ExpressionKind:
    """What an expression is, judged by its attributes (RAGFlow's classes or ours)."""
    if hasattr(expr, "matching_text"):
        return "text"
    if hasattr(expr, "embedding_data"):
        return "dense"
    if hasattr(expr, "sparse_data"):
        return "sparse"
    if hasattr(expr, "query_data"):
        return "tensor"
    if hasattr(expr, "fusion_params") or (hasattr(expr, "method") and hasattr(expr, "topn")):
        return "fusion"
    return "unknown"


def order_fields(order_by: Any) -> list[tuple[str, int]]:
    """The `(field, 0|1)` pairs of an `OrderByExpr` (or of a plain list of pairs)."""
    if order_by is None:
        return []
    fields = getattr(order_by, "fields", order_by)
    return [(str(f), int(o)) for f, o in (fields or [])]
