"""Documents benchmark (issue 16): prints figures against same-run baselines, asserts nothing.

(a) chunker alone on SciFact (chunks/s, wall and CPU) vs the local MiniLM embedding the same chunks.
(b) a folder of 200 generated files (50 each PDF, DOCX, HTML, Markdown): load+convert+chunk docs/s,
    and the full ingest (local MiniLM, real node) docs/s.
(c) peak RSS of ingesting ONE 1 MB vs ONE 50 MB text document (fresh subprocess each, hash
    embedder so the model's memory does not hide the pipeline's, character chunks).
(d) precomputed vectors: 20,000 rows x 384-d from a Parquet file through `essearch ingest`'s path
    (PrecomputedEmbedder, --vector-field) vs raw `helpers.parallel_bulk` of the same rows read
    from the same file; two alternating rounds, best of each.

Usage:
    python benchmarks/bench_documents.py --es-url http://127.0.0.1:19200 \
        --scifact ../shared/data/scifact/corpus.jsonl [--parts a,b,c,d]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from itertools import islice
from pathlib import Path

import numpy as np
from elasticsearch import Elasticsearch
from elasticsearch.helpers import parallel_bulk

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from bench_ingest import HashEmbedder, count, create_index, settings_for  # noqa: E402
from document_files import make_docx, make_html, make_pdf  # noqa: E402

from essearch.embedders.precomputed import PrecomputedEmbedder  # noqa: E402
from essearch.index.schema import write_alias_for  # noqa: E402
from essearch.ingest.chunker import Chunker, ChunkerConfig, default_config  # noqa: E402
from essearch.ingest.loaders import Document, FieldMap, load  # noqa: E402
from essearch.ingest.pipeline import IngestOptions, ingest  # noqa: E402

WORDS = [
    "refund",
    "policy",
    "shipping",
    "order",
    "invoice",
    "customer",
    "payment",
    "account",
    "support",
    "delivery",
]


def drop(client: Elasticsearch, name: str) -> None:
    for existing in client.indices.get(index=f"{name}*", ignore_unavailable=True).body:
        client.indices.delete(index=existing)


def paragraph(rng: np.random.Generator, words: int = 60) -> str:
    return " ".join(rng.choice(WORDS, words)) + "."


# -- (a) ----------------------------------------------------------------------------------------
def bench_chunker(corpus: Path, n: int, embed_sample: int) -> dict:
    from essearch.embedders import create_embedder
    from essearch.settings import EmbedderSettings

    docs = []
    with corpus.open(encoding="utf-8") as handle:
        for line in islice(handle, n):
            record = json.loads(line)
            docs.append(Document(str(record["_id"]), record["text"], record.get("title")))
    chunker = Chunker(default_config("local", None))
    chunker.chunks(docs[0])
    wall, cpu = time.perf_counter(), time.process_time()
    chunks = [c for d in docs for c in chunker.chunks(d)]
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    embedder = create_embedder(EmbedderSettings(provider="local"))
    texts = [c.embed_text for c in chunks[:embed_sample]]
    embedder.embed_documents(texts[:8])
    e_wall, e_cpu = time.perf_counter(), time.process_time()
    embedder.embed_documents(texts)
    e_wall, e_cpu = time.perf_counter() - e_wall, time.process_time() - e_cpu
    result = {
        "docs": len(docs),
        "chunks": len(chunks),
        "chunker_chunks_per_s_wall": round(len(chunks) / wall, 1),
        "chunker_chunks_per_s_cpu": round(len(chunks) / cpu, 1),
        "embedder_chunks": len(texts),
        "embedder_chunks_per_s_wall": round(len(texts) / e_wall, 1),
        "embedder_chunks_per_s_cpu": round(len(texts) / e_cpu, 1),
    }
    print(f"(a) chunker alone, SciFact first {len(docs):,} docs -> {len(chunks):,} chunks")
    print(
        f"    chunker : {result['chunker_chunks_per_s_wall']:8.1f} chunks/s wall, "
        f"{result['chunker_chunks_per_s_cpu']:8.1f} chunks/s CPU"
    )
    print(
        f"    embedder: {result['embedder_chunks_per_s_wall']:8.1f} chunks/s wall, "
        f"{result['embedder_chunks_per_s_cpu']:8.1f} chunks/s CPU (local MiniLM, "
        f"{len(texts)} chunks)"
    )
    share = result["embedder_chunks_per_s_cpu"] / result["chunker_chunks_per_s_cpu"]
    print(f"    cutting costs {share:.1%} of the embedding CPU time")
    return result


# -- (b) ----------------------------------------------------------------------------------------
def make_folder(root: Path, per_kind: int = 50) -> Path:
    rng = np.random.default_rng(16)
    for i in range(per_kind):
        make_pdf(root / f"pdf/doc{i}.pdf", [paragraph(rng) for _ in range(3)])
        make_docx(
            root / f"docx/doc{i}.docx",
            [(1, f"Guide {i}", paragraph(rng)), (2, "Refunds", paragraph(rng))],
        )
        make_html(root / f"html/doc{i}.html", f"Page {i}", [("Shipping", paragraph(rng))] * 2)
        (root / f"md/doc{i}.md").write_text(
            f"---\ntitle: Note {i}\ntags: [t{i % 5}]\n---\n# Note {i}\n\n{paragraph(rng)}\n\n"
            f"## Details\n\n{paragraph(rng)}\n",
            encoding="utf-8",
        )
    return root


def bench_folder(client: Elasticsearch, url: str) -> dict:
    from essearch.embedders import create_embedder
    from essearch.settings import EmbedderSettings

    root = Path(tempfile.mkdtemp(prefix="bench-docs-"))
    for kind in ("pdf", "docx", "html", "md"):
        (root / kind).mkdir()
    make_folder(root)
    chunker = Chunker(default_config("local", None))
    start = time.perf_counter()
    items = list(load([root]))
    docs = [d for d in items if isinstance(d, Document)]
    chunks = sum(len(chunker.chunks(d)) for d in docs)
    convert_s = time.perf_counter() - start
    embedder = create_embedder(EmbedderSettings(provider="local"))
    name = "bench-docs-folder"
    drop(client, name)
    start = time.perf_counter()
    report = ingest(
        [root], settings=settings_for(url, name), client=client, embedder=embedder,
        options=IngestOptions(dead_letter=None),
    )  # fmt: skip
    ingest_s = time.perf_counter() - start
    drop(client, name)
    result = {
        "files": len(items),
        "documents": len(docs),
        "chunks": chunks,
        "convert_chunk_docs_per_s": round(len(docs) / convert_s, 1),
        "ingest_docs_per_s": round(report.documents / ingest_s, 2),
        "ingest_ok": report.ok,
    }
    print(f"(b) folder of {len(items)} generated files (PDF/DOCX/HTML/MD) -> {chunks} chunks")
    print(f"    load+convert+chunk: {result['convert_chunk_docs_per_s']:8.1f} docs/s")
    print(f"    full ingest (MiniLM, real node): {result['ingest_docs_per_s']:8.2f} docs/s")
    return result


# -- (c) ----------------------------------------------------------------------------------------
def vm(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_child(url: str, megabytes: int) -> None:
    rng = np.random.default_rng(megabytes)
    path = Path(tempfile.mkdtemp(prefix="bench-rss-")) / "one.txt"
    with path.open("w", encoding="utf-8") as out:
        written = 0
        while written < megabytes * 1_000_000:
            block = "\n\n".join(paragraph(rng, 80) for _ in range(200)) + "\n\n"
            out.write(block)
            written += len(block)
    client = Elasticsearch(url, request_timeout=120)
    embedder = HashEmbedder("bench/hash")
    name = f"bench-rss-doc-{megabytes}"
    create_index(client, name, embedder.info, "flat")
    base = vm("VmRSS")
    start = time.perf_counter()
    report = ingest(
        path, settings=settings_for(url, name), client=client, embedder=embedder,
        options=IngestOptions(dead_letter=None, init_index=False,
                              chunker=ChunkerConfig(size=1500, overlap=150)),
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    peak = vm("VmHWM")
    ok = report.ok and count(client, name) == report.chunks
    drop(client, name)
    print(json.dumps({"mb": megabytes, "chunks": report.chunks, "ok": ok,
                      "peak_rss_mib": round(peak, 1), "before_mib": round(base, 1),
                      "seconds": round(elapsed, 1)}))  # fmt: skip


def bench_rss(url: str, sizes: list[int]) -> dict:
    print("(c) peak RSS, one document per run (hash embedder, 1,500-char chunks, subprocess)")
    results = []
    for mb in sizes:
        out = subprocess.run(
            [sys.executable, __file__, "--es-url", url, "--rss-child", str(mb)],
            capture_output=True, text=True, check=True,
        ).stdout.strip().splitlines()[-1]  # fmt: skip
        data = json.loads(out)
        results.append(data)
        print(
            f"    {mb:>3} MB document ({data['chunks']:,} chunks): peak RSS "
            f"{data['peak_rss_mib']:.0f} MiB (before ingest {data['before_mib']:.0f}), "
            f"{data['seconds']:.0f} s, ok={data['ok']}"
        )
    if len(results) >= 2:
        ratio = results[-1]["peak_rss_mib"] / results[0]["peak_rss_mib"]
        print(f"    ratio {sizes[-1]} MB / {sizes[0]} MB peak RSS: {ratio:.2f}x (goal <= 2x)")
    return {"runs": results}


# -- (d) ----------------------------------------------------------------------------------------
def bench_precomputed(
    client: Elasticsearch, url: str, n: int, threads: int, rounds: int = 3
) -> dict:
    import pyarrow as pa
    import pyarrow.parquet as pq

    dims = 384
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((n, dims)).astype(np.float32)
    path = Path(tempfile.mkdtemp(prefix="bench-pre-")) / "embeddings.parquet"
    flat = pa.array(matrix.reshape(-1), type=pa.float32())
    pq.write_table(
        pa.table({
            "id": [f"r{i}" for i in range(n)],
            "text": [f"Precomputed passage {i} about refunds." for i in range(n)],
            "embedding": pa.FixedSizeListArray.from_arrays(flat, dims),
        }),
        path,
    )  # fmt: skip
    embedder = PrecomputedEmbedder("bench-precomputed", dims)
    stamp = "2026-01-01T00:00:00+00:00"
    origin = path.resolve().as_posix()  # what essearch records as each chunk's input

    def run_raw(numpy_rows: bool = False) -> float:
        """Rows as pyarrow gives them (`to_pylist`: Python floats), or with the vector column
        as numpy rows, as essearch reads it (float32 goes out in its short form)."""
        name = "bench-pre-raw"
        create_index(client, name, embedder.info, "int8_hnsw")
        start = time.perf_counter()
        table = pq.read_table(path)

        def actions():
            for batch in table.to_batches(2048):
                rows = batch.to_pylist()
                if numpy_rows:
                    column = batch.column("embedding").to_numpy(zero_copy_only=False)
                    for i, row in enumerate(rows):
                        row["embedding"] = column[i]
                for row in rows:
                    # the same chunk documents essearch writes (same fields and values,
                    # down to the language and the input each chunk records)
                    yield {
                        "_index": write_alias_for(name),
                        "_id": f"{row['id']}::0::{row['id']}",
                        "_source": {"id": row["id"], "doc_id": row["id"], "chunk": 0,
                                    "offset": 0, "gap": "", "title": None, "text": row["text"],
                                    "metadata": {}, "content_hash": row["id"],
                                    "indexed_at": stamp, "vector": row["embedding"],
                                    "language": "en", "source": origin},
                    }  # fmt: skip

        for ok, item in parallel_bulk(client, actions(), thread_count=threads, chunk_size=500):
            if not ok:
                raise RuntimeError(item)
        client.indices.refresh(index=name)
        elapsed = time.perf_counter() - start
        assert count(client, name) == n
        drop(client, name)
        return elapsed

    def run_essearch() -> float:
        name = "bench-pre-essearch"
        create_index(client, name, embedder.info, "int8_hnsw")
        start = time.perf_counter()
        report = ingest(
            path, settings=settings_for(url, name), client=client, embedder=embedder,
            options=IngestOptions(fields=FieldMap.of(vector="embedding"), dead_letter=None,
                                  bulk_threads=threads, bulk_chunk_size=500, embed_batch=1000,
                                  init_index=False),
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        assert report.ok and count(client, name) == n, report.to_dict()
        drop(client, name)
        return elapsed

    raw: list[float] = []
    raw_np: list[float] = []
    ess: list[float] = []
    for round_no in range(rounds):  # interleaved, the order alternating, best of each kept
        arms = [(raw, run_raw), (ess, run_essearch), (raw_np, lambda: run_raw(numpy_rows=True))]
        for times, arm in arms if round_no % 2 == 0 else arms[::-1]:
            times.append(arm())
    raw_s, ess_s, raw_np_s = min(raw), min(ess), min(raw_np)

    def rounded(times: list[float]) -> list[float]:
        return [round(x, 1) for x in times]

    print(f"    rounds (s): raw {rounded(raw)}, essearch {rounded(ess)}, "
          f"raw with numpy rows {rounded(raw_np)}")  # fmt: skip
    result = {
        "rows": n, "dims": dims, "threads": threads, "rounds": rounds,
        "raw_parallel_bulk_s": round(raw_s, 2), "essearch_s": round(ess_s, 2),
        "raw_numpy_rows_s": round(raw_np_s, 2),
        "ratio_of_raw_throughput": round(raw_s / ess_s, 3),
        "ratio_of_raw_numpy_rows_throughput": round(raw_np_s / ess_s, 3),
    }  # fmt: skip
    print(f"(d) {n:,} precomputed {dims}-d rows from Parquet, {threads} bulk threads")
    print(f"    raw parallel_bulk (to_pylist): {raw_s:7.2f} s  {n / raw_s:8.0f} rows/s")
    print(f"    raw parallel_bulk (numpy rows): {raw_np_s:6.2f} s  {n / raw_np_s:8.0f} rows/s")
    print(f"    essearch ingest  : {ess_s:7.2f} s  {n / ess_s:8.0f} rows/s  "
          f"ratio {raw_s / ess_s:.2f}x of raw throughput (goal >= 0.95x), "
          f"{raw_np_s / ess_s:.2f}x of raw with numpy rows")  # fmt: skip
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--scifact", type=Path, help="SciFact corpus.jsonl for (a)")
    parser.add_argument("--docs", type=int, default=1000, help="SciFact documents for (a)")
    parser.add_argument("--embed-sample", type=int, default=256, help="chunks embedded in (a)")
    parser.add_argument("--rss-sizes", default="1,50", help="document sizes in MB for (c)")
    parser.add_argument("--rows", type=int, default=20_000, help="rows for (d)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each arm in (d)")
    parser.add_argument("--parts", default="a,b,c,d")
    parser.add_argument("--json-out", type=Path)
    parser.add_argument("--rss-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.es_url:
        parser.error("--es-url (or ESSEARCH_ES_URL) is needed")
    if args.rss_child:
        rss_child(args.es_url, args.rss_child)
        return
    from essearch.es import make_client

    # essearch's client (orjson serializer) for both sides of every comparison
    client = make_client(settings_for(args.es_url, "bench"))
    client = client.options(request_timeout=120)
    parts = set(args.parts.split(","))
    figures: dict[str, dict] = {}
    print(f"Elasticsearch at {args.es_url}; {os.cpu_count()} CPUs")
    if "a" in parts:
        if args.scifact is None:
            print("(a) skipped: pass --scifact PATH/corpus.jsonl")
        else:
            figures["chunker"] = bench_chunker(args.scifact, args.docs, args.embed_sample)
    if "b" in parts:
        figures["folder"] = bench_folder(client, args.es_url)
    if "c" in parts:
        figures["rss"] = bench_rss(args.es_url, [int(x) for x in args.rss_sizes.split(",")])
    if "d" in parts:
        figures["precomputed"] = bench_precomputed(
            client, args.es_url, args.rows, args.threads, args.rounds
        )
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
