"""Zero-downtime migration against the real node.

The new embedder is essearch's OpenAI backend with `dimensions=128`, talking to a local
pytest-httpserver that speaks the embeddings API and answers with the real MiniLM vectors cut to
128 dimensions and renormalised (what text-embedding-3 does with `dimensions`). So the migration
really changes the embedding space (384 -> 128 dims) and kNN after the swap is meaningful.
`_reindex` is absent on this node, so every copy here is client-side (PIT + search_after).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from essearch.embedders.openai_backend import OpenAIEmbedder
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.es.capabilities import probe
from essearch.index import IndexManager
from essearch.index.chunking import default_config
from essearch.index.schema import write_alias_for
from essearch.ingest.pipeline import IngestOptions, ingest
from essearch.ops import (
    ReindexOptions,
    gc,
    plan_gc,
    plan_reindex,
    plan_rollback,
    rollback,
    run_reindex,
)
from essearch.ops.migration_state import read_state

NEW_DIMS = 128
SMALL_CHUNKS = replace(default_config("local", None), size=24, overlap=0)


def corpus(n: int) -> list[dict[str, Any]]:
    topics = ["volcanoes erupt lava", "penguins swim in cold seas", "compilers parse source code"]
    return [
        {
            "id": f"d{i}",
            "title": f"Doc {i}",
            "text": f"Passage {i} is about {topics[i % 3]}. "
            + ("It goes on for a while to make a second chunk. " * 3 * (i % 2)),
        }
        for i in range(n)
    ]


class FakeOpenAI:
    """An embeddings endpoint answering with MiniLM vectors shortened to `dimensions`."""

    def __init__(self, local_embedder: Any) -> None:
        self.local = local_embedder
        self.calls = 0

    def handle(self, request: Request) -> Response:
        body = json.loads(request.data)
        self.calls += 1
        vectors = self.local.embed_documents(body["input"])
        dims = body.get("dimensions") or len(vectors[0])
        data = []
        for i, vector in enumerate(vectors):
            short = vector[:dims]
            norm = math.sqrt(sum(x * x for x in short))
            data.append({"object": "embedding", "index": i, "embedding": [x / norm for x in short]})
        answer = {"object": "list", "data": data, "model": body["model"], "usage": {}}
        return Response(json.dumps(answer), content_type="application/json")


@pytest.fixture
def fake_openai(local_embedder, httpserver: HTTPServer) -> FakeOpenAI:
    fake = FakeOpenAI(local_embedder)
    httpserver.expect_request("/v1/embeddings", method="POST").respond_with_handler(fake.handle)
    return fake


@pytest.fixture
def new_embedder(httpserver: HTTPServer, fake_openai: FakeOpenAI):
    embedder = OpenAIEmbedder(
        "text-embedding-3-small",
        api_key="sk-test-not-a-secret",
        base_url=httpserver.url_for("/v1"),
        dimensions=NEW_DIMS,
        batch_size=16,
        max_retries=0,
    )
    yield embedder
    embedder.close()


@pytest.fixture
def populated(es_client, index_name, settings_for, local_embedder, tmp_path):
    """Version 1 built with the local MiniLM (384 dims) and a small corpus ingested into it."""
    settings = settings_for(index_name)
    IndexManager(es_client, settings, local_embedder.info).init()
    report = write_docs(es_client, settings, local_embedder, corpus(24), tmp_path)
    assert report.ok and report.indexed > 24  # some documents have two chunks
    return settings


def write_docs(client, settings, embedder, docs, tmp_path):
    options = IngestOptions(chunker=SMALL_CHUNKS, dead_letter=tmp_path / "ingest-dead.jsonl")
    return ingest(docs, settings=settings, client=client, embedder=embedder, options=options)


def fail_after(embedder, calls: int):
    """Make `embedder.embed_documents` raise after `calls` calls; returns the real method."""
    real = embedder.embed_documents
    count = {"n": 0}

    def dies(texts):
        count["n"] += 1
        if count["n"] > calls:
            raise EmbeddingError("embedding server went away")
        return real(texts)

    embedder.embed_documents = dies
    return real


def alias_target(client, alias: str) -> list[str]:
    return sorted(client.indices.get_alias(name=alias).body)


def knn_ids(client, index: str, embedder, text: str, k: int = 3) -> list[str]:
    body = {
        "size": k,
        "_source": False,
        "knn": {
            "field": "vector",
            "query_vector": embedder.embed_query(text),
            "k": k,
            "num_candidates": 50,
        },
    }
    return [h["_id"] for h in client.search(index=index, body=body)["hits"]["hits"]]


def doc_ids(client, index: str) -> set[str]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, size=1000, source=["doc_id"])["hits"]["hits"]
    return {h["_source"]["doc_id"] for h in hits}


def chunk_texts(client, index: str, doc_id: str) -> list[str]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, size=100, query={"term": {"doc_id": doc_id}})["hits"]["hits"]
    return [h["_source"]["text"] for h in hits]


def test_plan_names_source_target_and_dims_change(es_client, populated, new_embedder) -> None:
    settings = populated
    plan = plan_reindex(es_client, settings, new_embedder)
    name = settings.index.name
    assert plan.source == f"{name}-v1" and plan.target == f"{name}-v2" and not plan.resume
    assert plan.embedder_changes["dims"] == (384, NEW_DIMS)
    assert plan.embedder_changes["provider"] == ("local", "openai")
    assert plan.needs_reembed and plan.strategy == "client"  # no reindex module on this node
    assert plan.estimated_chunks == es_client.count(index=name)["count"]
    assert plan.estimated_documents == 24
    assert any("vector.dims" in change for change in plan.mapping_changes)
    assert not es_client.indices.exists(index=plan.target)  # planning creates nothing


def test_migration_to_other_dims_keeps_searches_and_writes_made_during_the_copy(
    es_client, populated, local_embedder, new_embedder, fake_openai, tmp_path
) -> None:
    settings = populated
    name, write_alias = settings.index.name, write_alias_for(settings.index.name)
    total_before = es_client.count(index=name)["count"]
    d3_before, d5_before = (
        len(chunk_texts(es_client, name, "d3")),
        len(chunk_texts(es_client, name, "d5")),
    )
    assert knn_ids(es_client, name, local_embedder, "lava from a volcano")  # before
    during: dict[str, Any] = {}

    def while_copying(stats) -> None:
        if stats.batches != 1:
            return
        # searches still work through the read alias, which still serves version 1
        during["alias"] = alias_target(es_client, name)
        during["knn"] = knn_ids(es_client, name, local_embedder, "penguins in the sea")
        # a new document, a changed document and a deleted chunk, all through the write alias
        changed = {"id": "d3", "title": "Doc 3", "text": "Rewritten: glaciers carve valleys."}
        new = {"id": "late", "title": "Late", "text": "A document written during the copy."}
        during["ingest"] = write_docs(es_client, settings, local_embedder, [changed, new], tmp_path)
        gone = es_client.search(index=name, query={"term": {"doc_id": "d5"}})["hits"]["hits"]
        for hit in gone:
            es_client.delete(index=write_alias, id=hit["_id"])
        during["deleted"] = len(gone)

    options = ReindexOptions(
        batch_size=8, dead_letter=tmp_path / "dead.jsonl", on_batch=while_copying
    )
    result = run_reindex(es_client, settings, new_embedder, options=options)

    assert result.status == "swapped", result.to_dict()
    assert during["alias"] == [f"{name}-v1"] and len(during["knn"]) == 3
    assert during["ingest"].ok and during["deleted"] >= 1
    assert result.catchup_passes[0]["copied"] >= 2 and result.catchup_passes[0]["deleted"] >= 1
    assert result.catchup_passes[-1] == {"copied": 0, "deleted": 0}
    assert result.verify.ok and result.verify.knn_self_hits == 1.0
    # both aliases moved together; the old version is still there for rollback
    assert alias_target(es_client, name) == [f"{name}-v2"]
    assert alias_target(es_client, write_alias) == [f"{name}-v2"]
    assert es_client.indices.exists(index=f"{name}-v1")
    # the writes made during the copy are in the new version; the deleted document is not
    ids = doc_ids(es_client, name)
    assert "late" in ids and "d5" not in ids and len(ids) == 24
    assert chunk_texts(es_client, name, "d3") == ["Rewritten: glaciers carve valleys."]
    assert es_client.count(index=name)["count"] == es_client.count(index=f"{name}-v1")["count"]
    # d3 now has one chunk, d5 none, "late" one
    assert es_client.count(index=name)["count"] == total_before - d3_before - d5_before + 2
    # the new version is in the new space: 128 dims, recorded, searchable with the new embedder
    manager = IndexManager(es_client, settings)
    assert manager.recorded_model() == new_embedder.info
    mapping = es_client.indices.get_mapping(index=f"{name}-v2").body[f"{name}-v2"]["mappings"]
    assert mapping["properties"]["vector"]["dims"] == NEW_DIMS
    top = knn_ids(es_client, name, new_embedder, "Rewritten: glaciers carve valleys.", k=1)
    assert top and top[0].startswith("d3::")
    state = read_state(es_client, f"{name}-v2")
    assert state["status"] == "swapped" and state["migrated_from"] == f"{name}-v1"
    # the old embedder can no longer write; the new one can (the model guard follows the alias)
    after = write_docs(
        es_client, settings, new_embedder, [{"id": "after", "text": "x y z"}], tmp_path
    )
    assert after.ok and "after" in doc_ids(es_client, name)


def test_killed_migration_leaves_old_version_serving_and_resumes(
    es_client, populated, local_embedder, new_embedder, tmp_path
) -> None:
    settings = populated
    name = settings.index.name
    real = fail_after(new_embedder, calls=2)
    options = ReindexOptions(batch_size=8, dead_letter=tmp_path / "dead.jsonl")
    first = run_reindex(es_client, settings, new_embedder, options=options)
    assert first.status == "interrupted" and "embedding server went away" in first.interrupted
    assert first.copy["indexed"] == 16
    # the alias still serves version 1, and searching it works
    assert alias_target(es_client, name) == [f"{name}-v1"]
    assert knn_ids(es_client, name, local_embedder, "compilers")
    target = f"{name}-v2"
    assert read_state(es_client, target)["status"] == "copying"
    assert not es_client.indices.get_alias(index=target).body[target]["aliases"]

    new_embedder.embed_documents = real
    plan = plan_reindex(es_client, settings, new_embedder)
    assert plan.resume and plan.target == target
    second = run_reindex(es_client, settings, new_embedder, options=options, plan=plan)
    assert second.status == "swapped", second.to_dict()
    assert second.copy["skipped"] == 16  # the chunks copied before the failure were kept
    assert second.copy["embedded"] == plan.estimated_chunks - 16
    assert alias_target(es_client, name) == [target]
    assert es_client.count(index=name)["count"] == plan.estimated_chunks


def test_changed_plan_restarts_the_unfinished_target_cleanly(
    es_client, populated, new_embedder, local_embedder, tmp_path
) -> None:
    settings = populated
    name = settings.index.name
    options = ReindexOptions(batch_size=8, dead_letter=tmp_path / "dead.jsonl", swap=False)
    assert run_reindex(es_client, settings, new_embedder, options=options).status == "verified"
    # a different target plan (another analyzer) with the same embedder: the v2 target is stale
    other = settings.model_copy(
        update={"index": settings.index.model_copy(update={"analyzer": "whitespace"})}
    )
    plan = plan_reindex(es_client, other, new_embedder)
    assert plan.stale_target == f"{name}-v2" and not plan.resume
    result = run_reindex(
        es_client, other, new_embedder, options=replace(options, swap=True), plan=plan
    )
    assert result.status == "swapped" and result.copy["skipped"] == 0
    mapping = es_client.indices.get_mapping(index=name).body[f"{name}-v2"]["mappings"]
    assert mapping["properties"]["text"]["analyzer"] == "whitespace"


def test_analyzer_change_copies_vectors_without_embedding(
    es_client, populated, local_embedder, tmp_path
) -> None:
    settings = populated
    name = settings.index.name
    new = settings.model_copy(
        update={"index": settings.index.model_copy(update={"analyzer": "whitespace"})}
    )
    plan = plan_reindex(es_client, new, local_embedder)
    assert not plan.needs_reembed and plan.strategy == "client" and plan.analyzer_changed
    assert any("analyzer" in change for change in plan.mapping_changes)
    server_plan = plan_reindex(
        es_client,
        new,
        local_embedder,
        capabilities=replace(probe(es_client), modules=frozenset({"reindex"})),
    )
    assert server_plan.strategy == "server"  # chosen only because the (pretend) probe has it
    result = run_reindex(
        es_client, new, local_embedder, options=ReindexOptions(dead_letter=None), plan=plan
    )
    assert result.status == "swapped", result.interrupted
    assert result.copy["embedded"] == 0
    assert result.verify.knn_self_hits == 1.0  # vectors copied as they were
    hits = es_client.search(index=name, query={"match": {"text": "lava."}})["hits"]["hits"]
    assert hits  # whitespace analyzer: "lava." is a token as written
    assert not es_client.search(index=name, query={"match": {"text": "lava"}})["hits"]["hits"]


def test_rollback_catches_up_writes_and_gc_never_deletes_an_aliased_version(
    es_client, populated, local_embedder, new_embedder, tmp_path
) -> None:
    settings = populated
    name = settings.index.name
    options = ReindexOptions(batch_size=16, dead_letter=tmp_path / "dead.jsonl")
    assert run_reindex(es_client, settings, new_embedder, options=options).status == "swapped"
    write_docs(
        es_client, settings, new_embedder, [{"id": "post", "text": "after the swap"}], tmp_path
    )

    plan = plan_rollback(es_client, settings)
    assert plan.current == f"{name}-v2" and plan.previous == f"{name}-v1"
    assert plan.writes_since_swap >= 1 and not plan.same_embedder
    with pytest.raises(ConfigurationError, match="needs its embedder"):
        rollback(es_client, settings, plan=plan)
    with pytest.raises(Exception, match="dims"):  # the wrong embedder for v1 is refused
        rollback(es_client, settings, plan=plan, embedder=new_embedder)
    result = rollback(es_client, settings, plan=plan, embedder=local_embedder)
    assert result.rolled_back and result.caught_up["indexed"] >= 1
    assert alias_target(es_client, name) == [f"{name}-v1"]
    assert alias_target(es_client, write_alias_for(name)) == [f"{name}-v1"]
    assert "post" in doc_ids(es_client, name)
    assert knn_ids(es_client, name, local_embedder, "after the swap", k=1)[0].startswith("post::")
    assert read_state(es_client, f"{name}-v2")["status"] == "rolled_back"

    gc_plan = plan_gc(es_client, settings)
    assert gc_plan.delete == [f"{name}-v2"] and f"{name}-v1" in gc_plan.keep
    gc_plan.delete.append(f"{name}-v1")  # even when asked, an aliased version is not deleted
    assert gc(es_client, settings, gc_plan) == [f"{name}-v2"]
    assert es_client.indices.exists(index=f"{name}-v1")
    assert not es_client.indices.exists(index=f"{name}-v2")
    assert es_client.count(index=name)["count"] > 0


def test_cli_dry_run_reindex_gc_confirmation_and_rollback(
    es_client, populated, es_url, httpserver, fake_openai, tmp_path, monkeypatch
) -> None:
    from click.testing import CliRunner

    from essearch.cli import main

    settings = populated
    name = settings.index.name
    monkeypatch.chdir(tmp_path)
    env = {
        "ESSEARCH_ES_URL": es_url,
        "ESSEARCH_INDEX_NAME": name,
        "ESSEARCH_INDEX_REPLICAS": "0",
        "ESSEARCH_EMBEDDER_API_KEY": "sk-test-not-a-secret",
        "ESSEARCH_EMBEDDER_MAX_RETRIES": "0",
    }
    new = ["--provider", "openai", "--dimensions", str(NEW_DIMS)]
    new += ["--base-url", httpserver.url_for("/v1")]
    runner = CliRunner()

    dry = runner.invoke(main, ["reindex", *new, "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.output)["plan"]
    assert plan["source"] == f"{name}-v1" and plan["target"] == f"{name}-v2"
    assert plan["embedder_changes"]["dims"] == [384, NEW_DIMS]
    assert "sk-test" not in dry.output
    assert not es_client.indices.exists(index=f"{name}-v2")

    run = runner.invoke(main, ["reindex", *new, "--json", "--batch-size", "16"], env=env)
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["status"] == "swapped"

    refused = runner.invoke(main, ["gc"], env=env, input="n\n")
    assert refused.exit_code != 0 and f"{name}-v1" in refused.output
    assert es_client.indices.exists(index=f"{name}-v1")

    back = runner.invoke(main, ["rollback", "--no-catch-up", "--yes", "--json"], env=env)
    assert back.exit_code == 0, back.output
    assert alias_target(es_client, name) == [f"{name}-v1"]

    deleted = runner.invoke(main, ["gc", "--yes", "--json"], env=env)
    assert deleted.exit_code == 0, deleted.output
    assert json.loads(deleted.output)["deleted"] == [f"{name}-v2"]
    assert es_client.indices.exists(index=f"{name}-v1") and es_client.count(index=name)["count"]


# -- re-chunking --------------------------------------------------------------------------------
BIGGER = replace(default_config("local", None), size=64, overlap=8)


def long_corpus(n: int) -> list[dict[str, Any]]:
    """Documents of several 24-token chunks (paragraphs, sentences, Chinese too); no two chunks
    share their text, so every sample of verify can find its own document."""
    topics = ["volcanoes erupt lava", "penguins swim in cold seas", "compilers parse source code"]
    docs = []
    for i in range(n):
        text = f"Passage {i} is about {topics[i % 3]}. " + " ".join(
            f"Sentence {j} of passage {i} adds detail number {i * 10 + j}." for j in range(i % 4)
        )
        text += f"\n\nA second paragraph of passage {i} adds {i}7{i} more, with a few clauses."
        if i % 4 == 3:
            text += f"\n\n第{i}号火山喷发时，岩浆从地壳深处涌出。冷却后形成玄武岩，覆盖大片土地。"
        docs.append({"id": f"d{i}", "title": f"Doc {i}", "text": text})
    return docs


def chunks_by_id(client, index: str) -> dict[str, dict[str, Any]]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, size=1000, query={"match_all": {}})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def expected_ids(docs: list[dict[str, Any]], config) -> set[str]:
    from essearch.ingest.chunker import Chunker
    from essearch.ingest.loaders import Document

    chunker = Chunker(config)
    return {
        c.id
        for d in docs
        for c in chunker.chunks(Document(id=d["id"], text=d["text"], title=d.get("title")))
    }


def test_rechunking_migration_cuts_every_document_as_a_fresh_ingest_would(
    es_client, index_name, settings_for, local_embedder, tmp_path
) -> None:
    settings = settings_for(index_name)
    short = {"id": "short", "title": "Short", "text": "A short note about basalt."}
    docs = [*long_corpus(16), short]  # `short` is one chunk at either size: its vector is kept
    assert write_docs(es_client, settings, local_embedder, docs, tmp_path).ok
    name, write_alias = index_name, write_alias_for(index_name)
    before = chunks_by_id(es_client, name)
    assert set(before) == expected_ids(docs, SMALL_CHUNKS)
    changed = {"id": "d2", "title": "Doc 2", "text": "Rewritten during the copy. " * 12}
    late = {"id": "late", "title": "Late", "text": "Written while the migration ran. " * 10}
    during: dict[str, Any] = {}

    def while_copying(stats) -> None:
        if stats.batches != 1:
            return
        during["alias"] = alias_target(es_client, name)
        during["knn"] = knn_ids(es_client, name, local_embedder, "penguins in the sea")
        during["ingest"] = write_docs(
            es_client, settings, local_embedder, [changed, late], tmp_path
        )
        gone = es_client.search(index=name, query={"term": {"doc_id": "d5"}})["hits"]["hits"]
        for hit in gone:
            es_client.delete(index=write_alias, id=hit["_id"])

    bigger = settings_for(index_name, index={"chunk_size": 64, "chunk_overlap": 8})
    plan = plan_reindex(es_client, bigger, local_embedder)
    assert plan.needs_rechunk and not plan.needs_reembed and plan.strategy == "client"
    assert plan.old_chunking.size == 24 and plan.new_chunking.size == 64
    options = ReindexOptions(
        batch_size=16, dead_letter=tmp_path / "dead.jsonl", on_batch=while_copying
    )
    result = run_reindex(es_client, bigger, local_embedder, options=options, plan=plan)

    assert result.status == "swapped", result.to_dict()
    assert during["alias"] == [f"{name}-v1"] and len(during["knn"]) == 3 and during["ingest"].ok
    assert result.verify.ok and result.verify.knn_self_hits == 1.0
    assert result.verify.bm25_self_hits == 1.0 and result.verify.bm25_overlap is not None
    assert result.catchup_passes[0]["copied"] >= 2 and result.catchup_passes[0]["deleted"] == 1
    # every document is cut exactly as `ingest` cuts it with the new chunking: same ids
    final_docs = [d for d in docs if d["id"] not in {"d2", "d5"}] + [changed, late]
    after = chunks_by_id(es_client, name)
    assert set(after) == expected_ids(final_docs, BIGGER)
    kept = {d["id"] for d in docs} - {"d2", "d5"}
    assert sum(s["doc_id"] in kept for s in after.values()) < sum(
        s["doc_id"] in kept for s in before.values()
    )  # fewer, larger chunks
    assert all(s["content_hash"] for s in after.values()) and "d5" not in {
        s["doc_id"] for s in after.values()
    }
    # vectors of chunks whose text did not change were kept, only the others embedded
    unchanged = set(before) & set(after)  # same document, position and text
    assert unchanged and result.copy["embedded"] > 0
    assert result.copy["indexed"] - result.copy["embedded"] >= len(unchanged)
    # the new version records its chunking; ingest follows it and finds nothing to do
    manager = IndexManager(es_client, settings)
    assert manager.recorded_chunking(f"{name}-v2").size == 64
    again = write_docs_following_index(es_client, settings, local_embedder, final_docs, tmp_path)
    assert again.ok and again.embedded == 0 and again.skipped == len(after)
    assert chunks_by_id(es_client, name).keys() == after.keys()

    # rollback re-chunks the writes made after the swap with the old version's chunking
    post = {"id": "post", "title": "Post", "text": "Written after the swap, long enough. " * 8}
    assert write_docs_following_index(es_client, settings, local_embedder, [post], tmp_path).ok
    back_plan = plan_rollback(es_client, settings)
    assert not back_plan.same_chunking and back_plan.needs_embedder
    with pytest.raises(ConfigurationError, match="needs its embedder"):
        rollback(es_client, settings, plan=back_plan)
    back = rollback(es_client, settings, plan=back_plan, embedder=local_embedder)
    assert back.rolled_back and back.caught_up["indexed"] >= 2
    v1_post = {i for i, s in chunks_by_id(es_client, name).items() if s["doc_id"] == "post"}
    assert v1_post == expected_ids([post], SMALL_CHUNKS)


def write_docs_following_index(client, settings, embedder, docs, tmp_path):
    """Ingest with no chunk options: the index's recorded chunking decides."""
    options = IngestOptions(dead_letter=tmp_path / "ingest-dead.jsonl")
    return ingest(docs, settings=settings, client=client, embedder=embedder, options=options)


