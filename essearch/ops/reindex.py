"""Zero-downtime reindex: plan -> copy -> catch up -> verify -> swap both aliases -> final catch-up.

Searches keep working throughout: they go through the read alias, which points at the old version
until one atomic `_aliases` call moves the read and write aliases together.

Writes during the copy are not lost: the CATCH-UP strategy. essearch's writers (and anyone else)
keep writing through the write alias to the old version while the copy runs; nothing needs to know
a migration is happening. After the copy:

1. catch-up passes (until one finds nothing, at most `max_catchup_passes`): read `(content_hash,
   indexed_at)` of every chunk of both versions (no vectors, no text: cheap), copy the chunks that
   are new or changed in the old version, delete from the new version the chunks deleted from the
   old one. This needs no clock and sees deletes as well as writes;
2. verify, then swap both aliases atomically;
3. one last pass for writes that landed on the old version between the start of the last catch-up
   pass and the swap: chunks of the old version with `indexed_at >= pass start - margin` are
   copied when the new version lacks them or holds an older `indexed_at` (never overwriting a write
   made through the alias after the swap). `margin` covers clock skew between writers and us.

Re-chunking: when the chunking changes (`--chunk-size`, or a new embedder whose default chunking
differs from the default the old version used), every document is rebuilt from its chunks and cut
again (`RechunkingCopier`); the catch-up passes and the final pass then compare documents
(`doc_id`, content hash, newest `indexed_at`) instead of chunks, and verify compares documents.

After the swap, a reconciliation pass deletes from the new version what was deleted from the old
one between the last catch-up pass and the swap: keys the last pass saw in the old version that
are gone from it now, and still hold exactly what was copied (a write made through the alias after
the swap changes `indexed_at`, so it is never deleted).

Interrupted (Ctrl-C, node restart, embedder failure): the aliases still point at the old version,
which keeps serving. The target is not aliased and records its state in `_meta.essearch_migration`
(see `migration_state`); running the command again resumes into it (chunks already copied with the
same content hash are skipped) when the plan is the same, or deletes it and starts clean when the
plan changed (or with `restart=True`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from essearch.embedders.base import Embedder, EmbedderInfo
from essearch.errors import ConfigurationError, EssearchError
from essearch.es.capabilities import Capabilities, probe
from essearch.index.chunking import ChunkerConfig, chunking_for, same_chunking
from essearch.index.definitions import VectorSpec
from essearch.index.diff import body_fingerprint, compare_body
from essearch.index.guard import describe
from essearch.index.manager import IndexManager
from essearch.index.schema import CJK_FIELD
from essearch.ingest.chunker import Chunker
from essearch.ingest.failures import DeadLetter
from essearch.ingest.progress import Counters, NoProgress, ProgressView
from essearch.ops.copier import (
    Copier,
    CopyStats,
    Strategy,
    choose_copy_strategy,
    server_reindex,
    since_query,
)
from essearch.ops.migration_state import IN_PROGRESS, now_iso, read_state, write_state
from essearch.ops.rechunker import RechunkingCopier
from essearch.ops.verify import VerifyReport, verify
from essearch.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class ReindexOptions:
    batch_size: int = 256  # chunks per page read, per embedding call, per bulk
    dead_letter: Path | str | None = "essearch-reindex-dead-letter.jsonl"
    restart: bool = False  # delete an unfinished target and start clean
    force: bool = False  # migrate even when nothing changes
    verify_samples: int = 5
    min_bm25_overlap: float | None = None  # None: 0.5, or 0 when the analyzer/chunking changes
    min_knn_self_hits: float = 0.8
    max_catchup_passes: int = 5
    catchup_margin_s: float = 300.0
    swap: bool = True  # False: stop after verify (the target stays unaliased)
    allow_server_reindex: bool = True
    on_batch: Callable[[CopyStats], None] | None = None  # hook after every copied batch


@dataclass
class MigrationPlan:
    """What `reindex` will do; `--dry-run` prints it."""

    read_alias: str
    write_alias: str
    source: str
    target: str
    target_version: int
    resume: bool
    stale_target: str | None  # an unfinished target with another plan: deleted before starting
    old_embedder: EmbedderInfo | None
    new_embedder: EmbedderInfo
    embedder_changes: dict[str, tuple[Any, Any]]
    mapping_changes: list[str]
    needs_reembed: bool
    old_chunking: ChunkerConfig | None  # None: the source records none (made before it was)
    new_chunking: ChunkerConfig
    chunking_note: str
    analyzer_changed: bool
    strategy: Strategy
    estimated_chunks: int
    estimated_documents: int
    fingerprint: str
    definition: str

    @property
    def needs_rechunk(self) -> bool:
        return not same_chunking(self.old_chunking, self.new_chunking)

    @property
    def changes(self) -> bool:
        return bool(self.needs_reembed or self.needs_rechunk or self.mapping_changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "read_alias": self.read_alias,
            "write_alias": self.write_alias,
            "source": self.source,
            "target": self.target,
            "resume": self.resume,
            "stale_target": self.stale_target,
            "strategy": self.strategy,
            "old_embedder": self.old_embedder.to_dict() if self.old_embedder else None,
            "new_embedder": self.new_embedder.to_dict(),
            "embedder_changes": {k: list(v) for k, v in self.embedder_changes.items()},
            "mapping_changes": self.mapping_changes,
            "needs_reembed": self.needs_reembed,
            "needs_rechunk": self.needs_rechunk,
            "old_chunking": self.old_chunking.to_meta() if self.old_chunking else None,
            "new_chunking": self.new_chunking.to_meta(),
            "chunking_note": self.chunking_note,
            "analyzer_changed": self.analyzer_changed,
            "estimated_chunks": self.estimated_chunks,
            "estimated_documents": self.estimated_documents,
            "definition": self.definition,
        }

    def _copy_detail(self) -> str:
        if self.needs_rechunk:
            reuse = (
                "" if self.needs_reembed else ", vectors kept for chunks whose text is unchanged"
            )
            return ", every document rebuilt from its chunks and re-chunked" + reuse
        return ", re-embedding every chunk" if self.needs_reembed else ", vectors copied as is"

    def describe(self) -> list[str]:
        old = describe(self.old_embedder) if self.old_embedder else "none recorded"
        old_chunks = self.old_chunking.describe() if self.old_chunking else "none recorded"
        lines = [
            f"source: {self.source} (behind {self.read_alias} and {self.write_alias})",
            f"target: {self.target}" + (" (resuming)" if self.resume else " (new)"),
            f"embedder: {old} -> {describe(self.new_embedder)}",
            f"chunking: {old_chunks} -> {self.new_chunking.describe()}"
            + f" ({self.chunking_note})",
            f"copy: {self.strategy}-side" + self._copy_detail(),
            f"estimated: {self.estimated_chunks} chunks of {self.estimated_documents} documents",
        ]
        if self.stale_target:
            lines.append(f"unfinished target with another plan, deleted first: {self.stale_target}")
        lines += [f"change: {c}" for c in self.mapping_changes] or ["change: none in the mapping"]
        return lines


@dataclass
class ReindexResult:
    plan: MigrationPlan
    status: str = "planned"  # noop | swapped | verified | verify_failed | interrupted
    copy: dict[str, Any] = field(default_factory=dict)
    catchup_passes: list[dict[str, int]] = field(default_factory=list)
    post_swap: dict[str, Any] = field(default_factory=dict)
    verify: VerifyReport | None = None
    dead_letter: str | None = None
    interrupted: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in {"noop", "swapped", "verified"}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "status": self.status,
            "plan": self.plan.to_dict(),
            "copy": self.copy,
            "catchup_passes": self.catchup_passes,
            "post_swap": self.post_swap,
            "verify": self.verify.to_dict() if self.verify else None,
            "dead_letter": self.dead_letter,
            "interrupted": self.interrupted,
        }


# -- planning --------------------------------------------------------------------------------------
def _analyzers(mappings: dict[str, Any]) -> dict[str, Any]:
    props = mappings.get("properties", {})
    return {name: spec.get("analyzer") for name, spec in props.items() if "analyzer" in spec}


def plan_chunking(
    settings: Settings,
    old_embedder: EmbedderInfo | None,
    new_embedder: EmbedderInfo,
    recorded: ChunkerConfig | None,
) -> tuple[ChunkerConfig, str]:
    """The target's chunking and why: asked for, kept, or the new embedder's default.

    Defaults follow the model; choices stick: with no chunk options, an index cut with its old
    embedder's default chunking gets the new embedder's default, and any other chunking is kept.
    """
    size, overlap = settings.index.chunk_size, settings.index.chunk_overlap
    if size or overlap is not None:
        return chunking_for(new_embedder.provider, new_embedder.model, size, overlap), "asked for"
    new_default = chunking_for(new_embedder.provider, new_embedder.model)
    if recorded is None:
        return new_default, "none recorded: the embedder's default"
    if old_embedder is not None and old_embedder.differences(new_embedder):
        old_default = chunking_for(old_embedder.provider, old_embedder.model)
        if same_chunking(recorded, old_default):
            if same_chunking(recorded, new_default):
                return recorded, "the default of both embedders"
            return new_default, "the new embedder's default replaces the old one's"
    return recorded, "kept (pass --chunk-size to change it)"


def _gains_cjk_field(live_mapping: dict[str, Any], new_mappings: dict[str, Any]) -> bool:
    """The new version has the CJK word field and the old one lacks it: only the client copy
    fills it (`_reindex` copies sources as they are)."""
    new_props = new_mappings.get("properties") or {}
    old_props = live_mapping.get("properties") or {}
    return CJK_FIELD in new_props and CJK_FIELD not in old_props


def _unfinished_targets(manager: IndexManager, source: str) -> list[tuple[str, dict[str, Any]]]:
    """Unaliased versions newer than `source` whose state says a migration from it is underway."""
    source_version = manager.version_of(source) or 0
    table = manager.client.indices.get_alias(index=manager.index_pattern).body
    found = []
    for index in manager.versions():
        if (manager.version_of(index) or 0) <= source_version or table[index].get("aliases"):
            continue
        state = read_state(manager.client, index)
        if state and state.get("source") == source and state.get("status") in IN_PROGRESS:
            found.append((index, state))
    return found


def plan_reindex(
    client: Elasticsearch,
    settings: Settings,
    embedder: Embedder | EmbedderInfo,
    *,
    capabilities: Capabilities | None = None,
    allow_server_reindex: bool = True,
) -> MigrationPlan:
    """The migration of `settings.index.name` to `settings`' definition/analyzer and `embedder`."""
    capabilities = capabilities or probe(client)
    new_info = embedder.info if isinstance(embedder, Embedder) else embedder
    manager = IndexManager(client, settings, new_info, capabilities)
    source = manager.current_index()
    if source is None:
        raise ConfigurationError(
            f"alias {manager.read_alias!r} does not exist: nothing to reindex (run `essearch init`)"
        )
    old_info = manager.recorded_model(source)
    embedder_changes = old_info.differences(new_info) if old_info else {"embedder": (None, "new")}
    needs_reembed = bool(embedder_changes)

    old_chunking = manager.recorded_chunking(source)
    new_chunking, chunking_note = plan_chunking(settings, old_info, new_info, old_chunking)

    unfinished = _unfinished_targets(manager, source)
    numbers = [manager.version_of(i) or 0 for i in manager.versions()]
    target_version = max(numbers, default=0) + 1
    body = manager.render_body(target_version, chunking=new_chunking)
    fingerprint = body_fingerprint(body)
    resume, stale = False, None
    if unfinished:
        index, state = unfinished[-1]
        target_version = manager.version_of(index) or target_version
        body = manager.render_body(target_version, chunking=new_chunking)
        fingerprint = body_fingerprint(body)
        if state.get("fingerprint") == fingerprint:
            resume = True
        else:
            stale = index
    target = f"{manager.name}-v{target_version}"

    live_mapping = client.indices.get_mapping(index=source).body[source]["mappings"]
    live_settings = client.indices.get_settings(index=source, flat_settings=True).body[source][
        "settings"
    ]
    differences = [
        d
        for d in compare_body(body, live_mapping, live_settings)
        if not d.path.startswith("mappings._meta")
    ]
    mapping_changes = [str(d) for d in differences]
    stats = client.search(
        index=source,
        size=0,
        track_total_hits=True,
        aggs={"docs": {"cardinality": {"field": "doc_id"}}},
    )
    return MigrationPlan(
        read_alias=manager.read_alias,
        write_alias=manager.write_alias,
        source=source,
        target=target,
        target_version=target_version,
        resume=resume,
        stale_target=stale,
        old_embedder=old_info,
        new_embedder=new_info,
        embedder_changes=embedder_changes,
        mapping_changes=mapping_changes,
        needs_reembed=needs_reembed,
        old_chunking=old_chunking,
        new_chunking=new_chunking,
        chunking_note=chunking_note,
        analyzer_changed=_analyzers(live_mapping) != _analyzers(body["mappings"]),
        strategy=choose_copy_strategy(
            capabilities if allow_server_reindex else None,
            needs_reembed
            or not same_chunking(old_chunking, new_chunking)
            or _gains_cjk_field(live_mapping, body["mappings"]),
        ),
        estimated_chunks=stats["hits"]["total"]["value"],
        estimated_documents=stats["aggregations"]["docs"]["value"],
        fingerprint=fingerprint,
        definition=settings.index.definition,
    )


