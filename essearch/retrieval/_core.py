"""The shared, I/O-free core of SearchClient and AsyncSearchClient.

A search is a generator that yields *operations* (probe, embed, get mapping, search, msearch) and
receives their results; the sync client performs them with `Elasticsearch`, the async client with
`AsyncElasticsearch` and `await`. All decisions (strategy, caching, model guard, licence fallback,
fusion, result parsing, timings) live here once, so the two clients cannot drift.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError

from essearch.embedders.base import EmbedderInfo
from essearch.errors import CapabilityError, ModelMismatchError, SearchError, es_error_reason
from essearch.es.capabilities import Capabilities, probe
from essearch.index import schema
from essearch.index.guard import check_mapping_response
from essearch.rerank.base import Candidate, Reranker
from essearch.retrieval import queries as q
from essearch.retrieval.params import SearchParams
from essearch.retrieval.results import (
    Explain,
    Hit,
    SearchResult,
    Timings,
    hit_from_es,
    hits_from_response,
)
from essearch.retrieval.strategies import (
    Strategy,
    choose,
    fallback_for,
    is_server_refusal,
    unavailable_error,
)
from essearch.settings import Settings
from essearch.text.guard import KNN_WEIGHT_FACTOR, query_flagged

log = logging.getLogger("essearch.retrieval")

#: How long a model-guard check of an alias is trusted (an alias swap can change the model).
GUARD_TTL_S = 60.0
DEFAULT_CACHE_SIZE = 1024
#: Candidates handed to the reranker when neither the search nor the settings say.
DEFAULT_RERANK_TOP_N = 50


# -- operations the I/O layers perform ------------------------------------------------------
@dataclass(frozen=True)
class ProbeOp:
    """-> Capabilities"""


@dataclass(frozen=True)
class EmbedderInfoOp:
    """-> EmbedderInfo of the configured embedder (creating it on first use)."""


@dataclass(frozen=True)
class EmbedOp:
    """-> list[float]: `embed_query(text)` (the embedder applies its query prompt)."""

    text: str


@dataclass(frozen=True)
class MappingOp:
    """-> `indices.get_mapping(index=...)` body."""

    index: str


@dataclass(frozen=True)
class SearchOp:
    """-> `search(index=..., body=...)` body."""

    index: str
    body: dict[str, Any]


@dataclass(frozen=True)
class MSearchOp:
    """-> `msearch(searches=[{index}, body, ...])` body."""

    index: str
    bodies: list[dict[str, Any]]

    def searches(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for body in self.bodies:
            lines += [{"index": self.index}, body]
        return lines


@dataclass(frozen=True)
class RerankOp:
    """-> list[float]: the client's reranker scores for `candidates`, in their order."""

    query: str
    candidates: tuple[Candidate, ...]


Op = ProbeOp | EmbedderInfoOp | EmbedOp | MappingOp | SearchOp | MSearchOp | RerankOp


class LRUCache:
    """A small LRU of query embeddings, keyed by (embedder identity, text)."""

    def __init__(self, maxsize: int = DEFAULT_CACHE_SIZE) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Any, tuple[float, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, key: Any) -> tuple[float, ...] | None:
        value = self._data.get(key)
        if value is None:
            self.misses += 1
            return None
        self.hits += 1
        self._data.move_to_end(key)
        return value

    def put(self, key: Any, value: Sequence[float]) -> None:
        if self.maxsize <= 0:
            return
        self._data[key] = tuple(value)
        self._data.move_to_end(key)
        while len(self._data) > self.maxsize:
            self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class CoreState:
    """What a client remembers between searches."""

    index: str
    rescore_oversample: float | None = None
    rerank_top_n: int = DEFAULT_RERANK_TOP_N
    caps: Capabilities | None = None
    cache: LRUCache = field(default_factory=LRUCache)
    guarded: dict[str, float] = field(default_factory=dict)
    server_refused: bool = False
    fallback_logged: bool = False


# -- model guard -----------------------------------------------------------------------------
def _guard(state: CoreState, info: EmbedderInfo, vector_len: int) -> Generator[Op, Any, None]:
    now = time.monotonic()
    if now - state.guarded.get(state.index, -1e9) < GUARD_TTL_S:
        return
    try:
        mapping = yield MappingOp(state.index)
    except NotFoundError:
        raise SearchError(f"index {state.index!r} not found") from None
    check_mapping_response(info, mapping, query_vector_len=vector_len)
    state.guarded[state.index] = now


