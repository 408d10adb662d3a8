"""LlamaIndex retriever on the real node: NodeWithScore, sync and native async, filters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core.schema import NodeWithScore, QueryBundle

from essearch.integrations.llama_index import EssearchLlamaRetriever

CORPUS = [
    {
        "id": "cats",
        "text": "Cats are small felines that purr and chase mice.",
        "metadata": {"k": "a"},
    },
    {
        "id": "dogs",
        "text": "Dogs are loyal companions that bark at strangers.",
        "metadata": {"k": "a"},
    },
    {"id": "ocean", "text": "The Pacific is the deepest ocean on Earth.", "metadata": {"k": "b"}},
]


@pytest.fixture(scope="module")
def settings(es_client: Any, es_url: str, local_embedder: Any) -> Iterator[Any]:
    from conftest import cleanup_indices

    from essearch.ingest import IngestOptions, ingest
    from essearch.settings import Settings

    name = f"t-li-{uuid.uuid4().hex[:8]}"
    settings = Settings(es={"url": es_url}, index={"name": name, "replicas": 0})
    report = ingest(
        CORPUS, settings=settings, embedder=local_embedder, options=IngestOptions(dead_letter=None)
    )
    assert report.ok
    yield settings
    cleanup_indices(es_client, name)


def test_retrieve_returns_scored_nodes(settings: Any, local_embedder: Any) -> None:
    retriever = EssearchLlamaRetriever(settings, embedder=local_embedder, similarity_top_k=2)
    nodes = retriever.retrieve("cats that purr")
    assert all(isinstance(n, NodeWithScore) for n in nodes) and len(nodes) == 2
    top = nodes[0]
    assert top.node.metadata["doc_id"] == "cats" and top.score is not None
    assert top.node.metadata["essearch"]["legs"]["bm25"]["rank"] == 1
    # essearch's bookkeeping stays out of what the LLM reads
    assert "essearch" not in top.node.get_content(metadata_mode="llm")
    filtered = EssearchLlamaRetriever(
        settings, embedder=local_embedder, filter={"metadata.k": "b"}, similarity_top_k=3
    ).retrieve("cats that purr")
    assert [n.node.metadata["doc_id"] for n in filtered] == ["ocean"]
    retriever.close()


def test_aretrieve_runs_inside_a_running_loop(settings: Any, local_embedder: Any) -> None:
    """No nest_asyncio: `aretrieve` works from inside an application's own event loop."""
    retriever = EssearchLlamaRetriever(
        settings, embedder=local_embedder, mode="knn", similarity_top_k=1
    )
    expected = [n.node.node_id for n in retriever.retrieve(QueryBundle("the deepest sea"))]

    async def app() -> list[str]:
        nodes = await retriever.aretrieve("the deepest sea")
        await retriever.aclose()
        return [n.node.node_id for n in nodes]

    assert asyncio.run(app()) == expected
    retriever.close()