# -- running ---------------------------------------------------------------------------------------
def _is_aliased(client: Elasticsearch, index: str) -> bool:
    body = client.indices.get_alias(index=index).body
    return bool(body.get(index, {}).get("aliases"))


def _delete_unaliased(client: Elasticsearch, index: str) -> None:
    if _is_aliased(client, index):
        raise ConfigurationError(f"refusing to delete {index!r}: an alias points to it")
    client.indices.delete(index=index)


@dataclass
class CatchUp:
    passes: list[dict[str, int]]
    last_pass_started: str
    last_source: dict[str, tuple[Any, ...]]  # the source as the last pass saw it (key -> signature)


def catch_up(
    client: Elasticsearch, source: str, target: str, copier: Copier, *, max_passes: int
) -> CatchUp:
    """Diff passes (chunks, or documents when re-chunking) until one finds nothing."""
    passes: list[dict[str, int]] = []
    started = now_iso()
    src: dict[str, tuple[Any, ...]] = {}
    for _ in range(max_passes):
        started = now_iso()
        client.indices.refresh(index=f"{source},{target}")
        src, dst = copier.snapshot(source), copier.snapshot(target)
        to_copy = [
            k for k, v in src.items() if dst.get(k) != v and k not in copier.stats.failed_keys
        ]
        to_delete = [k for k in dst if k not in src]
        passes.append({"copied": len(to_copy), "deleted": len(to_delete)})
        if not to_copy and not to_delete:
            break
        copier.copy_keys(source, to_copy)
        copier.delete_keys(to_delete)
    return CatchUp(passes, started, src)


