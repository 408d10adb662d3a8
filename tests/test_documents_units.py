"""Loaders without a node: document conversion and structure, front matter, the one record
reader, metadata by default, precomputed vectors, stable ids, sections on chunks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from document_files import (
    make_corrupt_zip,
    make_docx,
    make_html,
    make_pdf,
    make_pptx,
    make_scanned_pdf,
    make_xlsx,
)

from essearch.errors import SearchError
from essearch.ingest.chunker import Chunker, ChunkerConfig, text_blocks
from essearch.ingest.converters import ConversionError, convert_markdown, markdown_sections
from essearch.ingest.failures import Failure
from essearch.ingest.loaders import Document, FieldMap, document_from_record, load, parse_vector
from essearch.ingest.planning import metadata_types_of, type_clash
from essearch.ingest.records import read_records
from essearch.retrieval.params import SearchParams


def docs_and_failures(items) -> tuple[dict[str, Document], list[Failure]]:
    items = list(items)
    docs = {i.id: i for i in items if isinstance(i, Document)}
    return docs, [i for i in items if isinstance(i, Failure)]


# -- Markdown ------------------------------------------------------------------------------------
def test_front_matter_becomes_title_and_metadata_never_text() -> None:
    converted = convert_markdown(
        "---\ntitle: Refund policy\ntags: [billing, refunds]\ndate: 2024-05-01\n---\n"
        "# Refunds\n\nFive days.\n"
    )
    assert converted.title == "Refund policy"
    assert converted.metadata == {"tags": ["billing", "refunds"], "date": "2024-05-01"}
    assert "title:" not in converted.text and converted.text.startswith("# Refunds")


def test_bad_front_matter_is_a_conversion_error_naming_the_line() -> None:
    with pytest.raises(ConversionError, match="front matter at line"):
        convert_markdown("---\ntitle: [unclosed\n---\nbody\n")


def test_heading_paths_ignore_code_fences() -> None:
    text = "# A\nx\n## B\n```\n# not a heading\n```\n### C\ny\n# D\n"
    paths = [meta["headings"] for _, meta in markdown_sections(text)]
    assert paths == [["A"], ["A", "B"], ["A", "B", "C"], ["D"]]


# -- documents -----------------------------------------------------------------------------------
def test_every_document_format_keeps_its_structure(tmp_path: Path) -> None:
    make_pdf(tmp_path / "guide.pdf", ["Refunds take five days.", "Shipping takes two days."])
    make_docx(
        tmp_path / "manual.docx",
        [(1, "Manual", "Start here."), (2, "Refunds", "Refund rules."), (1, "Other", "More.")],
        title="The manual",
    )
    make_pptx(tmp_path / "deck.pptx", [("Q1", "Revenue grew."), ("Q2", "Costs fell.")])
    make_xlsx(tmp_path / "prices.xlsx", {"Prices": [["plan", "price"], ["basic", 10]]})
    make_html(tmp_path / "help.html", "Help", [("Refunds", "Money back."), ("Shipping", "Fast.")])
    (tmp_path / "notes.txt").write_text("plain words", encoding="utf-8")
    docs, failures = docs_and_failures(load([tmp_path]))
    assert not failures and set(docs) == {
        "guide.pdf", "manual.docx", "deck.pptx", "prices.xlsx", "help.html", "notes.txt"
    }  # fmt: skip
    pdf = docs["guide.pdf"]
    assert [m for _, m in pdf.sections] == [{"page": 1}, {"page": 2}]
    assert pdf.text[pdf.sections[1][0] :].startswith("Shipping")
    word = docs["manual.docx"]
    assert word.title == "The manual" and "basic | 10" in word.text  # tables are kept
    assert [m["headings"] for _, m in word.sections] == [
        ["Manual"], ["Manual", "Refunds"], ["Other"]
    ]  # fmt: skip
    assert [m["slide"] for _, m in docs["deck.pptx"].sections] == [1, 2]
    assert docs["prices.xlsx"].sections == [(0, {"sheet": "Prices"})]
    assert "basic\t10" in docs["prices.xlsx"].text
    html = docs["help.html"]
    assert html.title == "Help" and "var x" not in html.text and "color" not in html.text
    assert html.sections[-1][1] == {"headings": ["Help", "Shipping"]}
    assert all(d.metadata["file"] == d.id for d in docs.values())


def test_unreadable_files_are_one_failure_each_and_the_others_go_on(tmp_path: Path) -> None:
    make_pdf(tmp_path / "locked.pdf", ["secret"], password="pw")
    make_scanned_pdf(tmp_path / "scan.pdf")
    make_corrupt_zip(tmp_path / "broken.docx")
    make_corrupt_zip(tmp_path / "broken.xlsx")
    (tmp_path / "ok.md").write_text("# Fine\n\ntext", encoding="utf-8")
    docs, failures = docs_and_failures(load([tmp_path]))
    assert list(docs) == ["ok.md"]
    reasons = {f.source: f.reason for f in failures}
    assert "encrypted PDF" in reasons["locked.pdf"]
    assert "no text layer" in reasons["scan.pdf"]
    assert "not a valid DOCX" in reasons["broken.docx"]
    assert "not a valid XLSX" in reasons["broken.xlsx"]
    assert all(f.doc_id == f.source for f in failures)  # --sync keeps documents that failed


def test_file_ids_are_relative_to_the_root_however_the_path_is_typed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "refunds.md").write_text("# Refunds\n\nFive days.", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    as_file = next(iter(load(["notes/refunds.md"])))
    as_dir = next(iter(load(["notes"])))
    monkeypatch.chdir(notes)
    bare = next(iter(load(["refunds.md"])))
    assert as_file.id == as_dir.id == bare.id == "refunds.md"
    monkeypatch.chdir(tmp_path)
    rooted = next(iter(load(["notes/refunds.md"], root=tmp_path)))
    assert rooted.id == "notes/refunds.md"


def test_chunks_carry_the_section_they_start_in() -> None:
    text = "# A\n\n" + "alpha " * 30 + "\n\n# B\n\n" + "beta " * 30
    converted = convert_markdown(text)
    doc = Document(
        id="d", text=converted.text, metadata={"file": "d.md"}, sections=converted.sections
    )
    chunks = Chunker(ChunkerConfig(size=100, overlap=0)).chunks(doc)
    assert chunks[0].metadata == {"file": "d.md", "headings": ["A"]}
    assert chunks[-1].metadata == {"file": "d.md", "headings": ["B"]}
    assert doc.metadata == {"file": "d.md"}  # the document's own metadata is not changed


def test_long_texts_are_split_block_by_block_at_paragraphs() -> None:
    text = "\n\n".join(f"paragraph {i} " + "word " * 50 for i in range(2_000))
    blocks = list(text_blocks(text, 20_000))
    assert len(blocks) > 10 and "".join(b for _, b in blocks) == text
    assert all(text[start:].startswith(block) for start, block in blocks)
    assert all(block.endswith("\n") for _, block in blocks[:-1])  # cut at a blank line
    chunker = Chunker(ChunkerConfig(size=400, overlap=0))
    pieces = list(chunker.iter_split(text))
    assert all(text[offset : offset + len(piece)] == piece for offset, piece in pieces)


# -- records -------------------------------------------------------------------------------------
def test_other_fields_become_metadata_unless_meta_narrows_it() -> None:
    record = {"id": 7, "title": "T", "text": "body", "lang": "zh", "year": 2021, "vector": [1]}
    doc = document_from_record(record, FieldMap(), "r:1")
    assert isinstance(doc, Document)
    assert doc.metadata == {"lang": "zh", "year": 2021} and doc.vector == [1.0]
    narrowed = document_from_record(record, FieldMap.of(extra_metadata=["lang"]), "r:1")
    assert isinstance(narrowed, Document) and narrowed.metadata == {"lang": "zh"}


def test_parquet_vectors_come_as_numpy_rows_and_go_out_short(tmp_path: Path) -> None:
    """A float32 vector column is read as numpy rows (nulls left out, other columns as Python
    values) and is sent in float32's shortest form, which reads back as the same float32s."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from essearch.es.client import fast_serializers

    matrix = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    vectors = pa.FixedSizeListArray.from_arrays(
        pa.array(matrix.reshape(-1)), 4, mask=pa.array([False, True, False])
    )
    pq.write_table(
        pa.table({"id": ["a", "b", "c"], "embedding": vectors, "tags": [[1, 2], [3], []]}),
        tmp_path / "v.parquet",
    )
    rows = [r.record for r in read_records(tmp_path / "v.parquet", arrays=("embedding", "id"))]
    assert rows[0] is not None and rows[1] is not None and rows[2] is not None
    assert "embedding" not in rows[1] and rows[0]["tags"] == [1, 2] and rows[0]["id"] == "a"
    assert rows[2]["embedding"].dtype == np.float32
    assert rows[2]["embedding"].tolist() == matrix[2].tolist()
    assert parse_vector(rows[2]["embedding"]) is rows[2]["embedding"]  # kept, not copied
    plain = list(read_records(tmp_path / "v.parquet"))  # not asked for: Python lists
    assert plain[0].record is not None and isinstance(plain[0].record["embedding"], list)

    ndjson = fast_serializers()["application/x-ndjson"]
    short = ndjson.dumps([{"vector": rows[0]["embedding"]}])
    long = ndjson.dumps([{"vector": rows[0]["embedding"].tolist()}])
    assert len(short) < 0.8 * len(long)
    back = np.array(json.loads(short)["vector"], dtype=np.float32)
    assert back.tolist() == matrix[0].tolist()
    # as the standard json module did for bulk lines: a non-str metadata key becomes a string
    assert ndjson.dumps([{"metadata": {1: "x"}}]) == b'{"metadata":{"1":"x"}}\n'


