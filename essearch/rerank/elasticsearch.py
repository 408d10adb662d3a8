"""Elasticsearch's `text_similarity_reranker` retriever (an inference endpoint on the cluster).

Used only when the probe finds the inference API and server retrievers (licensed clusters); the
candidates' ids are re-scored by the server in one `_search`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from elasticsearch import ApiError, Elasticsearch

from essearch.index import schema
from essearch.rerank.base import Candidate, Reranker, RerankError


def text_similarity_reranker_body(
    query: str, ids: Sequence[str], *, inference_id: str, field: str = schema.TEXT_FIELD
) -> dict[str, Any]:
    """A `_search` body re-scoring the chunks `ids` with the endpoint `inference_id`."""
    return {
        "retriever": {
            "text_similarity_reranker": {
                "retriever": {"standard": {"query": {"ids": {"values": list(ids)}}}},
                "field": field,
                "inference_id": inference_id,
                "inference_text": query,
                "rank_window_size": len(ids),
            }
        },
        "size": len(ids),
        "_source": False,
    }


class ElasticsearchReranker(Reranker):
    """Re-scores on the cluster; needs an inference endpoint of task type `rerank`."""

    name = "elasticsearch"

    def __init__(self, client: Elasticsearch, index: str, *, inference_id: str) -> None:
        super().__init__(inference_id)
        self.client = client
        self.index = index
        self.inference_id = inference_id

    def _score(self, query: str, candidates: list[Candidate]) -> Sequence[float | None]:
        body = text_similarity_reranker_body(
            query, [c.id for c in candidates], inference_id=self.inference_id
        )
        try:
            response = self.client.search(index=self.index, body=body).body
        except ApiError as exc:
            raise RerankError(
                f"text_similarity_reranker on {self.index!r} failed: HTTP {exc.status_code}"
            ) from None
        by_id = {hit["_id"]: float(hit["_score"]) for hit in response["hits"]["hits"]}
        return [by_id.get(c.id) for c in candidates]
