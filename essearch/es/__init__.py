"""Everything about reaching Elasticsearch: clients, the capability probe, health, local nodes.

The names below load on first use: importing the Elasticsearch client costs most of a second,
which commands that never talk to a cluster (`mappings list`, `--help`) should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from essearch._lazy import lazy_getattr

_LAZY = {
    "Capabilities": "essearch.es.capabilities",
    "probe": "essearch.es.capabilities",
    "probe_async": "essearch.es.capabilities",
    "make_async_client": "essearch.es.client",
    "make_client": "essearch.es.client",
    "ClusterHealth": "essearch.es.health",
    "check_health": "essearch.es.health",
}

if TYPE_CHECKING:
    from essearch.es.capabilities import Capabilities, probe, probe_async
    from essearch.es.client import make_async_client, make_client
    from essearch.es.health import ClusterHealth, check_health

__getattr__ = lazy_getattr(__name__, _LAZY)

__all__ = [
    "Capabilities",
    "ClusterHealth",
    "check_health",
    "make_async_client",
    "make_client",
    "probe",
    "probe_async",
]
