"""Which Elasticsearch version brought each feature essearch renders into a request body.

Plain data, without the client: index definitions are checked against it offline (`mappings
list`, `mappings show --offline`), and the capability probe compares a cluster's version with it.
"""

from __future__ import annotations

#: `dense_vector` `index_options.type`s and the version that introduced each.
INDEX_TYPE_SINCE: dict[str, tuple[int, int, int]] = {
    "hnsw": (8, 0, 0),
    "int8_hnsw": (8, 12, 0),
    "flat": (8, 13, 0),
    "int8_flat": (8, 13, 0),
    "int4_hnsw": (8, 15, 0),
    "int4_flat": (8, 15, 0),
    "bbq_hnsw": (8, 16, 0),
    "bbq_flat": (8, 16, 0),
}
