"""The one filter language: Python objects, dicts and a compact CLI form, all compiled to ES DSL.

The same compiled filter goes into the kNN leg as ``knn.filter`` (a pre-filter, so k results still
come back) and into the BM25 leg's ``bool.filter``. A bare field name that is not a top-level field
of the chunk schema means ``metadata.<name>``, so ``lang=zh`` filters on ``metadata.lang``.

Forms (all equivalent ways to build the same tree):

- objects: ``F.eq("lang", "zh") & F.gte("year", 2020) | ~F.exists("draft")``
- dicts: ``{"lang": "zh", "year": {"gte": 2020}, "tag": ["a", "b"], "or": [...], "not": {...}}``;
  per field also ``{"contains": "x"}``, ``{"prefix": "x"}``, ``{"suffix": "x"}`` (keyword fields)
- CLI: ``lang=zh``, ``lang!=en``, ``year>=2020``, ``tag in a,b``, ``tag not in a,b``, ``draft``
  (exists), ``!draft`` (missing), or a JSON object in the dict form. Several are ANDed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from essearch.errors import SearchError
from essearch.index import schema

#: Fields of the chunk schema addressed by their own name; anything else lives under metadata.
TOP_LEVEL_FIELDS = frozenset(
    {
        "_id",
        schema.ID_FIELD,
        schema.DOC_ID_FIELD,
        schema.CHUNK_FIELD,
        schema.TITLE_FIELD,
        schema.TEXT_FIELD,
        schema.METADATA_FIELD,
        schema.CONTENT_HASH_FIELD,
        schema.INDEXED_AT_FIELD,
        schema.VECTOR_FIELD,
    }
)
#: Analyzed text fields: equality there means "contains this phrase", not an exact term.
TEXT_FIELDS = frozenset({schema.TITLE_FIELD, schema.TEXT_FIELD})
RANGE_OPS = ("gt", "gte", "lt", "lte")


def resolve_field(name: str) -> str:
    """`lang` -> `metadata.lang`; top-level schema fields and dotted metadata paths stay."""
    name = name.strip()
    if not name:
        raise SearchError("filter: empty field name")
    if name in TOP_LEVEL_FIELDS or name.startswith(f"{schema.METADATA_FIELD}."):
        return name
    return f"{schema.METADATA_FIELD}.{name}"


class Filter:
    """A node of the filter tree. Combine with `&`, `|` and `~`."""

    def to_es(self) -> dict[str, Any]:
        raise NotImplementedError

    def __and__(self, other: Filter) -> Filter:
        return And((*_flatten(self, And), *_flatten(other, And)))

    def __or__(self, other: Filter) -> Filter:
        return Or((*_flatten(self, Or), *_flatten(other, Or)))

    def __invert__(self) -> Filter:
        return self.inner if isinstance(self, Not) else Not(self)


def _flatten(node: Filter, kind: type) -> tuple[Filter, ...]:
    return node.children if isinstance(node, kind) else (node,)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Eq(Filter):
    field: str
    value: Any

    def to_es(self) -> dict[str, Any]:
        field = resolve_field(self.field)
        if field in TEXT_FIELDS:
            return {"match_phrase": {field: self.value}}
        return {"term": {field: self.value}}


@dataclass(frozen=True)
class In(Filter):
    field: str
    values: tuple[Any, ...]

    def to_es(self) -> dict[str, Any]:
        if not self.values:
            raise SearchError(f"filter: `{self.field} in` needs at least one value")
        return {"terms": {resolve_field(self.field): list(self.values)}}


@dataclass(frozen=True)
class Range(Filter):
    """gt/gte/lt/lte on numbers or dates (ES parses date strings with the field's format)."""

    field: str
    gt: Any = None
    gte: Any = None
    lt: Any = None
    lte: Any = None

    def to_es(self) -> dict[str, Any]:
        bounds = {op: getattr(self, op) for op in RANGE_OPS if getattr(self, op) is not None}
        if not bounds:
            raise SearchError(f"filter: range on `{self.field}` has no bound")
        return {"range": {resolve_field(self.field): bounds}}


@dataclass(frozen=True)
class Exists(Filter):
    field: str

    def to_es(self) -> dict[str, Any]:
        return {"exists": {"field": resolve_field(self.field)}}


def _wildcard_escape(value: str) -> str:
    return "".join("\\" + c if c in "*?\\" else c for c in value)


@dataclass(frozen=True)
class Substring(Filter):
    """`contains` / `prefix` / `suffix` on a keyword field (case-sensitive, like a term)."""

    field: str
    value: str
    how: str = "contains"  # contains | prefix | suffix

    def to_es(self) -> dict[str, Any]:
        field = resolve_field(self.field)
        value = str(self.value)
        if field in TEXT_FIELDS:  # analyzed text: the nearest meaning is the phrase
            return {"match_phrase": {field: value}}
        if self.how == "prefix":
            return {"prefix": {field: {"value": value}}}
        pattern = _wildcard_escape(value)
        pattern = f"*{pattern}*" if self.how == "contains" else f"*{pattern}"
        return {"wildcard": {field: {"value": pattern}}}


@dataclass(frozen=True)
class Not(Filter):
    inner: Filter

    def to_es(self) -> dict[str, Any]:
        return {"bool": {"must_not": [self.inner.to_es()]}}


@dataclass(frozen=True)
class And(Filter):
    children: tuple[Filter, ...]

    def to_es(self) -> dict[str, Any]:
        if len(self.children) == 1:
            return self.children[0].to_es()
        return {"bool": {"filter": [c.to_es() for c in self.children]}}


@dataclass(frozen=True)
class Or(Filter):
    children: tuple[Filter, ...]

    def to_es(self) -> dict[str, Any]:
        if len(self.children) == 1:
            return self.children[0].to_es()
        return {"bool": {"should": [c.to_es() for c in self.children], "minimum_should_match": 1}}


@dataclass(frozen=True)
class Raw(Filter):
    """An Elasticsearch query clause passed through untouched (escape hatch)."""

    clause: Mapping[str, Any]

    def to_es(self) -> dict[str, Any]:
        return dict(self.clause)


class F:
    """Constructors: `F.eq("lang", "zh") & F.gte("year", 2020)`."""

    @staticmethod
    def eq(field: str, value: Any) -> Filter:
        return Eq(field, value)

    @staticmethod
    def ne(field: str, value: Any) -> Filter:
        return Not(Eq(field, value))

    @staticmethod
    def in_(field: str, values: Iterable[Any]) -> Filter:
        return In(field, tuple(values))

    @staticmethod
    def not_in(field: str, values: Iterable[Any]) -> Filter:
        return Not(In(field, tuple(values)))

    @staticmethod
    def gt(field: str, value: Any) -> Filter:
        return Range(field, gt=value)

    @staticmethod
    def gte(field: str, value: Any) -> Filter:
        return Range(field, gte=value)

    @staticmethod
    def lt(field: str, value: Any) -> Filter:
        return Range(field, lt=value)

    @staticmethod
    def lte(field: str, value: Any) -> Filter:
        return Range(field, lte=value)

    @staticmethod
    def range(
        field: str, *, gt: Any = None, gte: Any = None, lt: Any = None, lte: Any = None
    ) -> Range:
        return Range(field, gt=gt, gte=gte, lt=lt, lte=lte)

    @staticmethod
    def contains(field: str, value: str) -> Filter:
        return Substring(field, value, "contains")

    @staticmethod
    def prefix(field: str, value: str) -> Filter:
        return Substring(field, value, "prefix")

    @staticmethod
    def suffix(field: str, value: str) -> Filter:
        return Substring(field, value, "suffix")

    @staticmethod
    def exists(field: str) -> Filter:
        return Exists(field)

    @staticmethod
    def missing(field: str) -> Filter:
        return Not(Exists(field))

    @staticmethod
    def not_(inner: Filter) -> Filter:
        return ~inner

    @staticmethod
    def and_(*children: Filter) -> Filter:
        return And(tuple(children))

    @staticmethod
    def or_(*children: Filter) -> Filter:
        return Or(tuple(children))

    @staticmethod
    def raw(clause: Mapping[str, Any]) -> Filter:
        return Raw(clause)


# -- dict form -------------------------------------------------------------------------------
_DICT_OPS = {"eq", "ne", "in", "nin", "exists", "contains", "prefix", "suffix", *RANGE_OPS}


def from_dict(data: Mapping[str, Any]) -> Filter:
    """Build a filter from the dict form; several keys are ANDed."""
    if not isinstance(data, Mapping):
        raise SearchError(f"filter: expected an object, got {data!r}")
    parts: list[Filter] = []
    for key, value in data.items():
        if key == "and":
            parts.append(And(tuple(from_any(v) for v in _as_list(key, value))))
        elif key == "or":
            parts.append(Or(tuple(from_any(v) for v in _as_list(key, value))))
        elif key == "not":
            parts.append(Not(from_any(value)))
        else:
            parts.append(_field_condition(key, value))
    if not parts:
        raise SearchError("filter: empty object")
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def _as_list(key: str, value: Any) -> list[Any]:
    if not isinstance(value, list) or not value:
        raise SearchError(f"filter: `{key}` needs a non-empty list, got {value!r}")
    return value


def _field_condition(field: str, value: Any) -> Filter:
    if isinstance(value, list):
        return In(field, tuple(value))
    if not isinstance(value, Mapping):
        return Eq(field, value)
    unknown = set(value) - _DICT_OPS
    if unknown:
        raise SearchError(
            f"filter: unknown operator(s) {sorted(unknown)} on `{field}` "
            f"(known: {', '.join(sorted(_DICT_OPS))})"
        )
    parts: list[Filter] = []
    bounds = {op: value[op] for op in RANGE_OPS if op in value}
    if bounds:
        parts.append(Range(field, **bounds))
    if "eq" in value:
        parts.append(Eq(field, value["eq"]))
    if "ne" in value:
        parts.append(Not(Eq(field, value["ne"])))
    if "in" in value:
        parts.append(In(field, tuple(_as_list(f"{field}.in", value["in"]))))
    if "nin" in value:
        parts.append(Not(In(field, tuple(_as_list(f"{field}.nin", value["nin"])))))
    if "exists" in value:
        parts.append(Exists(field) if value["exists"] else Not(Exists(field)))
    for how in ("contains", "prefix", "suffix"):
        if how in value:
            parts.append(Substring(field, str(value[how]), how))
    if not parts:
        raise SearchError(f"filter: no condition on `{field}`")
    return parts[0] if len(parts) == 1 else And(tuple(parts))


def from_any(value: Filter | Mapping[str, Any] | str) -> Filter:
    if isinstance(value, Filter):
        return value
    if isinstance(value, Mapping):
        return from_dict(value)
    if isinstance(value, str):
        return parse_expression(value)
    raise SearchError(f"filter: cannot use {value!r} as a filter")


# -- compact CLI form ------------------------------------------------------------------------
_FIELD = r"[A-Za-z_@][\w.\-@]*"
_COMPARISON = re.compile(
    rf"^\s*(?P<field>{_FIELD})\s*(?P<op>>=|<=|!=|==|=|>|<)\s*(?P<value>.*?)\s*$", re.S
)
_MEMBERSHIP = re.compile(
    rf"^\s*(?P<field>{_FIELD})\s+(?P<op>not\s+in|in)\s+(?P<value>.+?)\s*$", re.S | re.I
)
_PRESENCE = re.compile(rf"^\s*(?P<neg>!?)\s*(?P<field>{_FIELD})\s*$")
_RANGE_OP = {">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _number_or_text(text: str) -> Any:
    """Range bounds: numbers when they look like numbers, else strings (dates, date math)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_expression(text: str) -> Filter:
    """One compact filter: `lang=zh`, `year>=2020`, `tag in a,b`, `!draft`, or a JSON object."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise SearchError(f"filter {text!r}: invalid JSON ({exc.msg} at {exc.pos})") from None
        return from_dict(data)
    if match := _MEMBERSHIP.match(stripped):
        values = tuple(_unquote(v) for v in match["value"].split(",") if v.strip())
        if not values:
            raise SearchError(f"filter {text!r}: `in` needs values, e.g. `tag in a,b`")
        node: Filter = In(match["field"], values)
        return Not(node) if match["op"].lower().startswith("not") else node
    if match := _COMPARISON.match(stripped):
        field, op, raw = match["field"], match["op"], _unquote(match["value"])
        if raw == "":
            raise SearchError(f"filter {text!r}: no value after `{op}`")
        if raw[0] in "<>=!" and match["value"][:1] == raw[:1]:  # `year>>2020`, `a==>b`
            raise SearchError(
                f"filter {text!r}: the value {raw!r} starts with an operator; "
                f"write one of =, !=, >, >=, <, <= (e.g. `{field}{op}{raw.lstrip('<>=!')}`)"
            )
        if op in ("=", "=="):
            return Eq(field, raw)
        if op == "!=":
            return Not(Eq(field, raw))
        return Range(field, **{_RANGE_OP[op]: _number_or_text(raw)})
    if match := _PRESENCE.match(stripped):
        node = Exists(match["field"])
        return Not(node) if match["neg"] else node
    raise SearchError(
        f"filter {text!r} not understood; use field=value, field!=value, field>=n, "
        "field in a,b, field (exists), !field (missing) or a JSON object"
    )


def parse_filters(items: Sequence[str]) -> Filter | None:
    """Several CLI `--filter` values, ANDed."""
    nodes = [parse_expression(item) for item in items if item.strip()]
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


FilterLike = Filter | Mapping[str, Any] | str | Sequence[str] | None


def compile_filter(value: FilterLike) -> dict[str, Any] | None:
    """Any accepted filter form -> one ES query clause (or None for no filter)."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        node = parse_filters(list(value))
        return node.to_es() if node else None
    return from_any(value).to_es()  # type: ignore[arg-type]
