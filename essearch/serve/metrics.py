"""Prometheus metrics (`prometheus-client`): requests, latency per mode, embedding and ES time,
in-flight requests, ingest counters.

Each app has its own registry (several apps in one test process must not collide). With
several uvicorn workers, `PROMETHEUS_MULTIPROC_DIR` (set by `essearch serve --workers N`) makes
`/metrics` aggregate every worker.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServeMetrics:
    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry(auto_describe=True)
        registry = None if self.multiprocess else self.registry
        self.requests = Counter(
            "essearch_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "essearch_http_in_flight_requests",
            "Requests being served now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.search_latency = Histogram(
            "essearch_search_duration_seconds",
            "Search time inside the service per API and mode (embedding + ES + fusion).",
            ["api", "mode"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.embedding = Histogram(
            "essearch_embedding_duration_seconds",
            "Query embedding time (queries answered from the vector cache are not observed).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.es_time = Histogram(
            "essearch_es_duration_seconds",
            "Elasticsearch round trip time of a search (all its requests).",
            ["mode"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.ingest_documents = Counter(
            "essearch_ingest_documents", "Documents received by the ingest API.", registry=registry
        )
        self.ingest_chunks = Counter(
            "essearch_ingest_chunks",
            "Chunks by outcome (indexed, skipped, deleted, failed).",
            ["outcome"],
            registry=registry,
        )

    def observe_search(self, api: str, mode: str, explain: Any) -> None:
        """Record one search from its explain record (the client always measures it)."""
        timings = explain.timings
        self.search_latency.labels(api, mode).observe(timings.total_ms / 1000)
        self.es_time.labels(mode).observe(timings.es_roundtrip_ms / 1000)
        if timings.embedding_ms:
            self.embedding.observe(timings.embedding_ms / 1000)

    def observe_ingest(self, report: dict[str, Any]) -> None:
        self.ingest_documents.inc(report.get("documents", 0))
        for outcome in ("indexed", "skipped", "deleted", "failed"):
            self.ingest_chunks.labels(outcome).inc(report.get(outcome, 0))

    def render(self) -> tuple[bytes, str]:
        if self.multiprocess:
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """Counts every request by its route template (not the raw path: bounded label values)."""

    def __init__(self, app: ASGIApp, metrics: ServeMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope.get("method", ""), str(status)).inc()
