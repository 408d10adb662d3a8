"""Rerank servers spoken over HTTP: TEI's `/rerank` and the Cohere/Jina-style `/v1/rerank`.

Both take a query and texts and answer `(index, score)` pairs, possibly reordered or cut to
`top_n`; the pairs are put back into the candidates' order here. 429/5xx/timeouts are retried with
the embedders' backoff policy (honouring `Retry-After`); anything else is a `RerankError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from essearch.embedders.retry import TransientError, call_with_retries, parse_retry_after
from essearch.errors import EssearchError
from essearch.rerank.base import Candidate, Reranker, RerankError

TRANSIENT_STATUSES = {408, 429, 500, 502, 503, 504}


class HTTPReranker(Reranker):
    """Shared request/response handling; subclasses give the path, body and score parsing."""

    path = "/rerank"

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        super().__init__(model)
        self.base_url = base_url.rstrip("/")
        self.max_retries = max_retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(timeout=timeout, headers=headers)

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        raise NotImplementedError

    def _pairs(self, payload: Any) -> list[tuple[int, float]]:
        raise NotImplementedError

    def _post(self, body: dict[str, Any]) -> Any:
        url = self.base_url + self.path
        try:
            response = self._client.post(url, json=body)
        except httpx.TimeoutException as exc:
            raise TransientError(f"{url} timed out ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"{url} unreachable ({type(exc).__name__})") from None
        if response.status_code in TRANSIENT_STATUSES:
            raise TransientError(
                f"{url} answered HTTP {response.status_code}",
                retry_after=parse_retry_after(response.headers),
            )
        if response.status_code >= 400:
            raise RerankError(
                f"{self.name} reranker at {url} answered HTTP {response.status_code}: "
                f"{response.text[:300]}"
            )
        try:
            return response.json()
        except ValueError:
            raise RerankError(f"{self.name} reranker at {url} did not answer JSON") from None

    def _score(self, query: str, candidates: list[Candidate]) -> Sequence[float | None]:
        body = self._body(query, [c.text for c in candidates])
        try:
            payload = call_with_retries(
                lambda: self._post(body), max_retries=self.max_retries, what=f"{self.name} rerank"
            )
        except RerankError:
            raise
        except EssearchError as exc:  # the retry policy gave up
            raise RerankError(str(exc)) from None
        scores: list[float | None] = [None] * len(candidates)
        try:
            for index, score in self._pairs(payload):
                if 0 <= index < len(candidates):
                    scores[index] = score
        except (KeyError, TypeError, ValueError) as exc:
            raise RerankError(f"{self.name} reranker answered an unexpected shape: {exc}") from None
        return scores

    def close(self) -> None:
        self._client.close()


class TEIReranker(HTTPReranker):
    """Hugging Face Text Embeddings Inference serving a reranker (e.g. BAAI/bge-reranker-*)."""

    name = "tei"
    path = "/rerank"

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        return {"query": query, "texts": texts, "truncate": True, "raw_scores": False}

    def _pairs(self, payload: Any) -> list[tuple[int, float]]:
        return [(int(item["index"]), float(item["score"])) for item in payload]


class CohereReranker(HTTPReranker):
    """The Cohere/Jina `/v1/rerank` shape that Xinference, vLLM and hosted APIs also serve."""

    name = "cohere"
    path = "/v1/rerank"

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"query": query, "documents": texts, "top_n": len(texts)}
        if self.model:
            body["model"] = self.model
        return body

    def _pairs(self, payload: Any) -> list[tuple[int, float]]:
        return [(int(item["index"]), float(item["relevance_score"])) for item in payload["results"]]
