"""`essearch serve` benchmark: prints figures, asserts nothing (but says when errors happened).

One run, one index, one query set, against one node:

1. overhead: the same queries, one at a time, round robin through `AsyncSearchClient` in this
   process, the service's `POST /v1/search` (hybrid) over loopback with two client libraries
   (aiohttp, and httpx, which Dify uses and which costs the caller more per request), and the same
   app called in this process through raw ASGI (no socket, no client library: the framework's
   own share) — p50 of each
   and the difference to the in-process call; `GET /healthz` with each client as the floor; and
   CPU time per search (this process over in-process calls, the service process over HTTP calls),
   which a busy machine's scheduling does not inflate. Embedding is excluded on both sides: every
   query is run once first, so both hold its vector in their query-vector cache
   (`AsyncSearchClient`'s LRU) and no timed call embeds.
2. load: N concurrent clients (default 32, on aiohttp; `--load-client httpx` for httpx) for
   --seconds each against `/v1/search` (hybrid) and Dify's `/retrieval`, and the same N
   concurrent callers on the in-process client as the baseline: throughput, p50/p95/p99, errors
   (must be 0).
3. the service's RSS before and after the load.

The service is the real command (`python -m essearch serve`) in its own process, on loopback.

Usage:
    python benchmarks/bench_serve.py --es-url http://127.0.0.1:19200 \
        --scifact ../shared/data/scifact --docs 500 --seconds 60
(without --scifact the bundled sample corpus is used, its titles as queries)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from essearch.embedders import Embedder, create_embedder
from essearch.index import IndexManager
from essearch.ingest.pipeline import IngestOptions, ingest
from essearch.retrieval import AsyncSearchClient
from essearch.serve import create_app
from essearch.settings import Settings

ALIAS = "bench-serve"
SAMPLE = Path(__file__).resolve().parents[1] / "essearch" / "data" / "sample_corpus.jsonl"


def load(args: argparse.Namespace) -> tuple[list[dict[str, Any]], list[str]]:
    if args.scifact:
        with (args.scifact / "corpus.jsonl").open(encoding="utf-8") as handle:
            rows = [json.loads(line) for line in islice(handle, args.docs)]
        docs = [{"id": r["_id"], "title": r.get("title", ""), "text": r["text"]} for r in rows]
        with (args.scifact / "queries.jsonl").open(encoding="utf-8") as handle:
            queries = [json.loads(line)["text"] for line in islice(handle, args.queries)]
        return docs, queries
    with SAMPLE.open(encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle]
    return docs, [d["title"] for d in docs][: args.queries]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (what it burned, whatever the scheduler did)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_service(es_url: str, port: int, log: Any) -> subprocess.Popen[str]:
    """The real command; its output goes to `log` (a file: a pipe nobody reads would fill up
    and stall the service)."""
    env = {**os.environ, "ESSEARCH_ES_URL": es_url, "ESSEARCH_INDEX_NAME": ALIAS}
    env.pop("ESSEARCH_SERVE_API_KEYS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "essearch", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 300
    while True:
        if process.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the service exited: {log.read()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            process.terminate()
            raise SystemExit("the service did not become ready in 300 s")
        time.sleep(0.5)


def search_body(query: str) -> dict[str, Any]:
    return {"query": query, "mode": "hybrid", "k": 10}


def dify_body(query: str) -> dict[str, Any]:
    return {
        "knowledge_id": ALIAS,
        "query": query,
        "retrieval_setting": {"top_k": 10, "score_threshold": 0.0},
    }


async def overhead(
    arms: dict[str, Any], local: AsyncSearchClient, queries: list[str], rounds: int
) -> dict[str, list[float]]:
    """Round robin over the in-process client and each HTTP arm, same query (ms each)."""
    times: dict[str, list[float]] = {"in-process": [], **{name: [] for name in arms}}
    for i in range(rounds):
        query = queries[i % len(queries)]
        t0 = time.perf_counter()
        await local.search(query, mode="hybrid", k=10)
        times["in-process"].append((time.perf_counter() - t0) * 1000)
        for name, call in arms.items():
            t0 = time.perf_counter()
            await call(query)
            times[name].append((time.perf_counter() - t0) * 1000)
    return times


async def asgi_post(app: Any, path: str, body: Any) -> None:
    """POST `body` to the ASGI `app` directly (no client library, no socket), raising on a
    non-2xx: what is left is the framework's own share (routing, middlewares, validation, JSON).
    """
    payload = json.dumps(body).encode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"asgi"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(scope, receive, send)
    if not status or not 200 <= status[0] < 300:
        raise RuntimeError(f"ASGI {path} answered {status[0] if status else 'nothing'}")


class HttpCaller:
    """POST / GET through one client library (`aiohttp` or `httpx`), raising on a non-2xx.

    Both are measured because the client is part of every figure taken over HTTP: httpx (which
    Dify uses) spends about a millisecond more of this process's CPU per request than aiohttp,
    and that is the caller's cost, not the service's.
    """

    def __init__(self, library: str, base_url: str, connections: int) -> None:
        self.library = library
        self.base_url = base_url
        self.connections = connections
        self._httpx: httpx.AsyncClient | None = None
        self._aiohttp: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpCaller:
        if self.library == "httpx":
            limits = httpx.Limits(
                max_connections=self.connections, max_keepalive_connections=self.connections
            )
            self._httpx = httpx.AsyncClient(base_url=self.base_url, limits=limits, timeout=60)
        else:
            connector = aiohttp.TCPConnector(limit=self.connections, keepalive_timeout=60)
            self._aiohttp = aiohttp.ClientSession(
                self.base_url, connector=connector, timeout=aiohttp.ClientTimeout(total=60)
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._httpx is not None:
            await self._httpx.aclose()
        if self._aiohttp is not None:
            await self._aiohttp.close()

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        if self._httpx is not None:
            response = await self._httpx.request(method, path, json=body)
            response.raise_for_status()
            return response.json()
        assert self._aiohttp is not None
        async with self._aiohttp.request(method, path, json=body) as reply:
            reply.raise_for_status()
            return await reply.json()


async def load_run(call: Any, queries: list[str], clients: int, seconds: float) -> dict[str, Any]:
    """`clients` callers in a loop for `seconds`; latency per call, errors counted."""
    latencies: list[float] = []
    errors: list[str] = []
    started = time.perf_counter()
    stop_at = started + seconds

    async def worker(offset: int) -> None:
        i = offset
        while time.perf_counter() < stop_at:
            query = queries[i % len(queries)]
            i += clients
            t0 = time.perf_counter()
            try:
                await call(query)
            except Exception as exc:  # counted, reported with when it happened
                at = time.perf_counter() - started
                errors.append(f"{type(exc).__name__} at {at:.1f} s: {exc}"[:200])
                continue
            latencies.append((time.perf_counter() - t0) * 1000)

    await asyncio.gather(*(worker(i) for i in range(clients)))
    elapsed = time.perf_counter() - started
    return {
        "requests": len(latencies) + len(errors),
        "errors": len(errors),
        "first_errors": errors[:3],
        "throughput_rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50), 2),
        "p95_ms": round(percentile(latencies, 95), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "mean_ms": round(statistics.fmean(latencies), 2) if latencies else float("nan"),
        "max_ms": round(max(latencies, default=float("nan")), 2),
    }


async def run(
    args: argparse.Namespace, queries: list[str], settings: Settings, port: int, embedder: Embedder
) -> None:
    local = AsyncSearchClient(settings, embedder=embedder)
    base_url = f"http://127.0.0.1:{port}"
    async with (
        local,
        HttpCaller("aiohttp", base_url, args.clients) as lean,
        HttpCaller("httpx", base_url, args.clients) as dify_like,
    ):
        for query in queries:  # warm both query-vector caches: no timed call embeds
            await local.search(query, mode="hybrid", k=10)
            await lean.request("POST", "/v1/search", search_body(query))
            await lean.request("POST", "/retrieval", dify_body(query))

        # the same app in this process, called through ASGI (no socket): the framework's share
        app = create_app(settings, embedder=embedder)
        await app.state.ctx.start()
        await app.state.ctx.wait_ready()
        for query in queries:
            await asgi_post(app, "/v1/search", search_body(query))

        async def via_asgi(query: str) -> None:
            await asgi_post(app, "/v1/search", search_body(query))

        arms = {
            "service over loopback, aiohttp client": lambda q: lean.request(
                "POST", "/v1/search", search_body(q)
            ),
            "service over loopback, httpx client": lambda q: dify_like.request(
                "POST", "/v1/search", search_body(q)
            ),
            "same app via raw ASGI, no socket, no client": via_asgi,
            "GET /healthz, aiohttp client (floor)": lambda q: lean.request("GET", "/healthz"),
            "GET /healthz, httpx client (floor)": lambda q: dify_like.request("GET", "/healthz"),
        }
        times = await overhead(arms, local, queries, args.overhead_rounds)
        await app.state.ctx.close()
        # CPU per request, which waiting for a busy machine's scheduler does not inflate: this
        # process's CPU over in-process calls vs the service process's CPU over HTTP calls
        rounds = args.overhead_rounds
        t0 = time.process_time()
        for i in range(rounds):
            await local.search(queries[i % len(queries)], mode="hybrid", k=10)
        cpu_local_ms = (time.process_time() - t0) / rounds * 1000
        c0 = cpu_seconds(args.service_pid)
        for i in range(rounds):
            await lean.request("POST", "/v1/search", search_body(queries[i % len(queries)]))
        cpu_service_ms = (cpu_seconds(args.service_pid) - c0) / rounds * 1000

        base_p50 = statistics.median(times["in-process"])
        print("\n== overhead: one request at a time, hybrid, embedding excluded (cached vectors)")
        print(f"{'in-process AsyncSearchClient (baseline)':42s} p50 {base_p50:7.2f} ms")
        for name in arms:
            p50 = statistics.median(times[name])
            if "floor" in name:
                print(f"{name:42s} p50 {p50:7.2f} ms  (a round trip doing no work)")
                continue
            print(
                f"{name:42s} p50 {p50:7.2f} ms  overhead {p50 - base_p50:+.2f} ms "
                f"({p50 / base_p50:.2f}x; goal <= 2 ms)"
            )
        print(
            f"{'CPU per search, in-process client':42s}     {cpu_local_ms:7.2f} ms (baseline)\n"
            f"{'CPU per search, service process':42s}     {cpu_service_ms:7.2f} ms  overhead "
            f"{cpu_service_ms - cpu_local_ms:+.2f} ms ({cpu_service_ms / cpu_local_ms:.2f}x)"
        )

        caller = lean if args.load_client == "aiohttp" else dify_like

        async def via_search(query: str) -> None:
            await caller.request("POST", "/v1/search", search_body(query))

        async def via_dify(query: str) -> None:
            if "records" not in await caller.request("POST", "/retrieval", dify_body(query)):
                raise ValueError("no records in the response")

        async def via_client(query: str) -> None:
            await local.search(query, mode="hybrid", k=10)

        rss_before = rss_mib(args.service_pid)
        print(
            f"\n== load: {args.clients} concurrent clients ({args.load_client}), "
            f"{args.seconds:g} s each"
        )
        results = {
            "in-process AsyncSearchClient (baseline)": await load_run(
                via_client, queries, args.clients, args.seconds
            ),
            "POST /v1/search (hybrid)": await load_run(
                via_search, queries, args.clients, args.seconds
            ),
            "POST /retrieval (Dify)": await load_run(via_dify, queries, args.clients, args.seconds),
        }
        rss_after = rss_mib(args.service_pid)
        base = results["in-process AsyncSearchClient (baseline)"]["throughput_rps"]
        for name, figures in results.items():
            ratio = figures["throughput_rps"] / base if base else float("nan")
            print(
                f"{name:42s} {figures['throughput_rps']:8.1f} req/s ({ratio:.2f}x)  "
                f"p50 {figures['p50_ms']:7.2f}  p95 {figures['p95_ms']:7.2f}  "
                f"p99 {figures['p99_ms']:7.2f}  mean {figures['mean_ms']:7.2f}  "
                f"max {figures['max_ms']:8.2f} ms  errors {figures['errors']}/{figures['requests']}"
            )
            for error in figures["first_errors"]:
                print(f"    error: {error}")
        print(
            f"\nservice RSS: {rss_before:.1f} MiB before the load, {rss_after:.1f} MiB after "
            f"({rss_after - rss_before:+.1f} MiB)"
        )
        if any(f["errors"] for f in results.values()):
            print("ERRORS: some requests failed (the goal is 0)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--scifact", type=Path, help="a BEIR SciFact directory (corpus, queries)")
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=60.0, help="per load phase (3 phases)")
    parser.add_argument("--overhead-rounds", type=int, default=300)
    parser.add_argument(
        "--load-client",
        choices=("aiohttp", "httpx"),
        default="aiohttp",
        help="the load generator's HTTP client (httpx costs this process more CPU per call)",
    )
    args = parser.parse_args()
    if not args.es_url:
        parser.error("--es-url (or ESSEARCH_ES_URL) is required")
    docs, queries = load(args)
    settings = Settings.model_validate(
        {"es": {"url": args.es_url}, "index": {"name": ALIAS, "replicas": 0}}
    )
    from elasticsearch import Elasticsearch

    client = Elasticsearch(args.es_url, request_timeout=120)
    manager = IndexManager(client, settings)
    if manager.versions():
        manager.drop(force=True)
    embedder = create_embedder(settings)
    t0 = time.perf_counter()
    report = ingest(
        docs,
        settings=settings,
        client=client,
        embedder=embedder,
        options=IngestOptions(dead_letter=None),
    )
    print(
        f"indexed {report.documents} documents / {report.chunks} chunks in "
        f"{time.perf_counter() - t0:.1f} s; {len(queries)} distinct queries"
    )
    port = free_port()
    log = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - read in finally
    service = start_service(args.es_url, port, log)
    args.service_pid = service.pid
    try:
        asyncio.run(run(args, queries, settings, port, embedder))
    finally:
        service.terminate()
        service.wait(30)
        manager.drop(force=True)
        client.close()
        log.seek(0)
        said = log.read().strip().splitlines()
        if said:
            print(f"\nthe service said ({len(said)} lines, the last 15):")
            print("\n".join(said[-15:]))


if __name__ == "__main__":
    main()
