"""Chinese/CJK BM25: segmentation cost and BM25 quality with and without the CJK word field.

Two parts, each against a baseline measured in the same run:

1. Segmentation cost (chunks/s) of what ingest adds per chunk (`language_fields`: language,
   OpenCC fold, segmentation) with rjieba and with jieba, next to language detection alone.
2. BM25 nDCG@10 / Recall@100 (`essearch.eval`, ranx) on BEIR-layout Chinese sets, for the
   default definition (the CJK word field) and for the same definition without that field
   (the baseline: `standard` character unigrams only). Only BM25 is measured, so the index is
   built with constant vectors (no model runs); chunking is MiniLM's default, as in `essearch
   eval` with the default embedder.

    python benchmarks/bench_cjk.py --data ../shared/data --sets cmrc2018,drcd --es-url URL
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from essearch.embedders.base import Embedder
from essearch.index.schema import CJK_FIELD, LANGUAGE_FIELD
from essearch.settings import Settings
from essearch.text import cjk
from essearch.text.fields import language_fields
from essearch.text.languages import detect_language

DIMS = 384


class ConstantEmbedder(Embedder):
    """One fixed unit vector for every text: BM25 runs need an index, not meaningful vectors.
    Named like the default model so the default (MiniLM-token) chunking applies."""

    provider = "local"

    def __init__(self) -> None:
        super().__init__("all-MiniLM-L6-v2", dims=DIMS, normalize=True)

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return [[1.0 / math.sqrt(DIMS)] * DIMS for _ in texts]


def corpus_texts(dataset: Path, limit: int) -> list[str]:
    texts = []
    with (dataset / "corpus.jsonl").open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            texts.append(f"{record.get('title', '')}\n{record.get('text', '')}")
            if len(texts) >= limit:
                break
    return texts


def rate(fn: Any, texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        fn(text)
    return len(texts) / (time.perf_counter() - started)


def segmentation(texts: list[str]) -> dict[str, float]:
    """chunks/s of each step, with both segmenters (the cache of the chosen one is swapped)."""
    figures = {"detect_language only (baseline)": rate(detect_language, texts)}
    figures["fold only (OpenCC table)"] = rate(cjk.fold, texts)
    for name in ("rjieba", "jieba"):
        cjk._segmenters.cache_clear()
        if name == "jieba":
            import jieba

            jieba.setLogLevel(60)
            jieba.initialize()
            original = cjk._segmenters
            cjk._segmenters = lambda: ("jieba", jieba.lcut_for_search, jieba.lcut)  # type: ignore[assignment]
            try:
                figures[f"language_fields, {name}"] = rate(
                    lambda t: language_fields(None, t), texts
                )
            finally:
                cjk._segmenters = original  # type: ignore[assignment]
        else:
            figures[f"language_fields, {name}"] = rate(lambda t: language_fields(None, t), texts)
    return figures


def without_cjk_definition(directory: Path) -> str:
    path = directory / "no-cjk.json"
    path.write_text(
        json.dumps(
            {
                "description": "baseline: the default definition without the CJK word field",
                "extends": "default",
                "mappings": {"properties": {CJK_FIELD: None, LANGUAGE_FIELD: None}},
            }
        )
    )
    return str(path)


def bm25(dataset: Path, es_url: str, definition: str, prefix: str) -> dict[str, float]:
    from essearch.eval.runner import evaluate_dataset

    settings = Settings(es={"url": es_url}, index={"definition": definition, "replicas": 0})  # type: ignore[arg-type]
    report = evaluate_dataset(
        str(dataset),
        settings=settings,
        modes=("bm25",),
        embedder=ConstantEmbedder(),
        index_prefix=prefix,
    )
    result = report.results[0]
    return {**result.metrics, "queries": result.queries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--sets", default="cmrc2018,drcd")
    parser.add_argument("--es-url", default=os.environ.get("ESSEARCH_ES_URL"))
    parser.add_argument("--segment-chunks", type=int, default=1000)
    parser.add_argument("--skip-eval", action="store_true")
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    sets = [s for s in args.sets.split(",") if s]
    figures: dict[str, Any] = {}

    texts = corpus_texts(args.data / sets[0], args.segment_chunks)
    figures["segmentation_chunks_per_s"] = seg = segmentation(texts)
    print(f"segmentation on {len(texts)} {sets[0]} passages (chunks/s)")
    for name, value in seg.items():
        print(f"  {name:40s} {value:10,.0f}")

    if not args.skip_eval:
        with tempfile.TemporaryDirectory() as tmp:
            baseline = without_cjk_definition(Path(tmp))
            for name in sets:
                before = bm25(args.data / name, args.es_url, baseline, "bench-cjk-before")
                after = bm25(args.data / name, args.es_url, "default", "bench-cjk-after")
                figures[name] = {"unigrams (baseline)": before, "CJK word field": after}
                print(f"\n{name}: BM25")
                for label, result in figures[name].items():
                    shown = ", ".join(
                        f"{k} {v:.3f}"
                        for k, v in result.items()
                        if k.startswith(("ndcg", "recall", "mrr"))
                    )
                    print(f"  {label:22s} {shown}")
    if args.json_out:
        args.json_out.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
