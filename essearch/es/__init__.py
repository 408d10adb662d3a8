"""Everything about reaching Elasticsearch: clients, the capability probe, health, local nodes."""

from essearch.es.capabilities import Capabilities, probe, probe_async
from essearch.es.client import make_async_client, make_client
from essearch.es.health import ClusterHealth, check_health

__all__ = [
    "Capabilities",
    "ClusterHealth",
    "check_health",
    "make_async_client",
    "make_client",
    "probe",
    "probe_async",
]
