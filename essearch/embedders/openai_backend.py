"""OpenAI and OpenAI-compatible servers (vLLM, TEI, DashScope, LiteLLM, Ollama's /v1) via the SDK.

The SDK's own retries are off; ours (`retry.py`) honour `Retry-After`. Batches are split by input
count (2,048 per request) and total tokens; an input over the 8,191-token limit is truncated with a
warning naming its position, never dropped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

from pydantic import SecretStr

from essearch.embedders.remote import RemoteEmbedder
from essearch.embedders.retry import (
    TransientError,
    mask_secret,
    parse_retry_after,
)
from essearch.errors import ConfigurationError, EmbeddingError
from essearch.settings import EmbedderSettings

log = logging.getLogger(__name__)

DEFAULT_OPENAI_MODEL = "text-embedding-3-small"
MAX_INPUTS_PER_REQUEST = 2048
MAX_INPUT_TOKENS = 8191
MAX_TOKENS_PER_REQUEST = 300_000
# Without tiktoken: tokens <= UTF-8 bytes for byte-level BPE, and real text averages 3-4.5 bytes
# per token, so bytes / 2 over-counts; truncation then starts early but never too late.
BYTES_PER_TOKEN_ESTIMATE = 2


class TokenCounter:
    """Counts and truncates tokens with tiktoken when installed, else a safe byte estimate."""

    def __init__(self, model: str) -> None:
        self.exact = False
        self._encoding: Any = None
        try:
            import tiktoken
        except ImportError:
            return
        try:
            try:
                self._encoding = tiktoken.encoding_for_model(model)
            except KeyError:
                self._encoding = tiktoken.get_encoding("cl100k_base")
        except Exception as exc:  # tiktoken downloads its tables once: offline, estimate instead
            log.debug("tiktoken unavailable (%s); estimating tokens from UTF-8 bytes", exc)
            return
        self.exact = True

    def count(self, text: str) -> int:
        if self._encoding is not None:
            return len(self._encoding.encode(text, disallowed_special=()))
        return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)

    def truncate(self, text: str, max_tokens: int) -> str:
        if self._encoding is not None:
            tokens = self._encoding.encode(text, disallowed_special=())
            text_out: str = self._encoding.decode(tokens[:max_tokens])
            return text_out
        data = text.encode("utf-8")[: max_tokens * BYTES_PER_TOKEN_ESTIMATE]
        return data.decode("utf-8", errors="ignore")


def _secret_value(key: SecretStr | str | None) -> str | None:
    return key.get_secret_value() if isinstance(key, SecretStr) else key


class OpenAIEmbedder(RemoteEmbedder):
    """`POST {base_url}/embeddings` through the official `openai` SDK (sync and async clients)."""

    provider = "openai"

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: SecretStr | str | None = None,
        base_url: str | None = None,
        organization: str | None = None,
        dimensions: int | None = None,
        normalize: bool = True,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        batch_size: int = 256,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        max_input_tokens: int = MAX_INPUT_TOKENS,
        retry_base_delay: float = 0.5,
    ) -> None:
        super().__init__(
            model or DEFAULT_OPENAI_MODEL,
            dims=dimensions,
            normalize=normalize,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            batch_size=min(batch_size, MAX_INPUTS_PER_REQUEST),
            concurrency=concurrency,
            timeout=timeout,
            max_retries=max_retries,
            retry_base_delay=retry_base_delay,
        )
        self._api_key = _secret_value(api_key)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.organization = organization
        self.dimensions = dimensions
        self.max_input_tokens = max_input_tokens
        self._tokens = TokenCounter(self.model)

    @classmethod
    def from_settings(cls, settings: EmbedderSettings, **_: Any) -> OpenAIEmbedder:
        model = settings.model or DEFAULT_OPENAI_MODEL
        return cls(
            model,
            api_key=settings.api_key,
            base_url=settings.base_url,
            organization=settings.organization,
            dimensions=settings.dimensions,
            **cls.remote_options(settings, model),
        )

    # -- clients -----------------------------------------------------------------------------
    def _client_kwargs(self) -> dict[str, Any]:
        import os

        key = self._api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if self.base_url is None:
                raise ConfigurationError(
                    "the openai embedder needs an API key: set ESSEARCH_EMBEDDER_API_KEY "
                    "(or base_url for an OpenAI-compatible server that needs none)"
                )
            key = "unused"  # OpenAI-compatible servers often accept any key
        return {
            "api_key": key,
            "base_url": self.base_url,
            "organization": self.organization,
            "timeout": self.timeout,
            "max_retries": 0,  # ours, with Retry-After, in retry.py
        }

    @property
    def client(self) -> Any:
        def make() -> Any:
            from openai import OpenAI

            return OpenAI(**self._client_kwargs())

        return self._shared_client(make)

    @property
    def async_client(self) -> Any:
        def make() -> Any:
            from openai import AsyncOpenAI

            return AsyncOpenAI(**self._client_kwargs())

        return self._shared_async_client(make)

    @property
    def where(self) -> str:
        return self.base_url or "api.openai.com"

    # -- batching within the API's limits ----------------------------------------------------
    def _batches(self, texts: list[str]) -> list[tuple[int, list[str]]]:
        batches: list[tuple[int, list[str]]] = []
        current: list[str] = []
        start, tokens = 0, 0
        for position, text in enumerate(texts):
            count = self._tokens.count(text)
            if count > self.max_input_tokens:
                text = self._tokens.truncate(text, self.max_input_tokens)
                log.warning(
                    "item %d: %s%d tokens is over the %d-token input limit of %s; truncated "
                    "(the end of this text is not embedded)",
                    position,
                    "" if self._tokens.exact else "~",
                    count,
                    self.max_input_tokens,
                    self.model,
                )
                count = self.max_input_tokens
            if current and (
                len(current) >= self.batch_size or tokens + count > MAX_TOKENS_PER_REQUEST
            ):
                batches.append((start, current))
                current, start, tokens = [], position, 0
            current.append(text)
            tokens += count
        if current:
            batches.append((start, current))
        return batches

    # -- calls -------------------------------------------------------------------------------
    def _request_kwargs(self, texts: list[str]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"input": texts, "model": self.model, "encoding_format": "float"}
        if self.dimensions is not None:
            kwargs["dimensions"] = self.dimensions
        return kwargs

    def _embed(self, texts: list[str]) -> list[list[float]]:
        def once() -> list[list[float]]:
            with self._translate_errors():
                response = self.client.embeddings.create(**self._request_kwargs(texts))
            return self._vectors(response, len(texts))

        return self._with_retries(once)

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        async def once() -> list[list[float]]:
            with self._translate_errors():
                response = await self.async_client.embeddings.create(**self._request_kwargs(texts))
            return self._vectors(response, len(texts))

        return await self._awith_retries(once)

    def _what(self) -> str:
        return f"openai embeddings ({self.model} at {self.where})"

    def _vectors(self, response: Any, expected: int) -> list[list[float]]:
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != expected:
            raise EmbeddingError(
                f"{self._what()} returned {len(data)} embeddings for {expected} inputs"
            )
        return [list(item.embedding) for item in data]

    def _translate_errors(self) -> _OpenAIErrors:
        return _OpenAIErrors(self)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        self.close()
        if self._async_client is not None:
            await self._async_client.close()
            self._async_client = None


class _OpenAIErrors:
    """Maps SDK exceptions: retryable ones to `TransientError`, the rest to `EmbeddingError`."""

    def __init__(self, embedder: OpenAIEmbedder) -> None:
        self.embedder = embedder

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            return
        import openai

        if not isinstance(exc, openai.OpenAIError):
            return
        raise translate_openai_error(exc, self.embedder) from None


def translate_openai_error(exc: Exception, embedder: OpenAIEmbedder) -> Exception:
    import openai

    scrub: Callable[[str], str] = _scrubber(embedder._api_key)
    where = embedder._what()
    if isinstance(exc, openai.APITimeoutError):
        return TransientError(f"timed out after {embedder.timeout}s")
    if isinstance(exc, openai.APIConnectionError):
        return TransientError(f"connection failed: {scrub(str(exc))}")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        message = scrub(_error_message(exc))
        if status in (401, 403):
            return EmbeddingError(
                f"{where}: HTTP {status}, the API key {mask_secret(embedder._api_key)} was "
                f"rejected ({message}); check ESSEARCH_EMBEDDER_API_KEY"
            )
        if status == 429 and getattr(exc, "code", None) == "insufficient_quota":
            return EmbeddingError(f"{where}: HTTP 429 insufficient quota ({message})")
        if status in (408, 409, 429) or status >= 500:
            return TransientError(
                f"HTTP {status}: {message}", retry_after=parse_retry_after(exc.response.headers)
            )
        if status == 404:
            return EmbeddingError(
                f"{where}: HTTP 404, model {embedder.model!r} not found ({message})"
            )
        return EmbeddingError(f"{where}: HTTP {status}: {message}")
    return EmbeddingError(f"{where}: {scrub(str(exc))}")


def _error_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return str(getattr(exc, "message", exc))


def _scrubber(secret: str | None) -> Callable[[str], str]:
    """Removes the key (and long fragments of it that servers echo back) from a message."""

    def scrub(text: str) -> str:
        if not secret or len(secret) < 8:
            return text
        text = text.replace(secret, mask_secret(secret))
        for size in (12, 8):
            for i in range(0, len(secret) - size + 1):
                fragment = secret[i : i + size]
                if fragment in text:
                    text = text.replace(fragment, "****")
        return text

    return scrub