def test_new_embedder_with_another_default_rechunks_and_a_killed_run_resumes(
    es_client, index_name, settings_for, local_embedder, new_embedder, tmp_path
) -> None:
    settings = settings_for(index_name)
    docs = [
        {"id": f"long{i}", "title": f"Long {i}", "text": f"Sentence {i} about rocks. " * 60}
        for i in range(10)
    ]
    report = write_docs_following_index(es_client, settings, local_embedder, docs, tmp_path)
    assert report.ok and report.indexed > 10  # MiniLM's default: 200-token chunks
    plan = plan_reindex(es_client, settings, new_embedder)
    assert plan.needs_rechunk and "default" in plan.chunking_note
    assert (plan.new_chunking.unit, plan.new_chunking.size) == ("chars", 1500)
    assert any(line.startswith("chunking: 200 tokens") for line in plan.describe())

    real = fail_after(new_embedder, calls=1)
    options = ReindexOptions(batch_size=8, dead_letter=tmp_path / "dead.jsonl")
    first = run_reindex(es_client, settings, new_embedder, options=options, plan=plan)
    assert first.status == "interrupted" and alias_target(es_client, index_name) == [
        f"{index_name}-v1"
    ]
    copied = first.copy["indexed"]
    assert copied > 0
    new_embedder.embed_documents = real
    resumed = plan_reindex(es_client, settings, new_embedder)
    assert resumed.resume and resumed.needs_rechunk
    second = run_reindex(es_client, settings, new_embedder, options=options, plan=resumed)
    assert second.status == "swapped", second.to_dict()
    assert second.copy["embedded"] == len(expected_ids(docs, resumed.new_chunking)) - copied
    assert set(chunks_by_id(es_client, index_name)) == expected_ids(docs, resumed.new_chunking)


