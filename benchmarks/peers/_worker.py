"""What every peer worker shares: reading the benchmark input, timing queries, writing results.

Runs inside each peer's own virtualenv (only numpy and the peer's packages there), so it imports
nothing from essearch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: (query text, query vector, k) -> [(doc id, score)], best first
Search = Callable[[str, list[float], int], list[tuple[str, float]]]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--input", type=Path, required=True)
    parser.add_argument("--es-url", required=True)
    parser.add_argument("--index", required=True)
    parser.add_argument("--output", type=Path, required=True)
    parser.add_argument("--k-latency", type=int, default=10)
    parser.add_argument(
        "--serve", action="store_true", help="after the first pass, answer latency rounds on stdin"
    )
    return parser.parse_args()


def load(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    docs, queries = [], []
    for line in path.open():
        row = json.loads(line)
        (docs if "doc" in row else queries).append(row.get("doc") or row["query"])
    return docs, queries


def content(doc: dict[str, Any]) -> str:
    """The text a peer indexes: title and abstract in one field (peers have one text field)."""
    return f"{doc['title']}\n{doc['text']}" if doc["title"] else doc["text"]


def latency(search: Search, queries: list[dict[str, Any]], k: int) -> list[float]:
    """Milliseconds per query at `k`, every query once."""
    timings = []
    for q in queries:
        started = time.perf_counter()
        search(q["text"], q["vector"], k)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


#: the searches that worked, by run name, for the latency rounds
_SEARCHES: dict[str, tuple[Search, list[dict[str, Any]], int]] = {}


def measure(
    name: str, search: Search, queries: list[dict[str, Any]], k_latency: int, how: str = ""
) -> dict[str, Any]:
    """Quality at k=100, then latency at k=`k_latency`; a failure is recorded, not raised."""
    try:
        runs = {}
        for q in queries:
            hits = search(q["text"], q["vector"], 100)
            runs[q["id"]] = {doc_id: score for doc_id, score in hits}
        timings = latency(search, queries, k_latency)
        return {
            "runs": runs,
            "latency_ms": timings,
            "how": how,
            "_search": (search, queries, k_latency),
        }
    except Exception as exc:  # a default that fails on this node is a result
        traceback.print_exc()
        return {"error": f"{type(exc).__name__}: {str(exc)[:300]}", "how": how}


def rank_scores(doc_ids: list[str]) -> list[tuple[str, float]]:
    """For APIs that give an order but no score: 1/rank keeps the order for the metrics."""
    return [(doc_id, 1.0 / rank) for rank, doc_id in enumerate(doc_ids, 1)]


def write(path: Path, result: dict[str, Any], *, serve: bool = False) -> None:
    """Write the first pass; with `serve`, then answer latency rounds until stdin closes.

    The rounds let bench_peers.py interleave the systems (each asked in turn, several times), so
    a noisy moment of the machine does not land on one system only. Protocol on stdout: a line
    `@@ready`, then for each run name read from stdin a line `@@` + JSON milliseconds.
    """
    for run_name, entry in result.items():
        search = entry.pop("_search", None)
        if search is not None:
            _SEARCHES[run_name] = search
    path.write_text(json.dumps(result))
    if not serve:
        return
    print("@@ready", flush=True)
    for line in sys.stdin:
        run_name = line.strip()
        search, queries, k = _SEARCHES[run_name]
        print("@@" + json.dumps(latency(search, queries, k)), flush=True)
