"""Backends by provider name, and `create_embedder` that builds one from settings.

Like simonw/llm's plugins: built-in and third-party backends are found by name. A built-in is one
line in `_BUILTIN`; a separate package adds one under the `essearch.embedders` entry-point group
(`hashing = my_package:HashingEmbedder` in its `[project.entry-points."essearch.embedders"]`);
`register_embedder` adds one at run time. Classes are imported on first use, so the CLI stays fast.
Every backend is built the same way, through `Embedder.from_settings`.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import ValidationError

from essearch.embedders.base import Embedder
from essearch.errors import ConfigurationError
from essearch.settings import EmbedderSettings, Settings, format_validation_error, load_settings

#: The entry-point group third-party embedder packages register their backends under.
ENTRY_POINT_GROUP = "essearch.embedders"

#: The built-in backends: provider name -> "module:Class", one line each.
_BUILTIN: dict[str, str] = {
    "local": "essearch.embedders.local:LocalEmbedder",
    "openai": "essearch.embedders.openai_backend:OpenAIEmbedder",
    "ollama": "essearch.embedders.ollama_backend:OllamaEmbedder",
    "elasticsearch": "essearch.embedders.elasticsearch_backend:ElasticsearchEmbedder",
}
_REGISTRY: dict[str, type[Embedder]] = {}


def register_embedder(name: str, cls: type[Embedder]) -> type[Embedder]:
    """Make `cls` available as provider `name` in this process."""
    _REGISTRY[name] = cls
    return cls


def _plugins() -> dict[str, EntryPoint]:
    """Backends installed packages declare under `ENTRY_POINT_GROUP` (read on every call, so a
    package installed while the process runs is seen)."""
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def is_provider(name: str) -> bool:
    """Whether `name` is a known provider (entry points are read only for a name not built in)."""
    return name in _REGISTRY or name in _BUILTIN or name in _plugins()


def available_providers() -> list[str]:
    """Every provider name: built-in, registered at run time, and installed plugins."""
    return sorted(set(_BUILTIN) | set(_REGISTRY) | set(_plugins()))


def embedder_class(name: str) -> type[Embedder]:
    """The class registered for provider `name`, imported on first use."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BUILTIN:
        entry = EntryPoint(name, _BUILTIN[name], ENTRY_POINT_GROUP)
    else:
        plugin = _plugins().get(name)
        if plugin is None:
            raise ConfigurationError(
                f"unknown embedder provider {name!r}; known: {', '.join(available_providers())}"
            )
        entry = plugin
    try:
        cls = entry.load()
    except Exception as exc:
        raise ConfigurationError(
            f"embedder provider {name!r} ({entry.value}) could not be imported: {exc}"
        ) from exc
    if not (isinstance(cls, type) and issubclass(cls, Embedder)):
        raise ConfigurationError(
            f"embedder provider {name!r} ({entry.value}) is not an essearch Embedder subclass"
        )
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
    Elasticsearch client for backends that use the cluster (else they make one from the settings).
    """
    embedder_settings, full = resolve_embedder_settings(settings, **overrides)
    cls = embedder_class(embedder_settings.provider)
    embedder = cls.from_settings(embedder_settings, client=client, full_settings=full)
    if embedder_settings.cache_path is not None:
        from essearch.embedders.cache import CachedEmbedder

        embedder = CachedEmbedder(embedder, embedder_settings.cache_path)
    return embedder
