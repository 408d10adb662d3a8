"""The streaming ingest pipeline: load → chunk → look up → embed → bulk index.

Shape: one producer thread loads, chunks and embeds batch after batch and puts ready bulk actions
on a bounded queue; `bulk_threads` consumer threads each run the client's `streaming_bulk` helper
over that queue (batches capped by count and bytes, 429s retried with exponential backoff). So the
next batch is being embedded while the previous one is being indexed, and memory is bounded by the
queue size times the batch size, whatever the corpus size.

Idempotence and resume: chunk ids are derived from (document id, position, chunk text) and every
chunk stores its document's content hash. Before embedding a batch, one search fetches the chunks
already indexed for its documents: chunks present with the same hash are skipped (not embedded, not
sent), chunks of the document that are no longer produced are deleted. A re-run after Ctrl-C, a
node crash or an embedder outage therefore sends only what is missing, and the final index equals
that of an uninterrupted run. Refresh happens once, at the end.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import (
    AuthorizationException,
    BadRequestError,
    Elasticsearch,
    ElasticsearchWarning,
)
from elasticsearch.helpers import streaming_bulk

from essearch.embedders.base import Embedder
from essearch.errors import (
    ConfigurationError,
    EmbeddingError,
    ModelMismatchError,
    es_error_reason,
)
from essearch.index.chunking import ChunkerConfig, chunking_for, same_chunking
from essearch.index.definitions import VectorSpec
from essearch.index.manager import IndexManager
from essearch.index.schema import (
    ADDED_FIELDS,
    CONTENT_HASH_FIELD,
    DOC_ID_FIELD,
    SOURCE_FIELD,
    VECTOR_FIELD,
    write_alias_for,
)
from essearch.ingest.chunker import Chunker
from essearch.ingest.failures import DeadLetter, Failure, describe_bulk_error
from essearch.ingest.ids import content_hash, doc_id_of_chunk_id
from essearch.ingest.loaders import (
    Document,
    FieldMap,
    Format,
    Vector,
    count_hint,
    document_from_record,
)
from essearch.ingest.loaders import load as load_paths
from essearch.ingest.planning import (
    BULK_COUNTER,
    LOOKUP_PAGE,
    Indexed,
    Piece,
    Plan,
    Planner,
    bulk_actions,
    existing_chunks_query,
    metadata_types_of,
    type_clash,
    vector_problems,
)
from essearch.ingest.progress import Counters, NoProgress, ProgressView
from essearch.ingest.sync import SyncScope, count_unsourced, delete_chunks, vanished
from essearch.settings import Settings
from essearch.text.guard import coverage_warning
from essearch.text.languages import LanguageTally

log = logging.getLogger(__name__)

_STOP = object()


@dataclass
class IngestOptions:
    """Knobs of one run; the defaults suit the local MiniLM on a small machine."""

    fields: FieldMap = field(default_factory=FieldMap)
    fmt: Format | None = None
    glob: str | None = None
    chunker: ChunkerConfig | None = None  # None: default for the embedder
    dead_letter: Path | str | None = "essearch-dead-letter.jsonl"
    embed_batch: int | None = None  # chunks per embedding call; None: max(4, concurrency) batches
    bulk_chunk_size: int = 500  # actions per bulk request
    bulk_max_bytes: int = 10 * 1024 * 1024  # bytes per bulk request
    bulk_threads: int = 2
    # How long a bulk waits for an unavailable primary (a dead node's shard) before its items
    # fail; None keeps the server's 1m.
    bulk_timeout: str | None = None
    queue_size: int = 4  # ready batches waiting for the bulk consumers
    max_retries: int = 8  # per item, on 429
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    skip_unchanged: bool = True
    refresh: bool = True
    init_index: bool = True  # create the index (and aliases) when it does not exist yet
    root: Path | str | None = None  # document ids of files: paths relative to this
    sync: bool = False  # delete documents of the index that this run did not read
    dry_run: bool = False  # with sync: list what would be deleted, delete nothing
    run_id: str | None = None  # on every dead-letter line; None: made up


@dataclass
class IngestReport:
    """What one run did. `ok` is False when anything failed or the run was interrupted."""

    index: str
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    skipped: int = 0
    indexed: int = 0
    deleted: int = 0
    failed: int = 0
    failures_by_stage: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)  # the first ones
    dead_letter: str | None = None
    elapsed_s: float = 0.0
    interrupted: str | None = None
    languages: dict[str, float] = field(default_factory=dict)  # share of the text per language
    language_warning: str | None = None  # the embedder does not cover most of the text
    run_id: str | None = None
    duplicates: int = 0  # document ids seen more than once (the last one won)
    sync_deleted: list[str] = field(default_factory=list)  # documents removed (or, dry run, to be)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.interrupted is None

    @property
    def chunks_per_s(self) -> float:
        return self.chunks / self.elapsed_s if self.elapsed_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "index": self.index,
            "documents": self.documents,
            "chunks": self.chunks,
            "embedded": self.embedded,
            "skipped": self.skipped,
            "indexed": self.indexed,
            "deleted": self.deleted,
            "failed": self.failed,
            "failures_by_stage": self.failures_by_stage,
            "first_failures": [f.to_dict() for f in self.failures[:20]],
            "dead_letter": self.dead_letter,
            "elapsed_s": round(self.elapsed_s, 3),
            "chunks_per_s": round(self.chunks_per_s, 1),
            "interrupted": self.interrupted,
            "languages": self.languages,
            "language_warning": self.language_warning,
            "run_id": self.run_id,
            "duplicates": self.duplicates,
            "sync_deleted": self.sync_deleted[:1000],
            "sync_deleted_count": len(self.sync_deleted),
            "warnings": self.warnings[:50],
        }


# -- the index target ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    write_alias: str
    index: str  # the physical index behind the write alias
    vector: VectorSpec
    metadata_types: Mapping[str, str] = field(default_factory=dict)  # metadata key -> ES type
    # False: the index has no `source` field and this user may not add it, so chunks record no
    # input and `--sync` is refused rather than left without a scope.
    records_source: bool = True


def prepare_target(
    client: Elasticsearch, settings: Settings, embedder: Embedder, *, init_index: bool = True
) -> Target:
    """Create the index when missing, then the model guard: the configured embedder must be the
    one recorded on the index, and its dimensions those of the mapping. Runs before any write."""
    write_alias = write_alias_for(settings.index.name)
    info = embedder.info
    manager = IndexManager(client, settings, info)
    if manager.current_index() is None:
        if not init_index:
            raise ConfigurationError(
                f"index {settings.index.name!r} does not exist; run `essearch init` first"
            )
        manager.init()
    manager.check_model(info)
    if not client.indices.exists_alias(name=write_alias):
        raise ConfigurationError(
            f"write alias {write_alias!r} does not exist; run `essearch init` first"
        )
    mappings = client.indices.get_mapping(index=write_alias).body
    if len(mappings) != 1:
        raise ConfigurationError(f"write alias {write_alias!r} points at {sorted(mappings)}")
    index, body = next(iter(mappings.items()))
    mapping = body.get("mappings", {})
    vector_mapping = mapping.get("properties", {}).get(VECTOR_FIELD, {})
    if "dims" not in vector_mapping:
        raise ConfigurationError(f"index {index!r} has no dims on field {VECTOR_FIELD!r}")
    spec = VectorSpec.from_mapping(vector_mapping)
    if spec.dims != info.dims:
        raise ModelMismatchError(
            f"index {index!r} stores {spec.dims}-dimension vectors but the embedder "
            f"{info.provider}/{info.model} makes {info.dims}-dimension ones"
        )
    records_source = add_missing_fields(client, index, mapping)
    return Target(write_alias, index, spec, metadata_types_of(mapping), records_source)


def add_missing_fields(client: Elasticsearch, index: str, mapping: Mapping[str, Any]) -> bool:
    """Give an index made before the layout gained a field (`schema.ADDED_FIELDS`) that field,
    in place: Elasticsearch adds a field to a live mapping without a new version. False when it
    is missing and cannot be added (a user with write but not `manage` privileges)."""
    properties = mapping.get("properties", {})
    missing = {name: spec for name, spec in ADDED_FIELDS.items() if name not in properties}
    if not missing:
        return True
    try:
        with warnings.catch_warnings(record=True) as said:  # a deprecation of the privilege used
            warnings.simplefilter("always", ElasticsearchWarning)
            client.indices.put_mapping(index=index, properties=missing)
        for warning in said:
            log.info("adding %s to %s: %s", ", ".join(missing), index, warning.message)
    except (AuthorizationException, BadRequestError) as exc:
        log.warning(
            "index %s has no %s field and it cannot be added (%s); chunks will not record their "
            "input, and --sync needs it",
            index,
            ", ".join(missing),
            es_error_reason(exc),
        )
        return False
    return True


def index_was_empty(client: Elasticsearch, index: str) -> bool:
    """True when `index` holds no documents (refresh + stats: neither counts as a search; a
    writer without the `monitor` privilege that stats needs gets a count instead)."""
    client.indices.refresh(index=index)
    try:
        stats = client.indices.stats(index=index, metric="docs").body
    except AuthorizationException:
        return int(client.count(index=index)["count"]) == 0
    return int(stats["_all"]["primaries"].get("docs", {}).get("count", 0)) == 0


def resolve_chunking(
    client: Elasticsearch,
    settings: Settings,
    embedder: Embedder,
    index: str,
    explicit: ChunkerConfig | None,
    index_empty: bool,
) -> ChunkerConfig:
    """How this run cuts documents: the index's recorded chunking, unless one is asked for.

    Asked for (options or `index.chunk_size/overlap`) and different from the recorded one: on an
    empty index the record is updated (`init` then `ingest --chunk-size` is fine); on an index
    with chunks it is refused, since mixing chunk sizes in one index is what `reindex` avoids.
    """
    info = embedder.info
    if explicit is None and (settings.index.chunk_size or settings.index.chunk_overlap is not None):
        explicit = chunking_for(
            info.provider, info.model, settings.index.chunk_size, settings.index.chunk_overlap
        )
    manager = IndexManager(client, settings, info)
    if explicit is None:
        return manager.recorded_chunking(index) or chunking_for(info.provider, info.model)
    try:
        recorded = manager.recorded_chunking(index)
    except ConfigurationError:  # a token config whose tokenizer is missing here
        if not index_empty:
            raise
        recorded = None  # replaced below
    if recorded is not None and same_chunking(recorded, explicit):
        return explicit
    if index_empty:
        manager.record_chunking(index, explicit)
        return explicit
    if recorded is None:  # made before chunking was recorded: nothing to compare with
        return explicit
    raise ConfigurationError(
        f"index {index!r} holds chunks of {recorded.describe()}; this run asks for "
        f"{explicit.describe()}. Mixing them in one index would make results uneven: change the "
        f"index's chunking with `essearch reindex --chunk-size {explicit.size} --chunk-overlap "
        f"{explicit.overlap}`, or leave the chunk options out to follow the index."
    )


def existing_chunks(
    client: Elasticsearch, index: str, doc_ids: list[str]
) -> dict[str, dict[str, Indexed]]:
    """doc id -> {chunk id -> `Indexed`} for the chunks already indexed."""
    found: dict[str, dict[str, Indexed]] = {}
    search_after = None
    while True:
        resp = client.search(index=index, body=existing_chunks_query(doc_ids, search_after))
        hits = resp["hits"]["hits"]
        for hit in hits:
            src = hit.get("_source", {})
            found.setdefault(src.get(DOC_ID_FIELD), {})[hit["_id"]] = Indexed(
                src.get(CONTENT_HASH_FIELD, ""), hit["_index"], src.get(SOURCE_FIELD)
            )
        if len(hits) < LOOKUP_PAGE:
            return found
        search_after = hits[-1]["sort"]


# -- inputs -------------------------------------------------------------------------------------


Source = str | Path | Document | Mapping[str, Any]


def iter_documents(
    sources: Iterable[Source], options: IngestOptions
) -> Iterator[Document | Failure]:
    """Paths go through the loaders; Documents pass; dicts are mapped like JSONL records."""
    paths: list[str | Path] = []

    def from_paths() -> Iterator[Document | Failure]:
        return load_paths(
            paths, options.fields, fmt=options.fmt, glob=options.glob, root=options.root
        )

    for position, item in enumerate(sources, start=1):
        if isinstance(item, (str, Path)):
            paths.append(item)
            continue
        if paths:
            yield from from_paths()
            paths = []
        if isinstance(item, Document):
            yield item
        else:
            yield document_from_record(item, options.fields, f"<records>:{position}")
    if paths:
        yield from from_paths()


# -- the run ------------------------------------------------------------------------------------


def _brings_vector(plan: Plan) -> bool:
    """Whether the document came with its vector (a non-empty list or numpy row): then it is
    checked and sent as given, not embedded."""
    vector = plan.to_send[0].vector if plan.to_send else None
    return vector is not None and len(vector) > 0


class _Run:
    """State shared by the producer and the consumers of one ingest run."""

    def __init__(
        self,
        client: Elasticsearch,
        embedder: Embedder,
        target: Target,
        chunker: Chunker,
        options: IngestOptions,
        dead: DeadLetter,
        *,
        index_empty: bool,
    ) -> None:
        self.client = client
        self.embedder = embedder
        self.target = target
        self.chunker = chunker
        self.options = options
        self.dead = dead
        self.counters = Counters()
        self.languages = LanguageTally()
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, options.queue_size))
        self.stop = threading.Event()
        self.fatal: str | None = None
        self._fatal_lock = threading.Lock()
        # enough chunks per call for `concurrency` batches in flight (see Embedder.embed_documents)
        self.embed_batch = options.embed_batch or max(
            16, max(4, embedder.concurrency) * embedder.batch_size
        )
        # An index that was empty when the run began holds no chunks to compare with or delete,
        # so no lookups; besides saving a search per batch, this keeps the shard search-idle,
        # and Elasticsearch then skips periodic refreshes during the load (fewer, larger segments).
        self.lookup_existing = not index_empty
        # document id -> content hash of the version read last (sync, duplicates)
        self.seen: dict[str, str] = {}
        self.duplicates: dict[str, set[str]] = {}  # doc id -> chunk ids of the version that won
        self.warnings: list[str] = []
        self._warned_fields: set[str] = set()
        self.failed_docs: set[str] = set()  # kept by --sync: their source may still be there
        self.unnamed_failures = 0  # failures naming no document: --sync cannot tell what to keep
        self.scope = SyncScope()  # the inputs --sync answers for
        self.planner = Planner(skip_unchanged=options.skip_unchanged)

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        if len(self.warnings) < 100:
            self.warnings.append(message)

    def fail(self, failure: Failure) -> None:
        self.dead.add(failure)
        self.counters.add("failed")
        doc_id = failure.doc_id or failure.id
        if doc_id is None:
            self.unnamed_failures += 1
        else:
            self.failed_docs.add(doc_id_of_chunk_id(doc_id) if "::" in doc_id else doc_id)

    def abort(self, reason: str) -> None:
        with self._fatal_lock:
            if self.fatal is None:
                self.fatal = reason
        self.stop.set()

    def _put(self, item: Any) -> bool:
        while not self.stop.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    # -- producer --------------------------------------------------------------------------
    def produce(self, documents: Iterator[Document | Failure]) -> None:
        try:
            batch: list[Piece] = []
            in_batch: set[str] = set()  # document ids of `batch`
            pending = 0
            for item in documents:
                if self.stop.is_set():
                    return
                if isinstance(item, Failure):
                    self.fail(item)
                    continue
                self.counters.add("documents")
                self.check_document(item)
                if item.id in in_batch:  # a repeated id: one version a batch
                    self.process(batch)
                    batch, pending = [], 0
                    in_batch.clear()
                try:
                    for piece in self.pieces(item):
                        batch.append(piece)
                        in_batch.add(item.id)
                        pending += len(piece.chunks)
                        if pending >= self.embed_batch:
                            self.process(batch)
                            batch, pending = [], 0
                            in_batch.clear()
                        if self.stop.is_set():
                            return
                except Exception as exc:  # a splitter bug must not stop the run
                    self.fail(Failure("chunk", str(exc), doc_id=item.id, source=item.source))
                    continue
            if batch and not self.stop.is_set():
                self.process(batch)
        except BaseException as exc:
            self.abort(f"{type(exc).__name__}: {exc}")
        finally:
            for _ in range(self.options.bulk_threads):
                # consumers stop on _STOP or on the stop event; never block forever here
                try:
                    self.queue.put(_STOP, timeout=5)
                except queue.Full:
                    self.stop.set()

    def pieces(self, doc: Document) -> Iterator[Piece]:
        """The document's chunks in pieces of at most `embed_batch`, cut as they are needed, so
        a large document is embedded and indexed while the rest of it is still being cut."""
        chunks = self.chunker.iter_document(doc, digest=self.seen.get(doc.id))
        current = list(itertools.islice(chunks, self.embed_batch))
        first = True
        while current:
            following = list(itertools.islice(chunks, self.embed_batch))
            yield Piece(doc, current, first=first, last=not following)
            current, first = following, False

    def check_document(self, doc: Document) -> None:
        """Warn about a repeated document id (the last one wins) and metadata the mapping will
        refuse (once per field)."""
        digest = content_hash(doc.title, doc.text, doc.metadata)
        if doc.id in self.seen:
            self.duplicates.setdefault(doc.id, set())
            self.warn(
                f"document id {doc.id!r} appears more than once (again at {doc.source}); "
                "the last one wins"
            )
        self.seen[doc.id] = digest
        for key, value in doc.metadata.items():
            es_type = self.target.metadata_types.get(key)
            if es_type is None or key in self._warned_fields:
                continue
            clash = type_clash(es_type, value)
            if clash:
                self._warned_fields.add(key)
                self.warn(
                    f"metadata field {key!r} at {doc.source}: {clash}; Elasticsearch will refuse "
                    "such chunks (fix the value or the index definition)"
                )

    def _existing_for(self, pieces: list[Piece]) -> dict[str, Mapping[str, Indexed]]:
        """Indexed chunks of the batch's documents; looked up once per document, at its first
        piece, and kept while the document's later pieces come."""
        if not self.lookup_existing:
            return {}
        wanted = list({p.doc.id for p in pieces if p.first})
        found = existing_chunks(self.client, self.target.write_alias, wanted) if wanted else {}
        result: dict[str, Mapping[str, Indexed]] = {}
        for piece in pieces:
            doc_id = piece.doc.id
            result[doc_id] = self.planner.existing_for(piece, found.get(doc_id, {}))
        return result

    def plan(self, piece: Piece, existing: Mapping[str, Indexed]) -> Plan:
        for chunk in piece.chunks:
            self.languages.add(chunk.text)
        return self.planner.plan(piece, existing)

    def process(self, batch: list[Piece]) -> None:
        existing = self._existing_for(batch)
        plans = [self.plan(piece, existing.get(piece.doc.id, {})) for piece in batch]
        for piece, plan in zip(batch, plans, strict=True):
            self.counters.add("chunks", len(plan.chunks))
            self.counters.add("skipped", len(plan.chunks) - len(plan.to_send))
            winners = self.duplicates.get(piece.doc.id)
            last_version = bool(plan.chunks) and (
                plan.chunks[0].content_hash == self.seen[piece.doc.id]
            )
            if winners is not None and last_version:
                winners.update(c.id for c in plan.chunks)
        given = [p for p in plans if _brings_vector(p)]
        computed = self.embed([p for p in plans if not _brings_vector(p)])
        vectors: dict[str, Sequence[Vector]] = {**computed, **self.precomputed(given)}
        indexed_at = datetime.now(UTC).isoformat()
        actions = bulk_actions(
            plans,
            vectors,
            self.target.write_alias,
            indexed_at,
            record_source=self.target.records_source,
        )
        if actions:
            self._put(actions)

    def precomputed(self, plans: list[Plan]) -> dict[str, list[Vector]]:
        """Vectors that came with their records, checked against the index (dims, finite,
        non-zero) before anything is sent: a bad row is refused, named by file and line."""
        if not plans:
            return {}
        vectors = [c.vector for p in plans for c in p.to_send]
        problems = vector_problems(vectors, self.target.vector)
        result: dict[str, list[Vector]] = {}
        start = 0
        for plan in plans:
            end = start + len(plan.to_send)
            problem = next((p for p in problems[start:end] if p), None)
            if problem:
                self.fail(
                    Failure(
                        "load",
                        f"precomputed vector refused: {problem}",
                        id=plan.doc.id,
                        doc_id=plan.doc.id,
                        source=plan.doc.source,
                    )
                )
            else:
                result[plan.doc.id] = [
                    c.vector if c.vector is not None else [] for c in plan.to_send
                ]
            start = end
        return result

    def embed(self, plans: list[Plan]) -> dict[str, list[list[float]]]:
        """doc id -> vectors of its chunks to send; a document whose embedding failed, or any of
        whose vectors is unusable, is reported and left out whole."""
        wanted = [p for p in plans if p.to_send]
        result: dict[str, list[list[float]]] = {p.doc.id: [] for p in plans if not p.to_send}
        if not wanted:
            return result
        try:
            groups = [(wanted, self._embed_texts(wanted))]
        except Exception as exc:
            log.warning(
                "embedding a batch of %d documents failed (%s); retrying one by one",
                len(wanted),
                exc,
            )
            groups = []
            consecutive = 0
            for plan in wanted:
                if consecutive >= 3:  # the backend is down: do not hammer it document by document
                    self._embed_failed(plan, f"skipped after repeated embedding failures: {exc}")
                    continue
                try:
                    groups.append(([plan], self._embed_texts([plan])))
                    consecutive = 0
                except Exception as one_exc:
                    consecutive += 1
                    exc = one_exc
                    self._embed_failed(plan, f"{type(one_exc).__name__}: {one_exc}")
        for group_plans, vectors in groups:
            problems = vector_problems(vectors, self.target.vector)
            start = 0
            for plan in group_plans:
                end = start + len(plan.to_send)
                doc_vectors, doc_problems = vectors[start:end], problems[start:end]
                start = end
                problem = next(
                    ((c, p) for c, p in zip(plan.to_send, doc_problems, strict=True) if p), None
                )
                if problem is not None:
                    chunk, reason = problem
                    self.fail(
                        Failure(
                            "embed", reason, id=chunk.id, doc_id=plan.doc.id, source=plan.doc.source
                        )
                    )
                    continue
                self.counters.add("embedded", len(plan.to_send))
                result[plan.doc.id] = doc_vectors
        return result

    def _embed_texts(self, plans: list[Plan]) -> list[list[float]]:
        texts = [c.embed_text for p in plans for c in p.to_send]
        # One round of backend batches at a time (`concurrency` of them in flight), so the
        # progress display counts vectors as they come without serialising remote calls.
        step = max(1, self.embedder.batch_size) * max(1, self.embedder.concurrency)
        vectors = []
        for start in range(0, len(texts), step):
            vectors += self.embedder.embed_documents(texts[start : start + step])
            self.counters.add("vectors", min(step, len(texts) - start))
        if len(vectors) != len(texts):
            raise EmbeddingError(f"embedder returned {len(vectors)} vectors for {len(texts)} texts")
        return [list(map(float, v)) if not isinstance(v, list) else v for v in vectors]

    def _embed_failed(self, plan: Plan, reason: str) -> None:
        self.fail(Failure("embed", reason, doc_id=plan.doc.id, source=plan.doc.source))

    # -- consumers -------------------------------------------------------------------------
    def _actions(self) -> Iterator[dict[str, Any]]:
        while not self.stop.is_set():
            try:
                item = self.queue.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is _STOP:
                return
            yield from item

    @property
    def _bulk_params(self) -> dict[str, Any]:
        timeout = self.options.bulk_timeout
        return {"timeout": timeout} if timeout else {}

    def consume(self) -> None:
        opts = self.options
        try:
            for ok, result in streaming_bulk(
                self.client,
                self._actions(),
                chunk_size=opts.bulk_chunk_size,
                max_chunk_bytes=opts.bulk_max_bytes,
                raise_on_error=False,
                raise_on_exception=True,
                max_retries=opts.max_retries,
                initial_backoff=opts.initial_backoff,
                max_backoff=opts.max_backoff,
                **self._bulk_params,
            ):
                op, info = next(iter(result.items()))
                status = info.get("status")
                if ok or (op == "delete" and status == 404):
                    self.counters.add(BULK_COUNTER.get(op, "indexed"))
                    continue
                cid = str(info.get("_id"))
                self.fail(
                    Failure(
                        "delete" if op == "delete" else "index",
                        describe_bulk_error(info.get("error")),
                        id=cid,
                        doc_id=doc_id_of_chunk_id(cid),
                        status=status,
                    )
                )
        except BaseException as exc:
            self.abort(f"Elasticsearch bulk failed: {type(exc).__name__}: {exc}")


