"""Where a migration keeps its state: `_meta.essearch_migration` of the TARGET index.

Keeping the state on the target (not in a side index or a local file) means it lives and dies with
the data it describes: a resumed run finds it on the index it resumes into, `gc` deleting the index
deletes the state, and nothing needs to exist before the first migration. The source index is never
written to, so an interrupted migration leaves the serving version exactly as it was.

Statuses: `copying` -> `catching_up` -> `verified` -> `swapped` (-> `rolled_back`), or
`verify_failed` when the checks refused the swap (a re-run resumes from there).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch, NotFoundError

STATE_KEY = "essearch_migration"
IN_PROGRESS = frozenset({"copying", "catching_up", "verified", "verify_failed"})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def read_meta(client: Elasticsearch, index: str) -> dict[str, Any]:
    """The whole mapping `_meta` of one physical index ({} when absent)."""
    body = client.indices.get_mapping(index=index).body
    first: dict[str, Any] = next(iter(body.values()), {})
    mappings = first.get("mappings", {})
    return dict(mappings.get("_meta") or {})


def read_state(client: Elasticsearch, index: str) -> dict[str, Any] | None:
    """The migration state recorded on `index`, or None (also when the index is gone)."""
    try:
        state = read_meta(client, index).get(STATE_KEY)
    except NotFoundError:
        return None
    return dict(state) if isinstance(state, dict) else None


def merged_meta(meta: dict[str, Any], updates: dict[str, Any]) -> dict[str, Any]:
    """`_meta` with the state updated and everything else kept (PUT _mapping replaces `_meta`)."""
    state = dict(meta.get(STATE_KEY) or {})
    state.update({k: v for k, v in updates.items() if v is not None})
    state["updated_at"] = now_iso()
    return {**meta, STATE_KEY: state}


def write_state(client: Elasticsearch, index: str, **updates: Any) -> dict[str, Any]:
    """Update the state on `index` (read, merge, write; the rest of `_meta` is preserved)."""
    meta = merged_meta(read_meta(client, index), updates)
    client.indices.put_mapping(index=index, meta=meta)
    return meta[STATE_KEY]
