"""RAGFlow condition dicts -> Elasticsearch bool clauses (pure functions).

Rules (RAGFlow's, plus two safety fixes):
- a list means IN (`terms`), a str/int/float/bool means `term`; falsy values are skipped;
- `available_int`: 0 -> `available_int < 1`; anything else -> NOT `available_int < 1`, so chunks
  without the field count as available;
- `id`: the chunk ids (`_id` and the stored `id`); unlike RAGFlow an empty id list matches
  nothing instead of everything (so `delete({"id": []})` never wipes a dataset);
- `exists: field` -> the field must exist; `must_not: {"exists": field}` -> it must not;
  `must_not: {field: value|list}` -> excluded values (an essearch extension).
"""

from __future__ import annotations

from typing import Any

from essearch.errors import SearchError

MATCH_NONE: dict[str, Any] = {"bool": {"must_not": [{"match_all": {}}]}}


def _value_clause(field: str, value: Any) -> dict[str, Any]:
    if isinstance(value, (list, tuple, set)):
        return {"terms": {field: list(value)}}
    if isinstance(value, (str, int, float, bool)):
        return {"term": {field: value}}
    raise SearchError(
        f"condition {field!r}: value must be a str, number or list, got {type(value).__name__}"
    )


def _must_not_clauses(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, dict):
        raise SearchError(f"condition 'must_not' must be a dict, got {type(value).__name__}")
    clauses: list[dict[str, Any]] = []
    for key, item in value.items():
        if key == "exists":
            fields = item if isinstance(item, (list, tuple)) else [item]
            clauses.extend({"exists": {"field": f}} for f in fields if f)
        elif item not in (None, "", [], ()):
            clauses.append(_value_clause(key, item))
    return clauses


def id_clause(ids: Any) -> dict[str, Any]:
    """Chunks by id: RAGFlow checks both the stored `id` and `_id`."""
    values = [ids] if isinstance(ids, str) else [str(i) for i in ids or []]
    if not values:
        return MATCH_NONE
    return {
        "bool": {
            "should": [{"terms": {"id": values}}, {"ids": {"values": values}}],
            "minimum_should_match": 1,
        }
    }


def condition_clauses(condition: dict[str, Any] | None) -> tuple[list[dict], list[dict]]:
    """`(filter, must_not)` clause lists for a RAGFlow condition dict."""
    filters: list[dict[str, Any]] = []
    must_not: list[dict[str, Any]] = []
    for key, value in (condition or {}).items():
        if key == "_id":
            raise SearchError("condition '_id' is not allowed; use 'id'")
        if key == "id":
            if value is None:
                continue
            filters.append(id_clause(value))
        elif key == "available_int":
            if value is None:
                continue
            below_one = {"range": {"available_int": {"lt": 1}}}
            if value == 0:
                filters.append(below_one)
            else:
                filters.append({"bool": {"must_not": [below_one]}})
        elif key == "exists":
            fields = value if isinstance(value, (list, tuple)) else [value]
            filters.extend({"exists": {"field": f}} for f in fields if f)
        elif key == "must_not":
            if value:
                must_not.extend(_must_not_clauses(value))
        elif value is None or value == "" or (isinstance(value, (list, tuple, set)) and not value):
            continue  # RAGFlow skips empty values ("no restriction"); 0 and False still count
        else:
            filters.append(_value_clause(key, value))
    return filters, must_not


def condition_query(condition: dict[str, Any] | None) -> dict[str, Any]:
    """The condition as one query (match_all when it restricts nothing)."""
    filters, must_not = condition_clauses(condition)
    if not filters and not must_not:
        return {"match_all": {}}
    body: dict[str, Any] = {}
    if filters:
        body["filter"] = filters
    if must_not:
        body["must_not"] = must_not
    return {"bool": body}


def with_dataset(condition: dict[str, Any] | None, dataset_ids: Any) -> dict[str, Any]:
    """A copy of `condition` scoped to the dataset(s) given as the call's argument.

    As in RAGFlow, the argument overrides any `kb_id` in the condition; with no dataset ids the
    condition's own `kb_id` (if any) stays, and otherwise the whole tenant index is searched.
    """
    scoped = dict(condition or {})
    if isinstance(dataset_ids, str):
        dataset_ids = [dataset_ids] if dataset_ids else []
    ids = [str(i) for i in (dataset_ids or []) if i]
    if ids:
        scoped["kb_id"] = ids
    return scoped