def _exists(source: str | Path) -> bool:
    return str(source) == "-" or Path(source).exists()


def _resolve(
    settings: Settings | None, client: Elasticsearch | None, embedder: Embedder | None
) -> tuple[Settings, Elasticsearch, Embedder]:
    if settings is None:
        from essearch.settings import load_settings

        settings = load_settings()
    if client is None:
        from essearch.es import make_client

        client = make_client(settings)
    if embedder is None:
        from essearch.embedders import create_embedder

        embedder = create_embedder(settings)
    return settings, client, embedder


def ingest(
    sources: Source | Iterable[Source],
    *,
    settings: Settings | None = None,
    client: Elasticsearch | None = None,
    embedder: Embedder | None = None,
    options: IngestOptions | None = None,
    progress: ProgressView | None = None,
) -> IngestReport:
    """Ingest files, directories, `-` (stdin), Documents or dicts into `settings.index.name`.

    Item-level problems are counted and written to the dead-letter file, never raised; the run
    stops early (report.interrupted) only when Elasticsearch or the producer cannot go on.
    Configuration problems (missing index with init_index=False, model mismatch) raise before
    anything is written. A client or embedder not passed in is created here and closed at the end.
    """
    given_client, given_embedder = client, embedder
    settings, client, embedder = _resolve(settings, client, embedder)
    try:
        return _ingest(sources, settings, client, embedder, options, progress)
    finally:
        if given_embedder is None:
            embedder.close()
        if given_client is None:
            client.close()


