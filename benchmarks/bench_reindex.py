"""Migration benchmark: prints figures, asserts nothing.

On the first N SciFact documents, with the local MiniLM, all in one run against one node:

- baseline: a fresh `ingest` of the documents with the NEW chunking into an empty index (what a
  user without `reindex` would do: rebuild by hand, with downtime);
- re-chunk: `reindex` of an index cut with the OLD chunking to the new one (same model: vectors of
  unchanged chunks are kept, the others embedded), with catch-up, verify and swap;
- copy: `reindex` that changes only the analyzer (vectors copied, nothing embedded).

Each is reported with its ratio to the baseline.

Usage:
    python benchmarks/bench_reindex.py --es-url http://127.0.0.1:19200 \
        --scifact ../shared/data/scifact/corpus.jsonl --docs 200
"""

from __future__ import annotations

import argparse
import json
import os
import time
from itertools import islice
from pathlib import Path

from elasticsearch import Elasticsearch

from essearch.embedders import create_embedder
from essearch.index import IndexManager
from essearch.ingest.pipeline import IngestOptions, ingest
from essearch.ops import ReindexOptions, run_reindex
from essearch.settings import Settings


def load_docs(path: Path, n: int) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as handle:
        rows = [json.loads(line) for line in islice(handle, n)]
    return [{"id": r["_id"], "title": r.get("title", ""), "text": r["text"]} for r in rows]


def settings_for(url: str, name: str, **index: object) -> Settings:
    return Settings(es={"url": url}, index={"name": name, "replicas": 0, **index})


def drop(client: Elasticsearch, settings: Settings) -> None:
    manager = IndexManager(client, settings)
    if not manager.plan_drop().empty:
        manager.drop(force=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--scifact", type=Path, required=True, help="SciFact corpus.jsonl")
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--old-size", type=int, default=200, help="old chunk size (tokens)")
    parser.add_argument("--new-size", type=int, default=96, help="new chunk size (tokens)")
    args = parser.parse_args()
    if not args.es_url:
        parser.error("--es-url (or ESSEARCH_ES_URL) is required")
    client = Elasticsearch(args.es_url, request_timeout=120)
    docs = load_docs(args.scifact, args.docs)
    old = settings_for(args.es_url, "bench-reindex", chunk_size=args.old_size)
    new = settings_for(args.es_url, "bench-reindex", chunk_size=args.new_size)
    fresh = settings_for(args.es_url, "bench-reindex-fresh", chunk_size=args.new_size)
    embedder = create_embedder(old)
    embedder.embed_documents(["warm up the model"])
    quiet = IngestOptions(dead_letter=None)
    for s in (old, fresh):
        drop(client, s)

    started = time.perf_counter()
    base = ingest(docs, settings=fresh, client=client, embedder=embedder, options=quiet)
    baseline_s = time.perf_counter() - started

    ingest(docs, settings=old, client=client, embedder=embedder, options=quiet)
    started = time.perf_counter()
    rechunked = run_reindex(
        client, new, embedder, options=ReindexOptions(dead_letter=None, batch_size=256)
    )
    rechunk_s = time.perf_counter() - started

    analyzer = settings_for(
        args.es_url, "bench-reindex", chunk_size=args.new_size, analyzer="whitespace"
    )
    started = time.perf_counter()
    copied = run_reindex(client, analyzer, embedder, options=ReindexOptions(dead_letter=None))
    copy_s = time.perf_counter() - started

    print(f"documents: {len(docs)}; chunking {args.old_size} -> {args.new_size} MiniLM tokens")
    print(
        f"baseline fresh ingest (new chunking): {baseline_s:.1f} s, "
        f"{base.chunks} chunks, {base.embedded} embedded"
    )
    print(
        f"reindex re-chunk ({rechunked.status}): {rechunk_s:.1f} s = "
        f"{rechunk_s / baseline_s:.2f}x baseline; read {rechunked.copy.get('read')} old chunks, "
        f"embedded {rechunked.copy.get('embedded')}, indexed {rechunked.copy.get('indexed')}"
    )
    print(
        f"reindex analyzer only ({copied.status}): {copy_s:.1f} s = "
        f"{copy_s / baseline_s:.2f}x baseline; embedded {copied.copy.get('embedded')}"
    )
    for s in (old, fresh):
        drop(client, s)


if __name__ == "__main__":
    main()
