"""essearch: semantic and hybrid search on Elasticsearch.

The public surface, importable from the top level; heavy parts load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from essearch._lazy import lazy_getattr
from essearch.errors import (
    CapabilityError,
    ClusterConnectionError,
    ConfigurationError,
    EmbeddingError,
    EssearchError,
    IngestError,
    LicenseError,
    ModelMismatchError,
    ProvisioningError,
    SearchError,
)

__version__ = "0.1.0"

_LAZY = {
    "Settings": "essearch.settings",
    "load_settings": "essearch.settings",
    "create_embedder": "essearch.embedders",
    "Embedder": "essearch.embedders",
    "EmbedderInfo": "essearch.embedders",
    "IndexManager": "essearch.index",
    "ingest": "essearch.ingest",
    "IngestOptions": "essearch.ingest",
    "IngestReport": "essearch.ingest",
    "SearchClient": "essearch.retrieval",
    "AsyncSearchClient": "essearch.retrieval",
    "SearchResult": "essearch.retrieval",
    "Hit": "essearch.retrieval",
    "F": "essearch.retrieval",
    "make_client": "essearch.es",
    "make_async_client": "essearch.es",
    "probe": "essearch.es",
}

if TYPE_CHECKING:
    from essearch.embedders import Embedder, EmbedderInfo, create_embedder
    from essearch.es import make_async_client, make_client, probe
    from essearch.index import IndexManager
    from essearch.ingest import IngestOptions, IngestReport, ingest
    from essearch.retrieval import AsyncSearchClient, F, Hit, SearchClient, SearchResult
    from essearch.settings import Settings, load_settings


__getattr__ = lazy_getattr(__name__, _LAZY)


__all__ = [
    "AsyncSearchClient",
    "CapabilityError",
    "ClusterConnectionError",
    "ConfigurationError",
    "Embedder",
    "EmbedderInfo",
    "EmbeddingError",
    "EssearchError",
    "F",
    "Hit",
    "IndexManager",
    "IngestError",
    "IngestOptions",
    "IngestReport",
    "LicenseError",
    "ModelMismatchError",
    "ProvisioningError",
    "SearchClient",
    "SearchError",
    "SearchResult",
    "Settings",
    "__version__",
    "create_embedder",
    "ingest",
    "load_settings",
    "make_async_client",
    "make_client",
    "probe",
]