def downweight_knn(params: SearchParams) -> SearchParams:
    """The params with the kNN leg weighed down by the language guard (linear and RRF)."""
    bm25_w, knn_w = params.rrf_weights or (1.0, 1.0)
    return params.model_copy(
        update={
            "knn_weight": params.knn_weight * KNN_WEIGHT_FACTOR,
            "rrf_weights": (bm25_w, knn_w * KNN_WEIGHT_FACTOR),
        }
    )


def _guard_dims(state: CoreState, vector_len: int) -> Generator[Op, Any, None]:
    """A caller's query vector: no embedder to compare, but its dims must be the index's."""
    try:
        mapping = yield MappingOp(state.index)
    except NotFoundError:
        raise SearchError(f"index {state.index!r} not found") from None
    for physical, entry in mapping.items():
        vector = ((entry.get("mappings") or {}).get("properties") or {}).get(schema.VECTOR_FIELD)
        dims = (vector or {}).get("dims")
        if dims is not None and dims != vector_len:
            raise ModelMismatchError(
                f"index {physical!r} holds {dims}-dim vectors; the query_vector has {vector_len}"
            )


# -- sending --------------------------------------------------------------------------------
def api_error_message(exc: ApiError) -> str:
    """`HTTP <status> <what Elasticsearch said>`."""
    return f"HTTP {exc.status_code} {es_error_reason(exc)}"


def search_error(index: str, exc: ApiError, what: str = "search") -> SearchError:
    """How an `ApiError` of a search leaves the core: a SearchError naming the index and the
    server's reason."""
    if isinstance(exc, NotFoundError):
        return SearchError(f"index {index!r} not found")
    return SearchError(f"{what} on {index!r} failed: {api_error_message(exc)}")


def _send_checked(
    index: str, bodies: list[dict[str, Any]], what: str = "search"
) -> Generator[Op, Any, tuple[list[dict[str, Any]], float, float]]:
    """`_send`, its ApiErrors turned into SearchError (for requests with no fallback left)."""
    try:
        return (yield from _send(index, bodies))
    except ApiError as exc:
        raise search_error(index, exc, what) from None


