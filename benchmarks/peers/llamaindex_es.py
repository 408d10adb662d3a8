"""llama-index's Elasticsearch vector store in bench_peers.py, with its own strategies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _worker import content, load, measure, parse_args, write
from elasticsearch import AsyncElasticsearch
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import VectorStoreQuery, VectorStoreQueryMode
from llama_index.vector_stores.elasticsearch import (
    AsyncBM25Strategy,
    AsyncDenseVectorStrategy,
    ElasticsearchStore,
)


def main() -> None:
    args = parse_args()
    docs, queries = load(args.input)

    # `es_url=` calls GET / (client.info()), which this node answers with 405; a client passed in
    # skips that check, as a user of such a cluster would do.
    client = AsyncElasticsearch(args.es_url, request_timeout=120)

    def store(strategy: Any) -> ElasticsearchStore:
        return ElasticsearchStore(
            index_name=args.index, es_client=client, retrieval_strategy=strategy
        )

    writer = store(AsyncDenseVectorStrategy())
    nodes = [
        TextNode(id_=d["id"], text=content(d), embedding=d["vector"], metadata={"doc_id": d["id"]})
        for d in docs
    ]
    for start in range(0, len(nodes), 500):
        writer.add(nodes[start : start + 500])

    def searcher(strategy: Any, mode: VectorStoreQueryMode) -> Any:
        s = store(strategy)

        def search(text: str, vector: list[float], k: int) -> list[tuple[str, float]]:
            found = s.query(
                VectorStoreQuery(
                    query_embedding=vector, query_str=text, similarity_top_k=k, mode=mode
                )
            )
            scores = found.similarities or [1.0 / r for r in range(1, len(found.nodes or []) + 1)]
            return [
                (n.metadata.get("doc_id", n.node_id), float(score))
                for n, score in zip(found.nodes or [], scores, strict=False)
            ]

        return search

    result = {
        "bm25": measure(
            "bm25",
            searcher(AsyncBM25Strategy(), VectorStoreQueryMode.TEXT_SEARCH),
            queries,
            args.k_latency,
        ),
        "knn": measure(
            "knn",
            searcher(AsyncDenseVectorStrategy(), VectorStoreQueryMode.DEFAULT),
            queries,
            args.k_latency,
        ),
        "hybrid": measure(
            "hybrid",
            searcher(AsyncDenseVectorStrategy(hybrid=True), VectorStoreQueryMode.HYBRID),
            queries,
            args.k_latency,
            how="(default: rrf retriever)",
        ),
        "hybrid-sum": measure(
            "hybrid",
            searcher(AsyncDenseVectorStrategy(hybrid=True, rrf=False), VectorStoreQueryMode.HYBRID),
            queries,
            args.k_latency,
            how="(rrf=False: knn + match summed)",
        ),
    }
    write(args.output, result, serve=args.serve)
    from elasticsearch import Elasticsearch

    Elasticsearch(args.es_url).indices.delete(index=args.index, ignore_unavailable=True)


if __name__ == "__main__":
    main()