def reconcile_deletes(
    client: Elasticsearch,
    source: str,
    target: str,
    copier: Copier,
    seen: dict[str, tuple[Any, ...]],
) -> int:
    """After the swap: delete from `target` what left `source` after the last catch-up pass.

    A key is deleted only when the last pass saw it in the source, the source no longer has it,
    and the target still holds exactly what was copied; anything written through the alias after
    the swap carries a newer `indexed_at` and is kept.
    """
    client.indices.refresh(index=f"{source},{target}")
    src, dst = copier.snapshot(source), copier.snapshot(target)
    gone = [k for k, v in seen.items() if k not in src and dst.get(k) == v]
    copier.delete_keys(gone)
    return len(gone)


def run_reindex(
    client: Elasticsearch,
    settings: Settings,
    embedder: Embedder,
    *,
    options: ReindexOptions | None = None,
    capabilities: Capabilities | None = None,
    progress: ProgressView | None = None,
    plan: MigrationPlan | None = None,
) -> ReindexResult:
    """Migrate the read/write aliases of `settings.index.name` to a new version built for
    `embedder` and `settings` (definition, analyzer, vector options). See the module docstring."""
    options = options or ReindexOptions()
    capabilities = capabilities or probe(client)
    plan = plan or plan_reindex(
        client,
        settings,
        embedder,
        capabilities=capabilities,
        allow_server_reindex=options.allow_server_reindex,
    )
    result = ReindexResult(plan)
    if not plan.changes and not options.force and not plan.resume:
        result.status = "noop"
        return result
    manager = IndexManager(client, settings, plan.new_embedder, capabilities)
    resume = prepare_target(client, manager, plan, restart=options.restart)

    dead = DeadLetter(options.dead_letter)
    counters = Counters()
    progress = progress or NoProgress()

    def on_batch(stats: CopyStats) -> None:
        progress.update(counters.snapshot())
        _hook(options, stats)

    copier = make_copier(
        client,
        plan,
        embedder,
        dead=dead,
        counters=counters,
        batch_size=options.batch_size,
        on_batch=on_batch,
    )
    # the bar counts what the copier reads: documents when re-chunking, chunks otherwise
    progress.start(plan.estimated_documents if plan.needs_rechunk else plan.estimated_chunks)
    try:
        result.copy = copy_step(client, plan, copier, resume=resume)
        caught = catch_up_step(client, plan, copier, max_passes=options.max_catchup_passes)
        result.catchup_passes = caught.passes
        result.copy.update(copier.stats.to_dict())
        result.verify = verify_step(client, plan, embedder, options)
        if not result.verify.ok:
            result.status = "verify_failed"
            return result
        if not options.swap:
            result.status = "verified"
            return result
        swap_step(client, manager, plan)
        result.status = "swapped"
        result.post_swap = post_swap_step(
            client, plan, copier, caught, margin_s=options.catchup_margin_s
        )
    except (KeyboardInterrupt, EssearchError, ApiError, TransportError) as exc:
        what = "Ctrl-C" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        if result.status == "swapped":
            result.interrupted = (
                f"{what} after the swap; the final catch-up did not finish: run "
                f"`essearch reindex` again or copy writes newer than the swap from {plan.source}"
            )
        else:
            result.status = "interrupted"
            result.interrupted = (
                f"{what}; {plan.read_alias} still serves {plan.source}. Run the same command "
                f"again to resume into {plan.target}."
            )
        result.copy = result.copy or copier.stats.to_dict()
    finally:
        progress.update(counters.snapshot())
        progress.stop()
        dead.close()
        result.dead_letter = str(dead.path) if dead.path and dead.total else None
    return result


