"""Dify's External Knowledge API mapped onto essearch: conditions -> filters, hits -> records.

Dify documents `metadata_condition` as {logical_operator: and|or, conditions: [{name,
comparison_operator, value}]}. Every documented operator becomes a node of the one filter
language, so the same clause is the BM25 leg's filter and the kNN leg's pre-filter. As in Dify's
own retrieval, a condition that needs a value but has none is skipped; `name` may be one field
or (older docs) a list of fields, any of which may match.

The record `score` is in [0, 1] and follows the ranking (see `record_score` and the README).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from essearch.index import schema
from essearch.retrieval import queries as q
from essearch.retrieval.filters import And, Eq, Exists, F, Filter, In, Not, Or, Range
from essearch.retrieval.results import Hit, SearchResult

Operator = Literal[
    "contains",
    "not contains",
    "start with",
    "end with",
    "is",
    "is not",
    "in",
    "not in",
    "empty",
    "not empty",
    "=",
    "≠",
    ">",
    "<",
    "≥",
    "≤",
    "before",
    "after",
]
NO_VALUE = frozenset({"empty", "not empty"})
NUMERIC = frozenset({"=", "≠", ">", "<", "≥", "≤"})
#: ASCII spellings some clients send for the documented operators.
ALIASES = {"!=": "≠", ">=": "≥", "<=": "≤", "==": "=", "starts with": "start with"}


class Condition(BaseModel):
    name: str | list[str]
    comparison_operator: Operator
    value: str | int | float | list[str | int | float] | None = None

    model_config = ConfigDict(extra="ignore")


class MetadataCondition(BaseModel):
    logical_operator: Literal["and", "or"] | None = "and"
    conditions: list[Condition] | None = None

    model_config = ConfigDict(extra="ignore")


class RetrievalSetting(BaseModel):
    top_k: int = Field(ge=1)
    score_threshold: float = Field(0.0, ge=0.0, le=1.0)

    model_config = ConfigDict(extra="ignore")


class RetrievalRequest(BaseModel):
    """The body Dify sends to `{endpoint}/retrieval`."""

    knowledge_id: str = Field(min_length=1)
    query: str = Field(min_length=1)
    retrieval_setting: RetrievalSetting
    metadata_condition: MetadataCondition | None = None

    model_config = ConfigDict(extra="ignore")


class ConditionError(ValueError):
    """A condition that cannot be turned into a filter; `index` is its position."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index


def _number(index: int, op: str, value: Any) -> int | float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    try:
        text = str(value).strip()
        return int(text) if text.lstrip("-").isdigit() else float(text)
    except ValueError:
        raise ConditionError(index, f"operator {op!r} needs a number, got {value!r}") from None


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def condition_filter(index: int, condition: Condition) -> Filter | None:
    """One Dify condition as a filter node; None when it needs a value and has none."""
    op = ALIASES.get(condition.comparison_operator, condition.comparison_operator)
    value = condition.value
    if op not in NO_VALUE and (value is None or value == "" or value == []):
        return None
    names = _as_list(condition.name)
    if not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConditionError(index, "name must be a non-empty field name")
    nodes = [_one(index, op, name, value) for name in names]
    return nodes[0] if len(nodes) == 1 else Or(tuple(nodes))


def _one(index: int, op: str, field: str, value: Any) -> Filter:
    if op in ("in", "not in"):
        node: Filter = In(field, tuple(_as_list(value)))
        return Not(node) if op == "not in" else node
    if isinstance(value, list) and op not in NO_VALUE:
        raise ConditionError(index, f"operator {op!r} takes one value, got a list")
    if op == "contains":
        return F.contains(field, str(value))
    if op == "not contains":
        return ~F.contains(field, str(value))
    if op == "start with":
        return F.prefix(field, str(value))
    if op == "end with":
        return F.suffix(field, str(value))
    if op == "is":
        return Eq(field, value)
    if op == "is not":
        return Not(Eq(field, value))
    if op == "empty":  # absent, null or [] (a term query for "" would fail on numeric fields)
        return Not(Exists(field))
    if op == "not empty":
        return Exists(field)
    if op in NUMERIC:
        number = _number(index, op, value)
        if op == "=":
            return Eq(field, number)
        if op == "≠":
            return Not(Eq(field, number))
        bound = {">": "gt", "<": "lt", "≥": "gte", "≤": "lte"}[op]
        return Range(field, **{bound: number})
    if op == "before":
        return Range(field, lt=value)
    if op == "after":
        return Range(field, gt=value)
    raise ConditionError(index, f"unknown comparison_operator {op!r}")  # pragma: no cover


def metadata_filter(condition: MetadataCondition | None) -> Filter | None:
    """The whole metadata_condition as one filter (None: nothing to filter on)."""
    if condition is None or not condition.conditions:
        return None
    nodes = [
        node
        for i, c in enumerate(condition.conditions)
        if (node := condition_filter(i, c)) is not None
    ]
    if not nodes:
        return None
    if len(nodes) == 1:
        return nodes[0]
    return Or(tuple(nodes)) if condition.logical_operator == "or" else And(tuple(nodes))


# -- scores and records -----------------------------------------------------------------------
def record_score(hit: Hit, result: SearchResult, rank_constant: int = q.RRF_RANK_CONSTANT) -> float:
    """The hit's score on [0, 1], monotone in the ranking, by strategy:

    - rrf / client-rrf: the RRF score over its maximum, 2/(rank_constant+1): 1.0 = ranked first
      by both BM25 and kNN; 0.5 = first in one leg and absent from the other.
    - linear / client-linear: the fused score itself (a weighted sum of min-max scores, weights
      summing to 1).
    - knn: Elasticsearch's kNN score, (1 + cosine) / 2 for cosine and dot_product models.
    - bm25 and weighted (unbounded scores): the score over the query's best score.
    """
    score = float(hit.score or 0.0)
    strategy = result.strategy
    if strategy in ("rrf", "client-rrf"):
        value = score / (2.0 / (rank_constant + 1))
    elif strategy in ("linear", "client-linear", "knn"):
        value = score
    else:
        best = max((float(h.score or 0.0) for h in result.hits), default=0.0)
        value = score / best if best > 0 else 0.0
    return round(min(1.0, max(0.0, value)), 6)


def records(result: SearchResult, score_threshold: float, top_k: int) -> list[dict[str, Any]]:
    """Dify records: content, score, title, metadata (always an object, never null)."""
    out: list[dict[str, Any]] = []
    for hit in result.hits:
        score = record_score(hit, result)
        if score < score_threshold:
            continue
        metadata = dict(hit.metadata)
        metadata.setdefault("doc_id", hit.doc_id)
        metadata.setdefault("chunk_id", hit.id)
        chunk = hit.source.get(schema.CHUNK_FIELD)
        if chunk is not None:
            metadata.setdefault("chunk", chunk)
        out.append(
            {
                "content": hit.text or "",
                "score": score,
                "title": hit.title or hit.doc_id or hit.id,
                "metadata": metadata,
            }
        )
        if len(out) >= top_k:
            break
    return out


def validation_message(errors: Sequence[Any]) -> str:
    """Pydantic errors as one line naming each field (Dify shows `error_msg` to the user)."""
    parts = []
    for err in errors:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{loc or 'body'}: {err.get('msg')}")
    return "; ".join(parts)
