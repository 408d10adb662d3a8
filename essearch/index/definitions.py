"""Index definitions: load `mappings/*.json`, merge `extends`, fill placeholders, validate.

A definition file is JSON with four optional keys::

    {
      "description": "what this definition is for",
      "extends": "default",              # a definition name or a path, merged underneath
      "settings": {...},                 # index settings (analysis, refresh_interval, ...)
      "mappings": {...}                  # the mapping (properties, dynamic_templates, _meta)
    }

`extends` is deep-merged: objects merge key by key, anything else (lists included) replaces the
base value, and `null` removes a key from the base. String values that are exactly one of the
placeholders below are replaced by typed values at render time, so one file fits every embedder:

    ${dims} ${similarity} ${index_options} ${analyzer} ${cjk_analyzer} ${shards} ${replicas}

Rendering is a pure function of (definition, settings, embedder, capabilities); the cluster is
only consulted by the caller for the analyzer check. Everything is validated before it is sent.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import essearch
from essearch.embedders.base import EmbedderInfo
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.es.versions import INDEX_TYPE_SINCE
from essearch.index.chunking import ChunkerConfig, chunking_for
from essearch.index.schema import CJK_FIELD, META_KEY, SCHEMA_VERSION, VECTOR_FIELD
from essearch.settings import Settings

if TYPE_CHECKING:  # the client import is heavy; `mappings list` never talks to a cluster
    from essearch.es.capabilities import Capabilities

DEFINITION_KEYS = frozenset({"description", "extends", "settings", "mappings"})
PLACEHOLDER = re.compile(r"^\$\{([a-z_]+)\}$")
PLACEHOLDERS = (
    "dims",
    "similarity",
    "index_options",
    "analyzer",
    "cjk_analyzer",
    "shards",
    "replicas",
)

MIN_DIMS, MAX_DIMS = 1, 4096
MIN_BBQ_DIMS = 64  # the node refuses "dimensions fewer than 64" for bbq_* (checked on 9.5)
SIMILARITIES = frozenset({"cosine", "dot_product", "l2_norm", "max_inner_product"})
ELEMENT_TYPES = frozenset({"float", "byte", "bit", "bfloat16"})
HNSW_TYPES = frozenset({"hnsw", "int8_hnsw", "int4_hnsw", "bbq_hnsw"})
QUANTIZED_TYPES = frozenset(
    {"int8_hnsw", "int4_hnsw", "bbq_hnsw", "int8_flat", "int4_flat", "bbq_flat"}
)
FLOAT_ELEMENT_TYPES = frozenset({"float", "bfloat16"})
MIN_OVERSAMPLE, MAX_OVERSAMPLE = 1.0, 10.0
UNIT_LENGTH_TOLERANCE = 1e-3  # |‖v‖² - 1| the node tolerates for dot_product (checked on 9.5)
#: `_meta.essearch` keys that change on every render and are ignored when comparing.
VOLATILE_META_KEYS = frozenset({"created_at", "essearch_version", "index_version", "definition"})
#: Recorded but not compared with the settings: ingest follows the index's recorded chunking
#: unless told otherwise, and `essearch reindex` is how it changes (see ingest.chunking).
UNCOMPARED_META_KEYS = frozenset({"chunking", "cjk"})


# -- locating definitions --------------------------------------------------------------------------
def builtin_mappings_dirs() -> list[Path]:
    """Where the shipped definitions live: the checkout's `mappings/`, then the packaged copy."""
    package_dir = Path(essearch.__file__).resolve().parent
    candidates = [package_dir.parent / "mappings", package_dir / "data" / "mappings"]
    return [d for d in candidates if (d / "default.json").is_file()]


def search_dirs(cwd: Path | None = None) -> list[Path]:
    """Definition names resolve in `./mappings/` (the operator's own) before the shipped ones."""
    dirs = [(cwd or Path.cwd()) / "mappings", *builtin_mappings_dirs()]
    seen: list[Path] = []
    for d in dirs:
        resolved = d.resolve()
        if resolved.is_dir() and resolved not in seen:
            seen.append(resolved)
    return seen


def available_definitions(cwd: Path | None = None) -> dict[str, Path]:
    """Every definition name that resolves, with the file it resolves to."""
    found: dict[str, Path] = {}
    for d in search_dirs(cwd):
        for path in sorted(d.glob("*.json")):
            found.setdefault(path.stem, path)
    return found


