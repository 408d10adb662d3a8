"""The one place that builds Elasticsearch clients from settings.

Both clients retry connection errors, timeouts and 429/502/503/504 with jittered exponential
backoff (the transport's own mechanism). Build one client and reuse it: it owns a connection pool,
which it hands out to threads or tasks in arrival order (`fair.py`).
JSON and NDJSON (`_bulk`, `_msearch`) go through orjson when it is installed (a dependency):
encoding float vectors is the main client-side cost of bulk indexing and kNN queries, and orjson
does it about ten times faster. The client's own orjson option covers JSON only.

The 9.x Python client asks every server for `compatible-with=9`, which 8.x answers with HTTP 400
(`media_type_header_exception`). So the transport asks the server's version first (one
`_nodes/_local` request with plain JSON, which every version accepts) and then sends the
compatibility header of the server's own major. A server outside the supported range is refused
there, with one line naming its version, before any real request is made. When the version cannot
be read (a user without the cluster `monitor` privilege), requests go as plain JSON, which every
supported server reads as its own current API.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from elastic_transport import (
    AsyncTransport,
    HttpHeaders,
    TlsError,
    Transport,
    TransportApiResponse,
    TransportError,
)
from elastic_transport.client_utils import DEFAULT
from elasticsearch import AsyncElasticsearch, Elasticsearch

from essearch.errors import ClusterConnectionError
from essearch.es.capabilities import parse_version
from essearch.es.fair import ThreadGate, pool_capacity
from essearch.settings import ElasticsearchSettings, Settings

RETRY_ON_STATUS = (429, 502, 503, 504)
# The oldest server essearch supports (int8_hnsw, 4096 dims, indexed vectors by default).
MIN_SERVER_VERSION = (8, 11, 0)
SUPPORTED_MAJORS = (8, 9)
SUPPORTED_RANGE = "Elasticsearch 8.11 or later 8.x, or 9.x"
VERSION_PATH = "/_nodes/_local?filter_path=nodes.*.version,nodes.*.build_flavor"
_PLAIN: dict[str, Any] = {"headers": {"accept": "application/json"}}
_ONCE: dict[str, Any] = {**_PLAIN, "max_retries": 0}
_COMPAT_RE = re.compile(r"application/vnd\.elasticsearch\+([\w.-]+);\s*compatible-with=\d+")


class UnsupportedServerError(ClusterConnectionError):
    """The server answered, but it is not an Elasticsearch version essearch supports."""


def unsupported_reason(version: str, is_elasticsearch: bool = True) -> str | None:
    """Why a server of this version cannot be used, or None when it can."""
    if not is_elasticsearch:
        return f"is not Elasticsearch (version {version}; OpenSearch?); essearch needs "
    found = parse_version(version)
    if found[0] not in SUPPORTED_MAJORS or found < MIN_SERVER_VERSION:
        return f"is version {version}; essearch needs "
    return None


def with_compat_headers(headers: Any, major: int | None) -> HttpHeaders:
    """Accept/Content-Type rewritten for the server's major; plain JSON when it is unknown."""
    out = HttpHeaders(headers if isinstance(headers, Mapping) else {})
    for name in ("accept", "content-type"):
        value = out.get(name)
        if value:
            if major is None:
                out[name] = _COMPAT_RE.sub(r"application/\1", value)
            else:
                out[name] = _COMPAT_RE.sub(
                    rf"application/vnd.elasticsearch+\1; compatible-with={major}", value
                )
    return out


