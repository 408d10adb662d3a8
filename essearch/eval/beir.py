"""BEIR datasets: `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv` (with a header line).

Only the queries judged in the split's qrels are evaluated (BEIR's convention); the corpus itself
is streamed by the ingest pipeline, so here it is only fingerprinted (for index reuse) and scanned
for self-hits: queries that are themselves a corpus document (ArguAna), which BEIR leaves out of
the ranking.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from essearch.errors import ConfigurationError
from essearch.ingest.records import read_records

CORPUS_FILE = "corpus.jsonl"
QUERIES_FILE = "queries.jsonl"
QRELS_DIR = "qrels"
#: How much of the corpus file goes into its fingerprint (with its size and mtime).
FINGERPRINT_BYTES = 1 << 20

Qrels = dict[str, dict[str, int]]


@dataclass
class BeirDataset:
    """One split of a BEIR dataset: the judged queries and their relevance judgements."""

    path: Path
    split: str
    queries: dict[str, str]  # query id -> text, judged queries only, in qrels order
    qrels: Qrels  # query id -> {doc id: relevance}
    skipped_queries: list[str] = field(default_factory=list)  # judged ids with no query text

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def corpus_path(self) -> Path:
        return self.path / CORPUS_FILE


def qrels_path(path: Path, split: str) -> Path:
    return path / QRELS_DIR / f"{split}.tsv"


def read_qrels(path: Path) -> Qrels:
    """`query-id<TAB>corpus-id<TAB>score` rows after a header line; bad rows name file:line."""
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle, delimiter="\t")
        for lineno, row in enumerate(rows, start=1):
            cells = [cell.strip() for cell in row]
            if not cells or not any(cells):
                continue
            if lineno == 1 and not _is_int(cells[-1]):
                continue  # the header (query-id, corpus-id, score)
            if len(cells) < 3 or not _is_int(cells[2]):
                raise ConfigurationError(
                    f"{path}:{lineno}: expected query-id, corpus-id and an integer score, "
                    f"got {row!r}"
                )
            qrels.setdefault(cells[0], {})[cells[1]] = int(cells[2])
    if not qrels:
        raise ConfigurationError(f"{path}: no relevance judgements")
    return qrels


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) per non-blank line; bad JSON names file:line."""
    for raw in read_records(path, "jsonl"):
        if raw.record is None:
            raise ConfigurationError(f"{path}:{raw.line}: {raw.problem}")
        yield raw.line, raw.record


def read_queries(path: Path, wanted: set[str] | None = None) -> dict[str, str]:
    """Query id -> text (only the `wanted` ids when given)."""
    queries: dict[str, str] = {}
    for lineno, record in iter_jsonl(path):
        query_id = record.get("_id", record.get("id"))
        if query_id is None:
            raise ConfigurationError(f"{path}:{lineno}: query has no '_id'")
        query_id = str(query_id)
        if wanted is not None and query_id not in wanted:
            continue
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            continue
        queries[query_id] = text
    return queries


def load_beir(path: str | Path, split: str = "test") -> BeirDataset:
    """The judged queries of `split` and their qrels; a missing file is a clear error."""
    root = Path(path).expanduser()
    if not root.is_dir():
        raise ConfigurationError(f"dataset {root}: not a directory")
    for needed in (root / CORPUS_FILE, root / QUERIES_FILE, qrels_path(root, split)):
        if not needed.is_file():
            available = sorted(p.stem for p in (root / QRELS_DIR).glob("*.tsv"))
            hint = f" (splits here: {', '.join(available)})" if available else ""
            raise ConfigurationError(f"dataset {root}: missing {needed.relative_to(root)}{hint}")
    qrels = read_qrels(qrels_path(root, split))
    found = read_queries(root / QUERIES_FILE, wanted=set(qrels))
    queries = {qid: found[qid] for qid in qrels if qid in found}
    skipped = [qid for qid in qrels if qid not in found]
    return BeirDataset(
        path=root,
        split=split,
        queries=queries,
        qrels={qid: qrels[qid] for qid in queries},
        skipped_queries=skipped,
    )


def corpus_fingerprint(path: str | Path) -> str:
    """Size, mtime and a hash of the first MiB: cheap, and changes when the corpus is replaced."""
    file = Path(path)
    stat = file.stat()
    digest = hashlib.sha256()
    digest.update(f"{stat.st_size}:{int(stat.st_mtime)}:".encode())
    with file.open("rb") as handle:
        digest.update(handle.read(FINGERPRINT_BYTES))
    return digest.hexdigest()[:16]


def _normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def find_self_hits(corpus_path: str | Path, queries: Mapping[str, str]) -> set[str]:
    """Query ids whose corpus document of the same id *is* the query (same text, whitespace
    aside). Ids alone are not enough: CISI and Cranfield number queries and documents
    independently, so query 1 and document 1 are different texts and may even be relevant."""
    found: set[str] = set()
    for _lineno, record in iter_jsonl(Path(corpus_path)):
        doc_id = str(record.get("_id", record.get("id", "")))
        query = queries.get(doc_id)
        if query is None:
            continue
        text = record.get("text")
        if isinstance(text, str) and _normalised(text) == _normalised(query):
            found.add(doc_id)
    return found
