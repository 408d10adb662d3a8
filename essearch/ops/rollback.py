"""Rollback: move both aliases back to the version the current one was migrated from.

"The previous version that has the right data" is the one recorded as `migrated_from` in the
current version's migration state (it served until the swap); `to=` names another explicitly.
Writes made through the alias after the swap exist only in the current version: they are counted
(`indexed_at` at or after the swap, minus a margin for clock skew) and, with `catch_up=True`,
copied back first — vectors as they are when both versions share the embedder, else re-embedded
with an embedder that must match the previous version's recorded one. When the two versions cut
documents differently, the documents written since the swap are re-chunked with the previous
version's chunking (`RechunkingCopier`), which needs that embedder too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from essearch.embedders.base import Embedder
from essearch.errors import ConfigurationError
from essearch.index.chunking import chunking_for, same_chunking
from essearch.index.definitions import VectorSpec
from essearch.index.guard import check_model
from essearch.index.manager import IndexManager
from essearch.ingest.chunker import Chunker
from essearch.ingest.failures import DeadLetter
from essearch.ops.copier import Copier, since_query
from essearch.ops.migration_state import IN_PROGRESS, now_iso, read_state, write_state
from essearch.ops.rechunker import RechunkingCopier
from essearch.settings import Settings


@dataclass
class RollbackPlan:
    current: str
    previous: str
    reason: str
    swapped_at: str | None
    writes_since_swap: int
    same_embedder: bool
    same_chunking: bool = True

    @property
    def needs_embedder(self) -> bool:
        """Catching up needs an embedder: new vectors, or new chunks."""
        return bool(self.writes_since_swap) and not (self.same_embedder and self.same_chunking)

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "needs_embedder": self.needs_embedder}


@dataclass
class RollbackResult:
    plan: RollbackPlan
    rolled_back: bool = False
    caught_up: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "plan": self.plan.to_dict(),
            "rolled_back": self.rolled_back,
            "caught_up": self.caught_up,
        }


def _cutoff(swapped_at: str | None, margin_s: float) -> str | None:
    if not swapped_at:
        return None
    return (datetime.fromisoformat(swapped_at) - timedelta(seconds=margin_s)).isoformat()


def plan_rollback(
    client: Elasticsearch, settings: Settings, *, to: str | None = None, margin_s: float = 300.0
) -> RollbackPlan:
    manager = IndexManager(client, settings)
    current = manager.current_index()
    if current is None:
        raise ConfigurationError(
            f"alias {manager.read_alias!r} does not exist: nothing to roll back"
        )
    versions = manager.versions()
    state = read_state(client, current) or {}
    if to is not None:
        if to not in versions:
            raise ConfigurationError(
                f"--to {to!r} is not a version of {manager.name!r} "
                f"(versions: {', '.join(versions)})"
            )
        previous, reason = to, "asked for"
    elif state.get("migrated_from"):
        previous, reason = state["migrated_from"], f"{current} was migrated from it"
        if previous not in versions:
            raise ConfigurationError(
                f"{current} was migrated from {previous!r}, which no longer exists (deleted by "
                f"gc?); versions: {', '.join(versions)}. Pass --to to pick one."
            )
    else:
        older = [
            v
            for v in versions
            if (manager.version_of(v) or 0) < (manager.version_of(current) or 0)
            and (read_state(client, v) or {}).get("status") not in IN_PROGRESS
        ]
        if not older:
            raise ConfigurationError(
                f"{current} records no migration and there is no older version to roll back to"
            )
        previous, reason = older[-1], "newest older complete version"
    if previous == current:
        raise ConfigurationError(f"{previous!r} is already behind {manager.read_alias!r}")
    swapped_at = state.get("swapped_at") if state.get("migrated_from") == previous else None
    cutoff = _cutoff(swapped_at, margin_s)
    writes = client.count(index=current, query=since_query(cutoff))["count"] if cutoff else 0
    return RollbackPlan(
        current=current,
        previous=previous,
        reason=reason,
        swapped_at=swapped_at,
        writes_since_swap=writes,
        same_embedder=manager.recorded_model(current) == manager.recorded_model(previous),
        same_chunking=same_chunking(
            manager.recorded_chunking(current), manager.recorded_chunking(previous)
        ),
    )


def rollback(
    client: Elasticsearch,
    settings: Settings,
    *,
    to: str | None = None,
    catch_up: bool = True,
    embedder: Embedder | None = None,
    margin_s: float = 300.0,
    dead_letter: str | None = "essearch-reindex-dead-letter.jsonl",
    plan: RollbackPlan | None = None,
) -> RollbackResult:
    """Swap both aliases back to the previous version (one atomic `_aliases` call).

    With `catch_up` and writes since the swap, they are copied back first; when the embedders
    differ, `embedder` must be the previous version's (checked), else ConfigurationError.
    """
    plan = plan or plan_rollback(client, settings, to=to, margin_s=margin_s)
    manager = IndexManager(client, settings)
    result = RollbackResult(plan)
    cutoff = _cutoff(plan.swapped_at, margin_s)
    if catch_up and plan.writes_since_swap and cutoff is not None:
        recorded = manager.recorded_model(plan.previous)
        if plan.needs_embedder:
            if embedder is None:
                raise ConfigurationError(
                    f"{plan.writes_since_swap} chunk(s) were written to {plan.current} after the "
                    f"swap; re-embedding them for {plan.previous} needs its embedder "
                    "(configure it), or roll back without catching up (--no-catch-up)"
                )
            check_model(embedder.info, recorded, plan.previous)
        if recorded is None:
            raise ConfigurationError(f"{plan.previous} records no embedder; cannot catch up")
        dead = DeadLetter(dead_letter)
        try:
            copier: Copier
            spec = VectorSpec.from_embedder(recorded)
            if plan.same_chunking:
                copier = Copier(
                    client,
                    plan.previous,
                    embedder=None if plan.same_embedder else embedder,
                    vector_spec=spec,
                    dead=dead,
                )
            else:
                assert embedder is not None
                chunking = manager.recorded_chunking(plan.previous) or chunking_for(
                    recorded.provider, recorded.model
                )
                copier = RechunkingCopier(
                    client,
                    plan.previous,
                    chunker=Chunker(chunking),
                    embedder=embedder,
                    reuse_vectors=plan.same_embedder,
                    vector_spec=spec,
                    dead=dead,
                )
            copier.copy_index(plan.current, since_query(cutoff), newer_only=True)
        finally:
            dead.close()
        result.caught_up = copier.stats.to_dict()
        client.indices.refresh(index=plan.previous)
    manager.swap_aliases(plan.previous, plan.current)
    result.rolled_back = True
    if read_state(client, plan.current):
        write_state(client, plan.current, status="rolled_back", rolled_back_at=now_iso())
    return result