class _VersionAware:
    """State shared by the sync and async transports: the server's version, asked once."""

    server_version: str | None = None
    _settled = False

    def _target(self) -> str:
        nodes = self.node_pool.all()  # type: ignore[attr-defined]
        return ", ".join(node.base_url for node in nodes) if nodes else "the cluster"

    @property
    def compat_major(self) -> int | None:
        return parse_version(self.server_version)[0] if self.server_version else None

    def _version_kwargs(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        keep = ("max_retries", "retry_on_timeout", "request_timeout", "retry_on_status")
        return {k: kwargs[k] for k in keep if k in kwargs and kwargs[k] is not DEFAULT}

    def _settle(self, response: TransportApiResponse) -> None:
        """Read the version from the answer; refuse an unsupported server with one line."""
        meta, body = response
        if meta.status in (401, 429) or meta.status >= 500:
            return  # ask again next time; the real request reports the failure
        self._settled = True
        nodes = body.get("nodes", {}) if isinstance(body, dict) else {}
        versions = [str(n["version"]) for n in nodes.values() if isinstance(n, dict)]
        if not versions:
            return  # no `monitor` privilege (403): plain JSON from now on
        version = min(versions, key=parse_version)
        # Elasticsearch >= 7.14 names itself in every answer; OpenSearch (1.x-3.x) never does.
        product = meta.headers.get("x-elastic-product")
        is_es = product == "Elasticsearch" or (
            product is None and (5, 0, 0) <= parse_version(version) < (7, 14, 0)
        )
        reason = unsupported_reason(version, is_es)
        if reason:
            raise UnsupportedServerError(
                f"the server at {self._target()} {reason}{SUPPORTED_RANGE}"
            )
        self.server_version = version


class VersionAwareTransport(_VersionAware, Transport):
    """Admits requests to the pool in arrival order (`fair.py`: urllib3 alone is not fair)."""

    _gate: ThreadGate | None = None
    _gate_nodes = 0

    def perform_request(self, method: str, target: str, **kwargs: Any) -> TransportApiResponse:
        with self._pool_gate():
            if not self._settled:
                self._settle(self._ask_version(kwargs))
            kwargs["headers"] = with_compat_headers(kwargs.get("headers"), self.compat_major)
            return super().perform_request(method, target, **kwargs)

    def _pool_gate(self) -> ThreadGate:
        """The gate for this many nodes (sniffing may add some)."""
        nodes = len(self.node_pool)
        if self._gate is None or self._gate_nodes != nodes:
            self._gate = ThreadGate(pool_capacity(self.node_pool.all()))
            self._gate_nodes = nodes
        return self._gate

    def _ask_version(self, kwargs: Mapping[str, Any]) -> TransportApiResponse:
        """First without retries: a TLS failure is configuration, so it is reported at once."""
        options = self._version_kwargs(kwargs)
        try:
            return super().perform_request("GET", VERSION_PATH, **{**options, **_ONCE})
        except TlsError:
            raise
        except TransportError:
            if options.get("max_retries") == 0:
                raise
        return super().perform_request("GET", VERSION_PATH, **{**options, **_PLAIN})


class AsyncVersionAwareTransport(_VersionAware, AsyncTransport):
    """Admits requests to the pool in arrival order (`fair.py`: aiohttp alone is not fair);
    `asyncio.Semaphore` is FIFO (Python >= 3.11.1)."""

    _gate: asyncio.Semaphore | None = None
    _gate_for: tuple[asyncio.AbstractEventLoop, int] | None = None

    async def perform_request(  # type: ignore[override]
        self, method: str, target: str, **kwargs: Any
    ) -> TransportApiResponse:
        async with self._pool_gate():
            if not self._settled:
                self._settle(await self._ask_version(kwargs))
            kwargs["headers"] = with_compat_headers(kwargs.get("headers"), self.compat_major)
            return await super().perform_request(method, target, **kwargs)

    def _pool_gate(self) -> asyncio.Semaphore:
        """The gate for this event loop and this many nodes (sniffing may add some)."""
        key = (asyncio.get_running_loop(), len(self.node_pool))
        if self._gate is None or self._gate_for != key:
            self._gate = asyncio.Semaphore(pool_capacity(self.node_pool.all()))
            self._gate_for = key
        return self._gate

    async def _ask_version(self, kwargs: Mapping[str, Any]) -> TransportApiResponse:
        options = self._version_kwargs(kwargs)
        try:
            return await super().perform_request("GET", VERSION_PATH, **{**options, **_ONCE})
        except TlsError:
            raise
        except TransportError:
            if options.get("max_retries") == 0:
                raise
        return await super().perform_request("GET", VERSION_PATH, **{**options, **_PLAIN})


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
    serializers = fast_serializers()
    if serializers:
        kwargs["serializers"] = serializers
    if es.cloud_id:
        kwargs["cloud_id"] = es.cloud_id
    else:
        kwargs["hosts"] = list(es.url)
    if es.api_key is not None:
        kwargs["api_key"] = es.api_key.get_secret_value()
    elif es.username:
        password = es.password.get_secret_value() if es.password else ""
        kwargs["basic_auth"] = (es.username, password)
    # TLS options only where TLS is used (the client refuses them for http:// URLs; such a URL to
    # an HTTPS port then gets its own clear message)
    tls = bool(es.cloud_id) or any(url.startswith("https://") for url in es.url)
    if es.ca_certs and tls:
        kwargs["ca_certs"] = str(es.ca_certs)
    if es.ssl_assert_fingerprint and tls:
        kwargs["ssl_assert_fingerprint"] = es.ssl_assert_fingerprint
    return kwargs


def fast_serializers() -> dict[str, Any]:
    """orjson for JSON and NDJSON bodies (the client maps the compatibility mimetypes to them)."""
    try:
        import orjson
        from elasticsearch.serializer import NdjsonSerializer, OrjsonSerializer
    except ImportError:  # orjson missing: the client's standard JSON serializers
        return {}

    class OrjsonNdjsonSerializer(NdjsonSerializer):
        def json_dumps(self, data: Any) -> bytes:
            # non-str keys (an int key in a record's metadata) are written as strings, as the
            # standard json module did for bulk lines
            options = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
            return orjson.dumps(data, default=self.default, option=options)

        def json_loads(self, data: bytes) -> Any:
            return orjson.loads(data)

    return {
        OrjsonSerializer.mimetype: OrjsonSerializer(),
        OrjsonNdjsonSerializer.mimetype: OrjsonNdjsonSerializer(),
    }


def _es_settings(settings: Settings | ElasticsearchSettings | None) -> ElasticsearchSettings:
    if settings is None:
        from essearch.settings import load_settings

        return load_settings().es
    return settings.es if isinstance(settings, Settings) else settings


def make_client(
    settings: Settings | ElasticsearchSettings | None = None, **extra: Any
) -> Elasticsearch:
    """A synchronous client; `settings=None` reads the environment."""
    kwargs = {**client_kwargs(_es_settings(settings)), **extra}
    return Elasticsearch(transport_class=VersionAwareTransport, **kwargs)


def make_async_client(
    settings: Settings | ElasticsearchSettings | None = None, **extra: Any
) -> AsyncElasticsearch:
    """An asynchronous client with the same configuration as `make_client`."""
    kwargs = {**client_kwargs(_es_settings(settings)), **extra}
    return AsyncElasticsearch(transport_class=AsyncVersionAwareTransport, **kwargs)


def server_version(client: Elasticsearch | AsyncElasticsearch) -> str | None:
    """The version the transport learnt before its first request (None: unknown or not ours)."""
    return getattr(client.transport, "server_version", None)


def describe_target(es: ElasticsearchSettings) -> str:
    """The cluster's address as shown in messages (never with credentials)."""
    if es.cloud_id:
        return f"cloud_id {es.cloud_id.split(':', 1)[0]}"
    return ", ".join(es.url)
