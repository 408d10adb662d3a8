"""Checks run before the alias swap: the new version must hold what the old one holds.

1. Counts: chunks per `doc_id` are compared for every document (composite aggregation, paged), so a
   document that lost or gained chunks is named, not just a total that happens to match.
2. Vectors: every chunk of the target has a vector (an `exists` count).
3. Searches: a few sampled chunks are searched on both versions with BM25 (their own text); the
   top-k ids must overlap. With the new embedder, each sample's own vector must find the sample in
   the target's kNN top-k (self-retrieval), which catches vectors that landed on the wrong chunks.

`by_document` (after re-chunking, when chunk ids and counts change by design): every document
must be in both versions, and searches compare and find documents (`doc_id`), not chunks. Other
chunk lengths change BM25's length normalisation, so the BM25 check becomes self-retrieval too:
each sample's text must find its own document in the target's top-k whenever it finds it in the
source's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from essearch.embedders.base import Embedder
from essearch.es.knn import default_num_candidates
from essearch.index.schema import DOC_ID_FIELD, TEXT_FIELD, VECTOR_FIELD
from essearch.ops.copier import embed_text_of

MAX_LISTED = 20
SAMPLE_QUERY_CHARS = 300


def doc_counts_body(after: dict[str, Any] | None = None, size: int = 1000) -> dict[str, Any]:
    """One page of `{doc_id: chunk count}` (composite aggregation)."""
    composite: dict[str, Any] = {
        "size": size,
        "sources": [{"doc": {"terms": {"field": DOC_ID_FIELD}}}],
    }
    if after is not None:
        composite["after"] = after
    return {"size": 0, "track_total_hits": True, "aggs": {"docs": {"composite": composite}}}


def doc_counts(client: Elasticsearch, index: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    after = None
    while True:
        resp = client.search(index=index, body=doc_counts_body(after))
        agg = resp["aggregations"]["docs"]
        for bucket in agg["buckets"]:
            counts[bucket["key"]["doc"]] = bucket["doc_count"]
        after = agg.get("after_key")
        if not agg["buckets"] or after is None:
            return counts


def count_mismatches(source: dict[str, int], target: dict[str, int]) -> list[tuple[str, int, int]]:
    """(doc_id, chunks in source, chunks in target) for every document that differs."""
    keys = sorted(set(source) | set(target))
    return [(k, source.get(k, 0), target.get(k, 0)) for k in keys if source.get(k) != target.get(k)]


def bm25_body(text: str, k: int) -> dict[str, Any]:
    return {"size": k, "_source": [DOC_ID_FIELD], "query": {"match": {TEXT_FIELD: text}}}


def knn_body(vector: list[float], k: int) -> dict[str, Any]:
    return {
        "size": k,
        "_source": [DOC_ID_FIELD],
        "knn": {
            "field": VECTOR_FIELD,
            "query_vector": vector,
            "k": k,
            "num_candidates": default_num_candidates(k),
        },
    }


def sample_body(size: int, seed: int = 7) -> dict[str, Any]:
    return {
        "size": size,
        "query": {"function_score": {"random_score": {"seed": seed, "field": "_seq_no"}}},
    }


@dataclass
class VerifyReport:
    source: str
    target: str
    source_chunks: int = 0
    target_chunks: int = 0
    source_docs: int = 0
    target_docs: int = 0
    mismatched_docs: list[tuple[str, int, int]] = field(default_factory=list)
    chunks_without_vector: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)
    bm25_overlap: float | None = None
    bm25_self_hits: float | None = None  # by_document only
    knn_self_hits: float | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mismatched_docs"] = [list(m) for m in self.mismatched_docs[:MAX_LISTED]]
        data["ok"] = self.ok
        return data


def _ids(
    client: Elasticsearch, index: str, body: dict[str, Any], *, by_document: bool = False
) -> list[str]:
    hits = client.search(index=index, body=body)["hits"]["hits"]
    if by_document:
        return list(dict.fromkeys(str((h.get("_source") or {}).get(DOC_ID_FIELD)) for h in hits))
    return [h["_id"] for h in hits]


def verify(
    client: Elasticsearch,
    source: str,
    target: str,
    *,
    embedder: Embedder | None = None,
    samples: int = 5,
    k: int = 10,
    min_bm25_overlap: float = 0.5,
    min_knn_self_hits: float = 0.8,
    by_document: bool = False,
) -> VerifyReport:
    """Compare `target` with `source`; `report.problems` lists every reason not to swap."""
    client.indices.refresh(index=f"{source},{target}")
    report = VerifyReport(source, target)
    src_counts, dst_counts = doc_counts(client, source), doc_counts(client, target)
    report.source_docs, report.target_docs = len(src_counts), len(dst_counts)
    report.source_chunks = client.count(index=source)["count"]
    report.target_chunks = client.count(index=target)["count"]
    if by_document:  # re-chunked: chunk counts differ by design; every document must be there
        report.mismatched_docs = [
            m for m in count_mismatches(src_counts, dst_counts) if not (m[1] and m[2])
        ]
    else:
        report.mismatched_docs = count_mismatches(src_counts, dst_counts)
        if report.source_chunks != report.target_chunks:
            report.problems.append(
                f"{source} has {report.source_chunks} chunks, {target} has {report.target_chunks}"
            )
    if report.mismatched_docs:
        shown = ", ".join(f"{d} ({a} vs {b})" for d, a, b in report.mismatched_docs[:5])
        what = "are missing from one version" if by_document else "have different chunk counts"
        report.problems.append(f"{len(report.mismatched_docs)} document(s) {what}: {shown}")
    with_vector = client.count(index=target, query={"exists": {"field": VECTOR_FIELD}})["count"]
    report.chunks_without_vector = report.target_chunks - with_vector
    if report.chunks_without_vector:
        report.problems.append(f"{report.chunks_without_vector} chunk(s) in {target} lack a vector")
    if samples <= 0 or report.source_chunks == 0:
        return report

    hits = client.search(index=source, body=sample_body(samples))["hits"]["hits"]
    overlaps: list[float] = []
    self_hits: list[bool] = []
    bm25_found: list[bool] = []
    vectors = (
        embedder.embed_documents([embed_text_of(h["_source"]) for h in hits])
        if embedder is not None and hits
        else [None] * len(hits)
    )
    for hit, vector in zip(hits, vectors, strict=True):
        text = (hit["_source"].get(TEXT_FIELD) or "")[:SAMPLE_QUERY_CHARS]
        entry: dict[str, Any] = {"id": hit["_id"]}
        own = str(hit["_source"].get(DOC_ID_FIELD)) if by_document else hit["_id"]
        if text.strip():
            before = _ids(client, source, bm25_body(text, k), by_document=by_document)
            after = _ids(client, target, bm25_body(text, k), by_document=by_document)
            overlap = len(set(before) & set(after)) / len(before) if before else 1.0
            overlaps.append(overlap)
            entry["bm25_overlap"] = round(overlap, 3)
            if by_document and own in before:
                # what BM25 found before must be found after (a boilerplate chunk shared by many
                # documents may find none of them in the top k, on either version)
                bm25_found.append(own in after)
                entry["bm25_self_hit"] = own in after
            if before and not after:
                report.problems.append(
                    f"BM25 sample {hit['_id']!r}: hits on {source}, none on {target}"
                )
        if vector is not None:
            found = own in _ids(client, target, knn_body(vector, k), by_document=by_document)
            self_hits.append(found)
            entry["knn_self_hit"] = found
        report.samples.append(entry)
    if overlaps:
        report.bm25_overlap = round(sum(overlaps) / len(overlaps), 3)
        if report.bm25_overlap < min_bm25_overlap:
            report.problems.append(
                f"BM25 results overlap {report.bm25_overlap:.2f} < {min_bm25_overlap} "
                f"between {source} and {target}"
            )
    if bm25_found:
        report.bm25_self_hits = round(sum(bm25_found) / len(bm25_found), 3)
        if report.bm25_self_hits < min_knn_self_hits:
            report.problems.append(
                f"BM25 self-retrieval {report.bm25_self_hits:.2f} < {min_knn_self_hits} on {target}"
            )
    if self_hits:
        report.knn_self_hits = round(sum(self_hits) / len(self_hits), 3)
        if report.knn_self_hits < min_knn_self_hits:
            report.problems.append(
                f"kNN self-retrieval {report.knn_self_hits:.2f} < {min_knn_self_hits} on {target}"
            )
    return report
