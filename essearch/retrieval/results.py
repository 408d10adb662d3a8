"""Typed results: hits with per-leg scores and ranks, highlights, and the explain record."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, Field

from essearch.index import schema


class LegScore(BaseModel):
    """A hit's raw score and 1-based rank in one leg (BM25 or kNN) of a hybrid search."""

    score: float | None = None
    rank: int | None = None


class HitFields(BaseModel):
    """What every view of a hit has: where it ranks, why (per-leg scores), and its text."""

    id: str
    index: str | None = None
    score: float | None = None
    rank: int
    doc_id: str | None = None
    title: str | None = None
    text: str | None = None
    legs: dict[str, LegScore] = Field(default_factory=dict)
    #: The reranker's score when a rerank stage reordered the hits (None otherwise).
    rerank_score: float | None = None
    highlights: dict[str, list[str]] = Field(default_factory=dict)


class Hit(HitFields):
    """A hit with the chunk's whole stored source (less its vector)."""

    source: dict[str, Any] = Field(default_factory=dict)

    def public_json(self) -> dict[str, Any]:
        """The view a service returns, in `PublicHit`'s shape: the chunk's metadata in place of
        its stored source (built as a dict: one dump per hit on the service's hot path)."""
        return {**self.model_dump(exclude={"source"}), "metadata": self.metadata}

    @property
    def bm25(self) -> LegScore | None:
        return self.legs.get("bm25")

    @property
    def knn(self) -> LegScore | None:
        return self.legs.get("knn")

    @property
    def metadata(self) -> dict[str, Any]:
        return self.source.get(schema.METADATA_FIELD) or {}

    def snippet(self, length: int = 160) -> str:
        """The first highlight fragment (its `<em>` marks kept), else the start of the text;
        as plain text: Markdown syntax (headings, emphasis, links, code fences) is removed."""
        for field in (schema.TEXT_FIELD, schema.TITLE_FIELD):
            if self.highlights.get(field):
                return plain_text(self.highlights[field][0])
        text = plain_text(self.text or "")
        return text if len(text) <= length else text[: length - 1] + "…"


class PublicHit(HitFields):
    """A hit as `essearch serve` returns it (`Hit.public_json` builds its JSON)."""

    metadata: dict[str, Any] = Field(default_factory=dict)


_HIGHLIGHT_TAG = re.compile(r"</?em>")


@lru_cache(maxsize=1)
def _markdown_parser() -> Any:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").enable("strikethrough")


def plain_text(markdown: str) -> str:
    """The readable text of a Markdown fragment on one line; highlight `<em>` tags survive.

    Parsed with markdown-it (a fragment may start mid-sentence or mid-list, which a parser
    handles better than patterns), then the text of every inline and code token is joined.
    """
    if not markdown:
        return ""
    parts: list[str] = []
    for token in _markdown_parser().parse(markdown):
        if token.type in ("code_block", "fence"):
            parts.append(token.content)
        for child in token.children or ():
            if child.type in ("text", "code_inline"):
                parts.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                parts.append(" ")
            elif child.type == "html_inline" and _HIGHLIGHT_TAG.fullmatch(child.content):
                parts.append(child.content)  # other inline HTML tags are dropped
        if token.type.endswith("_close") and token.block:
            parts.append(" ")
    return " ".join("".join(parts).split())


class Timings(BaseModel):
    embedding_ms: float = 0.0
    es_took_ms: float = 0.0
    es_roundtrip_ms: float = 0.0
    fusion_ms: float = 0.0
    rerank_ms: float = 0.0
    total_ms: float = 0.0


class Explain(BaseModel):
    """What was sent and how long each part took."""

    strategy: str
    requests: list[dict[str, Any]]
    timings: Timings
    notes: list[str] = Field(default_factory=list)


class SearchResult(BaseModel):
    query: str | None
    mode: str
    strategy: str
    total: int | None = None  # matching documents, when the search counts them (BM25)
    candidates: int | None = None  # hits the ranking chose from (fused union, kNN neighbours)
    hits: list[Hit]
    explain: Explain | None = None

    @property
    def ids(self) -> list[str]:
        return [hit.id for hit in self.hits]


def hit_from_es(raw: dict[str, Any], *, rank: int, leg: str | None = None) -> Hit:
    source = raw.get("_source") or {}
    hit = Hit(
        id=raw["_id"],
        index=raw.get("_index"),
        score=raw.get("_score"),
        rank=rank,
        doc_id=source.get(schema.DOC_ID_FIELD),
        title=source.get(schema.TITLE_FIELD),
        text=source.get(schema.TEXT_FIELD),
        source=source,
        highlights=raw.get("highlight") or {},
    )
    if leg is not None:
        hit.legs[leg] = LegScore(score=raw.get("_score"), rank=rank)
    return hit


def hits_from_response(
    response: dict[str, Any], *, leg: str | None = None, offset: int = 0
) -> list[Hit]:
    """Hits of one response, ranks continuing after `offset` (the request's `from`)."""
    raw_hits = response.get("hits", {}).get("hits", [])
    return [hit_from_es(raw, rank=offset + i, leg=leg) for i, raw in enumerate(raw_hits, 1)]


def total_of(response: dict[str, Any]) -> int | None:
    total = response.get("hits", {}).get("total")
    if isinstance(total, dict):
        total = total.get("value")
    return None if total is None else int(total)
