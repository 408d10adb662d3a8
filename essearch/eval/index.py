"""The evaluation index: built once per (corpus, embedder, analyzer), then reused.

Its name is derived from the dataset name and a fingerprint of the corpus file, the embedder and the
index settings that change results, so a different corpus or model gets its own index. Reuse is
only trusted after checking what the index records: the embedder in `_meta.essearch` (the model
guard) and, under `_meta.essearch_eval`, the corpus fingerprint written once an ingest finished
cleanly. An interrupted build is resumed by ingesting again (the pipeline skips unchanged chunks).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from essearch.embedders.base import Embedder
from essearch.errors import IngestError, ModelMismatchError
from essearch.eval.beir import BeirDataset, corpus_fingerprint
from essearch.settings import Settings

log = logging.getLogger(__name__)

#: Key under the mapping `_meta` where the evaluation records what was ingested.
EVAL_META_KEY = "essearch_eval"
INDEX_PREFIX = "essearch-eval"


@dataclass
class PreparedIndex:
    """The index an evaluation runs against, and how it came to be."""

    name: str  # read alias
    physical: str | None
    reused: bool
    fingerprint: str
    documents: int
    chunks: int
    build_s: float = 0.0
    ingest: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def chunks_per_doc(self) -> float:
        return self.chunks / self.documents if self.documents else 1.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["chunks_per_doc"] = round(self.chunks_per_doc, 3)
        return data


def index_key(fingerprint: str, embedder_info: dict[str, Any], settings: Settings) -> str:
    """A short hash of everything that changes what the index holds."""
    facts = {
        "corpus": fingerprint,
        "embedder": embedder_info,
        "analyzer": settings.index.analyzer,
        "definition": settings.index.definition,
        "vector_index_type": settings.index.vector_index_type,
        "hnsw": [settings.index.hnsw_m, settings.index.hnsw_ef_construction],
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:10]


def eval_index_name(dataset_name: str, key: str, prefix: str = INDEX_PREFIX) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", dataset_name.lower()).strip("-")[:40] or "dataset"
    return f"{prefix}-{slug}-{key}"


def is_empty_document(failure: Any) -> bool:
    """A corpus line with nothing to index (Cranfield has two): it can never be retrieved, as in
    BEIR, and does not make the index incomplete."""
    return failure.stage == "load" and str(failure.reason).endswith("is empty")


def settings_for_index(settings: Settings, name: str) -> Settings:
    """The same settings with the evaluation index as target (no replicas: a throwaway index)."""
    index = settings.index.model_copy(update={"name": name, "replicas": 0})
    return settings.model_copy(update={"index": index})


def eval_meta(client: Elasticsearch, index: str) -> tuple[str | None, dict[str, Any]]:
    """(physical index, the `_meta.essearch_eval` record) behind an alias; (None, {}) if absent."""
    response = client.options(ignore_status=404).indices.get_mapping(index=index).body
    if not response or "error" in response:
        return None, {}
    physical = sorted(response)[-1]
    meta = response[physical].get("mappings", {}).get("_meta", {}) or {}
    record = meta.get(EVAL_META_KEY)
    return physical, dict(record) if isinstance(record, dict) else {}


def record_eval_meta(client: Elasticsearch, physical: str, record: dict[str, Any]) -> None:
    """Add our record to `_meta` (PUT mapping replaces `_meta` whole, so merge first)."""
    response = client.indices.get_mapping(index=physical).body
    meta = dict(response[physical].get("mappings", {}).get("_meta", {}) or {})
    meta[EVAL_META_KEY] = record
    client.indices.put_mapping(index=physical, meta=meta)


def count_docs_and_chunks(client: Elasticsearch, index: str) -> tuple[int, int]:
    """(distinct parent documents, chunks) in the index."""
    from essearch.index.schema import DOC_ID_FIELD

    client.indices.refresh(index=index)
    chunks = int(client.count(index=index).body["count"])
    response = client.search(
        index=index,
        size=0,
        aggs={"docs": {"cardinality": {"field": DOC_ID_FIELD, "precision_threshold": 40000}}},
    ).body
    return int(response["aggregations"]["docs"]["value"]), chunks


def drop_index(client: Elasticsearch, settings: Settings) -> None:
    from essearch.index import IndexManager

    manager = IndexManager(client, settings)
    if manager.versions() or manager.template_exists():
        manager.drop(force=True)


def prepare_index(
    dataset: BeirDataset,
    settings: Settings,
    client: Elasticsearch,
    embedder: Embedder,
    *,
    rebuild: bool = False,
    progress: Any = None,
    prefix: str = INDEX_PREFIX,
    vector_index_type: str | None = None,
) -> tuple[PreparedIndex, Settings]:
    """Reuse the index built from this corpus and embedder, or (re)build it; returns the index
    and the settings that point at it. `vector_index_type` overrides the settings' (`flat`: the
    exact-kNN twin; with a cached embedder its build re-embeds nothing)."""
    from essearch.index import IndexManager
    from essearch.ingest import FieldMap, IngestOptions, ingest

    if vector_index_type is not None:
        index = settings.index.model_copy(update={"vector_index_type": vector_index_type})
        settings = settings.model_copy(update={"index": index})
    fingerprint = corpus_fingerprint(dataset.corpus_path)
    info = embedder.info
    name = eval_index_name(dataset.name, index_key(fingerprint, info.to_dict(), settings), prefix)
    index_settings = settings_for_index(settings, name)
    manager = IndexManager(client, index_settings, info)
    notes: list[str] = []

    if manager.current_index() is not None and not rebuild:
        try:
            manager.check_model(info)
        except ModelMismatchError as exc:
            notes.append(f"rebuilt: {exc}")
            rebuild = True
    if rebuild:
        drop_index(client, index_settings)

    physical, record = eval_meta(client, name)
    if physical and record.get("complete") and record.get("corpus_fingerprint") == fingerprint:
        if record.get("empty_documents"):
            notes.append(
                f"{record['empty_documents']} corpus documents have no text and were not indexed"
            )
        return (
            PreparedIndex(
                name=name,
                physical=physical,
                reused=True,
                fingerprint=fingerprint,
                documents=int(record.get("documents", 0)),
                chunks=int(record.get("chunks", 0)),
                notes=notes,
            ),
            index_settings,
        )
    if physical:
        notes.append("resumed an unfinished build (unchanged chunks are skipped)")

    started = time.monotonic()
    options = IngestOptions(fields=FieldMap.of(id="_id"), fmt="jsonl", dead_letter=None)
    report = ingest(
        dataset.corpus_path,
        settings=index_settings,
        client=client,
        embedder=embedder,
        options=options,
        **({"progress": progress} if progress is not None else {}),
    )
    build_s = time.monotonic() - started
    empty = [f for f in report.failures if is_empty_document(f)]
    serious = [f for f in report.failures if not is_empty_document(f)]
    if report.interrupted or serious or len(report.failures) < report.failed:
        first = "; ".join(str(f.to_dict()) for f in serious[:3])
        raise IngestError(
            f"ingesting {dataset.corpus_path} into {name!r} did not finish cleanly "
            f"({report.failed} failures{', ' + report.interrupted if report.interrupted else ''})"
            f"{': ' + first if first else ''}; run again to resume"
        )
    if empty:
        where = ", ".join(str(f.source or f.id) for f in empty[:5])
        notes.append(f"{len(empty)} corpus documents have no text and were not indexed ({where})")
    documents, chunks = count_docs_and_chunks(client, name)
    physical = report.index
    record_eval_meta(
        client,
        physical,
        {
            "complete": True,
            "dataset": dataset.name,
            "corpus_fingerprint": fingerprint,
            "documents": documents,
            "chunks": chunks,
            "build_s": round(build_s, 1),
            "empty_documents": len(empty),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
    )
    return (
        PreparedIndex(
            name=name,
            physical=physical,
            reused=False,
            fingerprint=fingerprint,
            documents=documents,
            chunks=chunks,
            build_s=build_s,
            ingest=report.to_dict(),
            notes=notes,
        ),
        index_settings,
    )
