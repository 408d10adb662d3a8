"""Unit tests of the pure parts of ingest: loaders, chunker, ids, plans, request bodies."""

from __future__ import annotations

import io
import json
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from tokenizers import Tokenizer

from essearch.errors import CapabilityError, ConfigurationError
from essearch.es.capabilities import Capabilities
from essearch.index.chunking import ChunkerConfig, default_config
from essearch.ingest.chunker import Chunker
from essearch.ingest.failures import DeadLetter, Failure, describe_bulk_error
from essearch.ingest.ids import chunk_id, content_hash, doc_id_from_content, doc_id_of_chunk_id
from essearch.ingest.loaders import Document, FieldMap, count_hint, get_path, load
from essearch.ingest.planning import (
    Indexed,
    Piece,
    Planner,
    bulk_actions,
    existing_chunks_query,
    plan_document,
)
from essearch.ingest.server_pipeline import (
    default_pipeline_settings,
    inference_pipeline_body,
    install_pipeline,
    require_server_embedding,
)
from essearch.ingest.sync import SyncScope, doc_ids_query
from essearch.settings import Settings


# -- loaders ------------------------------------------------------------------------------------
def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_jsonl_malformed_lines_become_failures_with_file_and_line(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            json.dumps({"id": "a", "text": "alpha"}),
            "{not json",
            "",
            json.dumps({"id": "b"}),
            json.dumps(["a list"]),
            json.dumps({"id": "c", "text": "gamma", "metadata": "not an object"}),
            json.dumps({"id": "d", "text": "delta"}),
        ],
    )
    items = list(load([path]))
    docs = [i for i in items if isinstance(i, Document)]
    failures = [i for i in items if isinstance(i, Failure)]
    assert [d.id for d in docs] == ["a", "d"]
    assert [f.source.rsplit(":", 1)[1] for f in failures] == ["2", "4", "5", "6"]
    assert all(f.source.split(":")[0].endswith("c.jsonl") for f in failures)
    assert "invalid JSON" in failures[0].reason
    assert "no text field" in failures[1].reason
    assert "metadata" in failures[3].reason


def test_jsonl_dotted_paths_and_generated_ids(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "c.jsonl",
        [
            json.dumps({"doc": {"key": 7, "body": "hello"}, "meta": {"lang": "en"}, "year": 2020}),
            json.dumps({"doc": {"body": "no id here"}}),
        ],
    )
    fields = FieldMap.of(id="doc.key", text="doc.body", metadata="meta", extra_metadata=["year"])
    first, second = list(load([path], fields))
    assert (first.id, first.text, first.metadata) == ("7", "hello", {"lang": "en", "year": 2020})
    assert second.id == doc_id_from_content(None, "no id here")
    assert get_path({"a.b": 1}, "a.b") == 1


def test_csv_text_markdown_directory_and_stdin(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "rows.csv").write_text("id,title,text,lang\n1,One,first row,en\n2,Two,,zh\n")
    (tmp_path / "sub" / "note.md").write_text("intro\n# Heading here\nbody text\n")
    (tmp_path / "plain.txt").write_text("just text")
    (tmp_path / "ignored.bin").write_bytes(b"\x00")
    items = list(load([tmp_path]))
    docs = {i.id: i for i in items if isinstance(i, Document)}
    failures = [i for i in items if isinstance(i, Failure)]
    assert set(docs) == {"1", "plain.txt", "sub/note.md"}
    assert docs["1"].metadata == {"lang": "en"} and docs["1"].title == "One"
    assert docs["sub/note.md"].title == "Heading here"
    assert docs["plain.txt"].title == "plain"
    assert len(failures) == 1 and failures[0].source.endswith("rows.csv:3")
    assert count_hint([tmp_path]) == 4  # two csv rows, two text files
    only_md = [i.id for i in load([tmp_path], glob="**/*.md")]
    assert only_md == ["sub/note.md"]
    stdin = io.StringIO(json.dumps({"id": "s", "text": "from stdin"}) + "\n{oops\n")
    got = list(load(["-"], stdin=stdin))
    assert got[0].id == "s" and got[1].source == "<stdin>:2"


def test_missing_input_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope\.jsonl"):
        list(load([tmp_path / "nope.jsonl"]))


