"""Runs every judged query in each mode, turns hits into document runs and scores them with ranx.

A `RunSpec` is one configuration (mode, fusion and its parameters, and for the exact-kNN check the
`flat` twin index). All runs share one `SearchClient` whose query-vector cache is filled once per
set from the on-disk embedding cache (queries missing there are embedded once, timed, and stored),
so run latencies measure the search alone and a warm re-run embeds nothing.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from essearch.embedders.base import Embedder
from essearch.embedders.cache import CachedEmbedder, space_key, text_sha256
from essearch.errors import ConfigurationError
from essearch.es.capabilities import Capabilities
from essearch.eval.beir import BeirDataset, find_self_hits, load_beir
from essearch.eval.index import INDEX_PREFIX, prepare_index
from essearch.eval.metrics import (
    RUN_DEPTH,
    doc_ranking,
    evaluate_run,
    latency_summary,
    metric_names,
    run_from_rankings,
)
from essearch.eval.progress import EvalProgress, SilentProgress
from essearch.retrieval.strategies import SERVER_FEATURES, STRATEGIES, auto_strategy_name
from essearch.settings import Settings
from essearch.text.guard import query_flagged

MODES = ("bm25", "knn", "hybrid")
HYBRID_FUSIONS = ("auto", "rrf", "linear", "weighted", "client-rrf", "client-linear")
#: Sweep grid defaults (tune on SciFact only).
SWEEP_KNN_WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7)
SWEEP_RANK_CONSTANTS = (10, 20, 40, 60, 100)
SWEEP_NUM_CANDIDATES = (100, 200, 500)
WEIGHT_FUSIONS = ("linear", "weighted", "client-linear", "auto")
RANK_FUSIONS = ("rrf", "client-rrf")
#: How self-hits (a query that is itself a corpus document) are treated: `auto` drops the hits
#: that are the query's own document (same id and text: ArguAna), `drop` every hit whose id is
#: the query id, `keep` none.
SELF_HITS = ("auto", "drop", "keep")
#: The exact-kNN twin index: the same vectors, brute force, no quantisation.
EXACT_INDEX_TYPE = "flat"


@dataclass(frozen=True)
class RunSpec:
    """One configuration to evaluate: a mode, and for hybrid a fusion with its parameters."""

    mode: str
    fusion: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    index: str | None = None  # None: the evaluation index; EXACT_INDEX_TYPE: its flat twin

    @property
    def label(self) -> str:
        base = self.mode if self.mode != "hybrid" else f"hybrid/{self.fusion}"
        if self.index:
            base = f"{base}/{self.index}"
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
    index: str | None = None  # the index searched
    wall_s: float = 0.0
    #: the label of the run whose figures these are, when `auto` resolved to a fusion already run
    same_as: str | None = None
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
    self_hits: str = "auto"
    #: judged queries whose own document is in the corpus (their self-hits are dropped under auto)
    self_hit_queries: int = 0
    exact_index: dict[str, Any] | None = None
    #: the on-disk embedding cache: path, hits and misses of this evaluation
    embedding_cache: dict[str, Any] = field(default_factory=dict)
    #: wall seconds per phase (load, index, exact index, query embedding, runs)
    phases: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    results: list[ModeResult] = field(default_factory=list)
    sweep: list[ModeResult] = field(default_factory=list)
    best: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: latency of embedding each query once (the queries not already in the embedding cache)
    query_embedding: dict[str, float] = field(default_factory=dict)
    #: query vectors found in the embedding cache, and embedded now
    query_vectors: dict[str, int] = field(default_factory=dict)
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
    drop_self_hits: bool | set[str] = False,
    warmup: int = 1,
    on_query: Callable[[], None] | None = None,
) -> ModeResult:
    """Every judged query through `search.search(...)`; document-level ranx scores.
    `drop_self_hits`: True drops every hit whose id is the query id, a set only for those
    queries."""
    run_started = time.monotonic()
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
            if on_query is not None:
                on_query()
            continue
        latencies.append((time.perf_counter() - started) * 1000)
        strategy = result.strategy
        drop = query_id in drop_self_hits if isinstance(drop_self_hits, set) else drop_self_hits
        rankings[query_id] = doc_ranking(
            (hit.doc_id or hit.id for hit in result.hits),
            query_id=query_id,
            drop_self_hits=drop,
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
        index=search.state.index,
        wall_s=round(time.monotonic() - run_started, 1),
        rankings=rankings,
    )


def default_work_dir() -> Path:
    """Where evaluations keep what outlives a run (the embedding cache):
    `$XDG_CACHE_HOME/essearch/eval`, else `~/.cache/essearch/eval`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "essearch" / "eval"


