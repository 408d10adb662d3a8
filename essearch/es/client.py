"""The one place that builds Elasticsearch clients from settings.

Both clients retry connection errors, timeouts and 429/502/503/504 with jittered exponential
backoff (the transport's own mechanism). Build one client and reuse it: it owns a connection pool.
JSON goes through orjson when it is installed (a dependency): encoding float vectors is the main
client-side cost of bulk indexing and kNN queries, and orjson does it about ten times faster.
"""

from __future__ import annotations

from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

from essearch.settings import ElasticsearchSettings, Settings

RETRY_ON_STATUS = (429, 502, 503, 504)


def client_kwargs(es: ElasticsearchSettings) -> dict[str, Any]:
    """Keyword arguments shared by the sync and async clients."""
    kwargs: dict[str, Any] = {
        "request_timeout": es.request_timeout,
        "max_retries": es.max_retries,
        "retry_on_status": RETRY_ON_STATUS,
        "retry_on_timeout": True,
        "retry_backoff_base": 0.5,
        "retry_backoff_cap": 30.0,
        "verify_certs": es.verify_certs,
    }
    serializer = _fast_serializer()
    if serializer is not None:
        kwargs["serializer"] = serializer
    if es.cloud_id:
        kwargs["cloud_id"] = es.cloud_id
    else:
        kwargs["hosts"] = list(es.url)
    if es.api_key is not None:
        kwargs["api_key"] = es.api_key.get_secret_value()
    elif es.username:
        password = es.password.get_secret_value() if es.password else ""
        kwargs["basic_auth"] = (es.username, password)
    if es.ca_certs:
        kwargs["ca_certs"] = str(es.ca_certs)
    if es.ssl_assert_fingerprint:
        kwargs["ssl_assert_fingerprint"] = es.ssl_assert_fingerprint
    return kwargs


def _fast_serializer() -> Any:
    try:
        from elasticsearch.serializer import OrjsonSerializer

        return OrjsonSerializer()
    except ImportError:  # orjson missing: the client's standard JSON serializer
        return None


def _es_settings(settings: Settings | ElasticsearchSettings | None) -> ElasticsearchSettings:
    if settings is None:
        from essearch.settings import load_settings

        return load_settings().es
    return settings.es if isinstance(settings, Settings) else settings


def make_client(settings: Settings | ElasticsearchSettings | None = None) -> Elasticsearch:
    """A synchronous client; `settings=None` reads the environment."""
    return Elasticsearch(**client_kwargs(_es_settings(settings)))


def make_async_client(
    settings: Settings | ElasticsearchSettings | None = None,
) -> AsyncElasticsearch:
    """An asynchronous client with the same configuration as `make_client`."""
    return AsyncElasticsearch(**client_kwargs(_es_settings(settings)))


def describe_target(es: ElasticsearchSettings) -> str:
    """The cluster's address as shown in messages (never with credentials)."""
    if es.cloud_id:
        return f"cloud_id {es.cloud_id.split(':', 1)[0]}"
    return ", ".join(es.url)