# -- chunker ------------------------------------------------------------------------------------
ZH = (
    "向量检索把文本映射到高维空间。相似的句子在空间中彼此靠近！这就是语义搜索的基础吗？"
    "混合检索结合了关键词匹配和向量相似度；两者可以互相补充。"
)
EN = (
    "Dense retrieval maps text into a vector space. Similar sentences end up close together! "
    "Hybrid search combines BM25 with kNN; each covers the other's blind spots. "
)


def test_minilm_default_counts_tokens_and_fits_the_window() -> None:
    config = default_config("local", None)
    assert config.unit == "tokens" and config.tokenizer_path
    tokenizer = Tokenizer.from_file(config.tokenizer_path)
    chunker = Chunker(config)
    pieces = chunker.split(EN * 40)
    assert len(pieces) > 3
    for _, piece in pieces:
        assert len(tokenizer.encode(piece, add_special_tokens=True).ids) <= 256
    assert default_config("openai", "text-embedding-3-small").unit == "chars"


def test_chinese_chunks_end_on_sentence_punctuation_and_overlap() -> None:
    config = default_config("local", None)
    chunker = Chunker(ChunkerConfig(40, 20, "tokens", config.tokenizer_path))
    pieces = chunker.split(ZH * 6)
    assert len(pieces) > 3
    for _, piece in pieces:
        assert piece[-1] in "。！？；", piece
    # overlap: some chunk starts before the previous one ended
    ends = [offset + len(piece) for offset, piece in pieces]
    assert any(pieces[i + 1][0] < ends[i] for i in range(len(pieces) - 1))


def test_english_chunks_never_cut_words_and_offsets_point_into_the_text() -> None:
    text = EN * 20
    chunker = Chunker(ChunkerConfig(120, 30, "chars"))
    words = set(text.split())
    for offset, piece in chunker.split(text):
        assert text[offset : offset + len(piece)] == piece
        assert len(piece) <= 120
        assert set(piece.split()) <= words


def test_chunks_keep_position_parent_and_ids() -> None:
    doc = Document(id="doc-1", text=EN * 10, title="T", metadata={"lang": "en"})
    chunks = Chunker(ChunkerConfig(100, 0, "chars")).chunks(doc)
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {c.doc_id for c in chunks} == {"doc-1"}
    assert all(c.id == chunk_id("doc-1", c.position, c.text) for c in chunks)
    assert chunks[0].embed_text.startswith("T\n")
    with pytest.raises(ValueError, match="overlap"):
        ChunkerConfig(10, 10)


# -- ids ----------------------------------------------------------------------------------------
def test_ids_are_stable_and_change_with_content() -> None:
    assert chunk_id("d", 0, "x") == chunk_id("d", 0, "x")
    assert chunk_id("d", 0, "x") != chunk_id("d", 0, "y")
    assert chunk_id("d", 0, "x") != chunk_id("d", 1, "x")
    assert doc_id_of_chunk_id(chunk_id("a::b", 3, "x")) == "a::b"
    long_id = "x" * 600
    assert len(chunk_id(long_id, 0, "t").encode()) < 512
    assert content_hash("t", "x", {"a": 1}) != content_hash("t", "x", {"a": 2})
    assert content_hash("t", "x", {"a": 1, "b": 2}) == content_hash("t", "x", {"b": 2, "a": 1})


def test_plan_skips_unchanged_and_finds_stale() -> None:
    chunker = Chunker(ChunkerConfig(100, 0, "chars"))
    old = chunker.chunks(Document(id="d", text=EN * 4))
    new = chunker.chunks(Document(id="d", text=EN * 2))
    existing = {c.id: (c.content_hash, "idx-v1") for c in old}
    plan = plan_document(Document("d", EN * 4), old, existing)
    assert plan.to_send == [] and plan.stale == []
    plan = plan_document(Document("d", EN * 2), new, existing)
    assert {c.id for c in plan.to_send} == {c.id for c in new}  # hash changed: all re-sent
    assert {cid for _, cid in plan.stale} == {c.id for c in old} - {c.id for c in new}
    assert plan_document(Document("d", EN * 4), old, existing, skip_unchanged=False).to_send == old


