"""elasticsearch-haystack in bench_peers.py: BM25 and embedding retrievers, RRF DocumentJoiner."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from _worker import content, load, measure, parse_args, write
from elasticsearch import Elasticsearch
from haystack import Document
from haystack.components.joiners import DocumentJoiner
from haystack.document_stores.types import DuplicatePolicy
from haystack_integrations.components.retrievers.elasticsearch import (
    ElasticsearchBM25Retriever,
    ElasticsearchEmbeddingRetriever,
)
from haystack_integrations.document_stores.elasticsearch import ElasticsearchDocumentStore


def main() -> None:
    args = parse_args()
    # The store checks the connection with client.info() (GET /), which this node answers with
    # 405; nothing else needs it, so the benchmark answers it here to measure the rest.
    Elasticsearch.info = lambda self, **kwargs: {}  # type: ignore[method-assign]
    docs, queries = load(args.input)
    store = ElasticsearchDocumentStore(
        hosts=args.es_url, index=args.index, embedding_similarity_function="cosine"
    )
    store.write_documents(
        [Document(id=d["id"], content=content(d), embedding=d["vector"]) for d in docs],
        policy=DuplicatePolicy.OVERWRITE,
    )
    bm25 = ElasticsearchBM25Retriever(document_store=store)
    dense = ElasticsearchEmbeddingRetriever(document_store=store)
    joiner = DocumentJoiner(join_mode="reciprocal_rank_fusion")

    def scored(found: list[Document]) -> list[tuple[str, float]]:
        return [(d.id, float(d.score or 0.0)) for d in found]

    def bm25_search(text: str, vector: list[float], k: int) -> list[tuple[str, float]]:
        return scored(bm25.run(query=text, top_k=k)["documents"])

    def knn_search(text: str, vector: list[float], k: int) -> list[tuple[str, float]]:
        return scored(dense.run(query_embedding=vector, top_k=k)["documents"])

    def hybrid_search(text: str, vector: list[float], k: int) -> list[tuple[str, float]]:
        legs = [bm25.run(query=text, top_k=k)["documents"]]
        legs.append(dense.run(query_embedding=vector, top_k=k)["documents"])
        return scored(joiner.run(documents=legs, top_k=k)["documents"])

    result = {
        "bm25": measure("bm25", bm25_search, queries, args.k_latency),
        "knn": measure("knn", knn_search, queries, args.k_latency),
        "hybrid": measure(
            "hybrid", hybrid_search, queries, args.k_latency, how="(BM25 + embedding, RRF joiner)"
        ),
    }
    write(args.output, result, serve=args.serve)
    store.client.indices.delete(index=args.index, ignore_unavailable=True)


if __name__ == "__main__":
    main()
