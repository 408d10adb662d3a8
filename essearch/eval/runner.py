"""Runs every judged query in each mode, turns hits into document runs and scores them with ranx.

A `RunSpec` is one configuration (mode, fusion and its parameters). Each spec gets its own
`SearchClient` (sharing the Elasticsearch client and the embedder) so its latency includes
embedding the query, as a user's search would; the sweep shares one client so each query is
embedded once for the whole grid.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from essearch.embedders.base import Embedder
from essearch.errors import ConfigurationError
from essearch.eval.beir import BeirDataset, load_beir
from essearch.eval.index import INDEX_PREFIX, prepare_index
from essearch.eval.metrics import (
    RUN_DEPTH,
    doc_ranking,
    evaluate_run,
    latency_summary,
    metric_names,
    run_from_rankings,
)
from essearch.settings import Settings

MODES = ("bm25", "knn", "hybrid")
HYBRID_FUSIONS = ("auto", "rrf", "linear", "weighted", "client-rrf", "client-linear")
#: Sweep grid defaults (tune on SciFact only).
SWEEP_KNN_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
SWEEP_RANK_CONSTANTS = (10, 20, 40, 60, 100)
SWEEP_NUM_CANDIDATES = (100, 200, 500)
WEIGHT_FUSIONS = ("linear", "weighted", "client-linear", "auto")
RANK_FUSIONS = ("rrf", "client-rrf")


@dataclass(frozen=True)
class RunSpec:
    """One configuration to evaluate: a mode, and for hybrid a fusion with its parameters."""

    mode: str
    fusion: str | None = None
    params: tuple[tuple[str, Any], ...] = ()

    @property
    def label(self) -> str:
        base = self.mode if self.mode != "hybrid" else f"hybrid/{self.fusion}"
        extra = ",".join(f"{k}={v}" for k, v in self.params)
        return f"{base}[{extra}]" if extra else base

    def search_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"mode": self.mode, **dict(self.params)}
        if self.mode == "hybrid":
            options["fusion"] = self.fusion or "auto"
        return options


@dataclass
class ModeResult:
    """The scores and latencies of one `RunSpec`."""

    label: str
    mode: str
    fusion: str | None
    strategy: str | None
    params: dict[str, Any]
    metrics: dict[str, float]
    latency: dict[str, float]
    queries: int
    errors: int = 0
    first_error: str | None = None
    #: query id -> parent document ids, best first (kept in memory, left out of to_dict)
    rankings: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("rankings")
        return data


@dataclass
class EvalReport:
    """Everything one `essearch eval` measured."""

    dataset: str
    path: str
    split: str
    queries: int
    skipped_queries: int
    k: int
    depth: int
    metrics: list[str]
    index: dict[str, Any]
    embedder: dict[str, Any]
    analyzer: str
    drop_self_hits: bool
    results: list[ModeResult] = field(default_factory=list)
    sweep: list[ModeResult] = field(default_factory=list)
    best: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: latency of embedding each query once, when embeddings are shared by all runs
    query_embedding: dict[str, float] = field(default_factory=dict)
    latency_includes_embedding: bool = True
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["results"] = [r.to_dict() for r in self.results]
        data["sweep"] = [r.to_dict() for r in self.sweep]
        return data


def parse_list(value: str | Sequence[str] | None, allowed: Sequence[str], what: str) -> list[str]:
    """`a,b` -> ["a", "b"], each checked against `allowed`."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    items = [item.strip() for item in items if item.strip()]
    unknown = [item for item in items if item not in allowed]
    if unknown:
        raise ConfigurationError(
            f"unknown {what} {', '.join(map(repr, unknown))}; choose from {', '.join(allowed)}"
        )
    return items


def specs_for(
    modes: Iterable[str], fusions: Iterable[str] = ("auto",), **params: Any
) -> list[RunSpec]:
    """One spec per non-hybrid mode, and one per fusion for hybrid."""
    extra = tuple(sorted((k, v) for k, v in params.items() if v is not None))
    specs: list[RunSpec] = []
    for mode in modes:
        if mode == "hybrid":
            specs.extend(RunSpec("hybrid", fusion, extra) for fusion in (list(fusions) or ["auto"]))
        else:
            kept = tuple(
                (k, v) for k, v in extra if mode == "knn" and k in ("num_candidates", "oversample")
            )
            specs.append(RunSpec(mode, None, kept))
    return specs


