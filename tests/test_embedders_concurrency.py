"""Concurrent embedding: batches in flight, order kept, Retry-After shared, ingest and dead letters.

Against a threaded local OpenAI-compatible server (`fake_embedding_servers`), which answers
requests at the same time and counts how many it was serving at once.
"""

from __future__ import annotations

import json
import threading
import time

import pytest
from fake_embedding_servers import DIMS, EmbeddingServer, serving, vector_for

from essearch.embedders.concurrency import ordered_map
from essearch.embedders.openai_backend import OpenAIEmbedder
from essearch.errors import EmbeddingError
from essearch.ingest.chunker import default_config
from essearch.ingest.pipeline import IngestOptions, ingest


def openai_embedder(url: str, concurrency: int, batch_size: int = 2, **kwargs) -> OpenAIEmbedder:
    return OpenAIEmbedder(
        "fake-model",
        api_key="sk-test-0123456789abcdef",
        base_url=f"{url}/v1",
        normalize=False,
        batch_size=batch_size,
        concurrency=concurrency,
        max_retries=3,
        retry_base_delay=0.01,
        **kwargs,
    )


def test_ordered_map_keeps_order_bounds_threads_and_stops_on_failure() -> None:
    running, most = 0, 0
    lock = threading.Lock()
    started: list[int] = []

    def work(i: int) -> int:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            started.append(i)
        time.sleep(0.05 if i % 2 else 0.01)  # finish out of order
        with lock:
            running -= 1
        if i == 2:
            raise ValueError("item 2 failed")
        return i * 10

    assert ordered_map(work, [0, 1, 3, 5, 7, 9], 3) == [0, 10, 30, 50, 70, 90]
    assert most == 3
    started.clear()
    with pytest.raises(ValueError, match="item 2"):
        ordered_map(work, list(range(40)), 2)
    assert len(started) < 40  # the rest were cancelled, not sent
    assert ordered_map(work, [1, 3], 1) == [10, 30]


def test_batches_go_out_together_and_come_back_in_order() -> None:
    texts = [f"text number {i}" for i in range(16)]  # 8 batches of 2
    with serving(EmbeddingServer(delay=0.2)) as server:
        embedder = openai_embedder(server.url, concurrency=4)
        vectors = embedder.embed_documents(texts)
    assert vectors == [vector_for(t) for t in texts]
    assert server.max_in_flight == 4  # (the speed-up is measured by bench_embedders.py)
    assert len(server.requests) == 8


def test_concurrency_one_sends_one_batch_at_a_time() -> None:
    with serving(EmbeddingServer(delay=0.05)) as server:
        embedder = openai_embedder(server.url, concurrency=1)
        assert len(embedder.embed_documents([f"t{i}" for i in range(6)])) == 6
    assert server.max_in_flight == 1 and len(server.requests) == 3


def test_retry_after_of_one_batch_holds_back_the_others() -> None:
    server = EmbeddingServer(delay=0.5)
    server.failures.append((429, {"Retry-After": "1"}, {"error": {"message": "slow down"}}))
    texts = [f"text {i}" for i in range(12)]  # 6 batches, 3 at a time
    with serving(server):
        embedder = openai_embedder(server.url, concurrency=3)
        vectors = embedder.embed_documents(texts)
    assert vectors == [vector_for(t) for t in texts]
    assert len(server.requests) == 7  # one retry
    told, refused = server.failed_at[0], server.requests[0]["body"]["input"]
    # the retry, and every batch not yet sent when the 429 came back, waited out Retry-After
    later = [
        r["at"]
        for r in server.requests[1:]
        if r["body"]["input"] == refused or texts.index(r["body"]["input"][0]) >= 6
    ]
    assert len(later) == 4
    assert all(at - told >= 0.95 for at in later)


def test_a_batch_that_keeps_failing_raises_with_the_reason() -> None:
    server = EmbeddingServer()
    server.fail_when = lambda body: (
        (400, {}, {"error": {"message": "input 'poison' refused"}})
        if any("poison" in t for t in body["input"])
        else None
    )
    with serving(server):
        embedder = openai_embedder(server.url, concurrency=4)
        with pytest.raises(EmbeddingError, match="poison"):
            embedder.embed_documents(["a", "b", "c", "poison", "e", "f"])


@pytest.mark.integration
def test_ingest_keeps_batches_in_flight_and_dead_letters_only_the_bad_document(
    es_client, settings_for, index_name, tmp_path
) -> None:
    server = EmbeddingServer(delay=0.05)
    server.fail_when = lambda body: (
        (400, {}, {"error": {"message": "this input is refused"}})
        if any("poison" in t for t in body["input"])
        else None
    )
    docs = [{"id": f"d{i}", "text": f"document {i} about concurrent embedding"} for i in range(40)]
    docs[17]["text"] = "a poison document"
    with serving(server):
        embedder = openai_embedder(server.url, concurrency=4, batch_size=4)
        settings = settings_for(index_name)
        report = ingest(
            docs,
            settings=settings,
            client=es_client,
            embedder=embedder,
            options=IngestOptions(
                chunker=default_config("openai", None), dead_letter=tmp_path / "dead.jsonl"
            ),
        )
    assert server.max_in_flight == 4
    assert report.indexed == 39 and report.failed == 1
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["doc_id"] for d in dead] == ["d17"] and dead[0]["stage"] == "embed"
    es_client.indices.refresh(index=index_name)
    assert es_client.count(index=index_name)["count"] == 39
    assert embedder.info.dims == DIMS


@pytest.mark.integration
def test_reindex_re_embeds_with_batches_in_flight(
    es_client, settings_for, index_name, tmp_path
) -> None:
    from essearch.ops.reindex import ReindexOptions, run_reindex

    docs = [{"id": f"d{i}", "text": f"document {i} to move to another model"} for i in range(40)]
    settings = settings_for(index_name)
    with serving(EmbeddingServer()) as old_server:
        ingest(
            docs,
            settings=settings,
            client=es_client,
            embedder=openai_embedder(old_server.url, concurrency=1),
            options=IngestOptions(
                chunker=default_config("openai", None), dead_letter=tmp_path / "d1.jsonl"
            ),
        )
    with serving(EmbeddingServer(delay=0.05)) as server:
        new = OpenAIEmbedder(
            "fake-model-2",
            api_key="sk-test-0123456789abcdef",
            base_url=f"{server.url}/v1",
            normalize=False,
            batch_size=4,
            concurrency=4,
        )
        options = ReindexOptions(batch_size=32, dead_letter=tmp_path / "d2.jsonl")
        result = run_reindex(es_client, settings, new, options=options)
    assert result.status == "swapped", result.to_dict()
    assert server.max_in_flight == 4
    assert es_client.count(index=settings.index.name)["count"] == 40