# -- the steps of a run, in order --------------------------------------------------------------
def prepare_target(
    client: Elasticsearch, manager: IndexManager, plan: MigrationPlan, *, restart: bool = False
) -> bool:
    """Delete what an unfinished run left (all of it with `restart`), then create the new version
    and record its migration state, unless resuming into it. True when resuming."""
    for stale in [plan.stale_target] + ([plan.target] if plan.resume and restart else []):
        if stale and client.indices.exists(index=stale):
            log.warning("deleting unfinished migration target %s", stale)
            _delete_unaliased(client, stale)
    resume = plan.resume and not restart
    if not resume:
        manager.create_version(
            version=plan.target_version, embedder=plan.new_embedder, chunking=plan.new_chunking
        )
        write_state(
            client,
            plan.target,
            source=plan.source,
            status="copying",
            started_at=now_iso(),
            fingerprint=plan.fingerprint,
            strategy=plan.strategy,
        )
    return resume


def copy_step(
    client: Elasticsearch, plan: MigrationPlan, copier: Copier, *, resume: bool = False
) -> dict[str, Any]:
    """Copy every chunk: server-side `_reindex` when the plan chose it (and this is not a resumed
    run), else through `copier`. Returns the server's counts ({} for a client-side copy)."""
    if plan.strategy == "server" and not resume:
        response = server_reindex(client, plan.source, plan.target)
        return {"server": {k: response.get(k) for k in ("created", "updated", "total")}}
    copier.copy_index(plan.source)
    return {}


