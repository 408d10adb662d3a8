"""essearch's side of bench_peers.py: ingest and query through the LangChain retriever adapter.

The vectors are the benchmark's precomputed ones, handed in by an embedder that looks them up by
text, so essearch indexes and queries exactly what the peers do.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from essearch.embedders.base import Embedder
from essearch.index.chunking import ChunkerConfig
from essearch.ingest import IngestOptions, ingest
from essearch.integrations.langchain import EssearchRetriever
from essearch.settings import Settings


class LookupEmbedder(Embedder):
    """Precomputed vectors by text; the index records the model they came from."""

    provider = "local"

    def __init__(self, table: dict[str, list[float]]) -> None:
        super().__init__("sentence-transformers/all-MiniLM-L6-v2", dims=384, normalize=True)
        self.table = table
        self.normalizes_itself = True

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return [self.table[t.strip()] for t in texts]


def _load(path: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    docs, queries = [], []
    for line in path.open():
        row = json.loads(line)
        (docs if "doc" in row else queries).append(row.get("doc") or row["query"])
    return docs, queries


class EssearchSystem:
    """essearch's side of the benchmark: the index and one retriever per mode, kept open so
    bench_peers.py can ask for latency rounds between the peers' rounds."""

    def __init__(self, input_path: Path, es_url: str, index: str, k_latency: int) -> None:
        docs, self.queries = _load(input_path)
        table = {
            (f"{d['title']}\n{d['text']}" if d["title"] else d["text"]).strip(): d["vector"]
            for d in docs
        }
        table.update({q["text"].strip(): q["vector"] for q in self.queries})
        self.embedder = LookupEmbedder(table)
        self.index = index
        self.k_latency = k_latency
        self.settings = Settings(es={"url": es_url}, index={"name": index, "replicas": 0})
        records = [{"id": d["id"], "title": d["title"], "text": d["text"]} for d in docs]
        report = ingest(
            records,
            settings=self.settings,
            embedder=self.embedder,
            # one chunk per abstract, so the stored vector is the benchmark's own
            options=IngestOptions(dead_letter=None, chunker=ChunkerConfig(size=100_000, overlap=0)),
        )
        assert report.ok, report.to_dict()
        self.retrievers = {
            mode: EssearchRetriever(
                settings=self.settings, mode=mode, k=100, embedding=self.embedder
            )
            for mode in ("bm25", "knn", "hybrid")
        }

    def latency(self, mode: str) -> list[float]:
        retriever = self.retrievers[mode]
        timings: list[float] = []
        for query in self.queries:
            started = time.perf_counter()
            retriever.invoke(query["text"], k=self.k_latency)
            timings.append((time.perf_counter() - started) * 1000)
        return timings

    def first_pass(self) -> dict[str, Any]:
        """Quality at k=100 and a first latency pass per mode."""
        result: dict[str, Any] = {}
        for mode, retriever in self.retrievers.items():
            runs: dict[str, dict[str, float]] = {}
            for query in self.queries:
                documents = retriever.invoke(query["text"])
                runs[query["id"]] = {
                    d.id: float(d.metadata["essearch"]["score"] or 0.0) for d in documents if d.id
                }
            how = "(auto)" if mode == "hybrid" else ""
            result[mode] = {"runs": runs, "latency_ms": self.latency(mode), "how": how}
        return result

    def close(self) -> None:
        from essearch.es.client import make_client

        for retriever in self.retrievers.values():
            retriever.close()
        with make_client(self.settings) as client:
            for name in client.indices.get(index=f"{self.index}*", expand_wildcards="all").body:
                client.indices.delete(index=name)
