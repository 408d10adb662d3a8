"""Health check and the one classifier of connection, auth, TLS and version failures.

`describe_cluster_error` turns what the transport raises (refused, timed out, TLS, 401, 403,
fingerprint) into one line that names the URL, the user (never a password or key) and how to fix
it; `check_health` and `preflight` use it, and so does the CLI for errors raised mid-command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from elastic_transport import TlsError, TransportError
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
from essearch.es.client import SUPPORTED_RANGE, describe_target, make_client
from essearch.settings import ElasticsearchSettings, Settings

__all__ = [
    "SUPPORTED_RANGE",
    "ClusterHealth",
    "check_health",
    "cluster_health",
    "describe_cluster_error",
    "health_in_words",
    "preflight",
]


@dataclass(frozen=True)
class ClusterHealth:
    url: str
    status: str
    capabilities: Capabilities
    # Shard allocation in numbers (from `_cluster/health`); empty when the user may not read it.
    shards: dict[str, int] | None = None


def _es(settings: Settings | ElasticsearchSettings) -> ElasticsearchSettings:
    return settings.es if isinstance(settings, Settings) else settings


def _quick(base: Elasticsearch, timeout: float, es: ElasticsearchSettings) -> Elasticsearch:
    """No retries beyond trying each configured node once (a dead node among several is not
    an unreachable cluster)."""
    return base.options(request_timeout=timeout, max_retries=max(0, len(es.url) - 1))


def check_health(
    settings: Settings | ElasticsearchSettings,
    *,
    client: Elasticsearch | None = None,
    timeout: float = 5.0,
) -> ClusterHealth:
    """Probe the cluster quickly (no retries); raise `ClusterConnectionError` with the cause."""
    es = _es(settings)
    base = client or make_client(es)
    try:
        quick = _quick(base, timeout, es)
        caps = probe(quick)
        try:
            health: dict[str, Any] = quick.cluster.health().body
        except AuthorizationException:
            health = {}  # no `monitor` privilege: the probe already said what it assumed
    except (ApiError, TransportError, ValueError) as exc:
        raise ClusterConnectionError(describe_cluster_error(exc, es, timeout=timeout)) from None
    finally:
        if client is None:
            base.close()
    shard_keys = ("active_shards", "relocating_shards", "initializing_shards", "unassigned_shards")
    return ClusterHealth(
        url=describe_target(es),
        status=health.get("status", "unknown"),
        capabilities=caps,
        shards={k: int(health[k]) for k in shard_keys if k in health} or None,
    )


def preflight(settings: Settings | ElasticsearchSettings, *, timeout: float = 5.0) -> None:
    """Fail fast, before a model is loaded: the cluster answers, accepts the credentials and is
    a supported version. Needs no cluster privilege (any authenticated user may authenticate)."""
    es = _es(settings)
    client = make_client(es)
    try:
        _quick(client, timeout, es).security.authenticate()
    except (AuthenticationException, AuthorizationException) as exc:
        raise ClusterConnectionError(describe_cluster_error(exc, es, timeout=timeout)) from None
    except ApiError:
        pass  # security disabled (the endpoint answers 4xx/5xx): the cluster is reachable
    except (TransportError, ValueError) as exc:
        raise ClusterConnectionError(describe_cluster_error(exc, es, timeout=timeout)) from None
    finally:
        client.close()


def health_in_words(health: dict[str, Any]) -> str:
    """`_cluster/health` as a sentence: what the colour means for searches and writes."""
    status = health.get("status", "unknown")
    nodes = health.get("number_of_nodes", "?")
    unassigned = int(health.get("unassigned_shards", 0))
    moving = int(health.get("initializing_shards", 0)) + int(health.get("relocating_shards", 0))
    text = f"cluster {status}: {nodes} node(s), {health.get('active_shards', '?')} active shards"
    if unassigned:
        text += f", {unassigned} unassigned"
    if moving:
        text += f", {moving} initializing or relocating"
    if status == "green":
        return text + " (every shard copy is allocated)"
    if status == "yellow":
        return text + (
            " (all primaries are allocated, so searches and writes work; some replica copies "
            "have no node to live on, so a further node loss could lose data)"
        )
    if status == "red":
        return text + (
            " (some primary shards have no live copy: documents on them cannot be searched or "
            "written until their node returns)"
        )
    return text


def cluster_health(client: Elasticsearch) -> dict[str, Any] | None:
    """`_cluster/health`, or None when the credentials may not read it (no `monitor`)."""
    try:
        return dict(client.cluster.health().body)
    except AuthorizationException:
        return None


WRITE_PRIVILEGES = ("write", "view_index_metadata")
#: Needed on top of `WRITE_PRIVILEGES` only while the index does not exist yet.
CREATE_PRIVILEGE = "create_index"


def check_write_privileges(settings: Settings, *, timeout: float = 5.0) -> None:
    """Before init/ingest write anything: may these credentials write the index (and create it,
    when it does not exist yet: an index an operator made needs no `create_index` of the writer)?
    (`_has_privileges` needs no privilege itself; a cluster without security skips the check.)"""
    es = settings.es
    name = settings.index.name
    client = make_client(es)
    try:
        quick = _quick(client, timeout, es)
        try:
            exists = bool(quick.indices.exists_alias(name=name))
        except ApiError:  # may not even look: ask for everything, and say so below
            exists = False
        wanted = [*WRITE_PRIVILEGES] if exists else [CREATE_PRIVILEGE, *WRITE_PRIVILEGES]
        answer = quick.security.has_privileges(
            index=[{"names": [name, f"{name}-*"], "privileges": wanted}]
        ).body
    except ApiError:
        return  # security off: nothing to check
    except (TransportError, ValueError) as exc:
        raise ClusterConnectionError(describe_cluster_error(exc, es, timeout=timeout)) from None
    finally:
        client.close()
    missing = sorted(
        {
            privilege
            for privileges in answer.get("index", {}).values()
            for privilege, granted in privileges.items()
            if not granted
        }
    )
    if missing:
        raise ClusterConnectionError(
            f"Elasticsearch at {describe_target(es)}: {_auth_kind(es)} lacks the index "
            f"privilege(s) {', '.join(missing)} on {name!r} (needed to "
            f"{'write' if exists else 'create and write'} it); search needs only read"
        )


def describe_cluster_error(
    exc: BaseException, settings: Settings | ElasticsearchSettings, *, timeout: float | None = None
) -> str:
    """One line for a failure talking to the cluster: what happened, where, and what to do."""
    es = _es(settings)
    target = describe_target(es)
    if isinstance(exc, ClusterConnectionError):
        return str(exc)
    if isinstance(exc, AuthenticationException):
        return (
            f"Elasticsearch at {target} refused the credentials ({_auth_kind(es)}): HTTP 401. "
            "Check ESSEARCH_ES_USERNAME / ESSEARCH_ES_PASSWORD or ESSEARCH_ES_API_KEY"
        )
    if isinstance(exc, AuthorizationException):
        return (
            f"Elasticsearch at {target} denied this to {_auth_kind(es)}: HTTP 403 "
            f"{_privilege_reason(exc)}"
        )
    if isinstance(exc, ValueError) and "ingerprint" in str(exc):
        return (
            f"ESSEARCH_ES_SSL_ASSERT_FINGERPRINT is not a SHA-256 fingerprint ({exc}); paste the "
            "64 hex digits, with or without colons, e.g. from `openssl x509 -noout -fingerprint "
            "-sha256 -in http_ca.crt`"
        )
    if isinstance(exc, TlsError):
        return f"TLS with Elasticsearch at {target} failed: {_tls_cause(_text(exc), es)}"
    if isinstance(exc, EsConnectionTimeout):
        waited = f" within {timeout:g}s" if timeout else ""
        return f"Elasticsearch at {target} did not answer{waited}"
    if isinstance(exc, EsConnectionError):
        return f"cannot reach Elasticsearch at {target}: {_connection_cause(_text(exc), es)}"
    if isinstance(exc, ApiError):
        return f"Elasticsearch at {target} answered HTTP {exc.status_code}: {es_error_reason(exc)}"
    if isinstance(exc, TransportError):
        return f"cannot talk to Elasticsearch at {target}: {exc.message}"
    return f"Elasticsearch at {target}: {exc}"


def _text(exc: BaseException) -> str:
    """The transport's message, which holds the cause (str() of the error says only its kind)."""
    message = getattr(exc, "message", None)
    return message if isinstance(message, str) and message else str(exc.__cause__ or exc)


