"""Documents as RAG users have them, on the real node: every format with its structure, front
matter, metadata by default, precomputed vectors (and the bad rows), --sync, a large document
streamed and interrupted, and the exit codes of `essearch ingest` on SIGINT and SIGTERM."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from document_files import (
    make_corrupt_zip,
    make_docx,
    make_html,
    make_pdf,
    make_pptx,
    make_scanned_pdf,
    make_xlsx,
)
from test_ingest_support import count, create_index

from essearch.embedders.precomputed import PrecomputedEmbedder
from essearch.errors import ModelMismatchError
from essearch.ingest.chunker import default_config
from essearch.ingest.pipeline import IngestOptions, ingest
from essearch.retrieval import F, SearchClient

pytestmark = pytest.mark.integration
SMALL_CHUNKS = replace(default_config("local", None), size=40, overlap=0)
REPO = Path(__file__).resolve().parents[1]


def chunks_of(es_client, settings, doc_id: str) -> list[dict]:
    es_client.indices.refresh(index=settings.index.name)
    response = es_client.search(
        index=settings.index.name,
        query={"term": {"doc_id": doc_id}},
        sort=[{"chunk": "asc"}],
        size=1000,
        source_excludes=["vector"],
    )
    return [hit["_source"] for hit in response["hits"]["hits"]]


def doc_ids(es_client, settings) -> set[str]:
    es_client.indices.refresh(index=settings.index.name)
    response = es_client.search(
        index=settings.index.name, size=0, aggs={"d": {"terms": {"field": "doc_id", "size": 100}}}
    )
    return {b["key"] for b in response["aggregations"]["d"]["buckets"]}


@pytest.fixture
def env(monkeypatch, es_url, index_name):
    monkeypatch.setenv("ESSEARCH_ES_URL", es_url)
    monkeypatch.setenv("ESSEARCH_INDEX_NAME", index_name)
    monkeypatch.setenv("ESSEARCH_INDEX_REPLICAS", "0")
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def test_every_format_is_indexed_with_its_structure_and_broken_files_are_dead_letters(
    es_client, index_name, settings_for, local_embedder, tmp_path
):
    settings = settings_for(index_name)
    docs = tmp_path / "kb"
    docs.mkdir()
    make_pdf(docs / "guide.pdf", ["Refunds take five days.", "Shipping takes two days."])
    make_docx(docs / "manual.docx", [(1, "Manual", "Start."), (2, "Refunds", "Refund rules.")])
    make_pptx(docs / "deck.pptx", [("Q1", "Revenue grew."), ("Q2", "Costs fell.")])
    make_xlsx(docs / "prices.xlsx", {"Prices": [["plan", "price"], ["basic", 10]]})
    make_html(docs / "help.html", "Help", [("Refunds", "Money back."), ("Shipping", "Fast.")])
    (docs / "policy.md").write_text(
        "---\ntitle: Refund policy\ntags: [billing]\ndate: 2024-05-01\n---\n"
        "# Refunds\n\nFive days.",
        encoding="utf-8",
    )
    (docs / "notes.txt").write_text("Plain notes about invoices.", encoding="utf-8")
    make_pdf(docs / "locked.pdf", ["secret"], password="pw")
    make_scanned_pdf(docs / "scan.pdf")
    make_corrupt_zip(docs / "broken.pptx")
    dead = tmp_path / "dead.jsonl"
    report = ingest(
        [docs],
        settings=settings,
        embedder=local_embedder,
        options=IngestOptions(chunker=SMALL_CHUNKS, dead_letter=dead, run_id="run-docs"),
    )
    assert report.documents == 7 and report.failed == 3 and report.run_id == "run-docs"
    lines = [json.loads(line) for line in dead.read_text().splitlines()]
    assert {line["source"]: line["reason"].split(" (")[0] for line in lines} == {
        "locked.pdf": "encrypted PDF",
        "scan.pdf": "no text layer in 2 page(s)",
        "broken.pptx": "not a valid PPTX file",
    }
    assert all(line["run_id"] == "run-docs" and line["at"] for line in lines)

    pdf = chunks_of(es_client, settings, "guide.pdf")
    assert [c["metadata"]["page"] for c in pdf] == [1, 2] and "Shipping" in pdf[1]["text"]
    word = chunks_of(es_client, settings, "manual.docx")
    assert word[-1]["metadata"]["headings"][-1] in ("Refunds", "Manual")
    assert any(c["metadata"]["headings"] == ["Manual", "Refunds"] for c in word)
    assert [c["metadata"]["slide"] for c in chunks_of(es_client, settings, "deck.pptx")] == [1, 2]
    assert chunks_of(es_client, settings, "prices.xlsx")[0]["metadata"]["sheet"] == "Prices"
    html = chunks_of(es_client, settings, "help.html")
    assert html[-1]["metadata"]["headings"] == ["Help", "Shipping"]
    policy = chunks_of(es_client, settings, "policy.md")
    assert policy[0]["title"] == "Refund policy" and "title:" not in policy[0]["text"]
    assert policy[0]["metadata"]["tags"] == ["billing"]
    assert all(
        c["metadata"]["file"] == c["doc_id"] for d in ("guide.pdf", "notes.txt")
        for c in chunks_of(es_client, settings, d)
    )  # fmt: skip
    with SearchClient(settings, client=es_client, embedder=local_embedder) as search:
        hits = search.search("refund", mode="bm25", filter=F.eq("tags", "billing")).hits
        assert [h.doc_id for h in hits] == ["policy.md"]
        pages = search.search("shipping", mode="bm25", filter=F.eq("page", 2)).hits
        assert [h.doc_id for h in pages] == ["guide.pdf"]


def test_jsonl_fields_are_metadata_by_default_and_clashes_are_warned(
    es_client, index_name, settings_for, local_embedder, tmp_path
):
    settings = settings_for(index_name, index={"definition": "example-metadata"})
    create_index(es_client, settings, local_embedder.info)
    path = tmp_path / "c.jsonl"
    rows = [
        {"id": "zh1", "text": "退款需要五天", "lang": "zh", "year": 2021},
        {"id": "en1", "text": "Refunds take five days", "lang": "en", "year": 2019},
        {"id": "en2", "text": "Shipping is fast", "lang": "en", "pages": "many"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    report = ingest(
        path,
        settings=settings,
        embedder=local_embedder,
        options=IngestOptions(chunker=SMALL_CHUNKS, dead_letter=tmp_path / "d.jsonl"),
    )
    assert any("'pages'" in w and "integer" in w for w in report.warnings)
    assert report.failures_by_stage == {"index": 1}  # the warned row, refused by the node
    with SearchClient(settings, client=es_client, embedder=local_embedder) as search:
        assert [h.doc_id for h in search.search("退款", mode="bm25", filter="lang=zh").hits] == [
            "zh1"
        ]
        assert search.search("refunds", mode="bm25", filter="year>=2020").hits == []
        assert [
            h.doc_id for h in search.search("refunds", mode="bm25", filter="year<2020").hits
        ] == ["en1"]


def test_precomputed_vectors_from_parquet_and_csv_with_bad_rows_refused(
    es_client, index_name, settings_for, env, tmp_path
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    settings = settings_for(index_name)
    good = [[math.cos(i + k) for k in range(8)] for i in range(5)]
    pq.write_table(
        pa.table(
            {
                "id": [f"r{i}" for i in range(7)],
                "text": [f"row {i} about refunds" for i in range(7)],
                "lang": ["en"] * 7,
                "embedding": [*good, [1.0] * 7, [float("nan"), *([1.0] * 7)]],
            }
        ),
        tmp_path / "emb.parquet",
    )
    dead = tmp_path / "dead.jsonl"
    args = ["ingest", str(tmp_path / "emb.parquet"), "--vector-field", "embedding"]
    args += ["--model", "toy-8", "--dims", "8", "--dead-letter", str(dead), "--json"]
    from essearch.cli import main

    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["indexed"] == 5 and summary["embedded"] == 0 and summary["failed"] == 2
    reasons = {
        json.loads(x)["source"]: json.loads(x)["reason"] for x in dead.read_text().splitlines()
    }
    assert "has 7 dims, the index expects 8" in reasons[f"{tmp_path / 'emb.parquet'}:6"]
    assert "not a finite number" in reasons[f"{tmp_path / 'emb.parquet'}:7"]
    mapping = es_client.indices.get_mapping(index=settings.index.name).body
    recorded = next(iter(mapping.values()))["mappings"]["_meta"]["essearch"]["embedder"]
    assert (recorded["provider"], recorded["model"], recorded["dims"]) == (
        "precomputed",
        "toy-8",
        8,
    )

    # a CSV whose cells hold JSON lists; a different declared model is refused before writing
    (tmp_path / "more.csv").write_text(
        'id,text,embedding\nc1,"csv row","' + json.dumps(good[0]) + '"\n', encoding="utf-8"
    )
    other = ["ingest", str(tmp_path / "more.csv"), "--vector-field", "embedding"]
    refused = CliRunner().invoke(main, [*other, "--model", "other", "--dims", "8"], env=env)
    assert (
        refused.exit_code != 0 and "toy-8" in refused.output and "Traceback" not in refused.output
    )
    assert count(es_client, settings) == 5
    ok = CliRunner().invoke(main, [*other, "--model", "toy-8", "--dims", "8", "-q"], env=env)
    assert ok.exit_code == 0, ok.output
    with pytest.raises(ModelMismatchError):
        ingest([{"id": "x", "text": "t", "vector": good[0]}], settings=settings,
               embedder=PrecomputedEmbedder("another", 8))  # fmt: skip

    # Python: records carrying a vector; a search given a query vector
    report = ingest(
        [{"id": "py1", "text": "from python", "vector": good[4]}],
        settings=settings,
        embedder=PrecomputedEmbedder("toy-8", 8),
        options=IngestOptions(dead_letter=None),
    )
    assert report.ok and report.indexed == 1
    with SearchClient(settings, client=es_client, embedder=PrecomputedEmbedder("toy-8", 8)) as s:
        for i in (0, 2, 3):  # the stored vectors are the given ones
            assert s.search(mode="knn", query_vector=good[i], k=1).hits[0].doc_id == f"r{i}"
        with pytest.raises(ModelMismatchError, match="query_vector has 3"):
            s.search(mode="knn", query_vector=[0.1, 0.2, 0.3])


def test_sync_deletes_what_disappeared_and_dry_run_only_lists_it(
    es_client, index_name, settings_for, env, tmp_path
):
    from essearch.cli import main

    settings = settings_for(index_name)
    kb = tmp_path / "kb"
    (kb / "notes").mkdir(parents=True)
    for name in ("a.md", "b.md", "notes/c.md"):
        (kb / name).write_text(f"# {name}\n\nText of {name}.", encoding="utf-8")
    base = ["ingest", str(kb), "--chunk-size", "40", "-q", "--dead-letter", str(tmp_path / "d")]
    assert CliRunner().invoke(main, base, env=env).exit_code == 0
    # the same file typed another way is the same document
    single = ["ingest", str(kb / "notes" / "c.md"), "--root", str(kb), "-q"]
    assert CliRunner().invoke(main, single, env=env).exit_code == 0
    assert doc_ids(es_client, settings) == {"a.md", "b.md", "notes/c.md"}

    (kb / "b.md").unlink()
    dry = CliRunner().invoke(main, [*base, "--sync", "--dry-run"], env=env)
    assert dry.exit_code == 0 and "would delete b.md" in dry.output
    assert doc_ids(es_client, settings) == {"a.md", "b.md", "notes/c.md"}
    synced = CliRunner().invoke(main, [*base[:-3], "--sync", "--json"], env=env)
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout)["sync_deleted"] == ["b.md"]
    assert doc_ids(es_client, settings) == {"a.md", "notes/c.md"}
    refused = CliRunner().invoke(main, [*base, "--dry-run"], env=env)
    assert refused.exit_code == 2 and "--sync" in refused.output


def test_sync_answers_only_for_its_own_inputs(
    es_client, index_name, settings_for, local_embedder, tmp_path
):
    """One index fed from a folder and a JSONL file: syncing the folder never touches the JSONL
    documents, syncing the JSONL never touches the folder's, and a chunk indexed before chunks
    recorded their input is relabelled by the next run without being embedded again."""
    settings = settings_for(index_name)
    kb, other = tmp_path / "kb", tmp_path / "other"
    kb.mkdir()
    other.mkdir()
    for folder, names in ((kb, ("a.md", "b.md")), (other, ("z.md",))):
        for name in names:
            (folder / name).write_text(f"# {name}\n\nText of {name}.", encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    rows = [{"id": f"r{i}", "text": f"Record {i} about tides."} for i in range(3)]
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    options = IngestOptions(chunker=SMALL_CHUNKS, dead_letter=tmp_path / "dead")
    ingest([kb, other, corpus], settings=settings, embedder=local_embedder, options=options)
    everything = {"a.md", "b.md", "z.md", "r0", "r1", "r2"}
    assert doc_ids(es_client, settings) == everything
    assert chunks_of(es_client, settings, "r1")[0]["source"] == corpus.resolve().as_posix()
    assert chunks_of(es_client, settings, "a.md")[0]["source"] == (kb / "a.md").resolve().as_posix()

    sync = replace(options, sync=True)
    (kb / "b.md").unlink()
    report = ingest(kb, settings=settings, embedder=local_embedder, options=sync)
    assert report.sync_deleted == ["b.md"]  # not the corpus records, not other/z.md
    assert doc_ids(es_client, settings) == everything - {"b.md"}

    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]), encoding="utf-8")
    dry = ingest(
        corpus, settings=settings, embedder=local_embedder, options=replace(sync, dry_run=True)
    )
    assert dry.sync_deleted == ["r2"]
    report = ingest(corpus, settings=settings, embedder=local_embedder, options=sync)
    assert report.sync_deleted == ["r2"] and report.embedded == 0
    assert doc_ids(es_client, settings) == {"a.md", "z.md", "r0", "r1"}

    # A chunk from before chunks recorded their input: path-scoped syncs cannot see it (and say
    # so); ingesting its input again records the input on it, without embedding anything.
    old = chunks_of(es_client, settings, "z.md")[0]
    hit = es_client.search(index=settings.index.name, query={"term": {"doc_id": "z.md"}})
    chunk_id = hit["hits"]["hits"][0]["_id"]
    vector = local_embedder.embed_documents([old["text"]])[0]
    es_client.index(
        index=f"{settings.index.name}-write",
        id=chunk_id,
        document={**{k: v for k, v in old.items() if k != "source"}, "vector": vector},
        refresh=True,
    )
    report = ingest(kb, settings=settings, embedder=local_embedder, options=sync)
    assert any("record no input" in w for w in report.warnings), report.warnings
    report = ingest(other, settings=settings, embedder=local_embedder, options=options)
    assert report.embedded == 0 and report.skipped >= 1
    assert (
        chunks_of(es_client, settings, "z.md")[0]["source"] == (other / "z.md").resolve().as_posix()
    )
    (other / "z.md").unlink()
    report = ingest(other, settings=settings, embedder=local_embedder, options=sync)
    assert report.sync_deleted == ["z.md"]
    assert doc_ids(es_client, settings) == {"a.md", "r0", "r1"}


def test_same_id_twice_in_one_run_the_last_wins(
    es_client, index_name, settings_for, local_embedder, tmp_path
):
    settings = settings_for(index_name)
    long_text = "First version sentence. " * 20
    records = [
        {"id": "dup", "text": long_text},
        {"id": "other", "text": "unrelated"},
        {"id": "dup", "text": "Second version, short."},
    ]
    report = ingest(
        records,
        settings=settings,
        embedder=local_embedder,
        options=IngestOptions(chunker=SMALL_CHUNKS, dead_letter=None, embed_batch=64),
    )  # one batch: both versions are cut before either is sent
    assert report.duplicates == 1 and any("'dup'" in w for w in report.warnings)
    assert [c["text"] for c in chunks_of(es_client, settings, "dup")] == ["Second version, short."]


class StopAfter:
    """A progress view that presses Ctrl-C once `after` chunks are indexed."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.seen: list[int] = []
        self.pressed = False

    def start(self, total_documents):
        pass

    def update(self, counters):
        self.seen.append(counters["chunks"])
        if counters["indexed"] >= self.after and not self.pressed:
            self.pressed = True
            raise KeyboardInterrupt

    def stop(self):
        pass


