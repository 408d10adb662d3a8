"""essearch's errors as HTTP responses: one status per kind, one line naming the input.

Native routes answer `{"error": {"type", "message"}}`; Dify's `/retrieval` answers Dify's
`{"error_code", "error_msg"}` (see `routes/retrieval.py`). Tracebacks go to the log, never to the
client.
"""

from __future__ import annotations

import logging

from elastic_transport import ConnectionError as TransportConnectionError
from elastic_transport import ConnectionTimeout
from elasticsearch import ApiError

from essearch.errors import (
    CapabilityError,
    ClusterConnectionError,
    ConfigurationError,
    EmbeddingError,
    EssearchError,
    ModelMismatchError,
    SearchError,
)

log = logging.getLogger("essearch.serve")


class NotServed(EssearchError):
    """An alias this service does not expose (or not to this key)."""


class Forbidden(EssearchError):
    """The key is valid but not for this alias."""


class ModelNotLoaded(EssearchError):
    """kNN/hybrid asked while the embedding model failed to load."""


def status_of(exc: Exception) -> tuple[int, str]:
    """(HTTP status, error type) for an exception raised while serving a request."""
    if isinstance(exc, Forbidden):
        return 403, "forbidden"
    if isinstance(exc, NotServed):
        return 404, "not_found"
    if isinstance(exc, ModelNotLoaded):
        return 503, "model_not_loaded"
    if isinstance(exc, ModelMismatchError):
        return 409, "model_mismatch"
    if isinstance(exc, CapabilityError):
        return 400, "unsupported_here"
    if isinstance(exc, SearchError):
        text = str(exc)
        if text.startswith(("invalid search", "filter")):
            return 422, "invalid_search"
        if "not found" in text:
            return 404, "not_found"
        return 502, "search_failed"
    if isinstance(exc, EmbeddingError):
        return 502, "embedding_failed"
    if isinstance(exc, (ClusterConnectionError, TransportConnectionError, ConnectionTimeout)):
        return 503, "cluster_unreachable"
    if isinstance(exc, ApiError):
        return 502, "elasticsearch_error"
    if isinstance(exc, ConfigurationError):
        return 400, "configuration"
    return 500, "internal"


def message_of(exc: Exception) -> str:
    """What the client is told; unexpected errors are logged with their traceback instead."""
    status, _kind = status_of(exc)
    if status == 500:
        log.exception("unexpected error while serving a request", exc_info=exc)
        return "internal error (logged by the server)"
    if isinstance(exc, (TransportConnectionError, ConnectionTimeout)):
        return "Elasticsearch is not reachable"
    if isinstance(exc, ApiError):
        return f"Elasticsearch answered HTTP {exc.status_code}: {exc.message}"
    return str(exc)
