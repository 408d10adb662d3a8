"""IndexManager: versioned physical indices `<name>-v<N>` behind a read and a write alias.

The read alias is `settings.index.name`, the write alias `<name>-write`. A composable template
for `<name>-v*` carries the rendered settings and mappings, so any new version (one created by
`create_version`, or by a `_reindex` into `<name>-v2`) gets the same body. `init` creates
version 1 and both aliases in one request; re-running it compares instead of changing anything.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from elasticsearch import ApiError, BadRequestError, Elasticsearch, NotFoundError

from essearch.embedders.base import EmbedderInfo
from essearch.errors import CapabilityError, ConfigurationError, es_error_reason
from essearch.es.capabilities import (
    PLUGIN_ANALYZERS,
    SERVER_ANALYZERS,
    Capabilities,
    analyzer_available,
    probe,
)
from essearch.index.chunking import ChunkerConfig
from essearch.index.definitions import (
    Definition,
    load_definition,
    render,
)
from essearch.index.diff import (
    Difference,
    compare_body,
    referenced_analyzers,
    stamp_fingerprint,
    swap_actions,
)
from essearch.index.guard import (
    check_mapping_response,
    describe,
    meta_from_mapping,
    model_from_mapping,
)
from essearch.index.schema import (
    CJK_FIELD,
    DOC_ID_FIELD,
    META_KEY,
    VERSION_SEPARATOR,
    physical_index_for,
    write_alias_for,
)
from essearch.settings import Settings

TEMPLATE_SUFFIX = "-versions"
TEMPLATE_BASE_PRIORITY = 100


# -- results ---------------------------------------------------------------------------------------
@dataclass
class InitResult:
    """What `init` did: created version 1, or compared with what exists (and changed nothing)."""

    index: str
    created: bool
    read_alias: str
    write_alias: str
    template: str
    differences: list[Difference] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # choices made for the user, in words

    @property
    def up_to_date(self) -> bool:
        return not self.differences

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["differences"] = [
            {"path": d.path, "live": d.live, "rendered": d.rendered, "text": str(d)}
            for d in self.differences
        ]
        data["up_to_date"] = self.up_to_date
        return data


@dataclass
class IndexInfo:
    """One physical index as `status` sees it."""

    index: str
    aliases: list[str]
    docs: int | None  # chunks: essearch stores one Elasticsearch document per chunk
    size_bytes: int | None
    health: str | None
    recorded: EmbedderInfo | None
    mismatch: list[str] = field(default_factory=list)
    chunking: dict[str, Any] | None = None  # `_meta.essearch.chunking` as recorded
    cjk: str | None = None  # how BM25 treats Chinese/CJK text in this version
    documents: int | None = None  # distinct doc_ids (cardinality: exact up to 40,000)
    replicas: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["recorded"] = self.recorded.to_dict() if self.recorded else None
        data["chunks"] = self.docs  # the clearer name; `docs` stays for existing readers
        return data


@dataclass
class IndexStatus:
    """Per alias: the physical index behind it and its facts; plus every version."""

    name: str
    read_alias: str
    write_alias: str
    template: str
    template_exists: bool
    configured: EmbedderInfo | None
    aliases: dict[str, list[str]]
    versions: list[IndexInfo]

    @property
    def exists(self) -> bool:
        return bool(self.aliases.get(self.read_alias))

    @property
    def mismatch(self) -> bool:
        served = {i for names in self.aliases.values() for i in names}
        return any(v.mismatch for v in self.versions if v.index in served)

    def to_dict(self) -> dict[str, Any]:
        by_index = {v.index: v.to_dict() for v in self.versions}
        return {
            "name": self.name,
            "exists": self.exists,
            "template": {"name": self.template, "exists": self.template_exists},
            "configured": self.configured.to_dict() if self.configured else None,
            "mismatch": self.mismatch,
            "aliases": [
                {
                    "alias": alias,
                    "role": self._role(alias),
                    "indices": [by_index.get(i, {"index": i}) for i in idx],
                }
                for alias, idx in self.aliases.items()
            ],
            "versions": list(by_index.values()),
        }

    def _role(self, alias: str) -> str:
        return "read" if alias == self.read_alias else "write"


@dataclass(frozen=True)
class DropPlan:
    """What `drop` would delete, and which of those indices aliases still point to."""

    indices: list[str]
    aliased: dict[str, list[str]]
    template: str | None

    @property
    def empty(self) -> bool:
        return not self.indices and not self.template


# -- the manager -----------------------------------------------------------------------------------
class IndexManager:
    """Creates, compares, versions and guards the indices behind one read alias."""

    def __init__(
        self,
        client: Elasticsearch,
        settings: Settings,
        embedder: EmbedderInfo | None = None,
        capabilities: Capabilities | None = None,
    ) -> None:
        self.client = client
        self.settings = settings
        self.embedder = embedder
        self._capabilities = capabilities
        self.name = settings.index.name

    # -- names ------------------------------------------------------------------------------
    @property
    def read_alias(self) -> str:
        return self.name

    @property
    def write_alias(self) -> str:
        return write_alias_for(self.name)

    @property
    def template_name(self) -> str:
        return f"{self.name}{TEMPLATE_SUFFIX}"

    @property
    def index_pattern(self) -> str:
        return f"{self.name}{VERSION_SEPARATOR}*"

    @property
    def capabilities(self) -> Capabilities:
        if self._capabilities is None:
            self._capabilities = probe(self.client)
        return self._capabilities

    def version_of(self, index: str) -> int | None:
        match = re.fullmatch(re.escape(self.name + VERSION_SEPARATOR) + r"(\d+)", index)
        return int(match.group(1)) if match else None

    # -- rendering --------------------------------------------------------------------------
    def _embedder(self, embedder: EmbedderInfo | None = None) -> EmbedderInfo:
        info = embedder or self.embedder
        if info is None:
            raise ConfigurationError(
                "no embedder given: the index's vector field needs the embedder's dims and "
                "similarity (pass embedder=EmbedderInfo(...) to IndexManager)"
            )
        return info

    def load_definition(self, definition: str | None = None) -> Definition:
        return load_definition(definition or self.settings.index.definition)

    def render_body(
        self,
        version: int | None = None,
        *,
        embedder: EmbedderInfo | None = None,
        definition: str | Definition | None = None,
        check_analyzers: bool = True,
        chunking: ChunkerConfig | None = None,
    ) -> dict[str, Any]:
        """The create-index body for `<name>-v<version>`, validated (analyzers checked live).

        `version` is recorded as `_meta.essearch.index_version`; leave it out for the template.
        `chunking` (default: from the settings and the embedder) is recorded as `_meta.essearch.
        chunking`.
        """
        defn = (
            definition if isinstance(definition, Definition) else self.load_definition(definition)
        )
        body = render(
            defn, self.settings, self._embedder(embedder), self.capabilities, version, chunking
        )
        if check_analyzers:
            self.check_analyzers(body)
        return stamp_fingerprint(body)

    def check_analyzers(self, body: Mapping[str, Any]) -> None:
        """Raise CapabilityError naming an analyzer the cluster lacks and what it offers."""
        for name, fields in referenced_analyzers(body).items():
            if name in SERVER_ANALYZERS or analyzer_available(self.client, name):
                continue
            caps = self.capabilities
            plugins = ", ".join(
                f"{n} ({p})" for p, ns in PLUGIN_ANALYZERS.items() for n in sorted(ns)
            )
            source = "index.analyzer" if name == self.settings.index.analyzer else "the definition"
            raise CapabilityError(
                f"analyzer {name!r} (from {source}, used by {', '.join(fields)}) is not available "
                f"on this cluster (Elasticsearch {caps.version}); it offers: "
                f"{', '.join(sorted(caps.analyzers))}. Language analyzers such as 'english' need "
                f"the analysis-common module; plugin analyzers: {plugins}."
            )

    def template_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "index_patterns": [self.index_pattern],
            "priority": TEMPLATE_BASE_PRIORITY + len(self.name),
            "template": {"settings": body["settings"], "mappings": body["mappings"]},
            "meta": {"managed_by": "essearch", "read_alias": self.read_alias},
        }

    # -- reading the cluster ------------------------------------------------------------------
    def _alias_table(self) -> dict[str, list[str]]:
        """`{physical index: [aliases]}` for every version of this name."""
        table = self.client.indices.get_alias(
            index=self.index_pattern, expand_wildcards="open,closed"
        ).body
        found = {
            i: sorted(v.get("aliases", {}))
            for i, v in table.items()
            if self.version_of(i) is not None
        }
        return dict(sorted(found.items(), key=lambda item: self.version_of(item[0]) or 0))

    def versions(self) -> list[str]:
        """Every physical `<name>-v<N>`, oldest first."""
        return list(self._alias_table())

    def indices_behind(self, alias: str) -> list[str]:
        try:
            found = self.client.indices.get_alias(name=alias).body
        except NotFoundError:
            return []
        return sorted(found, key=lambda i: self.version_of(i) or 0)

    def current_index(self) -> str | None:
        """The physical index behind the read alias (the newest when several are)."""
        indices = self.indices_behind(self.read_alias)
        return indices[-1] if indices else None

    def write_index(self) -> str | None:
        indices = self.indices_behind(self.write_alias)
        return indices[-1] if indices else None

    def template_exists(self) -> bool:
        return bool(self.client.indices.exists_index_template(name=self.template_name))

    def differences(
        self,
        index: str | None = None,
        *,
        embedder: EmbedderInfo | None = None,
        definition: str | None = None,
    ) -> list[Difference]:
        """How the live index differs from what the configured definition and embedder render."""
        target = index or self.current_index()
        if target is None:
            raise ConfigurationError(
                f"alias {self.read_alias!r} does not exist; run `essearch init`"
            )
        body = self.render_body(self.version_of(target), embedder=embedder, definition=definition)
        return self._compare(target, body)

    def _compare(self, index: str, body: Mapping[str, Any]) -> list[Difference]:
        mapping = dict(self.client.indices.get_mapping(index=index).body[index]["mappings"])
        meta = {k: v for k, v in mapping.get("_meta", {}).items() if k == META_KEY}
        mapping["_meta"] = meta  # not the migration state ops keeps beside it
        settings = self.client.indices.get_settings(index=index, flat_settings=True).body[index][
            "settings"
        ]
        return compare_body(body, mapping, settings)

    # -- creating -------------------------------------------------------------------------------
    def _put_template(self, body: Mapping[str, Any]) -> None:
        try:
            self.client.indices.put_index_template(
                name=self.template_name, **self.template_body(body)
            )
        except BadRequestError as exc:
            raise ConfigurationError(
                f"Elasticsearch refused the index template {self.template_name!r}: "
                f"{es_error_reason(exc)}"
            ) from None

    def replica_choice(self, settings: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The index settings to create with, and a note when essearch chose the replicas.

        On a single-node cluster a replica can never be assigned (it would share the node with
        its primary) and the index would stay yellow; unless ESSEARCH_INDEX_REPLICAS was set,
        such a cluster gets 0 replicas.
        """
        chosen = dict(settings)
        if "replicas" in self.settings.index.model_fields_set or self.capabilities.node_count > 1:
            return chosen, None
        if str(chosen.get("number_of_replicas", "1")) == "0":
            return chosen, None
        chosen["number_of_replicas"] = 0
        return chosen, (
            "replicas: 0, because the cluster has a single node (a replica could never be "
            "assigned and health would stay yellow); set ESSEARCH_INDEX_REPLICAS to choose, or "
            "raise it later with PUT <index>/_settings"
        )

    def _create(
        self, index: str, body: Mapping[str, Any], aliases: dict[str, Any] | None = None
    ) -> str | None:
        settings, note = self.replica_choice(body["settings"])
        try:
            self.client.indices.create(
                index=index, settings=settings, mappings=body["mappings"], aliases=aliases
            )
        except BadRequestError as exc:
            if exc.error == "resource_already_exists_exception":
                raise
            raise ConfigurationError(
                f"Elasticsearch refused the body for index {index!r}: {es_error_reason(exc)}"
            ) from None
        return note

    def init(self) -> InitResult:
        """Create `<name>-v1` with both aliases in one request; if it exists, compare only."""
        body = self.render_body(1)
        result = InitResult(
            index="",
            created=False,
            read_alias=self.read_alias,
            write_alias=self.write_alias,
            template=self.template_name,
        )
        current = self.current_index()
        if current is not None:
            result.index = current
            result.differences = self._compare(current, body)
            if not result.differences:
                self._repair(current, body, result)
            return result
        if self.client.indices.exists(index=self.read_alias):
            raise ConfigurationError(
                f"{self.read_alias!r} is a concrete index, but essearch needs that name for the "
                "read alias; choose another index.name or move the data with `essearch reindex`"
            )
        orphans = self.versions()
        if orphans:
            raise ConfigurationError(
                f"versions {', '.join(orphans)} exist but alias {self.read_alias!r} points to none "
                "of them; remove them with `essearch drop --force` or repair the aliases"
            )
        index = physical_index_for(self.name, 1)
        self._put_template(self.render_body(embedder=None, check_analyzers=False))
        aliases = {self.read_alias: {}, self.write_alias: {"is_write_index": True}}
        try:
            note = self._create(index, body, aliases)
        except BadRequestError:  # resource_already_exists: another process won the race
            return self.init()
        result.index, result.created = index, True
        if note:
            result.notes.append(note)
        result.actions.append(f"created {index} behind {self.read_alias} and {self.write_alias}")
        return result

    def _repair(self, current: str, body: Mapping[str, Any], result: InitResult) -> None:
        """Same definition: only restore what is missing around it (write alias, template)."""
        if self.write_index() is None:
            self.client.indices.update_aliases(
                actions=[
                    {"add": {"index": current, "alias": self.write_alias, "is_write_index": True}}
                ]
            )
            result.actions.append(f"added missing write alias {self.write_alias} -> {current}")
        if not self.template_exists():
            template = copy.deepcopy(dict(body))
            template["mappings"]["_meta"][META_KEY].pop("index_version", None)
            self._put_template(template)
            result.actions.append(f"restored index template {self.template_name}")

    def create_version(
        self,
        version: int | None = None,
        embedder: EmbedderInfo | None = None,
        definition: str | None = None,
        chunking: ChunkerConfig | None = None,
    ) -> str:
        """Create `<name>-v<N>` (next N by default), not behind any alias yet; returns its name.

        The template is updated to this version's body first, so it follows the newest version.
        """
        existing = [self.version_of(i) or 0 for i in self.versions()]
        number = version if version is not None else max(existing, default=0) + 1
        if number < 1:
            raise ConfigurationError(f"version={number}: versions start at 1")
        index = physical_index_for(self.name, number)
        if self.client.indices.exists(index=index):
            raise ConfigurationError(f"index {index!r} already exists; pick another version")
        defn = self.load_definition(definition)
        body = self.render_body(number, embedder=embedder, definition=defn, chunking=chunking)
        self._put_template(
            self.render_body(
                embedder=embedder, definition=defn, check_analyzers=False, chunking=chunking
            )
        )
        self._create(index, body)
        return index

    def swap_aliases(self, new_index: str, old_index: str | None) -> None:
        """Move both aliases from `old_index` to `new_index` in ONE atomic `_aliases` call."""
        actions = swap_actions(self.read_alias, self.write_alias, new_index, old_index)
        try:
            self.client.indices.update_aliases(actions=actions)
        except ApiError as exc:
            raise ConfigurationError(
                f"alias swap {old_index} -> {new_index} refused, nothing changed: "
                f"{es_error_reason(exc)}"
            ) from None
        # The template follows the serving version (also after a rollback or a failed migration).
        self._put_template(self.body_of(new_index))

    def body_of(self, index: str) -> dict[str, Any]:
        """The settings and mappings of a live index, in the shape `_put_template` takes."""
        mapping = dict(self.client.indices.get_mapping(index=index).body[index]["mappings"])
        meta = {k: v for k, v in mapping.get("_meta", {}).items() if k == META_KEY}
        mapping["_meta"] = meta  # not the migration state ops keeps beside it
        live = self.client.indices.get_settings(index=index).body[index]["settings"]["index"]
        kept = {
            k: live[k] for k in ("number_of_shards", "number_of_replicas", "analysis") if k in live
        }
        return {"settings": kept, "mappings": mapping}

    # -- chunking ------------------------------------------------------------------------------
    def recorded_chunking(self, index: str) -> ChunkerConfig | None:
        """The chunking recorded on the physical `index`; None for indices made before it was."""
        meta = meta_from_mapping(self.client.indices.get_mapping(index=index).body[index]) or {}
        recorded = meta.get("chunking")
        return ChunkerConfig.from_meta(recorded) if isinstance(recorded, Mapping) else None

    def record_chunking(self, index: str, config: ChunkerConfig) -> None:
        """Replace the recorded chunking of `index` (the rest of `_meta` is kept)."""
        mapping = self.client.indices.get_mapping(index=index).body[index]["mappings"]
        meta = copy.deepcopy(dict(mapping.get("_meta") or {}))
        meta.setdefault(META_KEY, {})["chunking"] = config.to_meta()
        self.client.indices.put_mapping(index=index, meta=meta)

    # -- the model guard ------------------------------------------------------------------------
    def recorded_model(self, index: str | None = None) -> EmbedderInfo | None:
        """The embedder recorded on `index` (default: the index behind the read alias)."""
        target = index or self.current_index()
        if target is None:
            return None
        try:
            response = self.client.indices.get_mapping(index=target).body
        except NotFoundError:
            return None
        behind = self.indices_behind(target)
        physical = target if target in response else (behind[-1] if behind else None)
        return model_from_mapping(response[physical]) if physical in response else None

    def check_model(
        self, embedder_info: EmbedderInfo | None = None, index: str | Iterable[str] | None = None
    ) -> EmbedderInfo:
        """Raise ModelMismatchError unless every index behind `index` (default: both aliases)
        records `embedder_info` (default: this manager's embedder). Call it before writing or kNN.
        """
        configured = self._embedder(embedder_info)
        targets = (
            [index]
            if isinstance(index, str)
            else list(index or [self.read_alias, self.write_alias])
        )
        try:
            response = self.client.indices.get_mapping(index=targets).body
        except NotFoundError:
            raise ConfigurationError(
                f"{', '.join(targets)} does not exist; create it with `essearch init`"
            ) from None
        check_mapping_response(configured, response)
        return configured

    # -- status and drop -------------------------------------------------------------------------
    def status(self) -> IndexStatus:
        table = self._alias_table()
        stats: dict[str, dict[str, Any]] = {}
        recorded: dict[str, EmbedderInfo | None] = {}
        chunking: dict[str, Any] = {}
        cjk: dict[str, str] = {}
        documents: dict[str, int] = {}
        if table:
            rows: list[dict[str, Any]] = self.client.cat.indices(
                index=list(table),
                format="json",
                bytes="b",
                h="index,health,docs.count,store.size,rep",
            ).body  # type: ignore[assignment]  # a JSON list with format="json"
            stats = {row["index"]: row for row in rows}
            documents = self._document_counts(list(table))
            mappings = self.client.indices.get_mapping(index=list(table)).body
            recorded = {i: model_from_mapping(m) for i, m in mappings.items()}
            chunking = {
                i: (meta_from_mapping(m) or {}).get("chunking") for i, m in mappings.items()
            }
            cjk = {i: describe_cjk(m) for i, m in mappings.items()}
        versions = []
        for index, index_aliases in table.items():
            row = stats.get(index, {})
            info = recorded.get(index)
            mismatch: list[str] = []
            if self.embedder is not None:
                if info is None:
                    mismatch = ["no embedder recorded"]
                else:
                    mismatch = [
                        f"{k}: index {a!r} vs configured {b!r}"
                        for k, (a, b) in info.differences(self.embedder).items()
                    ]
            versions.append(
                IndexInfo(
                    index=index,
                    aliases=index_aliases,
                    docs=_int_or_none(row.get("docs.count")),
                    size_bytes=_int_or_none(row.get("store.size")),
                    health=row.get("health"),
                    recorded=info,
                    mismatch=mismatch,
                    chunking=chunking.get(index),
                    cjk=cjk.get(index),
                    documents=documents.get(index),
                    replicas=_int_or_none(row.get("rep")),
                )
            )
        aliases = {
            alias: [i for i, names in table.items() if alias in names]
            for alias in (self.read_alias, self.write_alias)
        }
        return IndexStatus(
            name=self.name,
            read_alias=self.read_alias,
            write_alias=self.write_alias,
            template=self.template_name,
            template_exists=self.template_exists(),
            configured=self.embedder,
            aliases=aliases,
            versions=versions,
        )

    def _document_counts(self, indices: list[str]) -> dict[str, int]:
        """Distinct doc_ids per index, from one size-0 search (a cardinality aggregation:
        exact up to 40,000 documents, within about 1% beyond)."""
        try:
            response = self.client.search(
                index=indices,
                size=0,
                track_total_hits=False,
                aggs={
                    "by_index": {
                        "terms": {"field": "_index", "size": max(len(indices), 1)},
                        "aggs": {
                            "documents": {
                                "cardinality": {"field": DOC_ID_FIELD, "precision_threshold": 40000}
                            }
                        },
                    }
                },
            ).body
        except ApiError:
            return {}  # a version without the doc_id field, or a closed index: unknown
        buckets = response.get("aggregations", {}).get("by_index", {}).get("buckets", [])
        counts = dict.fromkeys(indices, 0)  # an empty index has no bucket
        counts.update({b["key"]: int(b["documents"]["value"]) for b in buckets})
        return counts

    def plan_drop(self, index: str | None = None) -> DropPlan:
        """What `drop(index)` deletes: one version, or (no index) every version and the template."""
        table = self._alias_table()
        if index is not None:
            if index not in table:
                known = ", ".join(table) or "none"
                raise ConfigurationError(
                    f"{index!r} is not a version of {self.name!r} (versions: {known})"
                )
            targets = [index]
            template = None
        else:
            targets = list(table)
            template = self.template_name if self.template_exists() else None
        aliased = {i: table[i] for i in targets if table[i]}
        return DropPlan(indices=targets, aliased=aliased, template=template)

    def drop(self, index: str | None = None, *, force: bool = False) -> DropPlan:
        """Delete what `plan_drop` lists; refuse indices an alias points to unless `force`."""
        plan = self.plan_drop(index)
        if plan.empty:
            raise ConfigurationError(f"nothing to drop: {self.name!r} has no versions or template")
        if plan.aliased and not force:
            held = "; ".join(f"{i} <- {', '.join(a)}" for i, a in plan.aliased.items())
            raise ConfigurationError(
                f"refusing to delete indices that aliases still point to ({held}); "
                "swap the aliases first or pass --force"
            )
        if plan.indices:
            self.client.indices.delete(index=",".join(plan.indices))
        if plan.template:
            self.client.indices.delete_index_template(name=plan.template)
        return plan


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = [
    "DropPlan",
    "IndexInfo",
    "IndexManager",
    "IndexStatus",
    "InitResult",
    "describe",
    "meta_from_mapping",
]


def describe_cjk(mapping_entry: Mapping[str, Any]) -> str:
    """One phrase for `status`: what BM25 does with Chinese/CJK text in this index version."""
    mappings = mapping_entry.get("mappings", mapping_entry)
    field_spec = (mappings.get("properties") or {}).get(CJK_FIELD)
    if not isinstance(field_spec, dict):
        return "characters only (made before the CJK word field; `essearch reindex` adds it)"
    recorded = ((mappings.get("_meta") or {}).get(META_KEY) or {}).get("cjk") or {}
    analyzer = field_spec.get("analyzer", "standard")
    segmenter = recorded.get("segmenter", "jieba")
    if analyzer == "whitespace":
        return f"words ({segmenter} on the client, bigrams for ja/ko, simplified=traditional)"
    return f"words ({analyzer} analyzer over {segmenter} tokens, simplified=traditional)"
