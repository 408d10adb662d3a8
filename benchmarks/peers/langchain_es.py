"""langchain-elasticsearch in bench_peers.py: ElasticsearchStore with its own strategies."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from _worker import content, load, measure, parse_args, rank_scores, write
from elasticsearch import Elasticsearch
from langchain_core.embeddings import Embeddings
from langchain_elasticsearch import BM25Strategy, DenseVectorStrategy, ElasticsearchStore


class Lookup(Embeddings):
    """The benchmark's precomputed query vectors (embedding excluded from the timings)."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table[text]


def main() -> None:
    args = parse_args()
    docs, queries = load(args.input)
    client = Elasticsearch(args.es_url, request_timeout=120)
    embedding = Lookup({q["text"]: q["vector"] for q in queries})

    def store(strategy: Any) -> ElasticsearchStore:
        return ElasticsearchStore(
            args.index,
            client=client,
            embedding=embedding,
            strategy=strategy,
            num_dimensions=len(queries[0]["vector"]),  # else it embeds "get num dimensions"
        )

    writer = store(DenseVectorStrategy())
    writer.add_embeddings(
        [(content(d), d["vector"]) for d in docs],
        metadatas=[{"doc_id": d["id"]} for d in docs],
        ids=[d["id"] for d in docs],
    )

    def searcher(strategy: Any, fetch: bool = True) -> Any:
        s = store(strategy)

        def search(text: str, vector: list[float], k: int) -> list[tuple[str, float]]:
            kwargs = {"fetch_k": max(10 * k, 100)} if fetch else {}
            found = s.similarity_search(text, k=k, **kwargs)
            return rank_scores([d.metadata["doc_id"] for d in found])

        return search

    def retriever_searcher(strategy: Any) -> Any:
        """The same store behind LangChain's own retriever (`as_retriever().invoke`): the path
        essearch is measured on, callbacks and all."""
        s = store(strategy)
        retrievers: dict[int, Any] = {}

        def search(text: str, vector: list[float], k: int) -> list[tuple[str, float]]:
            if k not in retrievers:
                kwargs = {"k": k, "fetch_k": max(10 * k, 100)}
                retrievers[k] = s.as_retriever(search_kwargs=kwargs)
            found = retrievers[k].invoke(text)
            return rank_scores([d.metadata["doc_id"] for d in found])

        return search

    result = {
        "bm25": measure("bm25", searcher(BM25Strategy(), fetch=False), queries, args.k_latency),
        "knn": measure("knn", searcher(DenseVectorStrategy()), queries, args.k_latency),
        "hybrid": measure(
            "hybrid",
            searcher(DenseVectorStrategy(hybrid=True)),
            queries,
            args.k_latency,
            how="(default: rrf retriever)",
        ),
        "hybrid-sum": measure(
            "hybrid",
            searcher(DenseVectorStrategy(hybrid=True, rrf=False)),
            queries,
            args.k_latency,
            how="(rrf=False: knn + match summed)",
        ),
        "hybrid-sum-retriever": measure(
            "hybrid",
            retriever_searcher(DenseVectorStrategy(hybrid=True, rrf=False)),
            queries,
            args.k_latency,
            how="(the same, through as_retriever().invoke)",
        ),
    }
    write(args.output, result, serve=args.serve)
    client.indices.delete(index=args.index, ignore_unavailable=True)


if __name__ == "__main__":
    main()
