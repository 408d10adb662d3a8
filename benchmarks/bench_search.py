"""Search latency: essearch vs the raw client sending the same body; client-side RRF vs `weighted`.

Builds a throw-away index of synthetic chunks (random unit vectors, word-salad text), then for each
query runs essearch's `SearchClient.search(...)` and the raw `Elasticsearch.search(body=...)` with
the body essearch sent, interleaved. Query embeddings are pre-computed and served from the
client's LRU cache, so embedding time is excluded. Prints p50/p95 per mode and the ratios.

    ESSEARCH_ES_URL=http://127.0.0.1:19200 python benchmarks/bench_search.py --queries 200

Fusion quality (which fallback `auto` should use) on a BEIR set already indexed by essearch:

    python benchmarks/bench_search.py --quality /work/shared/data/scifact --index <alias>
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import statistics
import time
import uuid

from elasticsearch import Elasticsearch, helpers

from essearch.embedders.base import Embedder
from essearch.index import IndexManager
from essearch.retrieval import SearchClient
from essearch.settings import Settings

WORDS = [
    "solar",
    "wind",
    "energy",
    "panel",
    "cat",
    "dog",
    "bread",
    "ocean",
    "coral",
    "reef",
    "mountain",
    "river",
    "protein",
    "cell",
    "gene",
    "virus",
    "vaccine",
    "memory",
    "network",
    "packet",
    "python",
    "rust",
    "compiler",
    "theorem",
    "proof",
]
DIMS = 384


class HashEmbedder(Embedder):
    """Deterministic pseudo-embeddings: the benchmark measures search, not the model."""

    provider = "bench"

    def __init__(self) -> None:
        super().__init__("hash-384", dims=DIMS, normalize=True)

    def _embed(self, texts: list[str]) -> list[list[float]]:
        out = []
        for text in texts:
            rnd = random.Random(hashlib.sha1(text.encode()).digest())
            vec = [rnd.gauss(0, 1) for _ in range(DIMS)]
            norm = sum(v * v for v in vec) ** 0.5
            out.append([v / norm for v in vec])
        return out

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    def embed_query(self, text: str) -> list[float]:
        return self._embed([text])[0]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--es-url", default=os.environ.get("ESSEARCH_ES_URL", "http://127.0.0.1:9200")
    )
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--window", type=int, help="rank_window_size (hits per leg) for hybrid")
    parser.add_argument("--quality", metavar="BEIR_DIR", help="measure fusion quality instead")
    parser.add_argument("--index", help="with --quality: the essearch index (alias) of that set")
    args = parser.parse_args()
    if args.quality:
        fusion_quality(args.quality, args.index, args.es_url, [10, 50, 100])
        return

    name = f"bench-search-{uuid.uuid4().hex[:6]}"
    settings = Settings(es={"url": args.es_url}, index={"name": name, "replicas": 0})
    embedder = HashEmbedder()
    raw = Elasticsearch(args.es_url, request_timeout=60)
    rnd = random.Random(7)
    try:
        IndexManager(raw, settings, embedder=embedder.info).init()
        texts = [" ".join(rnd.choices(WORDS, k=rnd.randint(20, 80))) for _ in range(args.docs)]
        vectors = embedder.embed_documents(texts)
        helpers.bulk(
            raw,
            (
                {
                    "_index": f"{name}-write",
                    "_id": f"c{i}",
                    "_source": {
                        "id": f"c{i}",
                        "doc_id": f"d{i // 3}",
                        "title": " ".join(text.split()[:4]),
                        "text": text,
                        "metadata": {"n": i},
                        "vector": vec,
                    },
                }
                for i, (text, vec) in enumerate(zip(texts, vectors, strict=True))
            ),
            chunk_size=500,
            refresh=True,
        )
        raw.indices.forcemerge(index=name, max_num_segments=1)
        queries = [" ".join(rnd.choices(WORDS, k=3)) for _ in range(args.queries)]
        configs = {
            "bm25": {"mode": "bm25"},
            "knn": {"mode": "knn"},
            "weighted": {"mode": "hybrid", "fusion": "weighted"},
            "client-rrf": {"mode": "hybrid", "fusion": "client-rrf"},
            "client-linear": {"mode": "hybrid", "fusion": "client-linear"},
        }
        if args.window:
            for label in ("weighted", "client-rrf", "client-linear"):
                configs[label]["rank_window_size"] = args.window
        with SearchClient(settings, embedder=embedder) as client:
            for query in queries:  # warm: embeddings cached, guard checked, JIT/caches hot
                for options in configs.values():
                    client.search(query, k=args.k, **options)
            timings: dict[str, dict[str, list[float]]] = {
                label: {"essearch": [], "raw": []} for label in configs
            }
            for query in queries:
                for label, options in configs.items():
                    bodies = client.search(
                        query, k=args.k, explain=True, **options
                    ).explain.requests
                    t0 = time.perf_counter()
                    client.search(query, k=args.k, **options)
                    timings[label]["essearch"].append((time.perf_counter() - t0) * 1000)
                    t0 = time.perf_counter()
                    if len(bodies) == 1:
                        raw.search(index=name, body=bodies[0])
                    else:
                        searches = []
                        for body in bodies:
                            searches += [{"index": name}, body]
                        raw.msearch(searches=searches)
                    timings[label]["raw"].append((time.perf_counter() - t0) * 1000)

        print(
            f"index: {args.docs} chunks, {DIMS} dims; {args.queries} queries, k={args.k}, "
            f"window={args.window or 'default'}"
        )
        print(
            f"{'mode':<14} {'essearch p50':>12} {'p95':>8} {'raw p50':>9} {'p95':>8} "
            f"{'overhead p50':>13}"
        )
        for label, t in timings.items():
            e50, e95 = statistics.median(t["essearch"]), pct(t["essearch"], 0.95)
            r50, r95 = statistics.median(t["raw"]), pct(t["raw"], 0.95)
            print(
                f"{label:<14} {e50:>10.2f}ms {e95:>6.2f}ms {r50:>7.2f}ms {r95:>6.2f}ms "
                f"{e50 - r50:>+11.2f}ms"
            )
        w50 = statistics.median(timings["weighted"]["essearch"])
        for label in ("client-rrf", "client-linear"):
            c50 = statistics.median(timings[label]["essearch"])
            print(
                f"{label} vs one weighted request (p50): {c50:.2f} / {w50:.2f} ms = "
                f"{c50 / w50:.2f}x"
            )
    finally:
        for index in raw.indices.get(index=f"{name}*", expand_wildcards="all").body:
            raw.indices.delete(index=index, ignore_unavailable=True)
        quiet = raw.options(ignore_status=404)
        for tpl in quiet.indices.get_index_template(name=f"{name}*").body.get(
            "index_templates", []
        ):
            quiet.indices.delete_index_template(name=tpl["name"])
        raw.close()


def fusion_quality(data: str, index: str, es_url: str, windows: list[int]) -> None:
    """nDCG@10 / Recall@100 of each fusion on a BEIR set indexed by essearch (eval index)."""
    from ranx import Qrels, Run, evaluate

    from essearch.embedders import create_embedder
    from essearch.eval.beir import load_beir
    from essearch.retrieval import fusion

    dataset = load_beir(data)
    settings = Settings(es={"url": es_url}, index={"name": index})
    deepest = max(windows)
    legs: dict[str, dict[str, list[tuple[str, float]]]] = {}
    with SearchClient(settings, embedder=create_embedder(settings)) as client:
        for qid, text in dataset.queries.items():
            common = {"k": deepest, "collapse": True, "explain": False}
            bm25 = client.search(text, mode="bm25", **common)
            knn = client.search(text, mode="knn", **common)
            legs[qid] = {
                "bm25": [(h.doc_id or h.id, h.score or 0.0) for h in bm25.hits],
                "knn": [(h.doc_id or h.id, h.score or 0.0) for h in knn.hits],
            }
    qrels = Qrels(dataset.qrels)

    def score(runs: dict[str, list[tuple[str, float]]]) -> str:
        run = Run({qid: {doc: s for doc, s in ranked} for qid, ranked in runs.items()})
        result = evaluate(qrels, run, ["ndcg@10", "recall@100"])
        return f"nDCG@10 {result['ndcg@10']:.3f}  R@100 {result['recall@100']:.3f}"

    print(f"{dataset.name}: {len(legs)} queries, index {index}")
    print(f"  {'bm25':<28} {score({q: v['bm25'] for q, v in legs.items()})}")
    print(f"  {'knn':<28} {score({q: v['knn'] for q, v in legs.items()})}")
    for window in windows:
        cut = {q: {leg: ranked[:window] for leg, ranked in v.items()} for q, v in legs.items()}
        rrf = {q: fusion.rrf(v) for q, v in cut.items()}
        print(f"  {f'rrf k=60 window={window}':<28} {score(rrf)}")
        for w in (0.3, 0.5, 0.7):
            lin = {q: fusion.linear(v, weights=fusion.knn_weights(w)) for q, v in cut.items()}
            print(f"  {f'minmax w_knn={w} window={window}':<28} {score(lin)}")


if __name__ == "__main__":
    main()