def test_one_reader_for_jsonl_csv_and_parquet(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text('{"id": 1, "text": "x"}\n\n[1]\n{bad\n', encoding="utf-8")
    (tmp_path / "a.csv").write_text(
        'id,text,embedding\n1,hello,"[0.1, 0.2]"\n2,"multi\nline",\n', encoding="utf-8"
    )
    pq.write_table(
        pa.table({"id": ["p1"], "text": ["hi"], "embedding": [[0.5, 0.5]]}), tmp_path / "a.parquet"
    )
    jsonl = list(read_records(tmp_path / "a.jsonl"))
    assert [(r.line, r.record is None) for r in jsonl] == [(1, False), (3, True), (4, True)]
    assert "expected a JSON object" in jsonl[1].problem and "invalid JSON" in jsonl[2].problem
    csv_rows = list(read_records(tmp_path / "a.csv"))
    assert [r.line for r in csv_rows] == [2, 4] and "embedding" not in csv_rows[1].record
    fields = FieldMap.of(vector="embedding")
    docs, _ = docs_and_failures(load([tmp_path / "a.csv", tmp_path / "a.parquet"], fields))
    assert docs["1"].vector == [0.1, 0.2]
    # a Parquet vector stays a numpy row as read (float64 here, as written)
    assert docs["p1"].vector is not None and docs["p1"].vector.tolist() == [0.5, 0.5]
    assert docs["2"].vector is None and docs["1"].metadata == {}


def test_bad_vector_cells_are_refused_naming_the_row(tmp_path: Path) -> None:
    (tmp_path / "v.csv").write_text(
        'id,text,embedding\n1,a,"[0.1, oops]"\n2,b,"[true, 1]"\n3,c,"{}"\n', encoding="utf-8"
    )
    _, failures = docs_and_failures(load([tmp_path / "v.csv"], FieldMap.of(vector="embedding")))
    assert [f.source.rsplit(":", 1)[1] for f in failures] == ["2", "3", "4"]
    assert all("'embedding'" in f.reason for f in failures)
    assert parse_vector([1, 2]) == [1.0, 2.0] and isinstance(parse_vector("nope"), str)


def test_metadata_type_clashes_with_the_mapping() -> None:
    mapping = {"properties": {"metadata": {"properties": {"year": {"type": "integer"}}}}}
    types = metadata_types_of(mapping)
    assert types == {"year": "integer"}
    assert type_clash("integer", "2021") is None and type_clash("integer", 2021) is None
    assert "'twenty'" in (type_clash("integer", "twenty") or "")
    assert type_clash("keyword", {"a": 1}) and type_clash("keyword", "x") is None
    assert type_clash("integer", [1, "x"])


def test_search_params_take_a_query_vector() -> None:
    params = SearchParams.make(None, mode="knn", query_vector=[0.1, 0.2])
    assert params.query_vector == (0.1, 0.2)
    with pytest.raises(SearchError, match="query_vector"):
        SearchParams.make(None, mode="knn")
    with pytest.raises(SearchError, match="finite"):
        SearchParams.make(None, mode="knn", query_vector=[float("nan")])


def test_jsonl_reader_shared_by_evaluation(tmp_path: Path) -> None:
    from essearch.errors import ConfigurationError
    from essearch.eval.beir import iter_jsonl

    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"_id": "1", "text": "q"}) + "\n{oops\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"q.jsonl:2: invalid JSON"):
        list(iter_jsonl(path))


def test_content_hash_of_a_large_text_is_the_hash_of_the_whole_payload(monkeypatch) -> None:
    import hashlib

    from essearch.ingest import ids

    def whole(title, text, metadata):
        payload = {"title": title or "", "text": text, "metadata": metadata or {}}
        encoded = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(encoded.encode()).hexdigest()

    monkeypatch.setattr(ids, "HASH_SLICE", 7)  # many slices, cut inside escapes' neighbours
    text = 'quote " back\\ slash\n\ttab \x01 退款 😀 ' * 9
    for title, metadata in ((None, None), ("T", {"b": [1], "a": {"é": 1}})):
        assert ids.content_hash(title, text, metadata) == whole(title, text, metadata)