def _auth_kind(es: ElasticsearchSettings) -> str:
    """Who we tried to be, without any part of a secret."""
    if es.api_key is not None:
        return "the configured API key"
    if es.username:
        return f"user {es.username!r}"
    return "no credentials configured"


def _reason(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("reason") or error.get("type") or exc.message)
    return str(error or exc.message)


_UNAUTHORIZED = re.compile(
    r"action \[(?P<action>[^\]]+)\] is unauthorized for (?:user|API key id) \[(?P<who>[^\]]+)\]"
    r".*?(?:on indices \[(?P<indices>[^\]]+)\])?.*?"
    r"(?:granted by the (?P<kind>cluster|index) privileges \[(?P<privs>[^\]]+)\])?$"
)


def _privilege_reason(exc: ApiError) -> str:
    """'missing privilege X for action Y on index Z' from the security exception's reason."""
    reason = _reason(exc)
    match = _UNAUTHORIZED.search(reason)
    if not match or not match.group("privs"):
        return reason
    where = f" on {match.group('indices')}" if match.group("indices") else ""
    return (
        f"missing {match.group('kind')} privilege (one of: {match.group('privs')}) for "
        f"{match.group('action')}{where}"
    )


def _tls_cause(text: str, es: ElasticsearchSettings) -> str:
    lowered = text.lower()
    if "wrong version number" in lowered or "record layer failure" in lowered:
        return (
            "the server did not answer in TLS, so that port is probably plain HTTP: "
            "use http:// in ESSEARCH_ES_URL"
        )
    if "fingerprint" in lowered:
        return (
            "the server's certificate does not match ESSEARCH_ES_SSL_ASSERT_FINGERPRINT "
            "(pin the fingerprint of the CA or of the node certificate)"
        )
    if "certificate verify failed" in lowered or "self-signed" in lowered:
        if es.ca_certs:
            return (
                f"the server's certificate is not signed by the CA in {es.ca_certs} "
                "(ESSEARCH_ES_CA_CERTS); point it at the cluster's CA (e.g. http_ca.crt)"
            )
        return (
            "the server's certificate is not trusted; set ESSEARCH_ES_CA_CERTS to the cluster's "
            "CA file (e.g. config/certs/http_ca.crt) or ESSEARCH_ES_SSL_ASSERT_FINGERPRINT to its "
            "SHA-256 fingerprint (verification stays on)"
        )
    return text


def _connection_cause(text: str, es: ElasticsearchSettings) -> str:
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused (is it running, and on that port?)"
    if "name or service not known" in lowered or "nodename nor servname" in lowered:
        return "unknown host name"
    if (
        "remote end closed" in lowered
        or "remotedisconnected" in lowered
        or "connection reset" in lowered
        or "connection aborted" in lowered
    ) and any(u.startswith("http://") for u in es.url):
        return "the server closed the connection; if it serves HTTPS, use https:// in the URL"
    return text
