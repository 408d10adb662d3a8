"""Garbage collection: delete versions that no alias points to.

Never one an alias uses: the aliases are read when planning and read AGAIN right before each
delete (another process may have swapped meanwhile), and each index is deleted by its exact name
(never a wildcard). Deleting the version a rollback would return to makes rollback impossible, so
the CLI lists what goes and asks first (`--yes` skips the question).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

from essearch.index.manager import IndexManager
from essearch.ops.migration_state import read_state
from essearch.settings import Settings


@dataclass
class GcPlan:
    delete: list[str]
    keep: dict[str, list[str]]  # index -> aliases pointing to it
    notes: dict[str, str] = field(default_factory=dict)  # index -> migration status

    def to_dict(self) -> dict[str, Any]:
        return {"delete": self.delete, "keep": self.keep, "notes": self.notes}


def _aliases_of(client: Elasticsearch, index: str) -> list[str]:
    try:
        body = client.indices.get_alias(index=index).body
    except NotFoundError:
        return []
    return sorted(body.get(index, {}).get("aliases", {}))


def plan_gc(client: Elasticsearch, settings: Settings) -> GcPlan:
    manager = IndexManager(client, settings)
    plan = GcPlan(delete=[], keep={})
    for index in manager.versions():
        aliases = _aliases_of(client, index)
        if aliases:
            plan.keep[index] = aliases
            continue
        plan.delete.append(index)
        status = (read_state(client, index) or {}).get("status")
        if status:
            plan.notes[index] = status
    return plan


def gc(client: Elasticsearch, settings: Settings, plan: GcPlan | None = None) -> list[str]:
    """Delete the planned versions that are still unaliased; returns what was deleted."""
    plan = plan or plan_gc(client, settings)
    manager = IndexManager(client, settings)
    deleted = []
    for index in plan.delete:
        if manager.version_of(index) is None or _aliases_of(client, index):
            continue  # not ours, or an alias points to it now
        try:
            client.indices.delete(index=index)
        except NotFoundError:
            continue
        deleted.append(index)
    return deleted
