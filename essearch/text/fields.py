"""The language-dependent fields of one chunk, computed in one place for ingest and reindex."""

from __future__ import annotations

from typing import Any

from essearch.index.schema import CJK_FIELD, LANGUAGE_FIELD
from essearch.text.cjk import words
from essearch.text.languages import detect_language


def language_fields(title: str | None, text: str | None) -> dict[str, Any]:
    """`{language, text_cjk}` for a chunk (no `text_cjk` when it holds no CJK text).

    Title and text go into the CJK field together, as `combined_fields` treats them as one.
    """
    both = f"{title}\n{text or ''}" if title else (text or "")
    fields: dict[str, Any] = {LANGUAGE_FIELD: detect_language(both)}
    cjk = words(both)
    if cjk is not None:
        fields[CJK_FIELD] = cjk
    return fields
