"""The ingest pipeline against the real node with the real MiniLM embedder (small corpora)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_ingest_support import count, create_index

from essearch.embedders.base import EmbedderInfo
from essearch.errors import ModelMismatchError
from essearch.index.chunking import default_config
from essearch.ingest.chunker import Chunker
from essearch.ingest.loaders import Document, load
from essearch.ingest.pipeline import IngestOptions, ingest

SMALL_CHUNKS = replace(default_config("local", None), size=24, overlap=0)


def corpus(n: int, *, long_every: int = 5) -> list[dict]:
    docs = []
    for i in range(n):
        text = f"Passage {i} explains how hybrid search mixes BM25 with kNN."
        if (i + 1) % long_every == 0:
            text += " It also covers chunking long documents. Overlap keeps context. " * 3
        docs.append({"id": f"d{i}", "title": f"Doc {i}", "text": text, "metadata": {"n": str(i)}})
    return docs


def write(path: Path, records: list[dict], extra_lines: dict[int, str] | None = None) -> Path:
    lines = [json.dumps(r) for r in records]
    for position, line in sorted((extra_lines or {}).items()):
        lines.insert(position - 1, line)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def expected_chunk_ids(path: Path) -> set[str]:
    chunker = Chunker(SMALL_CHUNKS)
    return {c.id for d in load([path]) if isinstance(d, Document) for c in chunker.chunks(d)}


def indexed_ids(es_client, settings) -> set[str]:
    es_client.indices.refresh(index=settings.index.name)
    resp = es_client.search(index=settings.index.name, size=10_000, source=False)
    return {hit["_id"] for hit in resp["hits"]["hits"]}


@pytest.fixture
def setup(es_client, index_name, settings_for, local_embedder, tmp_path):
    settings = settings_for(index_name)
    create_index(es_client, settings, local_embedder.info)

    def run(source, **overrides):
        options = IngestOptions(
            chunker=SMALL_CHUNKS, dead_letter=tmp_path / "dead.jsonl", bulk_chunk_size=50
        )
        options = replace(options, **overrides)
        return ingest(
            source, settings=settings, client=es_client, embedder=local_embedder, options=options
        )

    return settings, run


def test_exact_counts_malformed_lines_and_a_rerun_adds_nothing(setup, es_client, tmp_path):
    settings, run = setup
    path = write(tmp_path / "c.jsonl", corpus(40), {5: "{broken", 12: '{"id": "x"}'})
    expected = expected_chunk_ids(path)
    assert len(expected) > 40  # some documents were split

    report = run(path)
    assert report.documents == 40 and report.chunks == len(expected)
    assert report.indexed == len(expected) and report.embedded == len(expected)
    assert report.failed == 2 and report.failures_by_stage == {"load": 2}
    assert not report.ok
    assert indexed_ids(es_client, settings) == expected
    dead = [json.loads(x) for x in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["source"] for d in dead] == [f"{path}:5", f"{path}:12"]

    again = run(path, dead_letter=tmp_path / "dead2.jsonl")
    assert (again.embedded, again.indexed, again.deleted) == (0, 0, 0)
    assert again.skipped == len(expected)
    assert count(es_client, settings) == len(expected)
    hit = es_client.search(index=settings.index.name, query={"term": {"doc_id": "d1"}})
    source = hit["hits"]["hits"][0]["_source"]
    assert source["title"] == "Doc 1" and source["metadata"] == {"n": "1"}
    assert source["chunk"] == 0 and source["content_hash"] and source["indexed_at"]


def test_changed_document_replaces_its_chunks_and_drops_stale_ones(setup, es_client, tmp_path):
    settings, run = setup
    records = corpus(6, long_every=1)
    path = write(tmp_path / "c.jsonl", records)
    assert run(path).ok
    before = count(es_client, settings, doc_id="d2")
    assert before >= 3

    records[2]["text"] = "A much shorter rewrite of passage two."
    write(path, records)
    report = run(path)
    assert report.ok, report.failures
    assert report.indexed == 1 and report.deleted == before
    assert report.skipped == report.chunks - 1  # the other documents were not re-embedded
    assert count(es_client, settings, doc_id="d2") == 1
    assert indexed_ids(es_client, settings) == expected_chunk_ids(path)


def test_item_level_bulk_errors_are_reported_not_swallowed(setup, es_client, tmp_path):
    settings, run = setup
    es_client.indices.put_mapping(
        index=settings.index.name,
        properties={"metadata": {"properties": {"year": {"type": "integer"}}}},
    )
    records = corpus(10, long_every=100)
    records[3]["metadata"]["year"] = "not a year"
    records[4]["metadata"]["year"] = 2021
    report = run(write(tmp_path / "c.jsonl", records))
    assert report.failed == 1 and report.failures_by_stage == {"index": 1}
    failure = report.failures[0]
    assert failure.doc_id == "d3" and failure.status == 400
    assert "year" in failure.reason
    assert count(es_client, settings) == 9
    dead = json.loads((tmp_path / "dead.jsonl").read_text().splitlines()[0])
    assert dead["doc_id"] == "d3" and dead["stage"] == "index"


def test_wrong_dimensions_are_refused_before_any_write(
    es_client, index_name, settings_for, local_embedder, tmp_path
):
    settings = settings_for(index_name)
    info = local_embedder.info
    create_index(es_client, settings, EmbedderInfo(**{**info.to_dict(), "dims": 8}))
    with pytest.raises(ModelMismatchError):
        ingest(
            [{"id": "a", "text": "some text"}],
            settings=settings,
            client=es_client,
            embedder=local_embedder,
            options=IngestOptions(dead_letter=tmp_path / "dead.jsonl"),
        )
    assert count(es_client, settings) == 0


class TruncatingEmbedder:
    """The real embedder, whose vectors for texts containing BROKEN lose dimensions."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def embed_documents(self, texts):
        vectors = self._inner.embed_documents(texts)
        return [v[:10] if "BROKEN" in t else v for t, v in zip(texts, vectors, strict=True)]


