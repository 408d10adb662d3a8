"""One small error hierarchy: every message names the input that was wrong and where."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class EssearchError(Exception):
    """Base class for every error essearch raises on purpose."""


class ConfigurationError(EssearchError):
    """A setting, a definition file or an argument is invalid."""


class ClusterConnectionError(EssearchError):
    """Elasticsearch could not be reached, refused the credentials, or is the wrong version."""


class CapabilityError(EssearchError):
    """The cluster lacks a feature (module, plugin, analyzer) that was asked for."""


class LicenseError(CapabilityError):
    """The cluster's licence does not allow a feature that was explicitly asked for."""


class ModelMismatchError(EssearchError):
    """The configured embedder differs from the one recorded on the index."""


class EmbeddingError(EssearchError):
    """An embedding backend failed or returned something unusable."""


class ProvisioningError(EssearchError):
    """A local Elasticsearch node could not be found, downloaded or started."""


class IngestError(EssearchError):
    """An ingest run could not continue (item-level failures are reported, not raised)."""


class SearchError(EssearchError):
    """A search request was invalid or failed."""


def es_error_reason(error: Any) -> str:
    """What Elasticsearch said, as one line: `type: reason (caused by type: reason)`.

    The one formatter for every error essearch reports from Elasticsearch: an `ApiError` (its
    body), an error object (`{"type", "reason", "caused_by", "root_cause"}`, as in bulk items and
    `_msearch` responses), or anything else (its text). Root causes come first: for a failed search
    they name the real problem, where the top level only says "all shards failed".
    """
    body = getattr(error, "body", error) if isinstance(error, BaseException) else error
    if isinstance(body, Mapping) and "error" in body:
        body = body["error"]
    if not isinstance(body, Mapping):
        if isinstance(body, str) and body:
            return body
        return str(getattr(error, "message", None) or error)
    roots = [c for c in body.get("root_cause") or [] if isinstance(c, Mapping)]
    text = "; ".join(dict.fromkeys(_type_and_reason(c) for c in roots or [body]))
    cause = body.get("caused_by")
    if isinstance(cause, Mapping) and cause.get("reason") and str(cause["reason"]) not in text:
        text += f" (caused by {_type_and_reason(cause)})"
    return text


def _type_and_reason(error: Mapping[str, Any]) -> str:
    kind, reason = error.get("type"), error.get("reason")
    if kind and reason:
        return f"{kind}: {reason}"
    return str(reason or kind or dict(error))
