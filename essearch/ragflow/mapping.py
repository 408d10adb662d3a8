"""The tenant index body: RAGFlow's field-typing-by-suffix conventions as dynamic templates.

Differences from RAGFlow's `conf/mapping.json`, each deliberate:
- vectors: one regex template `^.*_(\\d+)_vec$` (dims inferred from the first document, ES >= 8.11)
  instead of four fixed-size ones; the store also maps each new `q_<dim>_vec` explicitly, with the
  dims taken from the name, before the first write, so any dimension works on any 8.x/9.x cluster;
- `*_tks` use a BM25 similarity with `k1=0, b=0` (idf x "term present"), the same shape as
  RAGFlow's painless `scripted_sim` but without needing the painless module;
- `*_ulong` is `long` where the cluster lacks the unsigned-long type;
- `*_fea`/`*_feas` are `rank_feature(s)` when the cluster has mapper-extras, else `float` and an
  object of `float`s (scored with `function_score.field_value_factor`, see `request.py`).
"""

from __future__ import annotations

import re
from typing import Any

VECTOR_NAME = re.compile(r"^.*_(\d+)_vec$")
DATE_FORMAT = "yyyy-MM-dd HH:mm:ss||yyyy-MM-dd||yyyy-MM-dd_HH:mm:ss"
TOKEN_SIMILARITY = "term_presence"
# The largest `dims` a dense_vector accepts (ES 8.11+: 4096).
MAX_VECTOR_DIMS = 4096


def vector_dims(field: str) -> int | None:
    """`q_1024_vec` -> 1024; None for a name that is not a vector column."""
    match = VECTOR_NAME.match(field)
    return int(match.group(1)) if match else None


def vector_field_mapping(dims: int, index_options: dict[str, Any] | None = None) -> dict[str, Any]:
    mapping: dict[str, Any] = {
        "type": "dense_vector",
        "dims": dims,
        "index": True,
        "similarity": "cosine",
    }
    if index_options:
        mapping["index_options"] = dict(index_options)
    return mapping


def _template(name: str, mapping: dict[str, Any], **match: str) -> dict[str, Any]:
    return {name: {**match, "mapping": mapping}}


def dynamic_templates(
    *,
    rank_feature: bool = True,
    unsigned_long: bool = True,
    vector_index_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Suffix -> type rules, most specific first (Elasticsearch applies the first that matches).

    `rank_feature`/`unsigned_long`: whether the cluster has those field types (mapper-extras,
    x-pack unsigned-long); without them `float`/`long` stand in.
    """
    ulong = "unsigned_long" if unsigned_long else "long"
    vector = {"type": "dense_vector", "index": True, "similarity": "cosine"}
    if vector_index_options:
        vector["index_options"] = dict(vector_index_options)
    feature: list[dict[str, Any]]
    if rank_feature:
        feature = [
            _template("rank_feature", {"type": "rank_feature"}, match="*_fea"),
            _template("rank_features", {"type": "rank_features"}, match="*_feas"),
        ]
    else:
        feature = [
            _template("feature_values", {"type": "float"}, path_match="*_feas.*"),
            _template("rank_feature", {"type": "float"}, match="*_fea"),
            _template("rank_features", {"type": "object", "dynamic": True}, match="*_feas"),
        ]
    return [
        *feature,
        _template("vector", vector, match_pattern="regex", match=r"^.*_(\d+)_vec$"),
        _template("int", {"type": "integer", "store": True}, match="*_int"),
        _template("ulong", {"type": ulong, "store": True}, match="*_ulong"),
        _template("long", {"type": "long", "store": True}, match="*_long"),
        _template("short", {"type": "short", "store": True}, match="*_short"),
        _template("numeric", {"type": "float", "store": True}, match="*_flt"),
        _template(
            "tks",
            {
                "type": "text",
                "similarity": TOKEN_SIMILARITY,
                "analyzer": "whitespace",
                "store": True,
            },
            match="*_tks",
        ),
        _template(
            "ltks", {"type": "text", "analyzer": "whitespace", "store": True}, match="*_ltks"
        ),
        _template(
            "kwd",
            {"type": "keyword", "similarity": "boolean", "store": True},
            match_pattern="regex",
            match=r"^(.*_(kwd|id|ids|uid|uids)|uid|id)$",
        ),
        _template(
            "dt",
            {"type": "date", "format": DATE_FORMAT, "store": True},
            match_pattern="regex",
            match=r"^.*(_dt|_time|_at)$",
        ),
        _template("nested", {"type": "nested"}, match="*_nst"),
        _template("object", {"type": "object", "dynamic": True}, match="*_obj"),
        _template(
            "string",
            {"type": "text", "index": False, "store": True},
            match_pattern="regex",
            match=r"^.*_(with_weight|list)$",
        ),
        _template("binary", {"type": "binary"}, match="*_bin"),
    ]


def index_body(
    *,
    shards: int = 1,
    replicas: int = 0,
    refresh_interval: str = "1000ms",
    rank_feature: bool = True,
    unsigned_long: bool = True,
    vector_size: int | None = None,
    vector_index_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Settings and mappings for one tenant index (`ragflow_<tenant>`)."""
    properties: dict[str, Any] = {
        "id": {"type": "keyword", "store": True},
        "kb_id": {"type": "keyword", "similarity": "boolean", "store": True},
        "doc_id": {"type": "keyword", "similarity": "boolean", "store": True},
        "lat_lon": {"type": "geo_point", "store": True},
    }
    if vector_size:
        properties[f"q_{vector_size}_vec"] = vector_field_mapping(vector_size, vector_index_options)
    return {
        "settings": {
            "index": {
                "number_of_shards": shards,
                "number_of_replicas": replicas,
                "refresh_interval": refresh_interval,
                "similarity": {TOKEN_SIMILARITY: {"type": "BM25", "k1": 0, "b": 0}},
            }
        },
        "mappings": {
            "date_detection": True,
            "dynamic_templates": dynamic_templates(
                rank_feature=rank_feature,
                unsigned_long=unsigned_long,
                vector_index_options=vector_index_options,
            ),
            "properties": properties,
        },
    }
