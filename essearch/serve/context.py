"""What every request shares: the cluster clients, the embedder and one search client per alias.

The async client serves searches; ingest and index status are synchronous library code, so they
run in worker threads with a synchronous client (made on first use). The embedder is loaded in a
thread at startup (`start`), so the event loop never waits for a model.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

from essearch.embedders.base import Embedder, EmbedderInfo
from essearch.es.capabilities import Capabilities, probe_async
from essearch.retrieval.aio import AsyncSearchClient, _async_client
from essearch.settings import Settings

log = logging.getLogger("essearch.serve")


class ServeContext:
    """Long-lived services of one server process."""

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        client: AsyncElasticsearch | None = None,
    ) -> None:
        self.settings = settings
        self._owns_embedder = embedder is None
        self._embedder = embedder
        self._owns_client = client is None
        self.client = client if client is not None else _async_client(settings)
        self._sync_client: Elasticsearch | None = None
        self.capabilities: Capabilities | None = None
        self.embedder_info: EmbedderInfo | None = None
        self.model_error: str | None = None
        self._searchers: dict[str, AsyncSearchClient] = {}
        self.ready = asyncio.Event()
        self._warmup: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Begin warming up in the background: /healthz answers at once, /readyz when warm."""
        self.ready = asyncio.Event()
        self._warmup = asyncio.create_task(self._warm_up())

    async def wait_ready(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self.ready.wait(), timeout)

    async def _warm_up(self) -> None:
        """Load the model (in a thread) and probe the cluster; failures are reported by /readyz."""
        try:
            self.embedder_info = await asyncio.to_thread(self._load_embedder)
        except Exception as exc:  # reported by /readyz, not fatal: BM25 still works
            self.model_error = f"{type(exc).__name__}: {exc}"
            log.error("embedding model not loaded: %s", self.model_error)
        try:
            self.capabilities = await probe_async(self.client)
        except Exception as exc:  # the cluster may come up later; /readyz says so
            log.warning("cluster not reachable at startup: %s", exc)
        self.ready.set()

    def _load_embedder(self) -> EmbedderInfo:
        if self._embedder is None:
            from essearch.embedders import create_embedder

            self._embedder = create_embedder(self.settings.embedder)
        return self._embedder.info  # dims probe = one forward pass: the model is warm after it

    async def close(self) -> None:
        if self._warmup is not None and not self._warmup.done():
            self._warmup.cancel()
        if self._owns_client:
            await self.client.close()
        if self._sync_client is not None:
            self._sync_client.close()
        if self._owns_embedder and self._embedder is not None:
            await self._embedder.aclose()

    # -- services ---------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            raise RuntimeError("the embedding model is not loaded (see /readyz)")
        return self._embedder

    @property
    def sync_client(self) -> Elasticsearch:
        """For the synchronous library parts (ingest, index status); used from worker threads."""
        if self._sync_client is None:
            from essearch.es import make_client

            self._sync_client = make_client(self.settings)
        return self._sync_client

    def served_indices(self) -> list[str]:
        """The aliases this service exposes: `serve.indices`, else `index.name`, plus Dify's."""
        names = list(self.settings.serve.indices) or [self.settings.index.name]
        for alias in self.settings.serve.knowledge.values():
            if alias not in names:
                names.append(alias)
        return names

    def is_served(self, alias: str) -> bool:
        return alias in self.served_indices()

    def searcher(self, alias: str) -> AsyncSearchClient:
        """One search client per alias (its own guard/fallback state), sharing client and model."""
        searcher = self._searchers.get(alias)
        if searcher is None:
            searcher = AsyncSearchClient(
                self.settings,
                client=self.client,
                embedder=self._embedder,
                capabilities=self.capabilities,
                index=alias,
            )
            if self._embedder is not None:  # else a BM25-only client until the model is loaded
                self._searchers[alias] = searcher
        return searcher

    def settings_for(self, alias: str) -> Settings:
        """These settings with `index.name` = alias (what ingest and the index manager read)."""
        index = self.settings.index.model_copy(update={"name": alias})
        return self.settings.model_copy(update={"index": index})

    async def ping(self) -> dict[str, Any]:
        """Cluster health in a few words, for /readyz."""
        health = (await self.client.cluster.health(timeout="2s")).body
        return {"status": health.get("status"), "nodes": health.get("number_of_nodes")}