def catch_up_step(
    client: Elasticsearch, plan: MigrationPlan, copier: Copier, *, max_passes: int
) -> CatchUp:
    """Copy what was written to the old version during the copy, pass after pass."""
    write_state(client, plan.target, status="catching_up")
    return catch_up(client, plan.source, plan.target, copier, max_passes=max_passes)


def verify_step(
    client: Elasticsearch, plan: MigrationPlan, embedder: Embedder, options: ReindexOptions
) -> VerifyReport:
    """Check the new version against the old one; the outcome is recorded on the new version."""
    min_overlap = options.min_bm25_overlap
    if min_overlap is None:
        # another analyzer or other chunk lengths change BM25 rankings by design
        min_overlap = 0.0 if plan.analyzer_changed or plan.needs_rechunk else 0.5
    report = verify(
        client,
        plan.source,
        plan.target,
        embedder=embedder,
        samples=options.verify_samples,
        min_bm25_overlap=min_overlap,
        min_knn_self_hits=options.min_knn_self_hits,
        by_document=plan.needs_rechunk,
    )
    write_state(client, plan.target, status="verified" if report.ok else "verify_failed")
    return report


def swap_step(client: Elasticsearch, manager: IndexManager, plan: MigrationPlan) -> None:
    """Move the read and write aliases to the new version in one atomic call."""
    manager.swap_aliases(plan.target, plan.source)
    write_state(
        client, plan.target, status="swapped", migrated_from=plan.source, swapped_at=now_iso()
    )