def _ingest(
    sources: Source | Iterable[Source],
    settings: Settings,
    client: Elasticsearch,
    embedder: Embedder,
    options: IngestOptions | None,
    progress: ProgressView | None,
) -> IngestReport:
    options = options or IngestOptions()
    if isinstance(sources, (str, Path, Document, Mapping)):
        sources = [sources]
    sources = list(sources) if not isinstance(sources, Iterator) else sources
    if isinstance(sources, list):
        missing = [str(s) for s in sources if isinstance(s, (str, Path)) and not _exists(s)]
        if missing:  # a configuration problem, found before anything is loaded or written
            raise ConfigurationError(f"input {missing[0]!r} does not exist")
    started = time.monotonic()
    target = prepare_target(client, settings, embedder, init_index=options.init_index)
    if options.sync and not target.records_source:
        raise ConfigurationError(
            f"--sync needs each chunk to record its input (field {SOURCE_FIELD!r}), and index "
            f"{target.index!r} has no such field that this user may add; run one ingest as a "
            "user with the `manage` privilege on it, or drop --sync"
        )
    index_empty = index_was_empty(client, target.index)
    chunker = Chunker(
        resolve_chunking(client, settings, embedder, target.index, options.chunker, index_empty)
    )
    scope = SyncScope()
    sources = scope.track(sources)  # what --sync answers for: the inputs as they are read
    if options.dry_run:
        return sync_plan(client, target, iter_documents(sources, options), started, scope)
    dead = DeadLetter(options.dead_letter, run_id=options.run_id)
    run = _Run(client, embedder, target, chunker, options, dead, index_empty=index_empty)
    run.scope = scope
    progress = progress or NoProgress()
    path_sources = (
        [s for s in sources if isinstance(s, (str, Path))] if isinstance(sources, list) else []
    )
    hint = None
    if isinstance(sources, list) and path_sources and len(path_sources) == len(sources):
        hint = count_hint(path_sources, glob=options.glob)
    elif isinstance(sources, list) and not path_sources:
        hint = len(sources)

    producer = threading.Thread(
        target=run.produce,
        args=(iter_documents(sources, options),),
        name="ingest-producer",
        daemon=True,
    )
    consumers = [
        threading.Thread(target=run.consume, name=f"ingest-bulk-{i}", daemon=True)
        for i in range(max(1, options.bulk_threads))
    ]
    progress.start(hint)
    interrupted: str | None = None
    try:
        producer.start()
        for thread in consumers:
            thread.start()
        for thread in (producer, *consumers):
            while thread.is_alive():
                thread.join(0.2)
                progress.update(run.counters.snapshot())
    except KeyboardInterrupt:
        interrupted = "interrupted (Ctrl-C or SIGTERM); run the same command again to finish"
        run.stop.set()
        for thread in (producer, *consumers):
            thread.join(10)
    finally:
        progress.update(run.counters.snapshot())
        progress.stop()
        dead.close()
    if run.fatal and not interrupted:
        interrupted = f"{run.fatal}; run the same command again to finish"
    sync_deleted: list[str] = []
    if interrupted is None:
        try:  # the dead-letter file reopens (append) if the clean-up has failures
            remove_earlier_versions(run)
            if options.sync:
                sync_deleted = mirror(run)
        finally:
            dead.close()
    if options.refresh:
        try:
            client.indices.refresh(index=target.write_alias)
        except Exception as exc:  # the node may be the reason we stopped
            log.warning("final refresh failed: %s", exc)
    counts = run.counters.snapshot()
    languages = run.languages.shares()
    warning = coverage_warning(embedder.info.model, languages)  # the CLI prints it once
    return IngestReport(
        index=target.index,
        documents=counts["documents"],
        chunks=counts["chunks"],
        embedded=counts["embedded"],
        skipped=counts["skipped"],
        indexed=counts["indexed"],
        deleted=counts["deleted"],
        failed=counts["failed"],
        failures_by_stage=dict(dead.counts),
        failures=list(dead.first),
        dead_letter=str(dead.path) if dead.path and dead.total else None,
        elapsed_s=time.monotonic() - started,
        interrupted=interrupted,
        run_id=dead.run_id,
        duplicates=len(run.duplicates),
        sync_deleted=sync_deleted,
        warnings=list(run.warnings),
        languages=languages,
        language_warning=warning,
    )


