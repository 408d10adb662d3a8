"""Hugging Face: the Inference API / Inference Endpoints, and Text Embeddings Inference (TEI).

Both take `{"inputs": [...], "normalize": ..., "truncate": true, "prompt_name": ...}` and answer
one vector per input; only the address differs:

- no `base_url`: the serverless Inference API,
  `https://router.huggingface.co/hf-inference/models/<model>/pipeline/feature-extraction`;
- a `base_url` on huggingface.co / huggingface.cloud (an Inference Endpoint), or ending in
  `/pipeline/feature-extraction`: POSTed as it is;
- any other `base_url` is a TEI server: `POST <base_url>/embed`.

Errors are the servers' own: 413 (batch too large: the batch is split in halves, and the size that
worked is kept for later batches), 429 (`Retry-After` honoured), 503 (model loading: waits the
`estimated_time` it gives, then retries), 424/5xx and timeouts (retried with backoff). The token
(`ESSEARCH_EMBEDDER_API_KEY` or `HF_TOKEN`) is sent as a Bearer header and never appears in a
message, not even in part.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any
from urllib.parse import urlparse

from pydantic import SecretStr

from essearch.embedders.base import EmbedderInfo
from essearch.embedders.remote import RemoteEmbedder
from essearch.embedders.retry import TransientError, parse_retry_after
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.settings import EmbedderSettings

log = logging.getLogger(__name__)

SERVERLESS_URL = (
    "https://router.huggingface.co/hf-inference/models/{model}/pipeline/feature-extraction"
)
HF_HOSTS = ("huggingface.co", "huggingface.cloud")
#: Longest wait for a model that is loading (503 with `estimated_time`).
MAX_LOADING_WAIT = 60.0


class BatchTooLarge(Exception):
    """HTTP 413: the server takes fewer inputs (or bytes) per request."""


class HuggingFaceEmbedder(RemoteEmbedder):
    """Feature extraction on the Hugging Face Inference API / an Endpoint, or a TEI server."""

    provider = "huggingface"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        token: SecretStr | str | None = None,
        dimensions: int | None = None,
        normalize: bool = True,
        truncate: bool = True,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        query_prompt_name: str | None = None,
        document_prompt_name: str | None = None,
        batch_size: int = 32,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        retry_base_delay: float = 0.5,
    ) -> None:
        if not model:
            raise ConfigurationError(
                "the huggingface embedder needs a model name (ESSEARCH_EMBEDDER_MODEL), which "
                "the index records; for TEI, the model the server runs"
            )
        super().__init__(
            model,
            dims=dimensions,
            normalize=normalize,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            batch_size=batch_size,
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            retry_base_delay=retry_base_delay,
        )
        self.base_url = base_url.rstrip("/") if base_url else None
        self._token = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._token = self._token or os.environ.get("HF_TOKEN") or None
        self.truncate = truncate
        self.query_prompt_name = query_prompt_name
        self.document_prompt_name = document_prompt_name
        self._max_batch = batch_size  # lowered when the server answers 413

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, **_: Any) -> HuggingFaceEmbedder:
        return cls(
            settings.model or "",
            base_url=settings.base_url,
            token=settings.api_key,
            dimensions=settings.dimensions,
            query_prompt_name=settings.query_prompt_name,
            document_prompt_name=settings.document_prompt_name,
            **cls.remote_options(settings, settings.model),
        )

    # -- where and what ----------------------------------------------------------------------
    @property
    def api(self) -> str:
        """`tei` for a TEI server, `inference` for the Inference API or an Endpoint (a Hugging
        Face host, or any URL naming the feature-extraction pipeline, such as a proxy's)."""
        if self.base_url is None or self.base_url.endswith("/pipeline/feature-extraction"):
            return "inference"
        host = urlparse(self.base_url).hostname or ""
        return "inference" if host.endswith(HF_HOSTS) else "tei"

    @property
    def url(self) -> str:
        if self.base_url is None:
            return SERVERLESS_URL.format(model=self.model)
        if self.api == "tei" and not self.base_url.endswith("/embed"):
            return f"{self.base_url}/embed"
        return self.base_url

    @property
    def info(self) -> EmbedderInfo:
        """Prompt names change the vectors as prompts do, so the index records them too."""
        info = super().info
        names = {
            "query_prompt": self.query_prompt_name,
            "document_prompt": self.document_prompt_name,
        }
        changes = {k: f"{getattr(info, k) or ''}[prompt_name={v}]" for k, v in names.items() if v}
        return EmbedderInfo(**{**info.to_dict(), **changes}) if changes else info

    def _what(self) -> str:
        where = "TEI" if self.api == "tei" else "Hugging Face inference"
        return f"{where} embeddings ({self.model} at {self.url})"

    @property
    def client(self) -> Any:
        def make() -> Any:
            import httpx

            headers = {"Content-Type": "application/json"}
            if self._token:
                headers["Authorization"] = f"Bearer {self._token}"
            return httpx.Client(timeout=self.timeout, headers=headers)

        return self._shared_client(make)

    # -- calls -------------------------------------------------------------------------------
    def _body(self, texts: list[str], prompt_name: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "inputs": texts,
            "normalize": self.normalize,
            "truncate": self.truncate,
        }
        if prompt_name:
            body["prompt_name"] = prompt_name
        return body

    def embed_query(self, text: str) -> list[float]:
        prompted = self._prepare([text], self.query_prompt, what="query")
        vectors = self._embed_split(prompted, self.query_prompt_name)
        return self._check_vectors(vectors, 1, 0)[0]

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return self._embed_split(texts, self.document_prompt_name)

    def _embed_split(self, texts: list[str], prompt_name: str | None) -> list[list[float]]:
        """One request per at most `_max_batch` texts; a 413 halves the batch and tries again."""
        if len(texts) > self._max_batch:
            size = self._max_batch
            return [
                v
                for i in range(0, len(texts), size)
                for v in self._embed_split(texts[i : i + size], prompt_name)
            ]
        try:
            return self._with_retries(lambda: self._post(texts, prompt_name))
        except BatchTooLarge as exc:
            if len(texts) == 1:
                raise EmbeddingError(
                    f"{self._what()}: HTTP 413, one input is too large for the server ({exc})"
                ) from None
            half = max(1, len(texts) // 2)
            self._max_batch = min(self._max_batch, half)
            log.warning(
                "%s: HTTP 413 for %d inputs (%s); sending at most %d per request",
                self._what(),
                len(texts),
                exc,
                self._max_batch,
            )
            return self._embed_split(texts[:half], prompt_name) + self._embed_split(
                texts[half:], prompt_name
            )

    def _post(self, texts: list[str], prompt_name: str | None) -> list[list[float]]:
        import httpx

        try:
            response = self.client.post(self.url, json=self._body(texts, prompt_name))
        except httpx.TimeoutException:
            raise TransientError(f"timed out after {self.timeout}s") from None
        except httpx.TransportError as exc:
            raise TransientError(f"cannot connect to {self.url}: {self._scrub(str(exc))}") from None
        if response.status_code >= 400:
            raise self._error(response)
        try:
            data = response.json()
        except ValueError:
            raise EmbeddingError(f"{self._what()}: the answer is not JSON") from None
        return self._vectors(data, len(texts))

    def _vectors(self, data: Any, expected: int) -> list[list[float]]:
        if isinstance(data, dict) and "embeddings" in data:
            data = data["embeddings"]
        if not isinstance(data, list) or len(data) != expected:
            got = len(data) if isinstance(data, list) else type(data).__name__
            raise EmbeddingError(f"{self._what()} returned {got} embeddings for {expected} inputs")
        vectors: list[list[float]] = []
        for item in data:
            if item and isinstance(item[0], list):  # token vectors (a plain transformer): mean
                width = len(item[0])
                item = [sum(token[j] for token in item) / len(item) for j in range(width)]
            vectors.append([float(x) for x in item])
        return vectors

    def _error(self, response: Any) -> Exception:
        status = response.status_code
        message, estimated = self._message(response)
        where = self._what()
        if status == 413:
            return BatchTooLarge(message)
        if status in (401, 403):
            return EmbeddingError(
                f"{where}: HTTP {status}, the token was refused ({message}); check "
                "ESSEARCH_EMBEDDER_API_KEY or HF_TOKEN"
            )
        if status == 404:
            return EmbeddingError(f"{where}: HTTP 404, model or route not found ({message})")
        if status == 503 and estimated is not None:
            wait = min(MAX_LOADING_WAIT, max(1.0, estimated))
            return TransientError(f"HTTP 503, model loading ({message})", retry_after=wait)
        if status in (408, 424, 429) or status >= 500:
            return TransientError(
                f"HTTP {status}: {message}", retry_after=parse_retry_after(response.headers)
            )
        return EmbeddingError(f"{where}: HTTP {status}: {message}")

    def _message(self, response: Any) -> tuple[str, float | None]:
        try:
            body = response.json()
        except (ValueError, json.JSONDecodeError):
            return self._scrub(response.text[:300] or response.reason_phrase), None
        if isinstance(body, dict):
            estimated = body.get("estimated_time")
            text = str(body.get("error") or body.get("message") or body)
            return self._scrub(text[:300]), float(estimated) if estimated is not None else None
        return self._scrub(str(body)[:300]), None

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "****") if self._token else text

    def close(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None
