"""A RAGFlow-style document store on Elasticsearch (RAGFlow's `DocStoreConnection` contract).

    from essearch.ragflow import ESDocStore
    store = ESDocStore(es_client)            # or ESDocStore(settings=load_settings())

`ESConnection` is the same class under RAGFlow's own connector name; `ragflow_connection_class()`
returns a subclass that also inherits RAGFlow's ABC when RAGFlow is importable. See docs/ragflow.md.
"""

from __future__ import annotations

from typing import Any

from essearch.ragflow.expressions import (
    FusionExpr,
    MatchDenseExpr,
    MatchExpr,
    MatchSparseExpr,
    MatchTensorExpr,
    MatchTextExpr,
    OrderByExpr,
    SparseVector,
    expression_kind,
)
from essearch.ragflow.store import ESDocStore

ESConnection = ESDocStore
DocStoreConnection = ESDocStore


def ragflow_connection_class() -> type:
    """`ESDocStore` registered as a subclass of RAGFlow's `DocStoreConnection` ABC when RAGFlow
    is installed (new and old module paths), else `ESDocStore` itself."""
    for module in ("common.doc_store.doc_store_base", "rag.utils.doc_store_conn"):
        try:
            base: Any = __import__(module, fromlist=["DocStoreConnection"]).DocStoreConnection
        except (ImportError, AttributeError):
            continue
        cls: Any = type("EssearchDocStore", (ESDocStore, base), {})
        cls.__abstractmethods__ = frozenset()  # RAGFlow-version extras we don't implement
        return cls
    return ESDocStore


__all__ = [
    "DocStoreConnection",
    "ESConnection",
    "ESDocStore",
    "FusionExpr",
    "MatchDenseExpr",
    "MatchExpr",
    "MatchSparseExpr",
    "MatchTensorExpr",
    "MatchTextExpr",
    "OrderByExpr",
    "SparseVector",
    "expression_kind",
    "ragflow_connection_class",
]
