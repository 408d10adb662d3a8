"""What every embedder behind an HTTP API shares: batches in flight, retries, one client.

OpenAI-compatible servers, Ollama and Hugging Face / TEI differ in their requests and their
errors, and in nothing else: each runs up to `concurrency` batches at once, retries transient
failures with backoff (`retry.py`), pauses every call of the embedder when one answer says
`Retry-After` (one `RetryGate`), and makes its HTTP client once, on first use, however many
batches start together. `RemoteEmbedder` is that part; a backend adds its request and its errors.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from essearch.embedders.base import Embedder
from essearch.embedders.prompts import resolve_prompts
from essearch.embedders.retry import RetryGate, acall_with_retries, call_with_retries
from essearch.settings import EmbedderSettings

T = TypeVar("T")


class RemoteEmbedder(Embedder):
    """An `Embedder` whose vectors come from a server (see the module docstring)."""

    def __init__(
        self,
        model: str,
        *,
        dims: int | None = None,
        normalize: bool = True,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        batch_size: int = 32,
        concurrency: int = 4,
        timeout: float = 60.0,
        max_retries: int = 5,
        retry_base_delay: float = 0.5,
    ) -> None:
        super().__init__(
            model,
            dims=dims,
            normalize=normalize,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            batch_size=batch_size,
        )
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.retry_base_delay = retry_base_delay
        self._gate = RetryGate()  # one Retry-After pauses all of this embedder's calls
        self._client_lock = threading.Lock()
        self._client: Any = None
        self._async_client: Any = None

    @staticmethod
    def remote_options(settings: EmbedderSettings, model: str | None) -> dict[str, Any]:
        """The constructor options every remote backend takes from settings (prompts resolved
        from the model's preset)."""
        query_prompt, document_prompt = resolve_prompts(
            model, settings.query_prompt, settings.document_prompt
        )
        return {
            "normalize": settings.normalize,
            "query_prompt": query_prompt,
            "document_prompt": document_prompt,
            "batch_size": settings.batch_size,
            "concurrency": settings.concurrency,
            "timeout": settings.timeout,
            "max_retries": settings.max_retries,
        }

    def _what(self) -> str:
        """What a message names: the API, the model and where it is served."""
        return f"{self.provider} embeddings ({self.model})"

    def _shared_client(self, make: Callable[[], Any]) -> Any:
        """The sync client, made once even when batches start together."""
        with self._client_lock:
            if self._client is None:
                self._client = make()
            return self._client

    def _shared_async_client(self, make: Callable[[], Any]) -> Any:
        """The async client (made on the event loop's thread, so no lock is needed)."""
        if self._async_client is None:
            self._async_client = make()
        return self._async_client

    def _with_retries(self, once: Callable[[], T]) -> T:
        return call_with_retries(
            once,
            max_retries=self.max_retries,
            what=self._what(),
            base_delay=self.retry_base_delay,
            gate=self._gate,
        )

    async def _awith_retries(self, once: Callable[[], Awaitable[T]]) -> T:
        return await acall_with_retries(
            once,
            max_retries=self.max_retries,
            what=self._what(),
            base_delay=self.retry_base_delay,
            gate=self._gate,
        )