class _ItemError(ApiError):
    """An error inside one `_msearch` item, raised like a normal ApiError."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self._status = status
        super().__init__(message=str(body.get("error")), meta=None, body=body)  # type: ignore[arg-type]

    @property
    def status_code(self) -> int:
        return self._status


def _send(
    index: str, bodies: list[dict[str, Any]]
) -> Generator[Op, Any, tuple[list[dict[str, Any]], float, float]]:
    started = time.perf_counter()
    if len(bodies) == 1:
        response = yield SearchOp(index, bodies[0])
        responses = [response]
        took = float(response.get("took", 0))
    else:
        multi = yield MSearchOp(index, bodies)
        responses = multi["responses"]
        for item in responses:
            if "error" in item:
                raise _ItemError(int(item.get("status", 500)), item)
        took = float(multi.get("took", 0))
    return responses, took, (time.perf_counter() - started) * 1000


def search_flow(state: CoreState, params: SearchParams) -> Generator[Op, Any, SearchResult]:
    """One search, start to finish."""
    started = time.perf_counter()
    notes: list[str] = []
    if state.caps is None:
        state.caps = yield ProbeOp()
    caps = state.caps
    if params.oversample is None and state.rescore_oversample is not None:
        params = params.model_copy(update={"oversample": state.rescore_oversample})
    guarded = False
    if params.mode == "hybrid" and params.fusion == "auto":
        info_for_guard: EmbedderInfo = yield EmbedderInfoOp()
        flagged = query_flagged(info_for_guard.model, params.query)
        if flagged is not None:
            guarded = True
            params = downweight_knn(params)
            notes.append(
                f"language guard: the embedder {info_for_guard.model!r} does not cover this "
                f"{flagged!r} query; kNN weight lowered to {params.knn_weight:.2f} "
                f"(RRF weights {params.rrf_weights})"
            )
    page = params
    if params.rerank:  # retrieve the rerank window, cut the page after reranking
        window = max(params.from_ + params.k, params.rerank_top_n or state.rerank_top_n)
        params = params.model_copy(update={"k": window, "from_": 0})
    strategy: Strategy = choose(params, caps, server_refused=state.server_refused)
    if guarded and strategy.server_feature is not None:
        strategy = fallback_for(strategy)  # the guard's weights are applied here, on any cluster
    if params.fusion == "auto" and params.mode == "hybrid" and strategy.server_feature is None:
        notes.append(f"auto: server fusion unavailable here, using {strategy.name}")

    vector: tuple[float, ...] | None = None
    embedding_ms = 0.0
    if strategy.needs_vector and params.query_vector is not None:
        vector = params.query_vector
        notes.append("query vector given by the caller")
        yield from _guard_dims(state, len(vector))
    elif strategy.needs_vector:
        info: EmbedderInfo = yield EmbedderInfoOp()
        key = (info.provider, info.model, info.query_prompt, info.dims, params.query)
        vector = state.cache.get(key)
        if vector is None:
            t0 = time.perf_counter()
            raw = yield EmbedOp(params.query or "")
            embedding_ms = (time.perf_counter() - t0) * 1000
            vector = tuple(float(x) for x in raw)
            state.cache.put(key, vector)
        else:
            notes.append("query embedding from cache")
        if len(vector) != info.dims:
            raise ModelMismatchError(
                f"embedder {info.model!r} declares {info.dims} dims but returned {len(vector)}"
            )
        yield from _guard(state, info, len(vector))

    bodies = strategy.bodies(params, vector, caps)
    try:
        responses, took, roundtrip = yield from _send(state.index, bodies)
    except ApiError as exc:
        if strategy.server_feature and is_server_refusal(exc.status_code, exc.body or exc):
            detail = api_error_message(exc)
            if params.fusion != "auto":
                raise unavailable_error(strategy.name, caps, detail) from None
            state.server_refused = True
            if not state.fallback_logged:
                log.warning(
                    "server-side %s fusion refused (%s); falling back to %s",
                    strategy.name,
                    detail,
                    fallback_for(strategy).name,
                )
                state.fallback_logged = True
            strategy = fallback_for(strategy)
            notes.append(f"auto: server refused fusion ({detail}); using {strategy.name}")
            bodies = strategy.bodies(params, vector, caps)
            responses, took, roundtrip = yield from _send_checked(state.index, bodies)
        else:
            raise search_error(state.index, exc) from None

    hits, total, fusion_ms = strategy.combine(params, responses)
    rerank_ms = 0.0
    if page.rerank:
        t0 = time.perf_counter()
        hits = yield from _rerank(page, hits, notes)
        rerank_ms = (time.perf_counter() - t0) * 1000
        params = page
    highlight_body = strategy.page_highlight_body(params, hits)
    if highlight_body is not None:
        (highlighted,), more_took, more_roundtrip = yield from _send_checked(
            state.index, [highlight_body], "highlighting"
        )
        fragments = {raw["_id"]: raw.get("highlight", {}) for raw in highlighted["hits"]["hits"]}
        for hit in hits:
            hit.highlights = fragments.get(hit.id, {})
        bodies = [*bodies, highlight_body]
        took += more_took
        roundtrip += more_roundtrip
    matches = total if strategy.total_counts_matches else None
    result = SearchResult(
        query=params.query,
        mode=params.mode,
        strategy=strategy.name,
        total=matches,
        candidates=None if strategy.total_counts_matches else total,
        hits=hits,
    )
    if params.explain:
        result.explain = Explain(
            strategy=strategy.name,
            requests=bodies,
            notes=notes,
            timings=Timings(
                embedding_ms=round(embedding_ms, 3),
                es_took_ms=took,
                es_roundtrip_ms=round(roundtrip, 3),
                fusion_ms=round(fusion_ms, 3),
                rerank_ms=round(rerank_ms, 3),
                total_ms=round((time.perf_counter() - started) * 1000, 3),
            ),
        )
    return result


def create_reranker_for(settings: Settings, client: Elasticsearch, index: str) -> Reranker:
    """The configured reranker; `elasticsearch` only where the cluster has the inference API."""
    from essearch.rerank import create_reranker

    if settings.rerank.provider == "elasticsearch" and not probe(client).inference:
        raise CapabilityError(
            "rerank provider 'elasticsearch' needs the inference API (text_similarity_reranker), "
            "which this cluster does not have; use a TEI or Cohere-compatible rerank server"
        )
    return create_reranker(settings.rerank, client=client, index=index)


def _rerank(
    params: SearchParams, hits: list[Hit], notes: list[str]
) -> Generator[Op, Any, list[Hit]]:
    """Reorder `hits` by the reranker's scores and cut the page; a failing reranker degrades to
    the retrieval order with a warning, never a failed search."""
    end = params.from_ + params.k
    candidates = tuple(Candidate(hit.id, hit.text or hit.title or "") for hit in hits)
    try:
        scores: list[float] = yield RerankOp(params.query or "", candidates)
    except Exception as exc:  # any reranker failure: the unreranked order is still an answer
        log.warning("rerank failed (%s); results keep the retrieval order", exc)
        notes.append(f"rerank failed ({exc}); retrieval order kept")
        return hits[params.from_ : end]
    order = sorted(range(len(hits)), key=lambda i: -scores[i])  # stable: ties keep fused order
    reranked: list[Hit] = []
    for rank, i in enumerate(order, 1):
        hit = hits[i]
        hit.rerank_score = scores[i]
        hit.rank = rank
        reranked.append(hit)
    notes.append(f"reranked {len(hits)} candidates")
    return reranked[params.from_ : end]


# -- more like this ------------------------------------------------------------------------------
def mean_unit_vector(vectors: Sequence[Sequence[float]]) -> list[float]:
    """The normalised mean of a document's chunk vectors: one point for the whole document."""
    dims = len(vectors[0])
    mean = [sum(v[i] for v in vectors) / len(vectors) for i in range(dims)]
    norm = sum(x * x for x in mean) ** 0.5
    return [x / norm for x in mean] if norm else mean


