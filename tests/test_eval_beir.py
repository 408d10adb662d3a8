"""BEIR loading: the qrels header, judged queries only, clear errors, the corpus fingerprint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from essearch.errors import ConfigurationError
from essearch.eval.beir import corpus_fingerprint, load_beir, read_qrels


def write_beir(root: Path, *, qrels: str, queries: list[dict], corpus: list[dict] | None = None):
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    corpus = corpus or [{"_id": "d1", "title": "t", "text": "x"}]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels" / "test.tsv").write_text(qrels)
    return root


QUERIES = [
    {"_id": "1", "text": "first query"},
    {"_id": "2", "text": "second query"},
    {"_id": "3", "text": "never judged"},
    {"_id": "4", "text": "judged later"},
]


def test_header_is_skipped_and_only_judged_queries_are_kept(tmp_path: Path) -> None:
    root = write_beir(
        tmp_path / "set",
        qrels="query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n4\td3\t1\n2\td9\t0\n",
        queries=QUERIES,
    )
    dataset = load_beir(root, "test")
    assert dataset.name == "set"
    assert list(dataset.queries) == ["1", "4", "2"]  # qrels order; "3" is not judged
    assert dataset.qrels["1"] == {"d1": 1, "d2": 2}
    assert dataset.qrels["2"] == {"d9": 0}
    assert "query-id" not in dataset.qrels
    assert dataset.skipped_queries == []


def test_judged_query_without_text_is_reported_not_evaluated(tmp_path: Path) -> None:
    root = write_beir(
        tmp_path / "set", qrels="query-id\tcorpus-id\tscore\n1\td1\t1\n77\td1\t1\n", queries=QUERIES
    )
    dataset = load_beir(root)
    assert list(dataset.queries) == ["1"]
    assert set(dataset.qrels) == {"1"}
    assert dataset.skipped_queries == ["77"]


def test_crlf_qrels_without_header(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_bytes(b"1\td1\t1\r\n2\td2\t1\r\n")
    assert read_qrels(path) == {"1": {"d1": 1}, "2": {"d2": 1}}


def test_bad_qrels_row_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\tvery\n")
    with pytest.raises(ConfigurationError, match=r"q\.tsv:3"):
        read_qrels(path)


def test_missing_split_lists_the_available_ones(tmp_path: Path) -> None:
    root = write_beir(
        tmp_path / "set", qrels="query-id\tcorpus-id\tscore\n1\td1\t1\n", queries=QUERIES
    )
    with pytest.raises(ConfigurationError, match=r"qrels/dev\.tsv.*splits here: test"):
        load_beir(root, "dev")


def test_fingerprint_changes_with_the_corpus(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "a", "text": "one"}\n')
    first = corpus_fingerprint(path)
    assert corpus_fingerprint(path) == first
    path.write_text('{"_id": "a", "text": "two"}\n')
    stat = path.stat()
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert corpus_fingerprint(path) != first


def test_real_scifact_split_if_present() -> None:
    repo = Path(__file__).resolve().parent.parent
    candidates = [os.environ.get("ESSEARCH_DATA"), repo.parent / "shared" / "data"]
    roots = [Path(c) / "scifact" for c in candidates if c]
    root = next((r for r in roots if r.is_dir()), None)
    if root is None:  # shared/ travels beside the checkout in CI; elsewhere it may not exist
        pytest.skip(f"SciFact not found in {', '.join(map(str, roots))}")
    dataset = load_beir(root, "test")
    assert len(dataset.queries) == 300
    assert sum(len(v) for v in dataset.qrels.values()) == 339


def test_self_hits_need_the_same_id_and_the_same_text(tmp_path: Path) -> None:
    from essearch.eval.beir import find_self_hits

    corpus = [
        {"_id": "a1", "title": "", "text": "Cats  are\nbetter than dogs."},  # the query itself
        {"_id": "1", "title": "x", "text": "A document that happens to share an id."},
        {"_id": "d9", "title": "", "text": "unrelated"},
    ]
    root = write_beir(tmp_path / "set", qrels="q\tc\ts\n", queries=[], corpus=corpus)
    queries = {"a1": "Cats are better than dogs.", "1": "what is query one", "q7": "no doc"}
    assert find_self_hits(root / "corpus.jsonl", queries) == {"a1"}