def resolve_definition(ref: str, *, skip: Sequence[Path] = (), cwd: Path | None = None) -> Path:
    """A definition name (`default`) or a path (`./my.json`) to an existing file."""
    looks_like_path = ref.endswith(".json") or "/" in ref or "\\" in ref
    if looks_like_path:
        path = Path(ref).expanduser()
        if not path.is_absolute():
            path = (cwd or Path.cwd()) / path
        if not path.is_file():
            raise ConfigurationError(f"index.definition={ref!r}: no such file {path}")
        return path.resolve()
    for d in search_dirs(cwd):
        path = (d / f"{ref}.json").resolve()
        if path.is_file() and path not in skip:
            return path
    known = ", ".join(sorted(available_definitions(cwd))) or "none"
    raise ConfigurationError(
        f"index.definition={ref!r}: no definition of that name (known: {known}); "
        "give a name from mappings/ or a path to a JSON file"
    )


# -- loading and merging ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Definition:
    """A loaded definition with `extends` already merged in."""

    name: str
    path: Path
    settings: dict[str, Any]
    mappings: dict[str, Any]
    description: str = ""
    chain: tuple[Path, ...] = ()


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Objects merge key by key; other values replace; `None` deletes the key."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read definition: {exc.strerror}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path}: a definition must be a JSON object")
    unknown = set(data) - DEFINITION_KEYS
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown key(s) {sorted(unknown)}; allowed: {sorted(DEFINITION_KEYS)}"
        )
    for key in ("settings", "mappings"):
        if key in data and not isinstance(data[key], dict):
            raise ConfigurationError(f"{path}: {key!r} must be an object")
    if "extends" in data and not isinstance(data["extends"], str):
        raise ConfigurationError(f"{path}: 'extends' must be a definition name or a path")
    return data


def load_definition(ref: str, *, cwd: Path | None = None) -> Definition:
    """Load `ref` and everything it extends, base first."""
    chain: list[Path] = []
    layers: list[dict[str, Any]] = []
    current: str | None = ref
    base_dir = cwd
    while current is not None:
        path = resolve_definition(current, skip=chain, cwd=base_dir)
        if path in chain:
            raise ConfigurationError(f"{path}: 'extends' forms a cycle: {[str(p) for p in chain]}")
        chain.append(path)
        data = _read_json(path)
        layers.append(data)
        current = data.get("extends")
        base_dir = path.parent if current and ("/" in current or current.endswith(".json")) else cwd
    settings: dict[str, Any] = {}
    mappings: dict[str, Any] = {}
    for layer in reversed(layers):
        settings = deep_merge(settings, layer.get("settings", {}))
        mappings = deep_merge(mappings, layer.get("mappings", {}))
    return Definition(
        name=ref,
        path=chain[0],
        settings=settings,
        mappings=mappings,
        description=layers[0].get("description", ""),
        chain=tuple(chain),
    )


# -- rendering -------------------------------------------------------------------------------------
def index_options_for(settings: Settings, capabilities: Capabilities | None) -> dict[str, Any]:
    """`index_options` from settings.index, keeping only what the cluster's version supports."""
    idx = settings.index
    index_type = idx.vector_index_type
    if (
        capabilities is not None
        and not capabilities.supports_index_type(index_type)
        and "vector_index_type" not in idx.model_fields_set
    ):
        index_type = "hnsw"  # the default type is newer than the cluster (8.11): plain HNSW
    if capabilities is not None and not capabilities.supports_index_type(index_type):
        supported = ", ".join(capabilities.index_types)
        raise ConfigurationError(
            f"index.vector_index_type={index_type!r} needs Elasticsearch "
            f"{'.'.join(map(str, INDEX_TYPE_SINCE[index_type]))}+; this cluster is "
            f"{capabilities.version} and supports: {supported}"
        )
    options: dict[str, Any] = {"type": index_type}
    for field, value in (
        ("hnsw_m", idx.hnsw_m),
        ("hnsw_ef_construction", idx.hnsw_ef_construction),
    ):
        if value is None:
            continue
        if index_type not in HNSW_TYPES:
            raise ConfigurationError(
                f"index.{field}={value}: only HNSW index types take it, not {index_type!r}"
            )
        options["m" if field == "hnsw_m" else "ef_construction"] = value
    if index_type == "hnsw" and capabilities is not None and capabilities.version_tuple < (8, 12):
        # 8.11 requires both HNSW parameters (verified on 8.11.4); these are its defaults
        options.setdefault("m", 16)
        options.setdefault("ef_construction", 100)
    if idx.rescore_oversample is not None:
        if index_type not in QUANTIZED_TYPES:
            raise ConfigurationError(
                f"index.rescore_oversample={idx.rescore_oversample}: only quantized index types "
                f"(int8/int4/bbq) rescore, not {index_type!r}"
            )
        if capabilities is None or capabilities.rescore_vector:
            options["rescore_vector"] = {"oversample": idx.rescore_oversample}
    return options