def test_bad_vectors_never_reach_the_index(setup, es_client, local_embedder, tmp_path):
    settings, _ = setup
    records = corpus(8, long_every=100)
    records[5]["text"] = "This one is BROKEN by the embedder."
    report = ingest(
        records,
        settings=settings,
        client=es_client,
        embedder=TruncatingEmbedder(local_embedder),
        options=IngestOptions(chunker=SMALL_CHUNKS, dead_letter=tmp_path / "dead.jsonl"),
    )
    assert report.failures_by_stage == {"embed": 1}
    assert "10 dims" in report.failures[0].reason and report.failures[0].doc_id == "d5"
    assert count(es_client, settings) == 7
    assert count(es_client, settings, doc_id="d5") == 0


def test_cli_ingest_json_summary_and_exit_code(
    es_url, es_client, index_name, settings_for, local_embedder, tmp_path, monkeypatch
):
    from essearch.cli import main

    settings = settings_for(index_name)
    create_index(es_client, settings, local_embedder.info)
    path = write(tmp_path / "c.jsonl", corpus(5, long_every=100), {3: "not json"})
    monkeypatch.setenv("ESSEARCH_ES_URL", es_url)
    monkeypatch.setenv("ESSEARCH_INDEX_NAME", index_name)
    args = ["ingest", str(path), "--json", "--dead-letter", str(tmp_path / "dl.jsonl")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["documents"] == 5 and summary["indexed"] == 5 and summary["failed"] == 1
    assert summary["first_failures"][0]["source"].endswith("c.jsonl:3")
    write(path, corpus(5, long_every=100))
    result = CliRunner().invoke(main, [*args, "--quiet"])
    assert result.exit_code == 0, result.output
    assert count(es_client, settings) == 5
