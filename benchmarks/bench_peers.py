"""essearch against its peers on one node, with the same precomputed SciFact vectors.

    python benchmarks/bench_peers.py --data ../shared/data/scifact --es-url http://127.0.0.1:9200

Each peer runs in its own virtualenv (made here under benchmarks/out/peers/venvs/, since they pin
the 8.x client): langchain-elasticsearch, llama-index's Elasticsearch store and
elasticsearch-haystack. essearch runs in this interpreter through its LangChain retriever
adapter. Every system indexes the same vectors (all-MiniLM-L6-v2 over "title\\ntext", computed
once and cached), answers the same 300 test queries with the query vectors handed in (embedding
excluded from latency), and reports its BM25, kNN and default hybrid. A system whose default
fails on this node is recorded as failing, with the server's message.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
PEERS = {
    "langchain-elasticsearch": ("langchain_es.py", ["langchain-elasticsearch"]),
    "llama-index-es": ("llamaindex_es.py", ["llama-index-vector-stores-elasticsearch"]),
    "elasticsearch-haystack": ("haystack_es.py", ["elasticsearch-haystack"]),
}


def load_beir(data: Path) -> tuple[list[dict[str, Any]], dict[str, str], dict[str, dict[str, int]]]:
    docs = [json.loads(line) for line in (data / "corpus.jsonl").open()]
    queries = {}
    for line in (data / "queries.jsonl").open():
        row = json.loads(line)
        queries[row["_id"]] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    for line in (data / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        qid, did, score = line.split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    return docs, {q: queries[q] for q in sorted(qrels)}, qrels


def embed_text(doc: dict[str, Any]) -> str:
    """What every system's vectors are computed from (essearch's embed text of a one-chunk doc)."""
    title = doc.get("title") or ""
    return f"{title}\n{doc['text']}" if title else doc["text"]


def vectors(
    docs: list[dict[str, Any]], queries: dict[str, str], cache: Path
) -> tuple[np.ndarray, np.ndarray]:
    if cache.exists():
        saved = np.load(cache)
        if list(saved["doc_ids"]) == [d["_id"] for d in docs] and list(saved["query_ids"]) == list(
            queries
        ):
            return saved["doc_vectors"], saved["query_vectors"]
    from essearch.embedders import create_embedder
    from essearch.settings import EmbedderSettings

    print(f"embedding {len(docs)} documents and {len(queries)} queries (cached in {cache})")
    embedder = create_embedder(EmbedderSettings(provider="local"))
    doc_vectors = np.array(embedder.embed_documents([embed_text(d) for d in docs]), np.float32)
    query_vectors = np.array([embedder.embed_query(t) for t in queries.values()], np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        cache,
        doc_ids=np.array([d["_id"] for d in docs]),
        doc_vectors=doc_vectors,
        query_ids=np.array(list(queries)),
        query_vectors=query_vectors,
    )
    return doc_vectors, query_vectors


def write_input(
    path: Path,
    docs: list[dict[str, Any]],
    queries: dict[str, str],
    doc_vectors: np.ndarray,
    query_vectors: np.ndarray,
) -> None:
    with path.open("w") as out:
        for doc, vec in zip(docs, doc_vectors, strict=True):
            row = {"id": doc["_id"], "title": doc.get("title") or "", "text": doc["text"]}
            out.write(json.dumps({"doc": {**row, "vector": vec.tolist()}}) + "\n")
        for (qid, text), vec in zip(queries.items(), query_vectors, strict=True):
            out.write(
                json.dumps({"query": {"id": qid, "text": text, "vector": vec.tolist()}}) + "\n"
            )


def peer_python(name: str, packages: list[str], root: Path) -> Path:
    venv = root / "venvs" / name
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"[{name}] creating a virtualenv and installing {' '.join(packages)}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages, "numpy"], check=True)
    return python


def metrics(
    runs: dict[str, dict[str, float]], qrels: dict[str, dict[str, int]]
) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate

    run = {qid: runs.get(qid) or {"__none__": 0.0} for qid in qrels}
    scores = evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@100"], make_comparable=True)
    return {k: float(v) for k, v in scores.items()}


def run_essearch(input_path: Path, es_url: str, k_latency: int) -> dict[str, Any]:
    """essearch through its LangChain retriever, vectors looked up instead of computed."""
    sys.path.insert(0, str(HERE / "peers"))
    from essearch_adapter import run as run_adapter

    return run_adapter(input_path, es_url, f"peer-essearch-{uuid.uuid4().hex[:6]}", k_latency)


def summarise(name: str, result: dict[str, Any], qrels: dict[str, dict[str, int]]) -> list[str]:
    lines = []
    for mode, entry in result.items():
        if entry.get("error"):
            how = entry.get("how", "")
            lines.append(f"| {name} | {mode} {how} | fails: {entry['error'][:90]} | | | |")
            continue
        m = metrics(entry["runs"], qrels)
        lat = entry.get("latency_ms") or []
        p50 = statistics.median(lat) if lat else float("nan")
        p95 = float(np.percentile(lat, 95)) if lat else float("nan")
        how = entry.get("how", "")
        lines.append(
            f"| {name} | {mode} {how} | {m['ndcg@10']:.3f} | {m['recall@100']:.3f} | "
            f"{p50:.1f} | {p95:.1f} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a BEIR folder (SciFact)")
    parser.add_argument("--es-url", required=True)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "peers")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--k-latency", type=int, default=10)
    args = parser.parse_args()

    started = time.monotonic()
    docs, queries, qrels = load_beir(args.data)
    doc_vectors, query_vectors = vectors(docs, queries, args.out / "scifact-minilm.npz")
    args.out.mkdir(parents=True, exist_ok=True)
    input_path = args.out / "input.jsonl"
    write_input(input_path, docs, queries, doc_vectors, query_vectors)

    results: dict[str, dict[str, Any]] = {}
    print("[essearch] indexing and querying in-process")
    results["essearch"] = run_essearch(input_path, args.es_url, args.k_latency)
    for name in [p for p in args.peers.split(",") if p in PEERS]:
        script, packages = PEERS[name]
        python = peer_python(name, packages, args.out)
        output = args.out / f"{name}.json"
        print(f"[{name}] indexing and querying")
        proc = subprocess.run(
            [
                str(python),
                str(HERE / "peers" / script),
                "--input",
                str(input_path),
                "--es-url",
                args.es_url,
                "--index",
                f"peer-{name}-{uuid.uuid4().hex[:6]}",
                "--output",
                str(output),
                "--k-latency",
                str(args.k_latency),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            results[name] = {
                m: {"error": proc.stderr.strip().splitlines()[-1]}
                for m in ("bm25", "knn", "hybrid")
            }
            continue
        results[name] = json.loads(output.read_text())

    print(f"\nSciFact, {len(qrels)} test queries, same vectors; latency at k={args.k_latency}, ms")
    print("| system | run | nDCG@10 | Recall@100 | p50 | p95 |")
    print("|---|---|---|---|---|---|")
    for name, result in results.items():
        for line in summarise(name, result, qrels):
            print(line)
    print(f"\nwall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
