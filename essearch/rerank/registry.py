"""Rerankers by name, built from the `rerank` settings group."""

from __future__ import annotations

from typing import Any

from essearch.errors import ConfigurationError
from essearch.rerank.base import Reranker
from essearch.settings import RerankSettings


def create_reranker(
    settings: RerankSettings, *, client: Any = None, index: str | None = None
) -> Reranker:
    """The reranker that `settings.provider` names (tei, cohere, cross-encoder, elasticsearch)."""
    provider = settings.provider
    key = settings.api_key.get_secret_value() if settings.api_key else None
    if provider in ("tei", "cohere"):
        if not settings.base_url:
            raise ConfigurationError(
                f"rerank provider {provider!r} needs ESSEARCH_RERANK_BASE_URL (the server's URL)"
            )
        from essearch.rerank.http import CohereReranker, TEIReranker

        cls = TEIReranker if provider == "tei" else CohereReranker
        return cls(
            settings.base_url,
            model=settings.model,
            api_key=key,
            timeout=settings.timeout,
            max_retries=settings.max_retries,
        )
    if provider == "cross-encoder":
        if not settings.model:
            raise ConfigurationError(
                "rerank provider 'cross-encoder' needs ESSEARCH_RERANK_MODEL (a model directory)"
            )
        from essearch.rerank.cross_encoder import CrossEncoderReranker

        return CrossEncoderReranker(settings.model)
    if provider == "elasticsearch":
        if not settings.inference_id or client is None or index is None:
            raise ConfigurationError(
                "rerank provider 'elasticsearch' needs ESSEARCH_RERANK_INFERENCE_ID "
                "(a rerank inference endpoint on the cluster)"
            )
        from essearch.rerank.elasticsearch import ElasticsearchReranker

        return ElasticsearchReranker(client, index, inference_id=settings.inference_id)
    raise ConfigurationError(
        f"unknown rerank provider {provider!r} (ESSEARCH_RERANK_PROVIDER): "
        "use tei, cohere, cross-encoder or elasticsearch"
    )
