"""Embeddings from an inference endpoint inside the cluster (`_inference/text_embedding/<id>`).

Needs the inference API (x-pack inference module and an Enterprise/trial licence); on a cluster
without it every entry point raises one clear `CapabilityError`. `openai_endpoint_body` builds the
request that creates such an endpoint with the `openai` service, whose `url` may point at Ollama's
or any OpenAI-compatible `/v1/embeddings`.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

from pydantic import SecretStr

from essearch.embedders.base import Embedder
from essearch.embedders.retry import (
    RetryGate,
    TransientError,
    acall_with_retries,
    call_with_retries,
)
from essearch.errors import (
    CapabilityError,
    ConfigurationError,
    EmbeddingError,
    LicenseError,
    es_error_reason,
)
from essearch.logs import MASK
from essearch.settings import EmbedderSettings, Settings

TASK_TYPE = "text_embedding"


def inference_unavailable_message(capabilities: Any) -> str:
    """Why `_inference` cannot be used on this cluster, and what to do instead."""
    if not capabilities.inference_module:
        reason = "it has no inference module (x-pack inference is not installed)"
    else:
        reason = (
            f"its licence is {capabilities.license_type!r} ({capabilities.license_status}); "
            "the inference API needs an Enterprise or trial licence"
        )
    return (
        f"the Elasticsearch inference API is not available on this cluster "
        f"(version {capabilities.version}): {reason}. Use ESSEARCH_EMBEDDER_PROVIDER=local, "
        "openai or ollama to embed on the client side instead."
    )


def ensure_inference_available(client: Any) -> None:
    """Raise a clear CapabilityError unless the cluster has a usable inference API."""
    from essearch.es import probe

    capabilities = probe(client)
    if not capabilities.inference:
        raise CapabilityError(inference_unavailable_message(capabilities))


def openai_endpoint_body(
    *,
    api_key: SecretStr | str,
    model_id: str,
    url: str | None = None,
    dimensions: int | None = None,
    organization_id: str | None = None,
    similarity: str | None = None,
    max_input_tokens: int | None = None,
    chunking_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Body of `PUT _inference/text_embedding/<id>` for the `openai` service.

    `url` defaults (server-side) to OpenAI's `/v1/embeddings`; Ollama's is
    `http://<host>:11434/v1/embeddings` (any `api_key`, e.g. "ignored", works there).
    """
    if not model_id:
        raise ConfigurationError("model_id is required for an openai inference endpoint")
    key = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    if not key:
        raise ConfigurationError(
            "api_key is required by the openai service (any value for servers that ignore it)"
        )
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"url {url!r} must start with http:// or https://")
    service_settings: dict[str, Any] = {"api_key": key, "model_id": model_id}
    optional = {
        "url": url,
        "dimensions": dimensions,
        "organization_id": organization_id,
        "similarity": similarity,
        "max_input_tokens": max_input_tokens,
    }
    service_settings.update({k: v for k, v in optional.items() if v is not None})
    body: dict[str, Any] = {"service": "openai", "service_settings": service_settings}
    if chunking_settings:
        body["chunking_settings"] = chunking_settings
    return body


