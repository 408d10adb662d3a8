"""The rerank stage: reorder the top candidates of a search by a cross-encoder's relevance score.

Backends: TEI `/rerank`, Cohere/Jina-compatible `/v1/rerank` (Xinference, vLLM, hosted APIs), a
local sentence-transformers `CrossEncoder`, and Elasticsearch's `text_similarity_reranker`
retriever where the cluster has it. `create_reranker(settings.rerank)` picks one by name.
"""

from __future__ import annotations

from essearch.rerank.base import Candidate, Reranker, RerankError
from essearch.rerank.registry import create_reranker

__all__ = ["Candidate", "RerankError", "Reranker", "create_reranker"]