def sweep_specs(
    fusions: Iterable[str],
    *,
    knn_weights: Sequence[float] = SWEEP_KNN_WEIGHTS,
    rank_constants: Sequence[int] = SWEEP_RANK_CONSTANTS,
    num_candidates: Sequence[int | None] = SWEEP_NUM_CANDIDATES,
) -> list[RunSpec]:
    """The grid: per fusion its own knob (kNN weight or rank constant) × num_candidates."""
    specs: list[RunSpec] = []
    for fusion in fusions:
        if fusion in WEIGHT_FUSIONS:
            knob: list[tuple[str, Any]] = [("knn_weight", w) for w in knn_weights]
        elif fusion in RANK_FUSIONS:
            knob = [("rank_constant", c) for c in rank_constants]
        else:
            raise ConfigurationError(f"cannot sweep fusion {fusion!r}")
        for (name, value), candidates in itertools.product(knob, num_candidates):
            params = [(name, value)]
            if candidates is not None:
                params.append(("num_candidates", candidates))
            specs.append(RunSpec("hybrid", fusion, tuple(sorted(params))))
    return specs


def fetch_size(depth: int, chunks_per_doc: float) -> int:
    """Chunks to ask for so that `depth` documents remain after keeping each one's best chunk."""
    if chunks_per_doc <= 1.0:
        return depth
    return min(10_000, math.ceil(depth * min(chunks_per_doc, 5.0) * 1.1))


def run_spec(
    search: Any,
    dataset: BeirDataset,
    spec: RunSpec,
    *,
    k: int = 10,
    depth: int = RUN_DEPTH,
    size: int | None = None,
    collapse: bool = False,
    drop_self_hits: bool = False,
    warmup: int = 1,
    on_query: Callable[[], None] | None = None,
) -> ModeResult:
    """Every judged query through `search.search(...)`; document-level ranx scores."""
    options = {
        **spec.search_options(),
        "k": size or depth,
        "highlight": False,
        "collapse": collapse,
    }
    rankings: dict[str, list[str]] = {}
    latencies: list[float] = []
    strategy: str | None = None
    errors, first_error = 0, None
    items = list(dataset.queries.items())
    for _query_id, text in items[:warmup]:
        search.search(text, **options)  # first call probes the cluster, loads caches
    for query_id, text in items:
        started = time.perf_counter()
        try:
            result = search.search(text, **options)
        except Exception as exc:  # one failing query must not hide the others' scores
            errors += 1
            first_error = first_error or f"query {query_id}: {type(exc).__name__}: {exc}"
            rankings[query_id] = []
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        strategy = result.strategy
        rankings[query_id] = doc_ranking(
            (hit.doc_id or hit.id for hit in result.hits),
            query_id=query_id,
            drop_self_hits=drop_self_hits,
            depth=depth,
        )
        if on_query is not None:
            on_query()
    metrics = evaluate_run(dataset.qrels, run_from_rankings(rankings), metric_names(k, depth))
    return ModeResult(
        label=spec.label,
        mode=spec.mode,
        fusion=spec.fusion,
        strategy=strategy,
        params=dict(spec.params),
        metrics={name: round(value, 4) for name, value in metrics.items()},
        latency={name: round(value, 2) for name, value in latency_summary(latencies).items()},
        queries=len(items),
        errors=errors,
        first_error=first_error,
        rankings=rankings,
    )


def seed_query_cache(search: Any, texts: Sequence[str]) -> tuple[list[float], bool]:
    """Embed each query once into the client's query-vector cache; (ms per query, whether later
    searches really hit the cache). Lets every run share one embedding per query, so the runs'
    latencies measure the search alone and the embedding is reported once beside them."""
    info = search.embedder.info
    latencies: list[float] = []
    for text in texts:
        started = time.perf_counter()
        vector = search.embedder.embed_query(text)
        latencies.append((time.perf_counter() - started) * 1000)
        key = (info.provider, info.model, info.query_prompt, info.dims, text)
        search.state.cache.put(key, tuple(float(x) for x in vector))
    if not texts:
        return latencies, False
    probe = search.search(texts[0], mode="knn", k=1, explain=True, highlight=False)
    notes = probe.explain.notes if probe.explain else []
    return latencies, any("cache" in note for note in notes)


def best_per_metric(results: Sequence[ModeResult]) -> dict[str, dict[str, Any]]:
    """For each metric, the configuration that scored highest (first one on ties)."""
    best: dict[str, dict[str, Any]] = {}
    for result in results:
        for name, value in result.metrics.items():
            if name not in best or value > best[name]["value"]:
                best[name] = {
                    "value": value,
                    "label": result.label,
                    "fusion": result.fusion,
                    "params": result.params,
                }
    return best