@pytest.mark.parametrize("rechunk", [False, True], ids=["same-chunking", "rechunking"])
def test_a_delete_between_the_last_catch_up_and_the_swap_is_not_resurrected(
    es_client, index_name, settings_for, local_embedder, tmp_path, monkeypatch, rechunk
) -> None:
    import essearch.ops.reindex as reindex_module

    settings = settings_for(index_name)
    docs = long_corpus(8)
    assert write_docs(es_client, settings, local_embedder, docs, tmp_path).ok
    real_verify = reindex_module.verify
    deleted: list[str] = []

    def delete_then_verify(client, source, target, **kwargs):
        report = real_verify(client, source, target, **kwargs)
        # after the last catch-up pass, just before the swap: d1 is deleted from the old version
        hits = client.search(index=source, query={"term": {"doc_id": "d1"}})["hits"]["hits"]
        deleted.extend(h["_id"] for h in hits)
        for hit in hits:
            client.delete(index=source, id=hit["_id"])
        return report

    monkeypatch.setattr(reindex_module, "verify", delete_then_verify)
    target = (
        settings_for(index_name, index={"chunk_size": 64, "chunk_overlap": 8})
        if rechunk
        else settings_for(index_name, index={"analyzer": "whitespace"})
    )
    result = run_reindex(
        es_client, target, local_embedder, options=ReindexOptions(dead_letter=tmp_path / "d.jsonl")
    )
    assert result.status == "swapped", result.to_dict()
    # the unit is the document when re-chunking, else the chunk
    assert len(deleted) > 1
    assert result.post_swap["deleted_since_last_pass"] == (1 if rechunk else len(deleted))
    assert "d1" not in doc_ids(es_client, index_name)
    assert doc_ids(es_client, index_name) == {d["id"] for d in docs} - {"d1"}


