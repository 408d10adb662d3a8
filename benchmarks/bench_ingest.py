"""Ingest benchmark: prints figures, asserts nothing.

(a) bulk indexing of precomputed 384-d vectors: essearch's ingest path (loader records -> chunker ->
    existing-chunk lookup -> validation -> streaming_bulk consumers) vs raw
    `elasticsearch.helpers.parallel_bulk` on the same vectors, same run, same mapping.
    langchain-elasticsearch is not installed in this environment, so it is not measured.
(b) end-to-end with the local MiniLM on a SciFact subset: total vs embed-only and index-only.
(c) peak RSS of an ingest of 10k and 100k synthetic documents (each in a fresh subprocess, with a
    cheap hash embedder so the model's memory and time do not hide the pipeline's).

Usage:
    python benchmarks/bench_ingest.py --es-url http://127.0.0.1:19200 \
        --scifact /work/shared/data/scifact/corpus.jsonl --docs 20000 --e2e-docs 1000
Without --es-url (and ESSEARCH_ES_URL) a private local node is started.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from elasticsearch import Elasticsearch
from elasticsearch.helpers import parallel_bulk

from essearch.embedders.base import Embedder
from essearch.index.chunking import default_config
from essearch.index.schema import META_KEY, physical_index_for, write_alias_for
from essearch.ingest.chunker import Chunker
from essearch.ingest.loaders import Document, load
from essearch.ingest.pipeline import IngestOptions, ingest
from essearch.ingest.planning import chunk_source
from essearch.settings import Settings

DIMS = 384


class TableEmbedder(Embedder):
    """Returns precomputed vectors (looked up by text): the pipeline without the model's cost."""

    provider = "local"

    def __init__(self, vectors: dict[str, list[float]], model: str) -> None:
        super().__init__(model, dims=DIMS, normalize=True)
        self.table = vectors

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.table[text]

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)


class HashEmbedder(Embedder):
    """A deterministic unit vector per text (for the memory benchmark only)."""

    provider = "local"

    def __init__(self, model: str) -> None:
        super().__init__(model, dims=DIMS, normalize=True)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
            v = np.random.default_rng(seed).standard_normal(DIMS).astype(np.float32)
            out.append((v / np.linalg.norm(v)).tolist())
        return out

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return self.embed_documents(texts)


def create_index(client: Elasticsearch, name: str, info: Any, index_type: str) -> None:
    """The chunk schema of the brief, behind `<name>` and `<name>-write`."""
    for existing in client.indices.get(index=f"{name}*", ignore_unavailable=True).body:
        client.indices.delete(index=existing)
    client.indices.create(
        index=physical_index_for(name, 1),
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "aliases": {name: {}, write_alias_for(name): {"is_write_index": True}},
            "mappings": {
                "_meta": {META_KEY: {"embedder": info.to_dict()}},
                "dynamic_templates": [
                    {
                        "meta": {
                            "path_match": "metadata.*",
                            "match_mapping_type": "string",
                            "mapping": {"type": "keyword"},
                        }
                    }
                ],
                "properties": {
                    "id": {"type": "keyword"},
                    "doc_id": {"type": "keyword"},
                    "chunk": {"type": "integer"},
                    "title": {"type": "text"},
                    "text": {"type": "text"},
                    "metadata": {"type": "object"},
                    "content_hash": {"type": "keyword"},
                    "indexed_at": {"type": "date"},
                    "vector": {
                        "type": "dense_vector",
                        "dims": info.dims,
                        "similarity": info.similarity,
                        "index_options": {"type": index_type},
                    },
                },
            },
        },
    )


def settings_for(url: str, name: str) -> Settings:
    return Settings(es={"url": url}, index={"name": name, "replicas": 0})


def count(client: Elasticsearch, name: str) -> int:
    client.indices.refresh(index=name)
    return int(client.count(index=name)["count"])


# -- (a) ----------------------------------------------------------------------------------------


