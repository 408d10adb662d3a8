"""The model guard: the embedder recorded in `_meta.essearch` must match the configured one.

Without it a different model (or the same model with other dims or prompts) writes vectors into
an index built for another embedding space: at best a bulk parsing error, at worst silently
meaningless kNN scores. These helpers are pure so async callers can use them with their own
`get_mapping` call:

    body = (await client.indices.get_mapping(index=alias)).body
    check_mapping_response(configured_info, body)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from essearch.embedders.base import EmbedderInfo
from essearch.errors import ModelMismatchError, SearchError
from essearch.index.schema import META_KEY, VECTOR_FIELD


def _mappings_of(mapping_body: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept a mappings object, a `{"mappings": ...}` body, or a one-index get_mapping answer."""
    mappings = mapping_body.get("mappings")
    if isinstance(mappings, Mapping):
        return mappings
    if "_meta" in mapping_body or "properties" in mapping_body:
        return mapping_body
    values = list(mapping_body.values())
    if len(values) == 1 and isinstance(values[0], Mapping) and "mappings" in values[0]:
        inner: Mapping[str, Any] = values[0]["mappings"]
        return inner
    if len(values) > 1:
        raise ValueError(
            f"mapping response covers {len(values)} indices ({', '.join(mapping_body)}); "
            "use models_from_mapping_response"
        )
    return {}


def meta_from_mapping(mapping_body: Mapping[str, Any]) -> dict[str, Any] | None:
    """`_meta.essearch` of a mapping, or None when essearch did not create the index."""
    meta = _mappings_of(mapping_body).get("_meta", {}).get(META_KEY)
    return dict(meta) if isinstance(meta, Mapping) else None


def model_from_mapping(mapping_body: Mapping[str, Any]) -> EmbedderInfo | None:
    """The embedder recorded on an index, from its mapping; None when none is recorded."""
    meta = meta_from_mapping(mapping_body)
    if not meta or not isinstance(meta.get("embedder"), Mapping):
        return None
    return EmbedderInfo.from_dict(dict(meta["embedder"]))


def models_from_mapping_response(response: Mapping[str, Any]) -> dict[str, EmbedderInfo | None]:
    """`{physical index: recorded embedder}` for a get_mapping answer over an alias or pattern."""
    return {index: model_from_mapping(body) for index, body in response.items()}


def describe(info: EmbedderInfo) -> str:
    return f"{info.provider}/{info.model} ({info.dims} dims, {info.similarity})"


def check_model(configured: EmbedderInfo, recorded: EmbedderInfo | None, index: str) -> None:
    """Raise ModelMismatchError, naming both embedders and the index, unless they are the same."""
    if recorded is None:
        raise ModelMismatchError(
            f"index {index!r} has no embedder recorded in _meta.{META_KEY} (it was not created "
            f"by essearch); refusing to use it with {describe(configured)}. "
            "Create it with `essearch init` or reindex into an essearch index."
        )
    differences = recorded.differences(configured)
    if differences:
        detail = "; ".join(
            f"{k}: index {a!r} vs configured {b!r}" for k, (a, b) in differences.items()
        )
        raise ModelMismatchError(
            f"index {index!r} was built with {describe(recorded)} but the configured embedder is "
            f"{describe(configured)} ({detail}). Configure the recorded embedder, or move the "
            "index to the new one with `essearch reindex`."
        )


def check_mapping_response(
    configured: EmbedderInfo, response: Mapping[str, Any], *, query_vector_len: int | None = None
) -> None:
    """The model guard's one entry point: `check_model` for every physical index in a get_mapping
    answer; with `query_vector_len` (a kNN search), also that each holds vectors of that size."""
    for index, body in response.items():
        if query_vector_len is not None:
            _check_vector_field(index, _mappings_of(body), configured, query_vector_len)
        check_model(configured, model_from_mapping(body), index)


def _check_vector_field(
    index: str, mappings: Mapping[str, Any], configured: EmbedderInfo, vector_len: int
) -> None:
    vector = (mappings.get("properties") or {}).get(VECTOR_FIELD)
    if vector is None:
        raise SearchError(f"index {index!r} has no `{VECTOR_FIELD}` field; kNN search needs one")
    dims = vector.get("dims")
    if dims is not None and dims != vector_len:
        raise ModelMismatchError(
            f"index {index!r} holds {dims}-dim vectors but the embedder "
            f"{configured.model!r} produced a {vector_len}-dim query vector"
        )
