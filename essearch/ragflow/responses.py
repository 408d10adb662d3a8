"""Reading a search response the way RAGFlow's callers expect (pure functions)."""

from __future__ import annotations

import re
from typing import Any

SENTENCE_SPLIT = re.compile(r"[.?!;\n]")
EM = re.compile(r"<em>[^<>]+</em>", re.IGNORECASE)
BOUNDARY = r"[ .?/'\"\(\)!,:;-]"


def hits(res: dict[str, Any]) -> list[dict[str, Any]]:
    return (res or {}).get("hits", {}).get("hits", [])


def get_total(res: dict[str, Any]) -> int:
    total = (res or {}).get("hits", {}).get("total", 0)
    return int(total.get("value", 0)) if isinstance(total, dict) else int(total or 0)


def get_doc_ids(res: dict[str, Any]) -> list[str]:
    return [h["_id"] for h in hits(res)]


def get_scores(res: dict[str, Any]) -> dict[str, float]:
    """`{chunk_id: _score}`; a hit without a score (sorted, not tracked) gets 0.0."""
    return {h["_id"]: float(h.get("_score") or 0.0) for h in hits(res)}


def _unwrap(value: Any) -> Any:
    # `fields` returns every value as a list; a vector comes back as [[...]] on some versions.
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], list):
        return value[0]
    return value


def get_fields(res: dict[str, Any], fields: list[str]) -> dict[str, dict[str, Any]]:
    """`{chunk_id: {field: value}}`: lists stay lists, `available_int` stays numeric, every other
    scalar becomes a str (RAGFlow's convention); `id` comes from `_id` when not stored."""
    if not fields:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for hit in hits(res):
        source = dict(hit.get("_source") or {})
        source.setdefault("id", hit["_id"])
        extra = hit.get("fields") or {}
        row: dict[str, Any] = {}
        for name in fields:
            value = source.get(name)
            if value is None and name in extra:
                value = _unwrap(extra[name])
                if isinstance(value, list) and len(value) == 1 and not name.endswith("_vec"):
                    value = value[0]
            if value is None:
                continue
            keep = isinstance(value, (list, str)) or (
                name == "available_int" and isinstance(value, (int, float))
            )
            if keep:
                row[name] = value
            else:
                row[name] = str(value)
        if row:
            out[hit["_id"]] = row
    return out


def is_english(text: str) -> bool:
    """Mostly ASCII-letter tokens (RAGFlow re-highlights English text by regex)."""
    tokens = [t for t in text.split() if t]
    if not tokens:
        return False
    ascii_words = sum(1 for t in tokens if re.fullmatch(r"[a-zA-Z0-9,.?!'\"<>/:;()\-]+", t))
    return ascii_words / len(tokens) > 0.8


def _fragments(hit: dict[str, Any]) -> list[str]:
    highlight = hit.get("highlight") or {}
    return next(iter(highlight.values()), []) if highlight else []


def get_highlight(res: dict[str, Any], keywords: list[str], field_name: str) -> dict[str, str]:
    """`{chunk_id: snippet}`. Elasticsearch's fragments joined by "..."; for English text the
    sentences of `field_name` holding a keyword are re-highlighted with <em> (as RAGFlow does)."""
    out: dict[str, str] = {}
    for hit in hits(res):
        fragments = _fragments(hit)
        if not fragments:
            continue
        joined = "...".join(fragments)
        raw = (hit.get("_source") or {}).get(field_name)
        if not isinstance(raw, str) or not is_english(joined):
            out[hit["_id"]] = joined
            continue
        text = re.sub(r"[\r\n]", " ", raw)
        sentences = []
        for sentence in SENTENCE_SPLIT.split(text):
            for word in keywords or []:
                sentence = re.sub(
                    rf"(^|{BOUNDARY})({re.escape(word)})({BOUNDARY}|$)",
                    r"\1<em>\2</em>\3",
                    sentence,
                    flags=re.IGNORECASE,
                )
            if EM.search(sentence):
                sentences.append(sentence)
        out[hit["_id"]] = "...".join(sentences) if sentences else joined
    return out


def get_aggregation(res: dict[str, Any], field_name: str) -> list[tuple[Any, int]]:
    """`[(key, doc_count)]` of the `aggs_<field>` terms aggregation."""
    agg = ((res or {}).get("aggregations") or {}).get(f"aggs_{field_name}")
    if not agg:
        return []
    return [(b["key"], b["doc_count"]) for b in agg.get("buckets", [])]
