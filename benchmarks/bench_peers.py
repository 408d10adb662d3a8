"""essearch against its peers on one node, with the same precomputed SciFact vectors.

    python benchmarks/bench_peers.py --data ../shared/data/scifact --es-url http://127.0.0.1:9200

Each peer runs in its own virtualenv (made here under benchmarks/out/peers/venvs/, since they pin
the 8.x client): langchain-elasticsearch, llama-index's Elasticsearch store and
elasticsearch-haystack. essearch runs in this interpreter through its LangChain retriever
adapter. Every system indexes the same vectors (all-MiniLM-L6-v2 over "title\\ntext", computed
once and cached), answers the same 300 test queries with the query vectors handed in (embedding
excluded from latency), and reports its BM25, kNN and default hybrid. A system whose default
fails on this node is recorded as failing, with the server's message.

Latency is measured in --rounds rounds: after the first pass every system stays up, and each is
asked in turn for another pass over the queries, the order rotated every round, so a noisy moment
of the machine does not fall on one system only. p50 is the median of the rounds' p50s.
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


def start_essearch(input_path: Path, es_url: str, k_latency: int) -> Any:
    """essearch through its LangChain retriever, vectors looked up instead of computed."""
    sys.path.insert(0, str(HERE / "peers"))
    from essearch_adapter import EssearchSystem

    return EssearchSystem(input_path, es_url, f"peer-essearch-{uuid.uuid4().hex[:6]}", k_latency)


class PeerWorker:
    """A peer's script in its own virtualenv, kept running to answer latency rounds."""

    def __init__(self, name: str, python: Path, input_path: Path, args: argparse.Namespace) -> None:
        self.name = name
        self.output = args.out / f"{name}.json"
        self.errors = (args.out / f"{name}.stderr").open("w")
        self.proc = subprocess.Popen(
            [
                str(python), str(HERE / "peers" / PEERS[name][0]), "--input", str(input_path),
                "--es-url", args.es_url, "--index", f"peer-{name}-{uuid.uuid4().hex[:6]}",
                "--output", str(self.output), "--k-latency", str(args.k_latency), "--serve",
            ],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors, text=True,
        )  # fmt: skip

    def _reply(self) -> str | None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("@@"):
                return line[2:].strip()
        return None

    def first_pass(self) -> dict[str, Any]:
        if self._reply() != "ready":
            self.proc.wait()
            self.errors.flush()
            lines = (self.output.parent / f"{self.name}.stderr").read_text().strip().splitlines()
            last = lines[-1] if lines else f"exit status {self.proc.returncode}"
            return {m: {"error": last} for m in ("bm25", "knn", "hybrid")}
        result: dict[str, Any] = json.loads(self.output.read_text())
        return result

    def latency(self, run: str) -> list[float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(run + "\n")
        self.proc.stdin.flush()
        reply = self._reply()
        if reply is None:
            raise RuntimeError(f"{self.name} stopped during the latency rounds")
        timings: list[float] = json.loads(reply)
        return timings

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=300)
        self.errors.close()


def summarise(name: str, result: dict[str, Any], qrels: dict[str, dict[str, int]]) -> list[str]:
    lines = []
    for mode, entry in result.items():
        if entry.get("error"):
            how = entry.get("how", "")
            lines.append(f"| {name} | {mode} {how} | fails: {entry['error'][:90]} | | | | |")
            continue
        m = metrics(entry["runs"], qrels)
        rounds = entry.get("rounds") or [entry.get("latency_ms") or []]
        pooled = [ms for timings in rounds for ms in timings]
        round_p50s = [statistics.median(timings) for timings in rounds if timings]
        p50 = statistics.median(round_p50s) if round_p50s else float("nan")
        p95 = float(np.percentile(pooled, 95)) if pooled else float("nan")
        how = entry.get("how", "")
        each = " / ".join(f"{x:.1f}" for x in round_p50s)
        lines.append(
            f"| {name} | {mode} {how} | {m['ndcg@10']:.3f} | {m['recall@100']:.3f} | "
            f"{p50:.1f} | {p95:.1f} | {each} |"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="a BEIR folder (SciFact)")
    parser.add_argument("--es-url", required=True)
    parser.add_argument("--out", type=Path, default=HERE / "out" / "peers")
    parser.add_argument("--peers", default=",".join(PEERS), help="comma-separated subset")
    parser.add_argument("--k-latency", type=int, default=10)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="latency rounds per system, interleaved (the first pass is one)",
    )
    args = parser.parse_args()

    started = time.monotonic()
    docs, queries, qrels = load_beir(args.data)
    doc_vectors, query_vectors = vectors(docs, queries, args.out / "scifact-minilm.npz")
    args.out.mkdir(parents=True, exist_ok=True)
    input_path = args.out / "input.jsonl"
    write_input(input_path, docs, queries, doc_vectors, query_vectors)

    # First pass, one system at a time: index, quality at k=100, one latency pass. Every system
    # then stays up (index and clients warm) for the latency rounds.
    systems: dict[str, Any] = {}
    results: dict[str, dict[str, Any]] = {}
    print("[essearch] indexing and querying in-process")
    systems["essearch"] = start_essearch(input_path, args.es_url, args.k_latency)
    results["essearch"] = systems["essearch"].first_pass()
    for name in [p for p in args.peers.split(",") if p in PEERS]:
        python = peer_python(name, PEERS[name][1], args.out)
        print(f"[{name}] indexing and querying")
        worker = PeerWorker(name, python, input_path, args)
        results[name] = worker.first_pass()
        if worker.proc.poll() is None:
            systems[name] = worker

    # Latency rounds: each system in turn, the order rotated every round, so the machine's noisy
    # moments are shared out. p50 is the median of the rounds' p50s; p95 pools every round.
    for entry in (e for r in results.values() for e in r.values() if not e.get("error")):
        entry["rounds"] = [entry["latency_ms"]]
    names = list(systems)
    for round_no in range(1, args.rounds):
        order = names[round_no % len(names) :] + names[: round_no % len(names)]
        print(f"latency round {round_no + 1}/{args.rounds}: {', '.join(order)}")
        for name in order:
            for run, entry in results[name].items():
                if not entry.get("error"):
                    entry["rounds"].append(systems[name].latency(run))
    for system in systems.values():
        system.close()

    print(f"\nSciFact, {len(qrels)} test queries, same vectors; latency at k={args.k_latency}, ms")
    print("| system | run | nDCG@10 | Recall@100 | p50 | p95 | p50 of each round |")
    print("|---|---|---|---|---|---|---|")
    for name, result in results.items():
        for line in summarise(name, result, qrels):
            print(line)
    print(f"\nwall time {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
