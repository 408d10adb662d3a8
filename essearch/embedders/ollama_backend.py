"""Ollama's `/api/embed` through the official `ollama` client (sync `Client`, `AsyncClient`)."""

from __future__ import annotations

import contextvars
import logging
from typing import Any

from essearch.embedders.remote import RemoteEmbedder
from essearch.embedders.retry import (
    TransientError,
    parse_retry_after,
)
from essearch.errors import EmbeddingError
from essearch.settings import EmbedderSettings

log = logging.getLogger(__name__)

DEFAULT_OLLAMA_MODEL = "nomic-embed-text"
DEFAULT_OLLAMA_HOST = "http://localhost:11434"

# The ollama client drops response headers from its errors; a response hook keeps Retry-After.
_retry_after: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "ollama_retry_after", default=None
)


def _remember_retry_after(response: Any) -> None:
    _retry_after.set(parse_retry_after(response.headers) if response.status_code >= 400 else None)


async def _aremember_retry_after(response: Any) -> None:
    _remember_retry_after(response)


class OllamaEmbedder(RemoteEmbedder):
    """An Ollama model (`ollama pull <model>` first); `truncate` and `keep_alive` are passed on."""

    provider = "ollama"

    def __init__(
        self,
        model: str | None = None,
        *,
        host: str | None = None,
        truncate: bool | None = True,
        keep_alive: str | float | None = None,
        dimensions: int | None = None,
        normalize: bool = True,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        batch_size: int = 64,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        retry_base_delay: float = 0.5,
    ) -> None:
        super().__init__(
            model or DEFAULT_OLLAMA_MODEL,
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
        self.host = (host or DEFAULT_OLLAMA_HOST).rstrip("/")
        self.truncate = truncate
        self.keep_alive = keep_alive
        self.dimensions = dimensions

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, **_: Any) -> OllamaEmbedder:
        model = settings.model or DEFAULT_OLLAMA_MODEL
        return cls(
            model,
            host=settings.base_url,
            dimensions=settings.dimensions,
            **cls.remote_options(settings, model),
        )

    @property
    def client(self) -> Any:
        def make() -> Any:
            import ollama

            hooks = {"response": [_remember_retry_after]}
            return ollama.Client(host=self.host, timeout=self.timeout, event_hooks=hooks)

        return self._shared_client(make)

    @property
    def async_client(self) -> Any:
        def make() -> Any:
            import ollama

            hooks = {"response": [_aremember_retry_after]}
            return ollama.AsyncClient(host=self.host, timeout=self.timeout, event_hooks=hooks)

        return self._shared_async_client(make)

    def _request_kwargs(self, texts: list[str]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "input": texts, "truncate": self.truncate}
        if self.keep_alive is not None:
            kwargs["keep_alive"] = self.keep_alive
        if self.dimensions is not None:
            kwargs["dimensions"] = self.dimensions
        return kwargs

    def _what(self) -> str:
        return f"ollama embed ({self.model} at {self.host})"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        def once() -> list[list[float]]:
            try:
                response = self.client.embed(**self._request_kwargs(texts))
            except Exception as exc:
                raise self._translate(exc) from None
            return [list(v) for v in response.embeddings]

        return self._with_retries(once)

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        async def once() -> list[list[float]]:
            try:
                response = await self.async_client.embed(**self._request_kwargs(texts))
            except Exception as exc:
                raise self._translate(exc) from None
            return [list(v) for v in response.embeddings]

        return await self._awith_retries(once)

    def _translate(self, exc: Exception) -> Exception:
        import httpx
        import ollama

        if isinstance(exc, ollama.ResponseError):
            status, message = exc.status_code, str(exc.error)
            if status == 404 or "not found" in message.lower():
                return EmbeddingError(
                    f"{self._what()}: model {self.model!r} is not available on this Ollama "
                    f"server ({message}); pull it with: ollama pull {self.model}"
                )
            if status in (401, 403):
                return EmbeddingError(
                    f"{self._what()}: HTTP {status}, access refused (check OLLAMA_API_KEY)"
                )
            if status in (408, 429) or status >= 500:
                return TransientError(f"HTTP {status}: {message}", retry_after=_retry_after.get())
            return EmbeddingError(f"{self._what()}: HTTP {status}: {message}")
        if isinstance(exc, httpx.TimeoutException):
            return TransientError(f"timed out after {self.timeout}s")
        if isinstance(exc, (ConnectionError, httpx.TransportError)):
            return TransientError(
                f"cannot connect to Ollama at {self.host} (is `ollama serve` running?)"
            )
        if isinstance(exc, EmbeddingError):
            return exc
        return EmbeddingError(f"{self._what()}: {exc}")

    def close(self) -> None:
        if self._client is not None:
            self._client._client.close()
            self._client = None

    async def aclose(self) -> None:
        self.close()
        if self._async_client is not None:
            await self._async_client._client.aclose()
            self._async_client = None
