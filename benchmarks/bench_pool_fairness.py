"""Callers in a tight loop on one client: the plain Elasticsearch clients vs essearch's.

N threads (sync client) or N asyncio tasks (async client) share one client; each starts its next
search as soon as the last one returns (a web app's thread pool, a worker loop, a load test, an
evaluation with N workers). With more callers than pool connections, urllib3 and aiohttp hand a
freed connection to the caller that just freed it, so the plain clients answer only as many
callers as they have connections and the rest wait until their request times out. essearch's
transports admit requests in arrival order (`essearch/es/fair.py`). Prints, per client, for the
same index, queries and run: searches/s, p50 / p99 / max latency, and how many searches the least
and the most served caller got (a starved caller gets at most one). Asserts nothing.

Usage:
    python benchmarks/bench_pool_fairness.py --es-url http://127.0.0.1:19200 --callers 32 \
        --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

from elasticsearch import AsyncElasticsearch, Elasticsearch

from essearch.es import make_async_client, make_client
from essearch.settings import ElasticsearchSettings

INDEX = "bench-pool-fairness"
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


def query_for(caller: int, served: int) -> dict[str, Any]:
    words = f"{WORDS[caller % len(WORDS)]} {WORDS[(caller * 3 + served) % len(WORDS)]}"
    return {"match": {"text": words}}


class Tally:
    """What the callers of one client got: searches per caller, latencies, errors."""

    def __init__(self, callers: int, seconds: float) -> None:
        self.served = [0] * callers
        self.latencies: list[float] = []
        self.errors: list[str] = []  # list.append is atomic across threads
        self.started = time.perf_counter()
        self.stop_at = self.started + seconds

    def running(self) -> bool:
        return time.perf_counter() < self.stop_at

    def answered(self, caller: int, t0: float) -> None:
        self.latencies.append((time.perf_counter() - t0) * 1000)
        self.served[caller] += 1

    def figures(self) -> dict[str, Any]:
        elapsed = time.perf_counter() - self.started
        ordered = sorted(self.latencies) or [float("nan")]
        return {
            "rate": len(self.latencies) / elapsed,
            "p50": statistics.median(ordered),
            "p99": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))],
            "max": ordered[-1],
            "least": min(self.served),
            "most": max(self.served),
            "starved": sum(count <= 1 for count in self.served),
            "errors": len(self.errors),
        }


def threads_loop(client: Elasticsearch, callers: int, seconds: float) -> dict[str, Any]:
    tally = Tally(callers, seconds)

    def caller(i: int) -> None:
        while tally.running():
            t0 = time.perf_counter()
            try:
                client.search(index=INDEX, query=query_for(i, tally.served[i]), size=10)
            except Exception as exc:  # counted: a starved request ends in a timeout
                tally.errors.append(type(exc).__name__)
                continue
            tally.answered(i, t0)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = tally.figures()
    client.close()
    return result


async def tasks_loop(client: AsyncElasticsearch, callers: int, seconds: float) -> dict[str, Any]:
    tally = Tally(callers, seconds)

    async def caller(i: int) -> None:
        while tally.running():
            t0 = time.perf_counter()
            try:
                await client.search(index=INDEX, query=query_for(i, tally.served[i]), size=10)
            except Exception as exc:  # counted: a starved request ends in a timeout
                tally.errors.append(type(exc).__name__)
                continue
            tally.answered(i, t0)

    await asyncio.gather(*(caller(i) for i in range(callers)))
    result = tally.figures()
    await client.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--callers", type=int, default=32, help="threads, then tasks")
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
        f"{args.callers} callers in a tight loop, {args.seconds:g} s per client, "
        f"10 connections (the client default), request timeout {args.timeout:g} s"
    )
    es_settings = ElasticsearchSettings(url=[args.es_url])
    timeout = args.timeout
    arms: dict[str, Callable[[], dict[str, Any]]] = {
        "threads, Elasticsearch (baseline)": lambda: threads_loop(
            Elasticsearch(args.es_url, request_timeout=timeout), args.callers, args.seconds
        ),
        "threads, essearch make_client": lambda: threads_loop(
            make_client(es_settings, request_timeout=timeout), args.callers, args.seconds
        ),
        "tasks, AsyncElasticsearch (baseline)": lambda: asyncio.run(
            tasks_loop(
                AsyncElasticsearch(args.es_url, request_timeout=timeout),
                args.callers,
                args.seconds,
            )
        ),
        "tasks, essearch make_async_client": lambda: asyncio.run(
            tasks_loop(
                make_async_client(es_settings, request_timeout=timeout), args.callers, args.seconds
            )
        ),
    }
    for name, measure in arms.items():
        f = measure()
        print(
            f"{name:38s} {f['rate']:6.0f} searches/s  p50 {f['p50']:6.1f}  p99 {f['p99']:8.1f}  "
            f"max {f['max']:8.1f} ms  per caller {f['least']}..{f['most']}  "
            f"starved {f['starved']}/{args.callers}  errors {f['errors']}"
        )
    Elasticsearch(args.es_url).options(ignore_status=404).indices.delete(index=INDEX)


if __name__ == "__main__":
    main()