def similar_flow(
    state: CoreState, doc_id: str, *, k: int = 10, filter: dict[str, Any] | None = None
) -> Generator[Op, Any, SearchResult]:
    """Documents like a stored one, by its chunk vectors (nothing is embedded)."""
    try:
        stored = yield SearchOp(state.index, q.document_vectors_body(doc_id))
    except NotFoundError:
        raise SearchError(f"index {state.index!r} not found") from None
    except ApiError as exc:
        raise SearchError(
            f"reading {doc_id!r} from {state.index!r}: {api_error_message(exc)}"
        ) from None
    vectors: list[list[float]] = []
    for hit in stored["hits"]["hits"]:
        vector = (hit.get("_source") or {}).get(schema.VECTOR_FIELD)
        if vector:
            vectors.append([float(x) for x in vector])
    if not vectors:
        raise SearchError(
            f"document {doc_id!r} not found in {state.index!r} (or it has no vectors)"
        )
    body = q.similar_body(mean_unit_vector(vectors), doc_id, k=k, filter_clause=filter)
    try:
        response = yield SearchOp(state.index, body)
    except ApiError as exc:
        raise SearchError(
            f"similar to {doc_id!r} on {state.index!r}: {api_error_message(exc)}"
        ) from None
    hits = hits_from_response(response, leg="knn")
    return SearchResult(query=None, mode="knn", strategy="similar", total=None, hits=hits)


# -- deep listing (search_after + point in time) ---------------------------------------------
def scan_body(params: SearchParams, page_size: int) -> dict[str, Any]:
    """A page of a deep listing (the PIT pager adds the PIT and `search_after`); BM25/filter
    only, by score when there is text."""
    if params.mode != "bm25":
        raise SearchError(
            f"scan() lists BM25/filtered results only; mode {params.mode!r} is kNN-based and "
            f"limited to the top {q.MAX_NUM_CANDIDATES:,}"
        )
    text = params.text_clause()
    return q.pit_page_body(
        q.filtered(text, params.filter), size=page_size, by_score=text is not None
    )


def scan_hits(response: dict[str, Any], rank_offset: int) -> list[Hit]:
    raw_hits = response.get("hits", {}).get("hits", [])
    return [hit_from_es(raw, rank=rank_offset + i, leg="bm25") for i, raw in enumerate(raw_hits, 1)]
