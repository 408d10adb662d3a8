"""The language guard: is the text in a language the embedder was trained for?

An English-only model (the offline default, all-MiniLM-L6-v2) embeds Chinese without complaint,
but its vectors for it are poor, and a weak kNN leg drags a hybrid ranking below BM25 alone.
Ingest and `essearch doctor` say so once, naming models that cover the text; hybrid search
gives the kNN leg of a query the model does not cover no weight (`KNN_WEIGHT_FACTOR`) instead
of letting it vote as an equal. Coverage comes from the preset table
(essearch.embedders.prompts); a model essearch does not know is never flagged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from essearch.embedders.prompts import preset_for, suggestions_for
from essearch.index.guard import model_from_mapping
from essearch.index.schema import LANGUAGE_FIELD
from essearch.text.languages import detect_language

LANGUAGE_NAMES = {
    "zh": "Chinese",
    "ja": "Japanese",
    "ko": "Korean",
    "en": "English (Latin script)",
    "ru": "Cyrillic-script",
}
#: Share of the indexed text above which an uncovered language is worth a warning.
WARN_SHARE = 0.5
#: A flagged query's kNN leg keeps this fraction of its fusion weight. Measured (CMRC2018, 1,000
#: test queries, MiniLM, client-side RRF): no guard 0.501 nDCG@10, a quarter of the weight 0.767,
#: BM25 alone 0.986; a model that was not trained for the language only adds noise, so its leg
#: gets no weight and only fills the places after the BM25 hits.
KNN_WEIGHT_FACTOR = 0.0


def covers(model: str | None, language: str) -> bool:
    """False only when the preset table says the model was not trained for `language`."""
    if language == "none":
        return True
    return preset_for(model).covers(language) is not False


def query_flagged(model: str | None, query: str | None) -> str | None:
    """The language of `query` when `model` does not cover it (hybrid weighs kNN down)."""
    if not query:
        return None
    language = detect_language(query)
    return None if covers(model, language) else language


def coverage_warning(model: str | None, shares: Mapping[str, float]) -> str | None:
    """One sentence when most text is in a language `model` does not cover, else None."""
    uncovered = {lang: share for lang, share in shares.items() if not covers(model, lang)}
    if not uncovered or sum(uncovered.values()) <= WARN_SHARE:
        return None
    language, share = max(uncovered.items(), key=lambda item: item[1])
    trained = ", ".join(preset_for(model).languages)
    name = LANGUAGE_NAMES.get(language, language)
    better = ", ".join(suggestions_for(language))
    return (
        f"{sum(uncovered.values()):.0%} of the text is in a language the embedder {model!r} "
        f"was not trained for (mostly {name}, {share:.0%}; it covers: {trained}); its vectors "
        f"for that text are poor, so hybrid search gives the kNN leg no weight for such queries. "
        f"Use an embedder that covers it, e.g. {better} (README: 'Multilingual models'), and "
        f"move the index with `essearch reindex --model <name>`"
    )


def language_shares_body() -> dict[str, Any]:
    """Search body: chunks per recorded language (chunks made before the field have none)."""
    return {
        "size": 0,
        "track_total_hits": True,
        "aggs": {"languages": {"terms": {"field": LANGUAGE_FIELD, "size": 20}}},
    }


def index_coverage(client: Elasticsearch, index: str) -> dict[str, Any] | None:
    """What `doctor` reports for an index: its languages (share of chunks), the model that
    embedded it, and the guard's warning; None when the index does not exist."""
    try:
        mapping = client.indices.get_mapping(index=index).body
        response = client.search(index=index, body=language_shares_body()).body
    except NotFoundError:
        return None
    models = {info.model for info in map(model_from_mapping, mapping.values()) if info}
    model = next(iter(models)) if len(models) == 1 else None
    buckets = response.get("aggregations", {}).get("languages", {}).get("buckets", [])
    counted = sum(b["doc_count"] for b in buckets)
    shares = {b["key"]: round(b["doc_count"] / counted, 3) for b in buckets} if counted else {}
    return {
        "index": index,
        "model": model,
        "languages": shares,
        "warning": coverage_warning(model, shares) if model else None,
    }