def evaluate_dataset(
    dataset_dir: str,
    *,
    settings: Settings,
    split: str = "test",
    modes: Sequence[str] = MODES,
    fusions: Sequence[str] = ("auto",),
    k: int = 10,
    depth: int = RUN_DEPTH,
    num_candidates: int | None = None,
    knn_weight: float | None = None,
    rank_constant: int | None = None,
    drop_self_hits: bool = False,
    sweep: bool = False,
    sweep_fusions: Sequence[str] | None = None,
    sweep_grid: dict[str, Sequence[Any]] | None = None,
    rebuild: bool = False,
    embed_once: bool = True,
    index_prefix: str = INDEX_PREFIX,
    max_queries: int | None = None,
    client: Elasticsearch | None = None,
    embedder: Embedder | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    ingest_progress: Any = None,
) -> EvalReport:
    """Load the split, prepare (or reuse) the index, evaluate every spec, optionally sweep."""
    from essearch.es import make_client
    from essearch.retrieval import SearchClient

    if k < 1 or depth < k:
        raise ConfigurationError(f"need 1 <= k <= depth, got k={k}, depth={depth}")
    started = time.monotonic()
    dataset = load_beir(dataset_dir, split)
    if max_queries is not None:
        keep = list(dataset.queries)[:max_queries]
        dataset.queries = {qid: dataset.queries[qid] for qid in keep}
        dataset.qrels = {qid: dataset.qrels[qid] for qid in keep}
    if not dataset.queries:
        raise ConfigurationError(f"{dataset.path}: no judged query has text in queries.jsonl")
    owns_client = client is None
    client = client or make_client(settings)
    if embedder is None:
        from essearch.embedders import create_embedder

        embedder = create_embedder(settings)
    try:
        prepared, index_settings = prepare_index(
            dataset,
            settings,
            client,
            embedder,
            rebuild=rebuild,
            progress=ingest_progress,
            prefix=index_prefix,
        )
        size = fetch_size(depth, prepared.chunks_per_doc)
        collapse = prepared.chunks > prepared.documents
        report = EvalReport(
            dataset=dataset.name,
            path=str(dataset.path),
            split=split,
            queries=len(dataset.queries),
            skipped_queries=len(dataset.skipped_queries),
            k=k,
            depth=depth,
            metrics=metric_names(k, depth),
            index=prepared.to_dict(),
            embedder=embedder.info.to_dict(),
            analyzer=settings.index.analyzer,
            drop_self_hits=drop_self_hits,
        )
        common = {
            "k": k,
            "depth": depth,
            "size": size,
            "collapse": collapse,
            "drop_self_hits": drop_self_hits,
        }
        specs = specs_for(
            modes,
            fusions,
            num_candidates=num_candidates,
            knn_weight=knn_weight,
            rank_constant=rank_constant,
        )
        cache_size = max(2048, 2 * len(dataset.queries))
        shared = SearchClient(
            index_settings, client=client, embedder=embedder, cache_size=cache_size
        )
        needs_vectors = sweep or any(spec.mode != "bm25" for spec in specs)
        if embed_once and needs_vectors:
            if progress:
                progress("embedding queries", 0, len(dataset.queries))
            embed_ms, cached = seed_query_cache(shared, list(dataset.queries.values()))
            report.query_embedding = {k: round(v, 2) for k, v in latency_summary(embed_ms).items()}
            report.latency_includes_embedding = not cached
        for spec in specs:
            if progress:
                progress(spec.label, 0, len(dataset.queries))
            if embed_once:
                search = shared
            else:  # a fresh client per run: its latency includes embedding each query
                search = SearchClient(index_settings, client=client, embedder=embedder)
            report.results.append(
                run_spec(search, dataset, spec, **common, on_query=_ticker(progress, spec))
            )
        if sweep:
            grid = dict(sweep_grid or {})
            chosen = list(sweep_fusions or [f for f in fusions if f in HYBRID_FUSIONS])
            grid_specs = sweep_specs(chosen or ["client-linear"], **grid)
            with shared as search:
                for spec in grid_specs:
                    if progress:
                        progress(f"sweep {spec.label}", 0, len(dataset.queries))
                    report.sweep.append(
                        run_spec(search, dataset, spec, **common, on_query=_ticker(progress, spec))
                    )
            report.best = best_per_metric(report.sweep)
        report.elapsed_s = round(time.monotonic() - started, 1)
        return report
    finally:
        if owns_client:
            client.close()


def _ticker(
    progress: Callable[[str, int, int], None] | None, spec: RunSpec
) -> Callable[[], None] | None:
    if progress is None:
        return None
    done = [0]

    def tick() -> None:
        done[0] += 1
        progress(spec.label, done[0], -1)

    return tick