def post_swap_step(
    client: Elasticsearch,
    plan: MigrationPlan,
    copier: Copier,
    caught: CatchUp,
    *,
    margin_s: float,
) -> dict[str, Any]:
    """Copy writes that reached the old version just before the swap (since the last catch-up
    pass, less `margin_s`), and delete from the new version what was deleted meanwhile."""
    before = copier.stats.to_dict()
    cutoff = datetime.fromisoformat(caught.last_pass_started) - timedelta(seconds=margin_s)
    client.indices.refresh(index=plan.source)
    copier.copy_index(plan.source, since_query(cutoff.isoformat()), newer_only=True)
    reconciled = reconcile_deletes(client, plan.source, plan.target, copier, caught.last_source)
    client.indices.refresh(index=plan.target)
    after = copier.stats.to_dict()
    post_swap: dict[str, Any] = {k: after[k] - before[k] for k in after}
    post_swap["deleted_since_last_pass"] = reconciled
    return post_swap


def make_copier(
    client: Elasticsearch,
    plan: MigrationPlan,
    embedder: Embedder,
    **kwargs: Any,
) -> Copier:
    """Chunk by chunk when the chunking stays; document by document (re-chunking) when not."""
    spec = VectorSpec.from_embedder(plan.new_embedder)
    if plan.needs_rechunk:
        return RechunkingCopier(
            client,
            plan.target,
            chunker=Chunker(plan.new_chunking),
            embedder=embedder,
            reuse_vectors=not plan.needs_reembed,
            vector_spec=spec,
            **kwargs,
        )
    return Copier(
        client,
        plan.target,
        embedder=embedder if plan.needs_reembed else None,
        vector_spec=spec,
        **kwargs,
    )


def _hook(options: ReindexOptions, stats: CopyStats) -> None:
    if options.on_batch is not None:
        options.on_batch(stats)