def test_ingest_refuses_other_chunking_on_a_filled_index_and_records_it_on_an_empty_one(
    es_client, index_name, settings_for, local_embedder, tmp_path
) -> None:
    settings = settings_for(index_name)
    manager = IndexManager(es_client, settings, local_embedder.info)
    manager.init()
    assert manager.recorded_chunking(f"{index_name}-v1").size == 200  # MiniLM's default
    assert write_docs(es_client, settings, local_embedder, corpus(4), tmp_path).ok  # empty: ok
    assert manager.recorded_chunking(f"{index_name}-v1").size == 24
    bigger = IngestOptions(chunker=BIGGER, dead_letter=tmp_path / "x.jsonl")
    with pytest.raises(ConfigurationError, match="essearch reindex --chunk-size 64"):
        ingest(
            corpus(2), settings=settings, client=es_client, embedder=local_embedder, options=bigger
        )
    following = write_docs_following_index(es_client, settings, local_embedder, corpus(4), tmp_path)
    assert following.ok and following.embedded == 0  # same chunks as the first run


def test_cli_reindex_chunk_size_dry_run_names_the_rechunking(
    es_client, populated, es_url, tmp_path, monkeypatch
) -> None:
    from click.testing import CliRunner

    from essearch.cli import main

    monkeypatch.chdir(tmp_path)
    env = {
        "ESSEARCH_ES_URL": es_url,
        "ESSEARCH_INDEX_NAME": populated.index.name,
        "ESSEARCH_INDEX_REPLICAS": "0",
    }
    runner = CliRunner()
    dry = runner.invoke(main, ["reindex", "--chunk-size", "64", "--dry-run", "--json"], env=env)
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.output)["plan"]
    assert plan["needs_rechunk"] and not plan["needs_reembed"]
    assert plan["old_chunking"]["size"] == 24 and plan["new_chunking"]["size"] == 64
    assert plan["new_chunking"]["overlap"] == 16  # left out: min(32, size // 4)
    text = runner.invoke(main, ["reindex", "--chunk-size", "64", "--dry-run"], env=env)
    assert "re-chunked" in text.output and "chunking: 24 tokens" in text.output
    bad = runner.invoke(main, ["reindex", "--chunk-size", "0", "--dry-run"], env=env)
    assert bad.exit_code != 0 and "--chunk-size" in bad.output


