"""One small error hierarchy: every message names the input that was wrong and where."""

from __future__ import annotations


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
