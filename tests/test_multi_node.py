"""A 3-node cluster on loopback: a data node SIGKILLed in the middle of an ingest.

With one replica the ingest carries on (the transport retries on the other nodes, replicas are
promoted) and the re-run ends with the exact chunk set; searches answer while the node is down.
With no replica the items bound for the dead node's primaries really fail: they are reported
(dead letter, not ok), and the re-run after the node returns completes the index exactly.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import pytest
from click.testing import CliRunner
from conftest import cleanup_indices
from test_ingest_resilience import SMALL_CHUNKS, all_ids, expected_ids, write_corpus
from test_ingest_support import create_index

from essearch.cli import main
from essearch.es import make_client
from essearch.es.provision import LocalCluster, LocalNode
from essearch.ingest.pipeline import IngestOptions, ingest
from essearch.settings import Settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DOCS = 2000


@pytest.fixture(scope="module")
def cluster():
    nodes = LocalCluster(size=3, heap_mb=256)
    try:
        nodes.start()
    except BaseException:
        nodes.close()
        raise
    yield nodes
    nodes.close()


class KillAfter:
    """A progress view that SIGKILLs one node once enough chunks are indexed, and searches
    through the surviving nodes while it is down."""

    def __init__(self, node: LocalNode, after: int, search) -> None:
        self.node, self.after, self.search = node, after, search
        self.killed_at: int | None = None
        self.searched: list[int] = []
        self.searcher: threading.Thread | None = None

    def start(self, total_documents):
        pass

    def update(self, counters):
        if self.killed_at is None and counters["indexed"] >= self.after:
            self.killed_at = counters["indexed"]
            self.node.kill()
            self.searcher = threading.Thread(target=lambda: self.searched.append(self.search()))
            self.searcher.start()

    def stop(self):
        pass


def _settings(cluster: LocalCluster, name: str, replicas: int) -> Settings:
    return Settings(
        es={"url": ",".join(cluster.urls), "max_retries": 5, "request_timeout": 60},
        index={"name": name, "shards": 3, "replicas": replicas},
    )


def _data_node_to_kill(cluster: LocalCluster) -> LocalNode:
    """A node that is not the elected master (so the cluster keeps its master)."""
    with make_client(Settings(es={"url": cluster.urls[0]})) as client:
        master = client.cat.master(format="json").body[0]["node"]
    return next(n for n in cluster.nodes if n.settings["node.name"] != master)


@pytest.mark.parametrize("replicas", [1, 0])
def test_sigkill_during_ingest_then_rerun_is_exact(cluster, local_embedder, tmp_path, replicas):
    settings = _settings(cluster, f"multi-r{replicas}", replicas)
    client = make_client(settings)
    create_index(client, settings, local_embedder.info)
    client.cluster.health(index=settings.index.name, wait_for_status="green", timeout="60s")
    path = write_corpus(tmp_path / "c.jsonl", DOCS, f"m{replicas}")
    expected = expected_ids(path)
    victim = _data_node_to_kill(cluster)

    def search() -> int:
        return int(client.count(index=settings.index.name).body["count"])

    options = IngestOptions(
        chunker=SMALL_CHUNKS,
        dead_letter=tmp_path / "dead.jsonl",
        bulk_chunk_size=100,
        bulk_timeout="3s",  # items for a dead primary fail after 3s instead of the server's 1m
    )
    killer = KillAfter(victim, after=300, search=search)
    first = ingest(
        path, settings=settings, client=client, embedder=local_embedder, options=options,
        progress=killer,
    )  # fmt: skip
    assert killer.killed_at is not None
    if replicas:
        assert first.ok, (first.interrupted, first.failures[:3])  # carried on without the node
    else:
        assert not first.ok  # items for the dead primaries failed, and say so
        assert first.failed or first.interrupted
        if first.failed:
            dead = (tmp_path / "dead.jsonl").read_text().splitlines()
            assert dead and all(json.loads(line)["reason"] for line in dead)

    # searches answered while the node was down (a partial count on 0 replicas, never an error)
    assert killer.searcher is not None
    killer.searcher.join(timeout=60)
    assert killer.searched and killer.searched[0] > 0

    victim.start(wait=False)
    cluster.wait_for_nodes(3, timeout=180, status="green")
    second = ingest(
        path, settings=settings, client=client, embedder=local_embedder,
        options=replace(options, dead_letter=tmp_path / "dead2.jsonl"),
    )  # fmt: skip
    assert second.ok, (second.interrupted, second.failures[:3])
    assert all_ids(client, settings.index.name) == expected  # exact, no duplicates
    assert client.count(index=settings.index.name).body["count"] == len(expected)
    assert client.cluster.health().body["status"] == "green"
    cleanup_indices(client, settings.index.name)  # a 0-replica index would turn a later kill red
    client.close()


def test_status_says_health_and_unassigned_shards_in_words(cluster, local_embedder, tmp_path):
    settings = _settings(cluster, "multi-status", 1)
    with make_client(settings) as client:
        create_index(client, settings, local_embedder.info)
        client.cluster.health(index="multi-status", wait_for_status="green", timeout="60s")
    env = {"ESSEARCH_ES_URL": ",".join(cluster.urls), "ESSEARCH_INDEX_NAME": "multi-status"}
    result = CliRunner().invoke(main, ["status", "--dims", "384"], env=env)
    assert "cluster green: 3 node(s)" in result.output, result.output
    victim = _data_node_to_kill(cluster)
    victim.kill()
    try:
        cluster.wait_for_nodes(2, timeout=120)
        result = CliRunner().invoke(main, ["status", "--dims", "384"], env=env)
        assert "cluster yellow: 2 node(s)" in result.output, result.output
        assert "unassigned" in result.output and "replica copies" in result.output
    finally:
        victim.start(wait=False)
        cluster.wait_for_nodes(3, timeout=180, status="green")
