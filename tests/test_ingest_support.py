"""Helpers shared by the ingest tests (no tests here): create the index the pipeline writes to."""

from __future__ import annotations

from typing import Any

from elasticsearch import Elasticsearch

from essearch.embedders.base import EmbedderInfo
from essearch.index import IndexManager
from essearch.settings import Settings


def create_index(client: Elasticsearch, settings: Settings, info: EmbedderInfo) -> str:
    """The index behind `settings.index.name` and its write alias, recording `info`."""
    manager = IndexManager(client, settings, info)
    manager.init()
    index = manager.current_index()
    assert index is not None
    return index


def count(client: Elasticsearch, settings: Settings, **term: Any) -> int:
    client.indices.refresh(index=settings.index.name)
    query = {"term": term} if term else {"match_all": {}}
    return client.count(index=settings.index.name, query=query)["count"]
