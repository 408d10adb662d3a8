"""What one search asks for, validated once (shared by the sync and async clients and the CLI)."""

from __future__ import annotations

import math
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from essearch.errors import SearchError
from essearch.index import schema
from essearch.retrieval import queries as q
from essearch.retrieval.filters import FilterLike, compile_filter
from essearch.retrieval.names import FUSIONS as FUSIONS
from essearch.retrieval.names import MODES as MODES
from essearch.retrieval.names import Fusion, Mode
from essearch.text import cjk


class ModeOptions(TypedDict, total=False):
    """The keyword options of `bm25()` / `knn()` / `hybrid()`: `SearchParams` fields but the mode
    (written out so an IDE lists them; a test keeps them equal to the model's fields)."""

    fusion: Fusion
    query_vector: tuple[float, ...] | list[float]
    k: int
    from_: int
    fields: tuple[str, ...] | list[str]
    operator: Literal["or", "and"]
    minimum_should_match: str | int | None
    multi_match_type: str
    tie_breaker: float | None
    lucene_syntax: bool
    num_candidates: int | None
    similarity: float | None
    oversample: float | None
    knn_weight: float
    rank_constant: int
    rank_window_size: int | None
    rrf_weights: tuple[float, float] | None
    rerank: bool
    rerank_top_n: int | None
    highlight: bool
    collapse: bool
    explain: bool


class SearchOptions(ModeOptions, total=False):
    """The keyword options of `search()`."""

    mode: Mode


class SearchParams(BaseModel):
    """One search. `filter` is stored compiled (an ES clause); build with `SearchParams.make`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str | None = None
    # A query vector computed elsewhere (precomputed-vector indices): used instead of embedding
    # `query`, checked against the index's dims.
    query_vector: tuple[float, ...] | None = None
    mode: Mode = "hybrid"
    fusion: Fusion = "auto"
    k: int = Field(10, ge=1, le=q.MAX_RESULT_WINDOW)
    from_: int = Field(0, ge=0)
    filter: dict[str, Any] | None = None
    # BM25
    fields: tuple[str, ...] = q.DEFAULT_BM25_FIELDS
    operator: Literal["or", "and"] = "or"
    minimum_should_match: str | int | None = None
    multi_match_type: str = q.DEFAULT_MULTI_MATCH_TYPE
    tie_breaker: float | None = q.DEFAULT_TIE_BREAKER
    lucene_syntax: bool = False
    # kNN
    num_candidates: int | None = Field(None, ge=1, le=q.MAX_NUM_CANDIDATES)
    similarity: float | None = None
    oversample: float | None = Field(None, ge=1.0)
    # fusion
    knn_weight: float = Field(q.DEFAULT_KNN_WEIGHT, ge=0.0, le=1.0)
    rank_constant: int = Field(q.RRF_RANK_CONSTANT, ge=1)
    rank_window_size: int | None = Field(None, ge=1, le=q.MAX_RESULT_WINDOW)
    rrf_weights: tuple[float, float] | None = None
    # results
    highlight: bool = True
    collapse: bool = False
    explain: bool = False
    # rerank: the top `rerank_top_n` candidates (default: the `rerank.top_n` setting) are
    # re-scored by the client's reranker, then the page is cut from them
    rerank: bool = False
    rerank_top_n: int | None = Field(None, ge=1, le=1000)

    @field_validator("operator", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check(self) -> SearchParams:
        text = (self.query or "").strip()
        if self.mode == "knn" and not text and self.query_vector is None:
            raise ValueError("mode 'knn' needs query text to embed, or a query_vector")
        if self.mode == "hybrid" and not text:
            raise ValueError("mode 'hybrid' needs query text (for BM25, and to embed)")
        if self.query_vector is not None and not all(math.isfinite(x) for x in self.query_vector):
            raise ValueError("query_vector holds a value that is not a finite number")
        if self.mode != "bm25" and self.from_ + self.k > q.MAX_NUM_CANDIDATES:
            raise ValueError(
                f"kNN results cannot go past {q.MAX_NUM_CANDIDATES:,} "
                f"(from+k={self.from_ + self.k}); num_candidates is capped there. "
                "Narrow the query with a filter, or list BM25/filtered results with scan()"
            )
        if self.mode == "bm25" and self.from_ + self.k > q.MAX_RESULT_WINDOW:
            raise ValueError(
                f"from+k={self.from_ + self.k} is beyond the {q.MAX_RESULT_WINDOW:,}-hit window; "
                "use scan() (search_after + point in time) for deep listing"
            )
        return self

    @classmethod
    def make(
        cls, query: str | None = None, *, filter: FilterLike = None, **kwargs: Any
    ) -> SearchParams:
        """Validate; every problem becomes one SearchError naming the parameter and value."""
        if "from" in kwargs:
            kwargs["from_"] = kwargs.pop("from")
        try:
            return cls(query=query, filter=compile_filter(filter), **kwargs)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or 'search'}"
                f"{'=' + repr(err['input']) if err['loc'] else ''}: {err['msg']}"
                for err in exc.errors()
            )
            raise SearchError(f"invalid search: {problems}") from None

    @property
    def size(self) -> int:
        return self.k

    @property
    def window(self) -> int:
        """Hits fetched per leg for fusion: at least from+k."""
        return max(self.rank_window_size or q.DEFAULT_RANK_WINDOW_SIZE, self.from_ + self.k)

    def text_clause(self, boost: float | None = None) -> dict[str, Any] | None:
        if not (self.query or "").strip():
            return None
        return q.bm25_query(
            self.query or "",
            fields=self.fields,
            operator=self.operator,
            minimum_should_match=self.minimum_should_match,
            multi_match_type=self.multi_match_type,
            tie_breaker=self.tie_breaker,
            lucene_syntax=self.lucene_syntax,
            boost=boost,
            cjk_words=self.cjk_words(),
        )

    def cjk_words(self) -> str | None:
        """The query's CJK word tokens when it searches the text field (default fields)."""
        if self.lucene_syntax or not any(
            f.split("^", 1)[0] == schema.TEXT_FIELD for f in self.fields
        ):
            return None
        return cjk.words(self.query, for_query=True)

    def highlight_spec(self) -> dict[str, Any] | None:
        if not self.highlight or not (self.query or "").strip():
            return None
        return q.highlight_spec(self.fields)
