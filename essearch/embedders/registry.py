"""Backends by provider name, and `create_embedder` that builds one from settings.

Adding a backend is one class with a `from_settings(settings, **extra)` classmethod plus one
`register_embedder("name", Class)` call (built-ins are imported lazily, so the CLI stays fast).
"""

from __future__ import annotations

import importlib
from typing import Any

from pydantic import ValidationError

from essearch.embedders.base import Embedder
from essearch.errors import ConfigurationError
from essearch.settings import EmbedderSettings, Settings, format_validation_error, load_settings

_BUILTIN: dict[str, str] = {
    "local": "essearch.embedders.local:LocalEmbedder",
    "sentence-transformers": (
        "essearch.embedders.sentence_transformers_backend:SentenceTransformerEmbedder"
    ),
    "openai": "essearch.embedders.openai_backend:OpenAIEmbedder",
    "ollama": "essearch.embedders.ollama_backend:OllamaEmbedder",
    "elasticsearch": "essearch.embedders.elasticsearch_backend:ElasticsearchEmbedder",
    "huggingface": "essearch.embedders.huggingface_backend:HuggingFaceEmbedder",
}
_REGISTRY: dict[str, type[Embedder]] = {}


def register_embedder(name: str, cls: type[Embedder]) -> type[Embedder]:
    """Make `cls` available as provider `name` (usable as a decorator via functools.partial)."""
    _REGISTRY[name] = cls
    return cls


def available_providers() -> list[str]:
    return sorted(set(_BUILTIN) | set(_REGISTRY))


def embedder_class(name: str) -> type[Embedder]:
    """The class registered for provider `name`."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name not in _BUILTIN:
        raise ConfigurationError(
            f"unknown embedder provider {name!r}; known: {', '.join(available_providers())}"
        )
    module_name, _, attr = _BUILTIN[name].partition(":")
    cls = getattr(importlib.import_module(module_name), attr)
    _REGISTRY.setdefault(name, cls)
    return cls


def resolve_embedder_settings(
    settings: EmbedderSettings | Settings | None = None, **overrides: Any
) -> tuple[EmbedderSettings, Settings | None]:
    """The embedder settings with `overrides` applied and validated (plus the full settings)."""
    full: Settings | None = None
    if settings is None:
        full = load_settings()
        base = full.embedder
    elif isinstance(settings, Settings):
        full, base = settings, settings.embedder
    elif isinstance(settings, EmbedderSettings):
        base = settings
    else:
        raise ConfigurationError(f"expected EmbedderSettings or Settings, got {type(settings)!r}")
    if not overrides:
        return base, full
    unknown = set(overrides) - set(EmbedderSettings.model_fields)
    if unknown:
        raise ConfigurationError(
            f"unknown embedder setting(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(EmbedderSettings.model_fields)}"
        )
    data = {name: getattr(base, name) for name in EmbedderSettings.model_fields}
    data.update(overrides)
    try:
        return EmbedderSettings.model_validate(data), full
    except ValidationError as exc:
        raise ConfigurationError(format_validation_error(exc)) from None


def create_embedder(
    settings: EmbedderSettings | Settings | None = None,
    *,
    client: Any = None,
    **overrides: Any,
) -> Embedder:
    """Build the configured embedder (wrapped in the on-disk cache when `cache_path` is set).

    `overrides` are embedder settings (`provider="openai", model="..."`); `client` is an
    Elasticsearch client for the `elasticsearch` provider (else one is made from the settings).
    """
    embedder_settings, full = resolve_embedder_settings(settings, **overrides)
    cls = embedder_class(embedder_settings.provider)
    extra: dict[str, Any] = {}
    if embedder_settings.provider == "elasticsearch":
        extra = {"client": client, "full_settings": full}
    embedder = cls.from_settings(embedder_settings, **extra)  # type: ignore[attr-defined]
    if embedder_settings.cache_path is not None:
        from essearch.embedders.cache import CachedEmbedder

        embedder = CachedEmbedder(embedder, embedder_settings.cache_path)
    return embedder
