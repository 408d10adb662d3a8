"""Resilience on a private real node: real 429 rejections lose nothing; a killed node is resumed.

The node has a one-thread write pool with a one-slot queue, so concurrent bulks really get
`es_rejected_execution_exception` (429) and the helpers' backoff has to carry them through.
"""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from test_ingest_support import count, create_index

from essearch.es.provision import LocalNode
from essearch.index.chunking import default_config
from essearch.ingest.chunker import Chunker
from essearch.ingest.loaders import Document, load
from essearch.ingest.pipeline import IngestOptions, ingest
from essearch.settings import Settings

pytestmark = [pytest.mark.slow, pytest.mark.integration]  # each test starts its own node

SMALL_CHUNKS = replace(default_config("local", None), size=24, overlap=0)


@pytest.fixture(scope="module")
def tiny_node():
    node = LocalNode(settings={"thread_pool.write.queue_size": "1", "thread_pool.write.size": "1"})
    try:
        node.start()
    except BaseException:
        node.close()
        raise
    yield node
    node.close()


def client_for(node: LocalNode) -> Elasticsearch:
    return Elasticsearch(node.url, request_timeout=30, max_retries=2, retry_on_timeout=True)


def write_corpus(path: Path, n: int, prefix: str) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            text = f"{prefix} passage {i}: vectors, BM25 and rank fusion. Chunks overlap a bit."
            out.write(json.dumps({"id": f"{prefix}-{i}", "text": text}) + "\n")
    return path


def expected_ids(*paths: Path) -> set[str]:
    chunker = Chunker(SMALL_CHUNKS)
    return {c.id for d in load(paths) if isinstance(d, Document) for c in chunker.chunks(d)}


def all_ids(client: Elasticsearch, name: str) -> set[str]:
    client.indices.refresh(index=name)
    resp = client.search(index=name, size=10_000, source=False)
    return {hit["_id"] for hit in resp["hits"]["hits"]}


def rejected_writes(client: Elasticsearch) -> int:
    stats = client.nodes.stats(metric="thread_pool").body
    return sum(n["thread_pool"]["write"]["rejected"] for n in stats["nodes"].values())


def test_real_429_rejections_are_retried_and_nothing_is_lost(tiny_node, local_embedder, tmp_path):
    client = client_for(tiny_node)
    settings = Settings(es={"url": tiny_node.url}, index={"name": "ingest-429", "replicas": 0})
    create_index(client, settings, local_embedder.info)
    paths = [write_corpus(tmp_path / f"c{k}.jsonl", 300, f"p{k}") for k in range(3)]
    before = rejected_writes(client)
    options = IngestOptions(
        chunker=SMALL_CHUNKS,
        bulk_chunk_size=5,
        bulk_threads=6,
        embed_batch=300,
        queue_size=8,
        initial_backoff=0.05,
        max_backoff=1.0,
        max_retries=30,
    )
    reports: list = []

    def one(path: Path) -> None:
        reports.append(
            ingest(
                path,
                settings=settings,
                client=client,
                embedder=local_embedder,
                options=replace(options, dead_letter=path.with_suffix(".dead")),
            )
        )

    threads = [threading.Thread(target=one, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert rejected_writes(client) > before, "the node never rejected a write: test is void"
    assert all(r.ok for r in reports), [r.failures[:3] for r in reports]
    expected = expected_ids(*paths)
    assert sum(r.indexed for r in reports) == len(expected)
    assert all_ids(client, settings.index.name) == expected
    client.close()


class KillAfter:
    """A progress view that kills the node once enough chunks are indexed (mid-ingest)."""

    def __init__(self, node: LocalNode, after: int) -> None:
        self.node, self.after, self.killed_at = node, after, None

    def start(self, total_documents):
        pass

    def update(self, counters):
        if self.killed_at is None and counters["indexed"] >= self.after:
            self.killed_at = counters["indexed"]
            self.node.kill()

    def stop(self):
        pass


def test_killed_node_then_rerun_gives_the_uninterrupted_result(tiny_node, local_embedder, tmp_path):
    client = client_for(tiny_node)
    settings = Settings(es={"url": tiny_node.url}, index={"name": "ingest-kill", "replicas": 0})
    create_index(client, settings, local_embedder.info)
    path = write_corpus(tmp_path / "c.jsonl", 600, "k")
    options = IngestOptions(
        chunker=SMALL_CHUNKS, dead_letter=tmp_path / "dead.jsonl", bulk_chunk_size=50
    )
    killer = KillAfter(tiny_node, after=100)
    first = ingest(
        path,
        settings=settings,
        client=client,
        embedder=local_embedder,
        options=options,
        progress=killer,
    )
    assert killer.killed_at is not None
    assert first.interrupted and not first.ok
    expected = expected_ids(path)
    assert first.indexed < len(expected)

    tiny_node.start()
    client.cluster.health(wait_for_status="yellow", timeout="60s")
    second = ingest(
        path, settings=settings, client=client, embedder=local_embedder, options=options
    )
    assert second.ok, (second.interrupted, second.failures[:3])
    assert second.skipped >= first.indexed - 100  # what survived was not embedded again
    assert all_ids(client, settings.index.name) == expected
    assert count(client, settings) == len(expected)
    client.close()