def test_a_document_in_pieces_is_planned_like_a_whole_one() -> None:
    """The planner keeps what was indexed from the first piece, reports stale chunks only at the
    last one, and never calls a chunk stale that a later piece produced again."""
    chunker = Chunker(ChunkerConfig(100, 0, "chars"))
    old = chunker.chunks(Document(id="d", text=EN * 6))
    doc = Document(id="d", text=EN * 5 + "A changed ending.")
    new = chunker.chunks(doc)
    existing = {c.id: Indexed(c.content_hash, "idx-v1") for c in old}
    whole = plan_document(doc, new, existing)
    assert whole.stale  # the old version had more chunks
    planner = Planner()
    pieces = [new[:2], new[2:4], new[4:]]
    plans = []
    for i, chunks in enumerate(pieces):
        piece = Piece(doc, chunks, first=i == 0, last=i == len(pieces) - 1)
        found = planner.existing_for(piece, existing if piece.first else {})
        assert found == existing  # the later pieces get the first piece's lookup
        plans.append(planner.plan(piece, found))
    assert [p.stale for p in plans[:-1]] == [[], []]
    assert sorted(plans[-1].stale) == sorted(whole.stale)
    assert [c.id for p in plans for c in p.to_send] == [c.id for c in whole.to_send]


def test_bulk_actions_index_delete_and_relabel_and_leave_out_failed_documents() -> None:
    chunker = Chunker(ChunkerConfig(100, 0, "chars"))
    ok = Document(id="ok", text=EN * 2, origin="/kb/ok.md")
    failed = Document(id="failed", text=EN)
    plan = plan_document(ok, chunker.chunks(ok), {})
    plan.stale, plan.relabel = [("idx-v1", "ok::9::x")], [("idx-v1", "ok::0::y")]
    other = plan_document(failed, chunker.chunks(failed), {})
    vectors = {"ok": [[0.5, 0.5]] * len(plan.to_send)}  # "failed" has none: its embedding failed
    actions = bulk_actions([plan, other], vectors, "kb-write", "2026-01-01T00:00:00+00:00")
    assert [a["_op_type"] for a in actions] == ["index"] * len(plan.to_send) + ["delete", "update"]
    first = actions[0]
    assert first["_index"] == "kb-write" and first["_id"] == plan.to_send[0].id
    assert first["_source"]["source"] == "/kb/ok.md" and first["_source"]["vector"] == [0.5, 0.5]
    assert actions[-2] == {"_op_type": "delete", "_index": "idx-v1", "_id": "ok::9::x"}
    assert actions[-1]["doc"] == {"source": "/kb/ok.md"}
    assert all(a["_id"].split("::")[0] == "ok" for a in actions)


def test_existing_chunks_query_body() -> None:
    body = existing_chunks_query(["a", "b"], ["x"])
    assert body["query"] == {"terms": {"doc_id": ["a", "b"]}}
    assert body["sort"] == [{"id": "asc"}] and body["search_after"] == ["x"]
    assert body["_source"] == ["doc_id", "content_hash", "source"]


def test_an_unchanged_chunk_from_another_input_is_relabelled_not_resent() -> None:
    chunker = Chunker(ChunkerConfig(100, 0, "chars"))
    doc = Document(id="d", text=EN * 3, origin="/kb/d.md")
    chunks = chunker.chunks(doc)
    same = {c.id: Indexed(c.content_hash, "idx-v1", "/kb/d.md") for c in chunks}
    assert plan_document(doc, chunks, same).relabel == []
    moved = {c.id: Indexed(c.content_hash, "idx-v1", "/old/d.md") for c in chunks}
    unsourced = {c.id: (c.content_hash, "idx-v1") for c in chunks}  # before chunks had one
    for existing in (moved, unsourced):
        plan = plan_document(doc, chunks, existing)
        assert plan.to_send == [] and plan.relabel == [("idx-v1", c.id) for c in chunks]
    in_memory = Document(id="d", text=EN * 3)  # no input: nothing to record
    assert plan_document(in_memory, chunker.chunks(in_memory), moved).relabel == []