def default_cache_path(work_dir: str | Path | None = None) -> Path:
    return Path(work_dir or default_work_dir()).expanduser() / "embeddings.sqlite"


def with_cache(embedder: Embedder, cache: str | Path | None) -> tuple[Embedder, bool]:
    """The embedder behind the on-disk cache at `cache` (already cached: as is; None: no cache);
    (embedder, whether the wrapper is ours to close)."""
    if cache is None or isinstance(embedder, CachedEmbedder):
        return embedder, False
    return CachedEmbedder(embedder, cache), True


def embed_queries(
    search: Any, texts: Sequence[str], progress: EvalProgress, phase: str = "embed queries"
) -> tuple[list[float], int]:
    """Put one vector per query into the client's query-vector cache: looked up in the on-disk
    embedding cache in one go, the rest embedded one query at a time (timed, as a search would)
    and stored there. Returns (ms per embedded query, vectors found in the disk cache)."""
    embedder = search.embedder
    info = embedder.info
    unique = list(dict.fromkeys(texts))
    found: dict[str, list[float]] = {}
    if isinstance(embedder, CachedEmbedder):
        space = space_key(info, embedder.inner.query_prompt)
        stored = embedder.cache.get_many(space, [text_sha256(t) for t in unique])
        found = {t: stored[text_sha256(t)] for t in unique if text_sha256(t) in stored}
    latencies: list[float] = []
    progress.phase(phase, len(found), len(unique), f"{len(found):,} from the embedding cache")
    for text in unique:
        vector = found.get(text)
        if vector is None:
            started = time.perf_counter()
            vector = embedder.embed_query(text)
            latencies.append((time.perf_counter() - started) * 1000)
            progress.phase(
                phase, len(found) + len(latencies), len(unique), f"{len(found):,} cached"
            )
        key = (info.provider, info.model, info.query_prompt, info.dims, text)
        search.state.cache.put(key, tuple(float(x) for x in vector))
    return latencies, len(found)


def query_cache_is_used(search: Any, text: str) -> bool:
    """Whether a search really takes its vector from the client's cache (so run latencies
    exclude embedding)."""
    probe = search.search(text, mode="knn", k=1, explain=True, highlight=False)
    notes = probe.explain.notes if probe.explain else []
    return any("cache" in note for note in notes)


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


def runnable_specs(specs: Sequence[RunSpec], caps: Capabilities) -> tuple[list[RunSpec], list[str]]:
    """Specs this cluster can run, `auto` last (it may resolve to one already run); a note for
    each server fusion left out because the cluster lacks it."""
    kept: list[RunSpec] = []
    notes: list[str] = []
    for spec in specs:
        if spec.mode == "hybrid" and spec.fusion not in (None, "auto"):
            strategy = STRATEGIES[spec.fusion]
            if strategy.server_feature is not None and not strategy.available(caps):
                _prop, feature, since = SERVER_FEATURES[strategy.server_feature]
                notes.append(
                    f"{spec.label} not run: the server's {feature} needs an Enterprise/trial "
                    f"licence and ES >= {since} (cluster {caps.version}, licence "
                    f"{caps.license_type})"
                )
                continue
        kept.append(spec)
    kept.sort(key=lambda spec: spec.fusion == "auto")
    return kept, notes


def guarded_queries(model: str | None, queries: Iterable[str]) -> int:
    """How many queries the language guard flags for `model` (see essearch.text.guard)."""
    return sum(query_flagged(model, query) is not None for query in queries)


