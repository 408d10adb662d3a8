"""Async callers in a tight loop: the plain `AsyncElasticsearch` vs essearch's async client.

N tasks share one client; each starts its next search as soon as the last one returns (a worker
pool, a load test, an evaluation with N workers). With more tasks than pool connections, aiohttp
hands a freed connection to the task that just freed it, so the plain client answers only as many
tasks as it has connections and the rest wait until their request times out. essearch's transport
admits requests in arrival order (`essearch.es.client.AsyncVersionAwareTransport`). Prints, per
client, for the same index, queries and run: searches/s, p50 / p99 / max latency, and how many
searches the least and the most served task got (a starved task gets at most one). Asserts
nothing.

Usage:
    python benchmarks/bench_async_pool.py --es-url http://127.0.0.1:19200 --tasks 32 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

from essearch.es import make_async_client
from essearch.settings import ElasticsearchSettings

INDEX = "bench-async-pool"
WORDS = [
    "cell",
    "protein",
    "gene",
    "study",
    "tissue",
    "blood",
    "cancer",
    "virus",
    "immune",
    "signal",
]


def make_index(url: str, docs: int) -> None:
    client = Elasticsearch(url)
    client.options(ignore_status=404).indices.delete(index=INDEX)
    client.indices.create(index=INDEX)
    for i in range(docs):
        text = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(i % 7 + 3))
        client.index(index=INDEX, id=str(i), document={"text": f"{text} {i}"})
    client.indices.refresh(index=INDEX)
    client.close()


async def tight_loop(client: AsyncElasticsearch, tasks: int, seconds: float) -> dict[str, Any]:
    served = [0] * tasks
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds

    async def task(i: int) -> None:
        while time.perf_counter() < stop_at:
            words = f"{WORDS[i % len(WORDS)]} {WORDS[(i * 3 + served[i]) % len(WORDS)]}"
            t0 = time.perf_counter()
            try:
                await client.search(index=INDEX, query={"match": {"text": words}}, size=10)
            except Exception as exc:  # counted: a starved request ends in a timeout
                errors.append(type(exc).__name__)
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            served[i] += 1

    started = time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(tasks)))
    elapsed = time.perf_counter() - started
    await client.close()
    ordered = sorted(latencies)
    return {
        "rate": len(latencies) / elapsed,
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
        "max": ordered[-1],
        "least": min(served),
        "most": max(served),
        "starved": sum(count <= 1 for count in served),
        "errors": len(errors),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="request timeout of both clients (s)"
    )
    args = parser.parse_args()
    if not args.es_url:
        parser.error("--es-url (or ESSEARCH_ES_URL) is required")
    make_index(args.es_url, args.docs)
    print(
        f"{args.tasks} tasks in a tight loop, {args.seconds:g} s per client, "
        f"10 connections (the client default), request timeout {args.timeout:g} s"
    )
    arms = {
        "AsyncElasticsearch (baseline)": lambda: AsyncElasticsearch(
            args.es_url, request_timeout=args.timeout
        ),
        "essearch make_async_client": lambda: make_async_client(
            ElasticsearchSettings(url=[args.es_url]), request_timeout=args.timeout
        ),
    }
    for name, build in arms.items():
        f = asyncio.run(tight_loop(build(), args.tasks, args.seconds))
        print(
            f"{name:32s} {f['rate']:7.0f} searches/s  p50 {f['p50']:7.1f}  p99 {f['p99']:8.1f}  "
            f"max {f['max']:8.1f} ms  per task {f['least']}..{f['most']}  "
            f"starved {f['starved']}/{args.tasks}  errors {f['errors']}"
        )
    Elasticsearch(args.es_url).options(ignore_status=404).indices.delete(index=INDEX)


if __name__ == "__main__":
    main()