def test_a_large_document_streams_and_an_interrupted_run_resumes(
    es_client, index_name, settings_for, local_embedder, tmp_path
):
    settings = settings_for(index_name)
    path = tmp_path / "big.txt"
    path.write_text(
        "\n\n".join(f"Paragraph {i} talks about refunds and order {i}." for i in range(600)),
        encoding="utf-8",
    )
    options = IngestOptions(
        chunker=SMALL_CHUNKS, dead_letter=None, embed_batch=32, bulk_chunk_size=32
    )
    view = StopAfter(64)
    first = ingest(path, settings=settings, embedder=local_embedder, options=options,
                   progress=view)  # fmt: skip
    assert first.interrupted and "Ctrl-C" in first.interrupted
    kept = count(es_client, settings)
    assert 64 <= kept < first.chunks or first.chunks == kept  # what was written stays
    assert len(set(view.seen)) > 2  # progress moved within the one document
    second = ingest(path, settings=settings, embedder=local_embedder, options=options)
    assert (
        second.ok and second.skipped >= kept and second.embedded == second.chunks - second.skipped
    )
    total = count(es_client, settings)
    third = ingest(path, settings=settings, embedder=local_embedder, options=options)
    assert third.ok and third.embedded == 0 and count(es_client, settings) == total == third.chunks


