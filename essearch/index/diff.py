"""Comparing index bodies, without I/O: what `IndexManager` and migrations decide from.

How a live index differs from what its definition renders (`compare_body`, ignoring what
Elasticsearch leaves out or normalises), the fingerprint of a rendered body, the alias actions
of a version swap, and the analyzers a body uses.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from essearch.index.definitions import UNCOMPARED_META_KEYS, VOLATILE_META_KEYS, iter_fields
from essearch.index.schema import ADDED_FIELDS, META_KEY

ANALYZER_KEYS = ("analyzer", "search_analyzer", "search_quote_analyzer")
_MISSING = "<missing>"
#: Mapping parameters Elasticsearch leaves out of GET _mapping when they hold their default.
OMITTED_DEFAULTS: dict[str, Any] = {"element_type": "float", "index": True, "doc_values": True}


@dataclass(frozen=True)
class Difference:
    """One place where the live index differs from what the definition renders."""

    path: str
    live: Any
    rendered: Any

    def __str__(self) -> str:
        if self.live == _MISSING:
            return f"{self.path}: the definition has {self.rendered!r}, the index has nothing"
        return f"{self.path}: the index has {self.live!r}, the definition renders {self.rendered!r}"


def body_fingerprint(body: Mapping[str, Any]) -> str:
    """A hash of the rendered body without the per-render `_meta` values."""
    stripped = copy.deepcopy(dict(body))
    meta = stripped.get("mappings", {}).get("_meta", {}).get(META_KEY, {})
    for key in (*VOLATILE_META_KEYS, "body_hash"):
        meta.pop(key, None)
    properties = stripped.get("mappings", {}).get("properties", {})
    for name, spec in ADDED_FIELDS.items():  # an index made before they existed still matches
        if properties.get(name) == spec:
            properties.pop(name)
    text = json.dumps(stripped, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def stamp_fingerprint(body: dict[str, Any]) -> dict[str, Any]:
    body["mappings"].setdefault("_meta", {}).setdefault(META_KEY, {})["body_hash"] = (
        body_fingerprint(body)
    )
    return body


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested index settings as ES's flat `index.*` keys."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{path}."))
        else:
            flat[path if path.startswith("index.") else f"index.{path}"] = value
    return flat


def _same_scalar(live: Any, rendered: Any) -> bool:
    if isinstance(live, bool) or isinstance(rendered, bool):
        return str(live).lower() == str(rendered).lower()
    try:
        return float(live) == float(rendered)
    except (TypeError, ValueError):
        return str(live) == str(rendered)


def _subset_differences(live: Any, rendered: Any, path: str, out: list[Difference]) -> None:
    """Every leaf of `rendered` that `live` lacks or holds with another value."""
    if isinstance(rendered, Mapping):
        if not isinstance(live, Mapping):
            out.append(Difference(path, live, rendered))
            return
        for key, value in rendered.items():
            sub = f"{path}.{key}" if path else key
            if key not in live:
                if not (key in OMITTED_DEFAULTS and _same_scalar(OMITTED_DEFAULTS[key], value)):
                    out.append(Difference(sub, _MISSING, value))
            else:
                _subset_differences(live[key], value, sub, out)
    elif isinstance(rendered, list):
        if not isinstance(live, list) or len(live) != len(rendered):
            out.append(Difference(path, live, rendered))
            return
        for i, (a, b) in enumerate(zip(live, rendered, strict=True)):
            _subset_differences(a, b, f"{path}[{i}]", out)
    elif not _same_scalar(live, rendered):
        out.append(Difference(path, live, rendered))


# Index settings that are set per cluster and changed in place, never by a new version.
DYNAMIC_SETTINGS = ("number_of_replicas", "auto_expand_replicas")


def compare_body(
    rendered: Mapping[str, Any], live_mappings: Mapping[str, Any], live_settings: Mapping[str, Any]
) -> list[Difference]:
    """What differs between a rendered body and a live index (flat settings, mappings object).

    The live side carries defaults and dynamically added fields, so the comparison is "is every
    rendered value there"; a definition that only removed something is caught by the body hash.
    """
    out: list[Difference] = []
    mappings = copy.deepcopy(dict(rendered.get("mappings", {})))
    meta = mappings.get("_meta", {}).get(META_KEY, {})
    rendered_hash = meta.pop("body_hash", None)
    for key in (*VOLATILE_META_KEYS, *UNCOMPARED_META_KEYS):
        meta.pop(key, None)
    live = copy.deepcopy(dict(live_mappings))
    live_properties = live.get("properties", {})
    for name in ADDED_FIELDS:  # added in place by the first write (see schema.ADDED_FIELDS)
        if name not in live_properties:
            mappings.get("properties", {}).pop(name, None)
    live_meta = live.get("_meta", {}).get(META_KEY, {})
    live_hash = live_meta.get("body_hash") if isinstance(live_meta, Mapping) else None
    _subset_differences(live, mappings, "mappings", out)
    flat = flatten_settings(rendered.get("settings", {}))
    for key, value in flat.items():
        if key.endswith(DYNAMIC_SETTINGS):
            continue  # changeable on a live index, chosen per cluster: not part of a version
        if key not in live_settings:
            out.append(Difference(f"settings.{key}", _MISSING, value))
        else:
            _subset_differences(live_settings[key], value, f"settings.{key}", out)
    if not out and rendered_hash and live_hash != rendered_hash:
        rendered_props = set(rendered.get("mappings", {}).get("properties", {}))
        extra = sorted(set(live.get("properties", {})) - rendered_props)
        note = f"fields only in the index: {', '.join(extra)}" if extra else "something was removed"
        out.append(Difference("definition", live_hash, f"{rendered_hash} ({note})"))
    return out


def swap_actions(
    read_alias: str, write_alias: str, new_index: str, old_index: str | None
) -> list[dict[str, Any]]:
    """The one `_aliases` request that moves both aliases from `old_index` to `new_index`."""
    actions: list[dict[str, Any]] = []
    if old_index:
        actions += [
            {"remove": {"index": old_index, "alias": read_alias, "must_exist": True}},
            {"remove": {"index": old_index, "alias": write_alias, "must_exist": True}},
        ]
    actions += [
        {"add": {"index": new_index, "alias": read_alias}},
        {"add": {"index": new_index, "alias": write_alias, "is_write_index": True}},
    ]
    return actions


def referenced_analyzers(body: Mapping[str, Any]) -> dict[str, list[str]]:
    """`{analyzer: [fields using it]}` for analyzers not defined in the body's own settings."""
    settings = body.get("settings", {})
    analysis = settings.get("analysis") or settings.get("index", {}).get("analysis") or {}
    custom = set(analysis.get("analyzer", {}))
    used: dict[str, list[str]] = {}
    for path, spec in iter_fields(body.get("mappings", {}).get("properties", {})):
        specs = [(path, spec)] + [(f"{path}.{n}", s) for n, s in (spec.get("fields") or {}).items()]
        for where, s in specs:
            for key in ANALYZER_KEYS:
                name = s.get(key) if isinstance(s, Mapping) else None
                if isinstance(name, str) and name not in custom:
                    used.setdefault(name, []).append(where)
    return used


__all__ = [
    "Difference",
    "body_fingerprint",
    "compare_body",
    "flatten_settings",
    "referenced_analyzers",
    "stamp_fingerprint",
    "swap_actions",
]