def sync_plan(
    client: Elasticsearch,
    target: Target,
    documents: Iterator[Document | Failure],
    started: float,
    scope: SyncScope | None = None,
) -> IngestReport:
    """`--sync --dry-run`: read the sources (nothing is chunked, embedded or written) and list the
    documents of the index, within the inputs' `scope`, that a real run would delete."""
    seen: set[str] = set()
    report = IngestReport(index=target.index)
    for item in documents:
        if isinstance(item, Failure):
            report.failed += 1
            report.failures.append(item)
            name = item.doc_id or item.id
            if name is None:
                report.warnings.append(f"{item}: no document named, so nothing would be deleted")
            else:
                seen.add(name)
            continue
        report.documents += 1
        seen.add(item.id)
    if not any("nothing would be deleted" in w for w in report.warnings):
        client.indices.refresh(index=target.write_alias)
        report.sync_deleted = vanished(client, target.write_alias, seen, scope)
        report.warnings.extend(unreached_warning(client, target.write_alias, scope))
    report.elapsed_s = time.monotonic() - started
    return report


def remove_earlier_versions(run: _Run) -> None:
    """A document id read twice in one run: chunks of the earlier version that the last one
    does not have are deleted (the last one wins)."""
    if not run.duplicates:
        return
    run.client.indices.refresh(index=run.target.write_alias)
    doc_ids = list(run.duplicates)
    for start in range(0, len(doc_ids), 500):
        group = doc_ids[start : start + 500]
        found = existing_chunks(run.client, run.target.write_alias, group)
        stale = [
            (index, cid)
            for doc_id in group
            for cid, (_, index, _) in found.get(doc_id, {}).items()
            if cid not in run.duplicates[doc_id]
        ]
        _delete(run, stale)