def resolved_auto(spec: RunSpec, caps: Capabilities) -> RunSpec:
    """The explicit spec `auto` runs as on this cluster."""
    return RunSpec("hybrid", auto_strategy_name(caps), spec.params, spec.index)


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
    rerank: bool = False,
    self_hits: str = "auto",
    drop_self_hits: bool = False,
    exact_knn: bool = False,
    sweep: bool = False,
    sweep_fusions: Sequence[str] | None = None,
    sweep_grid: Mapping[str, Sequence[Any]] | None = None,
    rebuild: bool = False,
    embed_once: bool = True,
    embedding_cache: str | Path | None = None,
    index_prefix: str = INDEX_PREFIX,
    max_queries: int | None = None,
    client: Elasticsearch | None = None,
    embedder: Embedder | None = None,
    progress: EvalProgress | None = None,
) -> EvalReport:
    """Load the split, prepare (or reuse) the index (and its flat twin with `exact_knn`), embed
    the queries once, evaluate every spec, optionally sweep.

    `embedding_cache`: SQLite file that keeps document and query vectors across runs and index
    builds (None: none, unless the embedder is already cached). `self_hits`: see `SELF_HITS`;
    `drop_self_hits=True` is `self_hits="drop"`.
    """
    from essearch.es import make_client
    from essearch.retrieval import SearchClient

    if k < 1 or depth < k:
        raise ConfigurationError(f"need 1 <= k <= depth, got k={k}, depth={depth}")
    if drop_self_hits:
        self_hits = "drop"
    if self_hits not in SELF_HITS:
        raise ConfigurationError(f"self_hits={self_hits!r}: choose from {', '.join(SELF_HITS)}")
    progress = progress or SilentProgress()
    started = time.monotonic()
    phases: dict[str, float] = {}
    dataset = load_beir(dataset_dir, split)
    if max_queries is not None:
        keep = list(dataset.queries)[:max_queries]
        dataset.queries = {qid: dataset.queries[qid] for qid in keep}
        dataset.qrels = {qid: dataset.qrels[qid] for qid in keep}
    if not dataset.queries:
        raise ConfigurationError(f"{dataset.path}: no judged query has text in queries.jsonl")
    own_hits = find_self_hits(dataset.corpus_path, dataset.queries)
    drop: bool | set[str] = own_hits if self_hits == "auto" else self_hits == "drop"
    phases["load_s"] = round(time.monotonic() - started, 1)
    progress.phase(
        "load",
        1,
        1,
        f"{len(dataset.queries):,} judged queries, {len(own_hits):,} are corpus documents",
    )
    owns_client = client is None
    client = client or make_client(settings)
    owns_embedder = embedder is None
    if embedder is None:
        from essearch.embedders import create_embedder

        embedder = create_embedder(settings)
    embedder, owns_wrapper = with_cache(embedder, embedding_cache)
    cache_before = _cache_counts(embedder)
    try:
        t0 = time.monotonic()
        prepared, index_settings = prepare_index(
            dataset,
            settings,
            client,
            embedder,
            rebuild=rebuild,
            progress=progress.ingest_view(f"index ({settings.index.vector_index_type})"),
            prefix=index_prefix,
        )
        phases["index_s"] = round(time.monotonic() - t0, 1)
        progress.phase(
            f"index ({settings.index.vector_index_type}) ready",
            1,
            1,
            f"{prepared.name} {'reused' if prepared.reused else 'built'}",
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
            self_hits=self_hits,
            self_hit_queries=len(own_hits),
        )
        common: dict[str, Any] = {
            "k": k,
            "depth": depth,
            "size": size,
            "collapse": collapse,
            "drop_self_hits": drop,
        }
        specs = specs_for(
            modes,
            fusions,
            num_candidates=num_candidates,
            knn_weight=knn_weight,
            rank_constant=rank_constant,
        )
        if rerank:  # each run again with the rerank stage (settings.rerank), side by side
            specs += [
                RunSpec(s.mode, s.fusion, (*s.params, ("rerank", True)), s.index) for s in specs
            ]
        clients: dict[str | None, Any] = {}
        cache_size = max(2048, 2 * len(dataset.queries))
        shared = SearchClient(
            index_settings, client=client, embedder=embedder, cache_size=cache_size
        )
        clients[None] = shared
        if exact_knn and "knn" in modes:
            t0 = time.monotonic()
            name = f"index ({EXACT_INDEX_TYPE}, exact kNN)"
            exact, exact_settings = prepare_index(
                dataset,
                settings,
                client,
                embedder,
                rebuild=rebuild,
                progress=progress.ingest_view(name),
                prefix=index_prefix,
                vector_index_type=EXACT_INDEX_TYPE,
            )
            phases["exact_index_s"] = round(time.monotonic() - t0, 1)
            how = "reused" if exact.reused else "built"
            progress.phase(f"{name} ready", 1, 1, f"{exact.name} {how}")
            report.exact_index = exact.to_dict()
            twin = SearchClient(exact_settings, client=client, embedder=embedder)
            twin.state.cache = shared.state.cache  # the same query vectors
            clients[EXACT_INDEX_TYPE] = twin
            at = next(i for i, spec in enumerate(specs) if spec.mode == "knn") + 1
            specs.insert(at, RunSpec("knn", None, specs[at - 1].params, EXACT_INDEX_TYPE))
        specs, report.notes = runnable_specs(specs, shared.capabilities())
        needs_vectors = sweep or any(spec.mode != "bm25" for spec in specs)
        if embed_once and needs_vectors:
            t0 = time.monotonic()
            embed_ms, cached = embed_queries(shared, list(dataset.queries.values()), progress)
            phases["embed_queries_s"] = round(time.monotonic() - t0, 1)
            report.query_vectors = {"cached": cached, "embedded": len(embed_ms)}
            if embed_ms:
                summary = latency_summary(embed_ms)
                report.query_embedding = {k: round(v, 2) for k, v in summary.items()}
            first_query = next(iter(dataset.queries.values()))
            report.latency_includes_embedding = not query_cache_is_used(shared, first_query)
        t0 = time.monotonic()
        progress.phase("load ranx", 0, 1, "numba compiles or loads its metric code once")
        evaluate_run({"q": {"d": 1}}, {"q": {"d": 1.0}}, metric_names(k, depth))
        phases["load_ranx_s"] = round(time.monotonic() - t0, 1)
        progress.phase("load ranx", 1, 1)
        done: dict[RunSpec, ModeResult] = {}
        # `auto` is the strategy it resolves to, unless the language guard reweighs some queries
        # (an embedder that does not cover their language): then it is run on its own.
        guarded = guarded_queries(embedder.info.model, dataset.queries.values())
        if guarded:
            report.notes.append(
                f"language guard: {guarded:,} of {len(dataset.queries):,} queries are in a "
                f"language {embedder.info.model} does not cover; hybrid/auto weighs their kNN "
                "leg down, so it is run on its own"
            )
        for spec in specs:
            same = (
                resolved_auto(spec, shared.capabilities())
                if spec.fusion == "auto" and not guarded
                else None
            )
            if same is not None and same in done:
                result = replace(done[same], label=spec.label, fusion="auto", same_as=same.label)
                report.results.append(result)
                continue
            if embed_once:
                search = clients[spec.index]
            else:  # a fresh client per run: its latency includes embedding each query
                settings_of = clients[spec.index].settings
                search = SearchClient(settings_of, client=client, embedder=embedder)
            t0 = time.monotonic()
            result = run_spec(
                search,
                dataset,
                spec,
                **common,
                on_query=_ticker(progress, spec, len(dataset.queries)),
            )
            phases[f"run {spec.label}_s"] = round(time.monotonic() - t0, 1)
            done[spec] = result
            report.results.append(result)
        if sweep:
            grid = dict(sweep_grid or {})
            chosen = list(sweep_fusions or [f for f in fusions if f in HYBRID_FUSIONS])
            grid_specs = sweep_specs(chosen or ["client-linear"], **grid)
            for spec in grid_specs:
                report.sweep.append(
                    run_spec(
                        shared,
                        dataset,
                        spec,
                        **common,
                        on_query=_ticker(progress, spec, len(dataset.queries)),
                    )
                )
            report.best = best_per_metric(report.sweep)
        report.embedding_cache = _cache_report(embedder, cache_before)
        report.phases = phases
        report.elapsed_s = round(time.monotonic() - started, 1)
        return report
    finally:
        progress.close()
        if owns_wrapper and isinstance(embedder, CachedEmbedder):
            embedder.cache.close()  # the wrapped embedder is the caller's (or closed below)
            embedder = embedder.inner
        if owns_embedder:
            embedder.close()
        if owns_client:
            client.close()


def _cache_counts(embedder: Embedder) -> tuple[int, int]:
    if isinstance(embedder, CachedEmbedder):
        return embedder.stats.hits, embedder.stats.misses
    return 0, 0


def _cache_report(embedder: Embedder, before: tuple[int, int]) -> dict[str, Any]:
    """Hits and misses of this evaluation (documents and queries), and where the cache lives."""
    if not isinstance(embedder, CachedEmbedder):
        return {"path": None}
    hits, misses = _cache_counts(embedder)
    return {
        "path": str(embedder.cache.path),
        "hits": hits - before[0],
        "misses": misses - before[1],
    }


def _ticker(progress: EvalProgress, spec: RunSpec, total: int) -> Callable[[], None]:
    done = [0]
    progress.phase(spec.label, 0, total)

    def tick() -> None:
        done[0] += 1
        progress.phase(spec.label, done[0], total)

    return tick