def bench_bulk(client: Elasticsearch, url: str, n: int, index_type: str, threads: int) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((n, DIMS)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    records = [
        {"id": f"d{i}", "title": f"Doc {i}", "text": f"Synthetic passage number {i} about search."}
        for i in range(n)
    ]
    chunker = Chunker(default_config("local", None))
    docs = [Document(r["id"], r["text"], r["title"]) for r in records]
    chunks = [chunker.chunks(d)[0] for d in docs]
    table = {c.embed_text: matrix[i].tolist() for i, c in enumerate(chunks)}
    embedder = TableEmbedder(table, "bench/precomputed")

    stamp = "2026-01-01T00:00:00+00:00"

    def run_raw() -> float:
        name = "bench-raw"
        create_index(client, name, embedder.info, index_type)
        actions = (
            {
                "_index": write_alias_for(name),
                "_id": chunk.id,
                "_source": chunk_source(chunk, table[chunk.embed_text], stamp),
            }
            for chunk in chunks
        )
        start = time.perf_counter()
        for ok, item in parallel_bulk(client, actions, thread_count=threads, chunk_size=500):
            if not ok:
                raise RuntimeError(item)
        client.indices.refresh(index=name)
        elapsed = time.perf_counter() - start
        assert count(client, name) == n
        return elapsed

    def run_essearch() -> float:
        name = "bench-essearch"
        create_index(client, name, embedder.info, index_type)
        start = time.perf_counter()
        report = ingest(
            records,
            settings=settings_for(url, name),
            client=client,
            embedder=embedder,
            options=IngestOptions(
                dead_letter=None,
                bulk_threads=threads,
                bulk_chunk_size=500,
                embed_batch=1000,
                init_index=False,
            ),
        )
        elapsed = time.perf_counter() - start
        assert report.ok and count(client, name) == n, report.to_dict()
        return elapsed

    # Alternate the order over two rounds and keep each side's best: the index built first is
    # still merging while the second runs, so a fixed order favours whichever goes first.
    raw_times, ess_times = [run_raw()], [run_essearch()]
    ess_times.append(run_essearch())
    raw_times.append(run_raw())
    raw_s, ess_s = min(raw_times), min(ess_times)
    print(
        f"(a) bulk of {n:,} precomputed {DIMS}-d vectors, index_options {index_type}, "
        f"{threads} bulk threads"
    )
    print(f"    raw parallel_bulk : {raw_s:7.2f} s  {n / raw_s:8.0f} docs/s")
    print(
        f"    essearch ingest   : {ess_s:7.2f} s  {n / ess_s:8.0f} docs/s  "
        f"ratio {raw_s / ess_s:.2f}x of raw throughput"
    )
    print("    langchain-elasticsearch: not installed here, not measured")
    for name in ("bench-raw", "bench-essearch"):
        for existing in client.indices.get(index=f"{name}*").body:
            client.indices.delete(index=existing)


# -- (b) ----------------------------------------------------------------------------------------


def bench_end_to_end(client: Elasticsearch, url: str, corpus: Path, n: int, threads: int) -> None:
    from essearch.embedders import create_embedder

    tmp = Path(tempfile.mkdtemp(prefix="bench-scifact-"))
    subset = tmp / "subset.jsonl"
    with corpus.open(encoding="utf-8") as src, subset.open("w", encoding="utf-8") as out:
        for line in islice(src, n):
            out.write(line)
    embedder = create_embedder(settings_for(url, "x"))
    embedder.embed_documents(["warm up"])
    chunker = Chunker(default_config("local", embedder.model))
    chunks = [c for d in load([subset]) if isinstance(d, Document) for c in chunker.chunks(d)]
    texts = [c.embed_text for c in chunks]

    start = time.perf_counter()
    vectors = embedder.embed_documents(texts)
    embed_s = time.perf_counter() - start
    table = dict(zip(texts, vectors, strict=True))

    index_name = "bench-e2e-index-only"
    create_index(client, index_name, embedder.info, "int8_hnsw")
    start = time.perf_counter()
    report = ingest(
        subset,
        settings=settings_for(url, index_name),
        client=client,
        embedder=TableEmbedder(table, embedder.model),
        options=IngestOptions(dead_letter=None, bulk_threads=threads, init_index=False),
    )
    index_s = time.perf_counter() - start
    assert report.ok, report.to_dict()

    full_name = "bench-e2e-full"
    create_index(client, full_name, embedder.info, "int8_hnsw")
    start = time.perf_counter()
    report = ingest(
        subset,
        settings=settings_for(url, full_name),
        client=client,
        embedder=embedder,
        options=IngestOptions(dead_letter=None, bulk_threads=threads, init_index=False),
    )
    total_s = time.perf_counter() - start
    assert report.ok and count(client, full_name) == len(chunks), report.to_dict()
    bound = max(embed_s, index_s)
    print(f"(b) SciFact first {n:,} docs -> {len(chunks):,} chunks, local {embedder.model}")
    print(
        f"    embed-only {embed_s:7.2f} s | index-only {index_s:7.2f} s | "
        f"end-to-end {total_s:7.2f} s = {total_s / bound:.2f}x max(embed, index)"
    )
    for name in (index_name, full_name):
        for existing in client.indices.get(index=f"{name}*").body:
            client.indices.delete(index=existing)


# -- (c) ----------------------------------------------------------------------------------------


def proc_status_mib(key: str) -> float:
    """VmRSS / VmHWM of this process from /proc (ru_maxrss would include the parent's peak
    inherited across fork+exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(url: str, n: int) -> None:
    """Runs in a subprocess: write n docs to a file, ingest them, print peak RSS (MiB)."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-rss-"))
    path = tmp / "docs.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            text = f"Document {i} talks about vectors, BM25, chunking and rank fusion. " * 3
            out.write(json.dumps({"id": f"d{i}", "text": text, "metadata": {"k": str(i % 7)}}))
            out.write("\n")
    client = Elasticsearch(url, request_timeout=120)
    embedder = HashEmbedder("bench/hash")
    name = f"bench-rss-{n}"
    create_index(client, name, embedder.info, "flat")
    base = proc_status_mib("VmRSS")
    start = time.perf_counter()
    report = ingest(
        path,
        settings=settings_for(url, name),
        client=client,
        embedder=embedder,
        options=IngestOptions(dead_letter=None, init_index=False),
    )
    elapsed = time.perf_counter() - start
    peak = proc_status_mib("VmHWM")
    assert report.ok and count(client, name) == report.chunks, report.to_dict()
    for existing in client.indices.get(index=f"{name}*").body:
        client.indices.delete(index=existing)
    print(
        json.dumps(
            {
                "n": n,
                "chunks": report.chunks,
                "peak_rss_mib": round(peak, 1),
                "rss_before_ingest_mib": round(base, 1),
                "seconds": round(elapsed, 1),
            }
        )
    )


