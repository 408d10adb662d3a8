"""Local embedder throughput (texts/s) by batch size and text length, and cache-hit throughput.

Prints a table; ratios are against a baseline measured in the same run (batch 16 for the model,
the model at batch 64 for the cache), so figures compare across machines.

    python benchmarks/bench_embedders.py --short-count 512 --long-count 96
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

WORDS = [
    "search",
    "vector",
    "index",
    "query",
    "document",
    "model",
    "embedding",
    "cluster",
    "shard",
    "token",
    "semantic",
    "hybrid",
    "ranking",
    "score",
    "field",
    "mapping",
    "text",
    "analyzer",
    "retrieval",
    "dense",
    "sparse",
    "filter",
    "alias",
    "node",
    "batch",
    "cache",
    "latency",
    "throughput",
    "memory",
    "network",
    "disk",
    "replica",
    "segment",
    "merge",
    "refresh",
    "inference",
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "on",
    "with",
    "as",
    "by",
    "at",
    "from",
    "it",
    "this",
    "be",
    "are",
    "was",
    "were",
]


def make_texts(count: int, words: int, seed: int) -> list[str]:
    """Unique synthetic texts of about `words` words (unique so the cache cannot dedupe)."""
    rng = random.Random(seed)
    return [f"{i}: " + " ".join(rng.choice(WORDS) for _ in range(words)) for i in range(count)]


def throughput(embed, texts: list[str], batch_size: int) -> float:
    started = time.perf_counter()
    for start in range(0, len(texts), batch_size):
        embed(texts[start : start + batch_size])
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short-count", type=int, default=512, help="short texts (~12 words)")
    parser.add_argument("--long-count", type=int, default=96, help="long texts (~200 words)")
    parser.add_argument("--batch-sizes", default="16,64,256")
    parser.add_argument("--device", default=None, help="cpu, cuda ... (default: auto)")
    parser.add_argument("--model", default=None, help="local model (default: packaged MiniLM)")
    args = parser.parse_args()

    from essearch.embedders.cache import CachedEmbedder
    from essearch.embedders.local import LocalEmbedder

    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    embedder = LocalEmbedder(args.model, device=args.device)
    embedder.embed_documents(make_texts(32, 12, seed=0))  # load and warm up
    console = Console()
    device = embedder.sentence_transformer.device
    table = Table(title=f"local embedder · {embedder.model} · {embedder.dims} dims · {device}")
    for column in ("texts", "count", "batch", "texts/s", "vs batch 16"):
        table.add_column(column, justify="right" if column != "texts" else "left")

    results: dict[tuple[str, int], float] = {}
    for label, count, words, seed in (
        ("short (~12 words)", args.short_count, 12, 1),
        ("long (~200 words)", args.long_count, 200, 2),
    ):
        for batch_size in batch_sizes:
            texts = make_texts(count, words, seed=seed * 1000 + batch_size)
            embedder.batch_size = batch_size
            rate = throughput(embedder.embed_documents, texts, batch_size)
            results[(label, batch_size)] = rate
            baseline = results.get((label, batch_sizes[0]), rate)
            table.add_row(
                label, str(count), str(batch_size), f"{rate:,.1f}", f"{rate / baseline:.2f}x"
            )
    console.print(table)

    # Cache: fill once (misses: model + store), then read back (hits only).
    embedder.batch_size = 64
    texts = make_texts(args.short_count, 12, seed=99)
    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedEmbedder(embedder, Path(tmp) / "cache.sqlite")
        miss_rate = throughput(cached.embed_documents, texts, 64)
        hit_rate = throughput(cached.embed_documents, texts, 64)
        stats = str(cached.stats)
        cached.cache.close()
    model_rate = results.get(("short (~12 words)", 64)) or miss_rate
    cache_table = Table(title=f"embedding cache (SQLite, float32) · batch 64 · {stats}")
    for column in ("path", "texts/s", "vs model at batch 64"):
        cache_table.add_column(column, justify="right" if column != "path" else "left")
    cache_table.add_row("model, no cache", f"{model_rate:,.1f}", "1.00x")
    cache_table.add_row(
        "cache miss (model + store)", f"{miss_rate:,.1f}", f"{miss_rate / model_rate:.2f}x"
    )
    cache_table.add_row("cache hit", f"{hit_rate:,.1f}", f"{hit_rate / model_rate:.1f}x")
    console.print(cache_table)


if __name__ == "__main__":
    main()
