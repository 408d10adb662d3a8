"""Embedding backends behind one small interface (LangChain-compatible method names).

`create_embedder(settings)` builds the configured one: local (default, offline all-MiniLM-L6-v2),
openai (and OpenAI-compatible servers), ollama, or an Elasticsearch inference endpoint.
"""

from essearch.embedders.base import (
    Embedder,
    EmbedderInfo,
    EmptyTextError,
    Similarity,
    invalid_text_positions,
)
from essearch.embedders.cache import CachedEmbedder, CacheStats, EmbeddingCache
from essearch.embedders.prompts import PromptPreset, preset_for, resolve_prompts
from essearch.embedders.registry import (
    available_providers,
    create_embedder,
    embedder_class,
    register_embedder,
    resolve_embedder_settings,
)

__all__ = [
    "CacheStats",
    "CachedEmbedder",
    "Embedder",
    "EmbedderInfo",
    "EmbeddingCache",
    "EmptyTextError",
    "PromptPreset",
    "Similarity",
    "available_providers",
    "create_embedder",
    "embedder_class",
    "invalid_text_positions",
    "preset_for",
    "register_embedder",
    "resolve_embedder_settings",
    "resolve_prompts",
]