def masked_endpoint_body(body: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to print or log: the api_key replaced by asterisks."""
    shown = copy.deepcopy(body)
    if "api_key" in shown.get("service_settings", {}):
        shown["service_settings"]["api_key"] = MASK
    return shown


def create_inference_endpoint(
    client: Any, inference_id: str, body: dict[str, Any], *, task_type: str = TASK_TYPE
) -> dict[str, Any]:
    """PUT the endpoint (after the capability check); returns the cluster's answer, key-free."""
    from elasticsearch import ApiError

    ensure_inference_available(client)
    try:
        response = client.inference.put(
            task_type=task_type, inference_id=inference_id, inference_config=body
        )
    except ApiError as exc:
        raise EmbeddingError(
            f"creating inference endpoint {inference_id!r} failed: HTTP {exc.status_code} "
            f"{es_error_reason(exc)}"
        ) from None
    return dict(response.body)


class ElasticsearchEmbedder(Embedder):
    """Calls `POST _inference/text_embedding/<inference_id>` on the cluster."""

    provider = "elasticsearch"

    def __init__(
        self,
        inference_id: str,
        *,
        client: Any = None,
        async_client: Any = None,
        settings: Settings | None = None,
        dims: int | None = None,
        normalize: bool = True,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        batch_size: int = 64,
        concurrency: int = 4,
        max_retries: int = 5,
        check: bool = True,
    ) -> None:
        if not inference_id:
            raise ConfigurationError(
                "the elasticsearch embedder needs an inference endpoint id: "
                "set ESSEARCH_EMBEDDER_INFERENCE_ID"
            )
        super().__init__(
            inference_id,
            dims=dims,
            normalize=normalize,
            query_prompt=query_prompt,
            document_prompt=document_prompt,
            batch_size=batch_size,
        )
        self.inference_id = inference_id
        self.concurrency = concurrency
        self._gate = RetryGate()  # one Retry-After pauses all of this embedder's calls
        self._client_lock = threading.Lock()
        self.max_retries = max_retries
        self._settings = settings
        self._client = client
        self._async_client = async_client
        self._checked = False
        if check:
            self._ensure_available()

    @classmethod
    def from_settings(
        cls,
        settings: EmbedderSettings,
        *,
        client: Any = None,
        full_settings: Settings | None = None,
        **_: Any,
    ) -> ElasticsearchEmbedder:
        return cls(
            settings.inference_id or settings.model or "",
            client=client,
            settings=full_settings,
            dims=settings.dimensions,
            normalize=settings.normalize,
            query_prompt=settings.query_prompt or None,
            document_prompt=settings.document_prompt or None,
            batch_size=settings.batch_size,
            concurrency=settings.concurrency,
            max_retries=settings.max_retries,
        )

    @property
    def client(self) -> Any:
        with self._client_lock:  # one client, even when batches start together
            if self._client is None:
                from essearch.es import make_client
                from essearch.settings import load_settings

                self._client = make_client(self._settings or load_settings())
            return self._client

    @property
    def async_client(self) -> Any:
        if self._async_client is None:
            from essearch.es import make_async_client
            from essearch.settings import load_settings

            self._async_client = make_async_client(self._settings or load_settings())
        return self._async_client

    def _ensure_available(self) -> None:
        if not self._checked:
            ensure_inference_available(self.client)
            self._checked = True

    def _what(self) -> str:
        return f"elasticsearch inference endpoint {self.inference_id!r}"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        self._ensure_available()

        def once() -> list[list[float]]:
            try:
                response = self.client.inference.text_embedding(
                    inference_id=self.inference_id, input=texts
                )
            except Exception as exc:
                raise self._translate(exc) from None
            return self._vectors(response.body)

        return call_with_retries(
            once, max_retries=self.max_retries, what=self._what(), gate=self._gate
        )

    async def _aembed(self, texts: list[str]) -> list[list[float]]:
        if not self._checked:
            await self._aensure_available()

        async def once() -> list[list[float]]:
            try:
                response = await self.async_client.inference.text_embedding(
                    inference_id=self.inference_id, input=texts
                )
            except Exception as exc:
                raise self._translate(exc) from None
            return self._vectors(response.body)

        return await acall_with_retries(
            once, max_retries=self.max_retries, what=self._what(), gate=self._gate
        )

    async def _aensure_available(self) -> None:
        from essearch.es import probe_async

        capabilities = await probe_async(self.async_client)
        if not capabilities.inference:
            raise CapabilityError(inference_unavailable_message(capabilities))
        self._checked = True

    def _vectors(self, body: dict[str, Any]) -> list[list[float]]:
        items = body.get(TASK_TYPE)
        if not isinstance(items, list):
            raise EmbeddingError(f"{self._what()} answered without a {TASK_TYPE!r} list")
        return [list(item.get("embedding", [])) for item in items]

    def _translate(self, exc: Exception) -> Exception:
        from elastic_transport import ConnectionError as TransportConnectionError
        from elastic_transport import ConnectionTimeout
        from elasticsearch import ApiError

        if isinstance(exc, ApiError):
            status, reason = exc.status_code, es_error_reason(exc)
            if status == 404:
                return EmbeddingError(
                    f"{self._what()} does not exist ({reason}); create it with "
                    f"`essearch embed-endpoint create {self.inference_id} --model ...`"
                )
            if status == 403 and "licen" in reason.lower():
                return LicenseError(f"{self._what()}: {reason}")
            if status in (408, 429) or status >= 500:
                return TransientError(f"HTTP {status}: {reason}")
            return EmbeddingError(f"{self._what()}: HTTP {status}: {reason}")
        if isinstance(exc, (ConnectionTimeout, TransportConnectionError)):
            return TransientError(str(exc))
        return EmbeddingError(f"{self._what()}: {exc}")