def test_sigint_and_sigterm_stop_with_130_and_keep_what_was_written(
    es_client, index_name, settings_for, env, tmp_path
):
    settings = settings_for(index_name)
    path = tmp_path / "big.txt"
    path.write_text(
        "\n\n".join(f"Paragraph {i} about invoices, refunds and orders." for i in range(3000)),
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "essearch", "ingest", str(path), "--chunk-size", "40"]
    command += [
        "--batch-size",
        "32",
        "--bulk-size",
        "32",
        "-q",
        "--dead-letter",
        str(tmp_path / "d"),
    ]
    kept = 0
    for sig in (signal.SIGINT, signal.SIGTERM):
        process = subprocess.Popen(
            command,
            env=env,
            stderr=subprocess.PIPE,
            text=True,
            # A shell without job control starts background jobs with SIGINT ignored, and the
            # child would inherit that (then Ctrl-C is not delivered at all): the test's own
            # runner must not decide what it tests.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(1)
            if (
                es_client.indices.exists(index=settings.index.name)
                and count(es_client, settings) > kept
            ):
                break
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        process.send_signal(sig)
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 130, stderr
        assert "terminate called" not in stderr and "Traceback" not in stderr
        assert "interrupted" in stderr
        now = count(es_client, settings)
        assert now > kept
        kept = now