def placeholder_values(
    settings: Settings, embedder: EmbedderInfo, capabilities: Capabilities | None
) -> dict[str, Any]:
    return {
        "dims": embedder.dims,
        "similarity": embedder.similarity,
        "index_options": index_options_for(settings, capabilities),
        "analyzer": settings.index.analyzer,
        "cjk_analyzer": settings.index.cjk_analyzer,
        "shards": settings.index.shards,
        "replicas": settings.index.replicas,
    }


def fill_placeholders(value: Any, values: Mapping[str, Any], where: str, path: str = "") -> Any:
    """Replace every string that is exactly `${name}` with `values[name]` (typed)."""
    if isinstance(value, dict):
        return {
            k: fill_placeholders(v, values, where, f"{path}.{k}" if path else k)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [fill_placeholders(v, values, where, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        match = PLACEHOLDER.match(value)
        if not match or match.group(1) not in values:
            raise ConfigurationError(
                f"{where}: {path}={value!r}: unknown placeholder; "
                f"use one of {', '.join('${' + p + '}' for p in PLACEHOLDERS)} as the whole value"
            )
        return copy.deepcopy(values[match.group(1)])
    return value


def build_meta(
    embedder: EmbedderInfo,
    definition: str,
    version: int | None = None,
    chunking: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """What `_meta.essearch` records: the embedding space and how the index was made."""
    meta: dict[str, Any] = {
        "embedder": embedder.to_dict(),
        "chunking": chunking,
        "schema_version": SCHEMA_VERSION,
        "essearch_version": essearch.__version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "definition": definition,
    }
    if version is not None:
        meta["index_version"] = version
    return meta


def render(
    definition: Definition,
    settings: Settings,
    embedder: EmbedderInfo,
    capabilities: Capabilities | None = None,
    version: int | None = None,
    chunking: ChunkerConfig | None = None,
) -> dict[str, Any]:
    """The create-index body `{"settings", "mappings"}` for this definition and embedder."""
    values = placeholder_values(settings, embedder, capabilities)
    where = str(definition.path)
    body = {
        "settings": fill_placeholders(definition.settings, values, where, "settings"),
        "mappings": fill_placeholders(definition.mappings, values, where, "mappings"),
    }
    validate_body(body, embedder, capabilities, where=where)
    meta = body["mappings"].setdefault("_meta", {})
    chunking = chunking or chunking_for(
        embedder.provider, embedder.model, settings.index.chunk_size, settings.index.chunk_overlap
    )
    meta[META_KEY] = build_meta(embedder, definition.name, version, chunking.to_meta())
    cjk_field = body["mappings"].get("properties", {}).get(CJK_FIELD)
    if isinstance(cjk_field, dict):
        meta[META_KEY]["cjk"] = cjk_meta(cjk_field)
    return body


def cjk_meta(field_mapping: Mapping[str, Any]) -> dict[str, Any]:
    """How the CJK word field is made (shown by `status`): essearch's tokens, the field's
    analyzer, the segmenter and the script folding."""
    from essearch.text.cjk import segmenter_name

    return {
        "field": CJK_FIELD,
        "analyzer": field_mapping.get("analyzer", "standard"),
        "segmenter": segmenter_name(),
        "fold": "opencc-t2s",
    }


# -- validation ------------------------------------------------------------------------------------
def iter_fields(
    properties: Mapping[str, Any], prefix: str = ""
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field mapping under `properties` (recursing into objects), with its dotted path."""
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            continue
        path = f"{prefix}{name}"
        yield path, spec
        if isinstance(spec.get("properties"), dict):
            yield from iter_fields(spec["properties"], f"{path}.")


def validate_body(
    body: Mapping[str, Any],
    embedder: EmbedderInfo,
    capabilities: Capabilities | None = None,
    *,
    where: str = "definition",
) -> None:
    """Refuse, before anything is sent, what the node would refuse (or silently get wrong)."""
    properties = body.get("mappings", {}).get("properties", {})
    if VECTOR_FIELD not in properties:
        raise ConfigurationError(f"{where}: mappings.properties has no {VECTOR_FIELD!r} field")
    for path, spec in iter_fields(properties):
        if spec.get("type") == "dense_vector":
            validate_vector_field(spec, f"{where}: mappings.properties.{path}", capabilities)
    vector = properties[VECTOR_FIELD]
    if vector.get("type") != "dense_vector":
        raise ConfigurationError(
            f"{where}: mappings.properties.{VECTOR_FIELD}.type={vector.get('type')!r}: "
            "must be 'dense_vector'"
        )
    if vector.get("dims") != embedder.dims:
        raise ConfigurationError(
            f"{where}: mappings.properties.{VECTOR_FIELD}.dims={vector.get('dims')!r} but the "
            f"embedder {embedder.provider}/{embedder.model} produces {embedder.dims} dims"
        )


def validate_vector_field(
    spec: Mapping[str, Any], where: str, capabilities: Capabilities | None = None
) -> None:
    """Check one `dense_vector` mapping: dims, element type, similarity, index_options."""
    dims = spec.get("dims")
    element_type = spec.get("element_type", "float")
    if element_type not in ELEMENT_TYPES:
        raise ConfigurationError(
            f"{where}.element_type={element_type!r}: must be one of {sorted(ELEMENT_TYPES)}"
        )
    if not isinstance(dims, int) or isinstance(dims, bool):
        raise ConfigurationError(f"{where}.dims={dims!r}: must be an integer")
    if element_type == "bit":
        if dims % 8 or not 8 <= dims <= 8 * MAX_DIMS:
            raise ConfigurationError(
                f"{where}.dims={dims}: bit vectors need a multiple of 8 in 8..{8 * MAX_DIMS}"
            )
    elif not MIN_DIMS <= dims <= MAX_DIMS:
        raise ConfigurationError(f"{where}.dims={dims}: must be in {MIN_DIMS}..{MAX_DIMS}")
    similarity = spec.get("similarity", "cosine")
    if similarity not in SIMILARITIES:
        raise ConfigurationError(
            f"{where}.similarity={similarity!r}: must be one of {sorted(SIMILARITIES)}"
        )
    if element_type == "bit" and similarity != "l2_norm":
        raise ConfigurationError(f"{where}.similarity={similarity!r}: bit vectors need 'l2_norm'")
    options = spec.get("index_options")
    if options is None:
        return
    if not isinstance(options, dict):
        raise ConfigurationError(f"{where}.index_options={options!r}: must be an object")
    index_type = options.get("type")
    if index_type not in INDEX_TYPE_SINCE:
        raise ConfigurationError(
            f"{where}.index_options.type={index_type!r}: must be one of {list(INDEX_TYPE_SINCE)}"
        )
    if capabilities is not None and not capabilities.supports_index_type(index_type):
        raise ConfigurationError(
            f"{where}.index_options.type={index_type!r}: not supported by Elasticsearch "
            f"{capabilities.version} (supported: {', '.join(capabilities.index_types)})"
        )
    if index_type in QUANTIZED_TYPES and element_type not in FLOAT_ELEMENT_TYPES:
        raise ConfigurationError(
            f"{where}.index_options.type={index_type!r}: quantization needs float vectors, "
            f"not element_type={element_type!r}"
        )
    if index_type.startswith("int4") and dims % 2:
        raise ConfigurationError(
            f"{where}.index_options.type={index_type!r}: int4 needs an even dims, got {dims}"
        )
    if index_type.startswith("bbq") and dims < MIN_BBQ_DIMS:
        raise ConfigurationError(
            f"{where}.index_options.type={index_type!r}: "
            f"bbq needs dims >= {MIN_BBQ_DIMS}, got {dims}"
        )
    for key in ("m", "ef_construction"):
        if key in options:
            value = options[key]
            if index_type not in HNSW_TYPES:
                raise ConfigurationError(
                    f"{where}.index_options.{key}={value!r}: "
                    f"only HNSW types take it, not {index_type!r}"
                )
            if not isinstance(value, int) or isinstance(value, bool) or value < 2:
                raise ConfigurationError(
                    f"{where}.index_options.{key}={value!r}: must be an integer >= 2"
                )
    rescore = options.get("rescore_vector")
    if rescore is not None:
        if capabilities is not None and not capabilities.rescore_vector:
            raise ConfigurationError(
                f"{where}.index_options.rescore_vector: needs Elasticsearch 8.18+, "
                f"this cluster is {capabilities.version}"
            )
        if index_type not in QUANTIZED_TYPES:
            raise ConfigurationError(
                f"{where}.index_options.rescore_vector: "
                f"only quantized types rescore, not {index_type!r}"
            )
        oversample = rescore.get("oversample") if isinstance(rescore, dict) else None
        if (
            not isinstance(oversample, int | float)
            or isinstance(oversample, bool)
            or not (oversample == 0 or MIN_OVERSAMPLE <= oversample <= MAX_OVERSAMPLE)
        ):
            raise ConfigurationError(
                f"{where}.index_options.rescore_vector.oversample={oversample!r}: "
                f"must be 0 (off) or in {MIN_OVERSAMPLE}..{MAX_OVERSAMPLE}"
            )


# -- per-vector checks (for ingest) ----------------------------------------------------------------
@dataclass(frozen=True)
class VectorSpec:
    """What a vector must look like to be accepted by one `dense_vector` field."""

    dims: int
    element_type: str = "float"
    similarity: str = "cosine"
    field: str = VECTOR_FIELD

    @classmethod
    def from_mapping(
        cls, field_mapping: Mapping[str, Any], field: str = VECTOR_FIELD
    ) -> VectorSpec:
        return cls(
            dims=int(field_mapping["dims"]),
            element_type=field_mapping.get("element_type", "float"),
            similarity=field_mapping.get("similarity", "cosine"),
            field=field,
        )

    @classmethod
    def from_body(cls, body: Mapping[str, Any], field: str = VECTOR_FIELD) -> VectorSpec:
        """From a rendered body or a live mapping (`{"mappings": ...}` or the mappings itself)."""
        mappings = body.get("mappings", body)
        return cls.from_mapping(mappings["properties"][field], field)

    @classmethod
    def from_embedder(cls, embedder: EmbedderInfo, field: str = VECTOR_FIELD) -> VectorSpec:
        return cls(dims=embedder.dims, similarity=embedder.similarity, field=field)


def vector_problem(vector: Any, spec: VectorSpec | Mapping[str, Any]) -> str | None:
    """Why the node would refuse `vector` for this field, or None when it is fine."""
    if not isinstance(spec, VectorSpec):
        spec = VectorSpec.from_mapping(spec)
    if not isinstance(vector, Sequence) and hasattr(vector, "tolist"):  # a numpy row (Parquet)
        vector = vector.tolist()
    if not isinstance(vector, Sequence) or isinstance(vector, str | bytes):
        return f"{spec.field}: expected a list of numbers, got {type(vector).__name__}"
    expected = spec.dims // 8 if spec.element_type == "bit" else spec.dims
    if len(vector) != expected:
        return f"{spec.field}: has {len(vector)} dims, the index expects {expected}"
    squared = 0.0
    for i, value in enumerate(vector):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"{spec.field}[{i}]={value!r}: not a number"
        if not math.isfinite(value):
            return f"{spec.field}[{i}]={value!r}: not a finite number"
        if spec.element_type in ("byte", "bit") and (
            value != int(value) or not -128 <= value <= 127
        ):
            return (
                f"{spec.field}[{i}]={value!r}: "
                f"{spec.element_type} vectors need integers in -128..127"
            )
        squared += float(value) * float(value)
    if spec.similarity == "cosine" and squared == 0.0:
        return f"{spec.field}: zero vector; cosine similarity needs a non-zero magnitude"
    if (
        spec.similarity == "dot_product"
        and spec.element_type in FLOAT_ELEMENT_TYPES
        and abs(squared - 1.0) > UNIT_LENGTH_TOLERANCE
    ):
        return (
            f"{spec.field}: dot_product needs unit-length vectors, "
            f"this one has length {math.sqrt(squared):.4f}"
        )
    return None


def validate_vector(vector: Any, spec: VectorSpec | Mapping[str, Any]) -> None:
    """Raise EmbeddingError naming the field, position and value when `vector` would be refused."""
    problem = vector_problem(vector, spec)
    if problem is not None:
        raise EmbeddingError(problem)