def unreached_warning(client: Elasticsearch, index: str, scope: SyncScope | None) -> list[str]:
    """A warning when chunks that record no input exist and this sync's scope cannot reach them."""
    if scope is None or scope.unsourced:
        return []
    count = count_unsourced(client, index)
    if not count:
        return []
    return [
        f"--sync left {count} chunk(s) that record no input (indexed before essearch kept one, "
        "or given in memory); ingesting their inputs once more records it"
    ]


def mirror(run: _Run) -> list[str]:
    """`--sync`: delete the documents read from this run's inputs that it did not read again
    (its `SyncScope`); documents from other inputs stay. Documents whose items failed are kept
    (their source may still be there), and when a failure names no document (a malformed line)
    nothing is deleted."""
    if run.unnamed_failures:
        run.warn(
            f"--sync deleted nothing: {run.unnamed_failures} failure(s) name no document, so "
            "what disappeared from the source cannot be told; fix them and run again"
        )
        return []
    run.client.indices.refresh(index=run.target.write_alias)
    gone = vanished(
        run.client,
        run.target.write_alias,
        itertools.chain(run.seen, run.failed_docs),
        run.scope,
    )
    for message in unreached_warning(run.client, run.target.write_alias, run.scope):
        run.warn(message)
    if run.options.dry_run or not gone:
        return gone
    for start in range(0, len(gone), 500):
        group = gone[start : start + 500]
        found = existing_chunks(run.client, run.target.write_alias, group)
        _delete(run, [(c.physical, cid) for chunks in found.values() for cid, c in chunks.items()])
    return gone


def _delete(run: _Run, targets: list[tuple[str, str]]) -> None:
    if not targets:
        return
    deleted, failures = delete_chunks(run.client, targets)
    run.counters.add("deleted", deleted)
    for failure in failures:
        run.fail(failure)