def bench_rss(url: str, sizes: list[int]) -> None:
    print("(c) peak RSS of the ingest process (hash embedder, flat vectors, fresh subprocess each)")
    for n in sizes:
        out = (
            subprocess.run(
                [sys.executable, __file__, "--es-url", url, "--rss-child", str(n)],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        data = json.loads(out)
        print(
            f"    {data['n']:>8,} docs ({data['chunks']:,} chunks): peak RSS "
            f"{data['peak_rss_mib']:.0f} MiB (before ingest {data['rss_before_ingest_mib']:.0f} "
            f"MiB), {data['seconds']:.0f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--scifact", type=Path, help="path to scifact corpus.jsonl for (b)")
    parser.add_argument("--docs", type=int, default=20_000, help="documents for (a)")
    parser.add_argument("--e2e-docs", type=int, default=1000, help="SciFact subset for (b)")
    parser.add_argument("--rss-sizes", default="10000,100000", help="document counts for (c)")
    parser.add_argument("--parts", default="a,b,c")
    parser.add_argument("--index-type", default="int8_hnsw")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    node = None
    url = args.es_url
    if not url:
        from essearch.es.provision import LocalNode

        node = LocalNode(heap_mb=1024)
        url = node.start()
    try:
        if args.rss_child:
            rss_child(url, args.rss_child)
            return
        client = Elasticsearch(url, request_timeout=120)
        parts = set(args.parts.split(","))
        print(f"Elasticsearch at {url}; {os.cpu_count()} CPUs")
        if "a" in parts:
            bench_bulk(client, url, args.docs, args.index_type, args.threads)
        if "b" in parts:
            if args.scifact is None:
                print("(b) skipped: pass --scifact PATH/corpus.jsonl")
            else:
                bench_end_to_end(client, url, args.scifact, args.e2e_docs, args.threads)
        if "c" in parts:
            bench_rss(url, [int(x) for x in args.rss_sizes.split(",")])
    finally:
        if node is not None:
            node.close()


if __name__ == "__main__":
    main()