def test_sync_scope_covers_its_inputs_only(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("", encoding="utf-8")
    scope = SyncScope.of([kb, corpus, "-"])
    assert scope.query() == {
        "bool": {
            "should": [
                {"prefix": {"source": f"{kb.resolve().as_posix()}/"}},
                {"terms": {"source": sorted([corpus.resolve().as_posix(), "<stdin>"])}},
            ],
            "minimum_should_match": 1,
        }
    }
    assert SyncScope().query() == {"match_none": {}}
    in_memory = SyncScope.of([Document("a", "x"), {"id": "b", "text": "y"}])
    assert in_memory.query() == {
        "bool": {
            "should": [{"bool": {"must_not": [{"exists": {"field": "source"}}]}}],
            "minimum_should_match": 1,
        }
    }
    tracked = SyncScope()
    assert list(tracked.track(iter([str(corpus)]))) == [str(corpus)]
    assert tracked.inputs == {corpus.resolve().as_posix()}
    body = doc_ids_query({"doc": "a"}, scope)
    assert body["query"] == scope.query() and body["aggs"]["docs"]["composite"]["after"]


def test_loaded_documents_record_their_input(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nText.", encoding="utf-8")
    (tmp_path / "r.jsonl").write_text('{"id": "r", "text": "x"}\n', encoding="utf-8")
    docs = [d for d in load([tmp_path]) if isinstance(d, Document)]
    assert {d.id: d.origin for d in docs} == {
        "a.md": (tmp_path / "a.md").resolve().as_posix(),
        "r": (tmp_path / "r.jsonl").resolve().as_posix(),
    }
    stdin = [d for d in load(["-"], stdin=io.StringIO('{"text": "x"}\n'))]
    assert [d.origin for d in stdin if isinstance(d, Document)] == ["<stdin>"]


# -- failures -----------------------------------------------------------------------------------
def test_dead_letter_writes_one_json_line_per_failure(tmp_path: Path) -> None:
    dead = DeadLetter(tmp_path / "dl" / "dead.jsonl", run_id="run-1")
    dead.add(Failure("load", "bad", source="f.jsonl:3"))
    dead.add(Failure("index", "boom", id="d::0::ab", doc_id="d", status=400))
    dead.close()
    DeadLetter(tmp_path / "dl" / "dead.jsonl").add(Failure("load", "again", source="g.csv:2"))
    lines = [json.loads(x) for x in (tmp_path / "dl" / "dead.jsonl").read_text().splitlines()]
    at = lines[0].pop("at")
    assert lines[0] == {"run_id": "run-1", "stage": "load", "reason": "bad", "source": "f.jsonl:3"}
    assert datetime.fromisoformat(at).tzinfo is not None
    assert lines[2]["run_id"] != "run-1" and lines[2]["reason"] == "again"
    assert lines[1]["status"] == 400 and dead.counts == {"load": 1, "index": 1}
    error = {"type": "x", "reason": "y", "caused_by": {"type": "z", "reason": "w"}}
    assert describe_bulk_error(error) == "x: y (caused by z: w)"


# -- server-side pipeline -----------------------------------------------------------------------
def test_inference_pipeline_bodies() -> None:
    body = inference_pipeline_body("my-endpoint")
    assert body["processors"][0] == {
        "inference": {
            "model_id": "my-endpoint",
            "input_output": [{"input_field": "text", "output_field": "vector"}],
        }
    }
    assert default_pipeline_settings("p") == {"index": {"default_pipeline": "p"}}
    assert default_pipeline_settings(None) == {"index": {"default_pipeline": None}}


def test_server_embedding_needs_capabilities_and_an_endpoint() -> None:
    bare = Capabilities(version="9.5.4")
    with pytest.raises(CapabilityError, match="ingest processors"):
        require_server_embedding(bare, Settings())
    full = Capabilities(
        version="9.5.4",
        license_type="trial",
        modules=frozenset({"ingest-common", "x-pack-inference"}),
    )
    with pytest.raises(ConfigurationError, match="INFERENCE_ID"):
        require_server_embedding(full, Settings())
    settings = Settings(embedder={"inference_id": "e5"})
    assert require_server_embedding(full, settings) == "e5"
    basic = Capabilities(version="9.5.4", modules=full.modules)
    with pytest.raises(CapabilityError, match="licence"):
        require_server_embedding(basic, settings)


def test_pipeline_install_on_the_test_node_says_why_not(es_client, index_name) -> None:
    settings = Settings(index={"name": index_name}, embedder={"inference_id": "e5"})
    with pytest.raises(CapabilityError, match="cannot embed at ingest time"):
        install_pipeline(es_client, settings)


def test_sample_corpus_is_valid_bilingual_and_large_enough() -> None:
    from importlib.resources import files

    path = Path(str(files("essearch") / "data" / "sample_corpus.jsonl"))
    items = list(load([path]))
    assert all(isinstance(i, Document) for i in items)
    assert len(items) >= 200 and len({d.id for d in items}) == len(items)
    langs = {d.metadata["lang"] for d in items}
    assert langs == {"en", "zh"} and all(d.metadata.get("topic") for d in items)


def test_progress_bar_names_its_job() -> None:
    """The same bar serves ingest and reindex; it says which one is running."""
    import io

    from rich.console import Console

    from essearch.ingest.progress import RichProgress

    for label in ("ingest", "reindex"):
        buf = io.StringIO()
        bar = RichProgress(Console(file=buf, force_terminal=False, width=120), label=label)
        bar.start(3)
        bar.update({"documents": 1, "chunks": 2, "embedded": 2, "indexed": 2, "failed": 1})
        bar.stop()
        out = buf.getvalue()
        assert out.lstrip("⠋ ").startswith(label) or f" {label} " in out
        assert "failed 1" in out and "1/3" in out


def test_a_byte_order_mark_is_not_part_of_the_first_record(tmp_path: Path) -> None:
    """Excel's "CSV UTF-8" and Notepad start a file with a BOM: the first header is still `id`,
    the first JSON line still parses, and a bad line's column counts from its first character."""
    csv_file = tmp_path / "excel.csv"
    csv_file.write_bytes("\ufeffid,text,lang\nr1,退款需要七天,zh\n".encode())
    jsonl = tmp_path / "notepad.jsonl"
    jsonl.write_bytes('\ufeff{"id": "j0", "text": }\n{"id": "j1", "text": "refunds"}\n'.encode())
    markdown = tmp_path / "note.md"
    markdown.write_bytes("\ufeff---\nlang: en\n---\n# Refunds\n\nSeven days.".encode())
    items = list(load([csv_file, jsonl, markdown]))
    docs = {d.id: d for d in items if isinstance(d, Document)}
    assert docs["r1"].metadata == {"lang": "zh"} and docs["r1"].text == "退款需要七天"
    assert docs["j1"].text == "refunds"
    assert docs["note.md"].title == "Refunds" and docs["note.md"].metadata["lang"] == "en"
    [bad] = [f for f in items if isinstance(f, Failure)]
    assert bad.source.endswith("notepad.jsonl:1") and bad.reason.endswith("at column 22")
    stdin = list(load(["-"], fmt="csv", stdin=io.StringIO("\ufeffid,text\ns1,x\n")))
    assert [d.id for d in stdin if isinstance(d, Document)] == ["s1"]


def test_an_index_that_cannot_gain_the_source_field_is_reported_not_fatal(caplog) -> None:
    """A user who may write but not change the mapping: ingest goes on without recording
    inputs (and --sync is refused elsewhere), with one warning naming the index and field."""
    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
    from elasticsearch import AuthorizationException

    from essearch.ingest.pipeline import add_missing_fields

    meta = ApiResponseMeta(403, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "localhost", 9200))

    calls: list[dict] = []

    def refuse(**kwargs: object) -> None:
        calls.append(kwargs)
        reason = "action [indices:admin/mapping/put] is unauthorized"
        raise AuthorizationException(reason, meta, {"error": {"reason": reason}})

    refusing = SimpleNamespace(indices=SimpleNamespace(put_mapping=refuse))
    assert add_missing_fields(refusing, "kb-v1", {"properties": {"source": {}}}) is True
    assert calls == []  # the field is there: nothing to add
    assert add_missing_fields(refusing, "kb-v1", {"properties": {}}) is False
    assert calls == [{"index": "kb-v1", "properties": {"source": {"type": "keyword"}}}]
    assert "kb-v1" in caplog.text and "source" in caplog.text
