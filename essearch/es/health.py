"""Health check: a clear answer to "can essearch use this cluster?", naming the URL and cause."""

from __future__ import annotations

from dataclasses import dataclass

from elastic_transport import TlsError
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
)
from elasticsearch import ConnectionError as EsConnectionError
from elasticsearch import ConnectionTimeout as EsConnectionTimeout

from essearch.errors import ClusterConnectionError, es_error_reason
from essearch.es.capabilities import Capabilities, probe
from essearch.es.client import describe_target, make_client
from essearch.settings import ElasticsearchSettings, Settings

SUPPORTED_MAJORS = (9,)


@dataclass(frozen=True)
class ClusterHealth:
    url: str
    status: str
    capabilities: Capabilities


def check_health(
    settings: Settings | ElasticsearchSettings,
    *,
    client: Elasticsearch | None = None,
    timeout: float = 5.0,
) -> ClusterHealth:
    """Probe the cluster quickly (no retries); raise `ClusterConnectionError` with the cause."""
    es = settings.es if isinstance(settings, Settings) else settings
    target = describe_target(es)
    base = client or make_client(es)
    quick = base.options(request_timeout=timeout, max_retries=0)
    try:
        health = quick.cluster.health().body
        caps = probe(quick)
    except AuthenticationException:
        raise ClusterConnectionError(
            f"Elasticsearch at {target} refused the credentials ({_auth_kind(es)}): HTTP 401"
        ) from None
    except AuthorizationException as exc:
        raise ClusterConnectionError(
            f"Elasticsearch at {target} denied access with the configured credentials "
            f"({_auth_kind(es)}): HTTP 403 {es_error_reason(exc)}"
        ) from None
    except TlsError as exc:
        raise ClusterConnectionError(
            f"TLS handshake with Elasticsearch at {target} failed: {exc.message}. "
            "Check ESSEARCH_ES_CA_CERTS / ESSEARCH_ES_SSL_ASSERT_FINGERPRINT."
        ) from None
    except EsConnectionTimeout:
        raise ClusterConnectionError(
            f"Elasticsearch at {target} did not answer within {timeout:g}s"
        ) from None
    except EsConnectionError as exc:
        raise ClusterConnectionError(
            f"cannot reach Elasticsearch at {target}: {_connection_cause(exc)}"
        ) from None
    except ApiError as exc:
        raise ClusterConnectionError(
            f"Elasticsearch at {target} answered HTTP {exc.status_code}: {es_error_reason(exc)}"
        ) from None
    finally:
        if client is None:
            base.close()
    if caps.major not in SUPPORTED_MAJORS:
        raise ClusterConnectionError(
            f"Elasticsearch at {target} is version {caps.version}; essearch needs "
            f"{' or '.join(f'{m}.x' for m in SUPPORTED_MAJORS)}"
        )
    return ClusterHealth(url=target, status=health.get("status", "unknown"), capabilities=caps)


def _auth_kind(es: ElasticsearchSettings) -> str:
    if es.api_key is not None:
        key = es.api_key.get_secret_value()
        return f"API key ****{key[-4:]}" if len(key) > 8 else "API key ****"
    if es.username:
        return f"user {es.username!r}, password ****"
    return "no credentials configured"


def _connection_cause(exc: EsConnectionError) -> str:
    text = str(exc.message if hasattr(exc, "message") else exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused (is it running, and on that port?)"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host name"
    return text