def test_a_repeated_migration_takes_unchanged_texts_from_the_embedding_cache(
    es_client, populated, new_embedder, fake_openai, tmp_path
) -> None:
    from essearch.embedders.cache import CachedEmbedder

    settings = populated
    name = settings.index.name
    cached = CachedEmbedder(new_embedder, tmp_path / "cache.sqlite")
    options = ReindexOptions(batch_size=16, dead_letter=tmp_path / "dead.jsonl")
    first = run_reindex(es_client, settings, cached, options=options)
    assert first.status == "swapped" and fake_openai.calls > 0
    # go back, drop the new version, and migrate again: the same (model, text) pairs
    rollback(es_client, settings, catch_up=False)
    gc(es_client, settings, plan_gc(es_client, settings))
    assert not es_client.indices.exists(index=f"{name}-v2")
    calls_before = fake_openai.calls
    second = run_reindex(es_client, settings, cached, options=options)
    assert second.status == "swapped", second.to_dict()
    assert second.copy["embedded"] == first.copy["embedded"] > 0
    assert fake_openai.calls == calls_before  # every vector came from the cache
    assert cached.stats.hits >= second.copy["embedded"]


def test_the_steps_of_a_run_one_at_a_time(
    es_client, populated, local_embedder, new_embedder, tmp_path
) -> None:
    """`run_reindex` is these steps in order; each is checked here on its own."""
    from essearch.ingest.failures import DeadLetter
    from essearch.ops.reindex import (
        catch_up_step,
        copy_step,
        make_copier,
        post_swap_step,
        prepare_target,
        swap_step,
        verify_step,
    )

    settings = populated
    name = settings.index.name
    plan = plan_reindex(es_client, settings, new_embedder)
    manager = IndexManager(es_client, settings, plan.new_embedder)

    assert prepare_target(es_client, manager, plan) is False  # a fresh run, not a resume
    assert es_client.indices.exists(index=plan.target)
    assert read_state(es_client, plan.target)["status"] == "copying"

    dead = DeadLetter(tmp_path / "steps-dead.jsonl")
    copier = make_copier(es_client, plan, new_embedder, dead=dead)
    assert copy_step(es_client, plan, copier) == {}  # client-side copy: no server counts
    es_client.indices.refresh(index=plan.target)
    assert es_client.count(index=plan.target)["count"] == plan.estimated_chunks

    late = {"id": "late", "title": "Late", "text": "Written after the copy, before the swap."}
    write_docs(es_client, settings, local_embedder, [late], tmp_path)
    caught = catch_up_step(es_client, plan, copier, max_passes=5)
    assert read_state(es_client, plan.target)["status"] == "catching_up"
    assert "late" in doc_ids(es_client, plan.target)

    report = verify_step(es_client, plan, new_embedder, ReindexOptions())
    assert report.ok
    assert read_state(es_client, plan.target)["status"] == "verified"

    swap_step(es_client, manager, plan)
    assert alias_target(es_client, name) == [plan.target]
    assert read_state(es_client, plan.target)["status"] == "swapped"

    # a write that reached the old version just before the swap is copied afterwards
    from essearch.ops.migration_state import now_iso

    template = es_client.search(index=plan.source, size=1)["hits"]["hits"][0]["_source"]
    edge = {**template, "doc_id": "edge", "text": "Landed on the old version at the swap."}
    edge["indexed_at"] = now_iso()
    es_client.index(index=plan.source, id="edge-0", document=edge, refresh=True)
    post = post_swap_step(es_client, plan, copier, caught, margin_s=300.0)
    assert post["indexed"] >= 1 and post["deleted_since_last_pass"] == 0
    assert "edge" in doc_ids(es_client, plan.target)
    dead.close()
