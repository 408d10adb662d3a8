"""The capability probe: what this cluster can do, asked from the cluster itself.

Features consult a `Capabilities` object instead of guessing or catching errors late. The probe
reads the version and build flavour and the modules and plugins of every node (`_nodes/plugins`),
and the licence (`_license`); a feature counts as present only when every node has it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
)

from essearch.es.versions import INDEX_TYPE_SINCE

# Licences that unlock Enterprise features (rrf/linear retrievers, inference API).
ENTERPRISE_LICENCES = frozenset({"enterprise", "trial"})
# Analyzers built into the server itself; the rest need analysis-common or a plugin.
SERVER_ANALYZERS = frozenset({"standard", "simple", "whitespace", "keyword", "stop", "classic"})
LANGUAGE_ANALYZERS = frozenset(
    [
        "arabic",
        "armenian",
        "basque",
        "bengali",
        "brazilian",
        "bulgarian",
        "catalan",
        "cjk",
        "czech",
        "danish",
        "dutch",
        "english",
        "estonian",
        "finnish",
        "french",
        "galician",
        "german",
        "greek",
        "hindi",
        "hungarian",
        "indonesian",
        "irish",
        "italian",
        "latvian",
        "lithuanian",
        "norwegian",
        "persian",
        "portuguese",
        "romanian",
        "russian",
        "serbian",
        "sorani",
        "spanish",
        "swedish",
        "turkish",
        "thai",
        "pattern",
        "fingerprint",
        "snowball",
    ]
)
PLUGIN_ANALYZERS = {
    "analysis-smartcn": frozenset({"smartcn"}),
    "analysis-ik": frozenset({"ik_smart", "ik_max_word"}),
    "analysis-icu": frozenset({"icu_analyzer"}),
    "analysis-kuromoji": frozenset({"kuromoji"}),
    "analysis-nori": frozenset({"nori"}),
}


def parse_version(text: str) -> tuple[int, int, int]:
    core = text.split("-", 1)[0]
    parts = [int(p) for p in core.split(".")[:3] if p.isdigit()]
    while len(parts) < 3:
        parts.append(0)
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True)
class Capabilities:
    """What a cluster offers. Build it with `probe(client)`; construct by hand in unit tests."""

    version: str
    build_flavor: str = "default"
    license_type: str = "basic"
    license_status: str = "active"
    modules: frozenset[str] = field(default_factory=frozenset)
    plugins: frozenset[str] = field(default_factory=frozenset)
    cluster_name: str = ""
    node_count: int = 1
    # Set when the credentials could not read cluster facts and safe assumptions were made.
    limited: str = ""

    # -- facts derived from the raw ones -------------------------------------------------------
    @property
    def version_tuple(self) -> tuple[int, int, int]:
        return parse_version(self.version)

    @property
    def major(self) -> int:
        return self.version_tuple[0]

    @property
    def components(self) -> frozenset[str]:
        return self.modules | self.plugins

    def has_component(self, *names: str) -> bool:
        """True when a module or plugin with one of these names (or an `x-pack-` form) exists."""
        return any(name in self.components or f"x-pack-{name}" in self.components for name in names)

    @property
    def enterprise_licensed(self) -> bool:
        return self.license_type in ENTERPRISE_LICENCES and self.license_status == "active"

    @property
    def reindex(self) -> bool:
        return self.has_component("reindex")

    @property
    def update_by_query(self) -> bool:
        return self.reindex

    @property
    def delete_by_query(self) -> bool:
        return self.reindex

    @property
    def painless(self) -> bool:
        return self.has_component("lang-painless")

    @property
    def ingest_processors(self) -> bool:
        return self.has_component("ingest-common")

    @property
    def rank_feature(self) -> bool:
        return self.has_component("mapper-extras")

    @property
    def analysis_common(self) -> bool:
        return self.has_component("analysis-common")

    @property
    def rrf_module(self) -> bool:
        return self.has_component("rank-rrf")

    @property
    def rrf_retriever(self) -> bool:
        """Server-side RRF retriever: module present, ES >= 8.16, Enterprise/trial licence."""
        return self.rrf_module and self.version_tuple >= (8, 16, 0) and self.enterprise_licensed

    @property
    def linear_retriever(self) -> bool:
        """Server-side linear retriever: module present, ES >= 8.18, Enterprise/trial licence."""
        return self.rrf_module and self.version_tuple >= (8, 18, 0) and self.enterprise_licensed

    @property
    def rrf_weights(self) -> bool:
        """Per-retriever weights inside `rrf` arrived in 9.2."""
        return self.rrf_retriever and self.version_tuple >= (9, 2, 0)

    @property
    def inference_module(self) -> bool:
        return self.has_component("inference")

    @property
    def inference(self) -> bool:
        """The `_inference` API: module present and an Enterprise/trial licence."""
        return self.inference_module and self.enterprise_licensed

    @property
    def ml(self) -> bool:
        return self.has_component("ml")

    @property
    def sql(self) -> bool:
        """The `_sql` API (x-pack-sql)."""
        return self.has_component("sql")

    @property
    def unsigned_long(self) -> bool:
        """The `unsigned_long` field type (x-pack-unsigned-long)."""
        return self.has_component("unsigned-long")

    @property
    def knn_query(self) -> bool:
        """The `knn` query (inside `bool` etc.) arrived in 8.12; 8.11 has only top-level `knn`."""
        return self.version_tuple >= (8, 12, 0)

    @property
    def rescore_vector(self) -> bool:
        """`rescore_vector.oversample` in index_options and kNN: 9.0 (preview, GA 9.1), and
        backported to 8.18 (8.19.9 accepts it in mappings and in `knn`, verified on a node)."""
        return self.version_tuple >= (8, 18, 0)

    def supports_index_type(self, index_type: str) -> bool:
        since = INDEX_TYPE_SINCE.get(index_type)
        return since is not None and self.version_tuple >= since

    @property
    def index_types(self) -> list[str]:
        return [t for t in INDEX_TYPE_SINCE if self.supports_index_type(t)]

    @property
    def analyzers(self) -> frozenset[str]:
        """Analyzers this cluster is expected to know (confirm one with `analyzer_available`)."""
        names = set(SERVER_ANALYZERS)
        if self.analysis_common:
            names |= LANGUAGE_ANALYZERS
        for plugin, offered in PLUGIN_ANALYZERS.items():
            if plugin in self.plugins:
                names |= offered
        return frozenset(names)

    def features(self) -> dict[str, bool]:
        """Every derived yes/no fact, by name (for `essearch doctor`)."""
        return {
            "dense_vector": True,
            "knn": True,
            "knn_query": self.knn_query,
            "reindex": self.reindex,
            "update_by_query": self.update_by_query,
            "delete_by_query": self.delete_by_query,
            "painless": self.painless,
            "ingest_processors": self.ingest_processors,
            "rank_feature": self.rank_feature,
            "analysis_common": self.analysis_common,
            "rrf_retriever": self.rrf_retriever,
            "linear_retriever": self.linear_retriever,
            "inference": self.inference,
            "rescore_vector": self.rescore_vector,
            "sql": self.sql,
        }

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["modules"] = sorted(self.modules)
        data["plugins"] = sorted(self.plugins)
        data["features"] = self.features()
        data["index_types"] = self.index_types
        data["analyzers"] = sorted(self.analyzers)
        return data


def _from_responses(nodes: dict[str, Any], licence: dict[str, Any] | None) -> Capabilities:
    node_list = list(nodes.get("nodes", {}).values())
    versions = sorted((n.get("version", "0.0.0") for n in node_list), key=parse_version)
    modules: set[str] | None = None
    plugins: set[str] | None = None
    for node in node_list:
        node_modules = {m["name"] for m in node.get("modules", [])}
        node_plugins = {p["name"] for p in node.get("plugins", [])}
        modules = node_modules if modules is None else modules & node_modules
        plugins = node_plugins if plugins is None else plugins & node_plugins
    lic = (licence or {}).get("license", {})
    return Capabilities(
        version=versions[0] if versions else "0.0.0",
        build_flavor=node_list[0].get("build_flavor", "default") if node_list else "unknown",
        license_type=lic.get("type", "none") if licence else "none",
        license_status=lic.get("status", "none") if licence else "none",
        modules=frozenset(modules or ()),
        plugins=frozenset(plugins or ()),
        cluster_name=nodes.get("cluster_name", ""),
        node_count=len(node_list),
    )


# A node that has just formed its cluster writes its self-generated licence a moment later: the
# probe waits this long for it rather than report (and let callers cache) licence "none".
LICENCE_WAIT_S = 15.0
ASSUMED_VERSION = "8.11.0"


def _limited(version: str | None, what: str) -> Capabilities:
    """Safe assumptions for credentials that may not read cluster information."""
    return Capabilities(
        version=version or ASSUMED_VERSION,
        build_flavor="unknown",
        license_type="unknown",
        license_status="unknown",
        limited=(
            f"these credentials may not read {what} (the cluster `monitor` privilege): assuming "
            f"Elasticsearch {version or ASSUMED_VERSION + ' features'}, a Basic licence and no "
            "optional modules"
        ),
    )


def _licence_pending(nodes: dict[str, Any], licence: dict[str, Any] | None) -> bool:
    """True while a node with x-pack licensing has not written its licence yet."""
    if licence and licence.get("license", {}).get("type"):
        return False
    return any(
        any(m.get("name") == "x-pack-core" for m in node.get("modules", []))
        for node in nodes.get("nodes", {}).values()
    )


def probe(client: Elasticsearch, *, licence_wait: float = LICENCE_WAIT_S) -> Capabilities:
    """Ask the cluster what it can do (two requests; more while a new node writes its licence)."""
    from essearch.es.client import server_version

    try:
        nodes = client.nodes.info(metric="plugins").body
    except AuthorizationException:
        return _limited(server_version(client), "the node list")
    deadline = time.monotonic() + licence_wait
    while True:
        try:
            licence: dict[str, Any] | None = client.license.get().body
        except AuthorizationException:
            return replace(_from_responses(nodes, None), license_type="unknown")
        except (NotFoundError, ApiError):
            licence = None  # no x-pack licensing at all (e.g. OSS builds), or not yet written
        if not _licence_pending(nodes, licence) or time.monotonic() >= deadline:
            return _from_responses(nodes, licence)
        time.sleep(0.5)


async def probe_async(
    client: AsyncElasticsearch, *, licence_wait: float = LICENCE_WAIT_S
) -> Capabilities:
    """`probe` for the async client."""
    from essearch.es.client import server_version

    try:
        nodes = (await client.nodes.info(metric="plugins")).body
    except AuthorizationException:
        return _limited(server_version(client), "the node list")
    deadline = time.monotonic() + licence_wait
    while True:
        try:
            licence: dict[str, Any] | None = (await client.license.get()).body
        except AuthorizationException:
            return replace(_from_responses(nodes, None), license_type="unknown")
        except (NotFoundError, ApiError):
            licence = None
        if not _licence_pending(nodes, licence) or time.monotonic() >= deadline:
            return _from_responses(nodes, licence)
        await asyncio.sleep(0.5)


def analyzer_available(client: Elasticsearch, analyzer: str) -> bool:
    """The authoritative check: ask `_analyze` to run the analyzer once."""
    try:
        client.indices.analyze(analyzer=analyzer, text="probe")
    except ApiError as exc:
        if exc.status_code == 400:
            return False
        raise
    return True
