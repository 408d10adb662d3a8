"""Search strategies: each owns its request bodies, what it needs from the cluster, and how its
responses become ranked hits (like es-py's vectorstore strategies).

Modes `bm25` and `knn` are one strategy each; `hybrid` has five:

=============  ===========================================  ====================================
name           how                                          needs
=============  ===========================================  ====================================
rrf            server `rrf` retriever                       Enterprise/trial, ES >= 8.16
linear         server `linear` retriever, minmax            Enterprise/trial, ES >= 8.18
weighted       top-level knn (boost w) + query (boost 1-w)  nothing (Basic)
client-rrf     BM25 + kNN in one msearch, RRF here          nothing (Basic)
client-linear  BM25 + kNN in one msearch, min-max here      nothing (Basic)
=============  ===========================================  ====================================

`auto` is min-max linear fusion wherever it can run: the server `linear` retriever when the probe
says it is licensed (ES >= 8.18), else `AUTO_FALLBACK` (the same method, client-side). A licensed
cluster without `linear` (8.16/8.17) gets server RRF. See `auto_strategy_name`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from essearch.errors import CapabilityError, LicenseError
from essearch.es.capabilities import Capabilities
from essearch.index import schema
from essearch.retrieval import fusion
from essearch.retrieval import queries as q
from essearch.retrieval.params import SearchParams
from essearch.retrieval.results import Hit, LegScore, hit_from_es, hits_from_response, total_of

#: Hybrid strategy `auto` uses when no server fusion runs here (or the server refused it).
#: Measured with `essearch eval` on SciFact, the only tuning set: client-side min-max linear fusion
#: (kNN weight 0.6) 0.728 nDCG@10 against 0.703 for client-side RRF (benchmarks/RESULTS.md).
AUTO_FALLBACK = "client-linear"
#: Server strategies `auto` tries, best first: `linear` is the same method as `AUTO_FALLBACK`.
AUTO_SERVER_PREFERENCE = ("linear", "rrf")

#: Server features by strategy name: (Capabilities property, ES feature name, minimum version).
SERVER_FEATURES = {
    "rrf": ("rrf_retriever", "Reciprocal Rank Fusion (RRF)", "8.16"),
    "linear": ("linear_retriever", "linear retriever", "8.18"),
}


def unavailable_error(strategy: str, caps: Capabilities, detail: str = "") -> CapabilityError:
    """The clear error for a forced server strategy the cluster cannot run."""
    _prop, feature, since = SERVER_FEATURES[strategy]
    where = (
        f"cluster {caps.version}, licence {caps.license_type} ({caps.license_status}), "
        f"rank-rrf module {'present' if caps.rrf_module else 'absent'}"
    )
    hint = (
        "use --fusion weighted, client-rrf or client-linear (they run on the free Basic "
        "licence), or auto to pick the best available"
    )
    extra = f"; Elasticsearch said: {detail}" if detail else ""
    if not caps.enterprise_licensed or "license" in detail.lower():
        return LicenseError(
            f"hybrid fusion {strategy!r} needs the server's [{feature}] feature, which requires an "
            f"Enterprise or trial licence and ES >= {since} ({where}); {hint}{extra}"
        )
    return CapabilityError(
        f"hybrid fusion {strategy!r} needs the [{feature}] retriever (x-pack rank-rrf module, "
        f"ES >= {since}), which this cluster lacks ({where}); {hint}{extra}"
    )


def _knn(
    params: SearchParams, vector: Sequence[float] | None, caps: Capabilities, k: int
) -> dict[str, Any]:
    if vector is None:
        raise ValueError(f"{params.mode} search needs a query vector")
    num_candidates = params.num_candidates
    if num_candidates is not None and num_candidates < k:
        num_candidates = k
    return q.knn_clause(
        vector,
        k=k,
        num_candidates=num_candidates,
        filter_clause=params.filter,
        similarity=params.similarity,
        oversample=params.oversample if caps.rescore_vector else None,
    )


def _text(params: SearchParams) -> dict[str, Any]:
    """The BM25 clause of a hybrid request (hybrid params always carry query text)."""
    clause = params.text_clause()
    if clause is None:
        raise ValueError(f"{params.mode} search needs query text")
    return clause


def _collapse_key(hit: Hit) -> str:
    return hit.doc_id or hit.id


def dedupe_by_doc(hits: list[Hit]) -> list[Hit]:
    """Keep the best chunk of each parent document (hits are already best-first)."""
    seen: set[str] = set()
    kept = []
    for hit in hits:
        key = _collapse_key(hit)
        if key not in seen:
            seen.add(key)
            kept.append(hit)
    return kept


class Strategy:
    """Base: one request, hits in the server's order."""

    name: str = "base"
    mode: str = "hybrid"
    needs_vector: bool = True
    server_feature: str | None = None  # key of SERVER_FEATURES

    def available(self, caps: Capabilities) -> bool:
        if self.server_feature is None:
            return True
        return bool(getattr(caps, SERVER_FEATURES[self.server_feature][0]))

    def require(self, caps: Capabilities) -> None:
        if not self.available(caps):
            raise unavailable_error(self.name, caps)

    def bodies(
        self, params: SearchParams, vector: Sequence[float] | None, caps: Capabilities
    ) -> list[dict[str, Any]]:
        raise NotImplementedError

    def combine(
        self, params: SearchParams, responses: list[dict[str, Any]]
    ) -> tuple[list[Hit], int | None, float]:
        """(hits, total, fusion ms) from the responses, in the order of `bodies`."""
        response = responses[0]
        hits = hits_from_response(response, leg=self.leg, offset=params.from_)
        if params.collapse:
            hits = dedupe_by_doc(hits)
        return hits, total_of(response), 0.0

    def page_highlight_body(self, params: SearchParams, hits: list[Hit]) -> dict[str, Any] | None:
        """A follow-up request that highlights only the returned page (None: not needed)."""
        return None

    leg: str | None = None
    # True when the response's hits.total counts documents matching the query (BM25); else it
    # is the size of the set the ranking chose from (kNN neighbours, fused candidates).
    total_counts_matches = False


class Bm25(Strategy):
    name = "bm25"
    total_counts_matches = True
    mode = "bm25"
    needs_vector = False
    leg = "bm25"

    def bodies(
        self, params: SearchParams, vector: Sequence[float] | None, caps: Capabilities
    ) -> list[dict[str, Any]]:
        return [
            q.bm25_body(
                params.text_clause(),
                filter_clause=params.filter,
                size=params.size,
                from_=params.from_,
                highlight=params.highlight_spec(),
                collapse=params.collapse,
            )
        ]


class Knn(Strategy):
    name = "knn"
    mode = "knn"
    leg = "knn"

    def bodies(
        self, params: SearchParams, vector: Sequence[float] | None, caps: Capabilities
    ) -> list[dict[str, Any]]:
        k = params.from_ + params.size
        return [
            q.knn_body(
                _knn(params, vector, caps, k),
                size=params.size,
                from_=params.from_,
                collapse=params.collapse,
            )
        ]


class Weighted(Strategy):
    name = "weighted"

    def bodies(
        self, params: SearchParams, vector: Sequence[float] | None, caps: Capabilities
    ) -> list[dict[str, Any]]:
        return [
            q.weighted_body(
                _text(params),
                _knn(params, vector, caps, params.window),
                knn_weight=params.knn_weight,
                filter_clause=params.filter,
                size=params.size,
                from_=params.from_,
                highlight=params.highlight_spec(),
                collapse=params.collapse,
            )
        ]


class ServerRRF(Strategy):
    name = "rrf"
    server_feature = "rrf"

    def bodies(
        self, params: SearchParams, vector: Sequence[float] | None, caps: Capabilities
    ) -> list[dict[str, Any]]:
        return [
            q.rrf_retriever_body(
                _text(params),
                _knn(params, vector, caps, params.window),
                filter_clause=params.filter,
                rank_constant=params.rank_constant,
                rank_window_size=params.window,
                weights=params.rrf_weights if caps.rrf_weights else None,
                size=params.size,
                from_=params.from_,
                highlight=params.highlight_spec(),
            )
        ]


class ServerLinear(Strategy):
    name = "linear"
    server_feature = "linear"

    def bodies(
        self, params: SearchParams, vector: Sequence[float] | None, caps: Capabilities
    ) -> list[dict[str, Any]]:
        return [
            q.linear_retriever_body(
                _text(params),
                _knn(params, vector, caps, params.window),
                knn_weight=params.knn_weight,
                filter_clause=params.filter,
                rank_window_size=params.window,
                size=params.size,
                from_=params.from_,
                highlight=params.highlight_spec(),
            )
        ]


class ClientFusion(Strategy):
    """Two legs (BM25, kNN), `window` hits each, sent together in one `_msearch`."""

    def bodies(
        self, params: SearchParams, vector: Sequence[float] | None, caps: Capabilities
    ) -> list[dict[str, Any]]:
        window = params.window
        bm25 = q.bm25_body(
            params.text_clause(),
            filter_clause=params.filter,
            size=window,
            highlight=params.highlight_spec() if self._highlight_in_leg(params) else None,
            collapse=params.collapse,
        )
        knn = q.knn_body(_knn(params, vector, caps, window), size=window, collapse=params.collapse)
        for leg in (bm25, knn):
            # The result reports the fused union, not per-leg totals; exact counting would stop
            # BM25 from skipping non-competitive blocks (block-max WAND) over the whole index.
            leg["track_total_hits"] = False
        return [bm25, knn]

    def fuse(
        self, params: SearchParams, rankings: dict[str, list[tuple[str, float]]]
    ) -> list[tuple[str, float]]:
        raise NotImplementedError

    @staticmethod
    def _highlight_in_leg(params: SearchParams) -> bool:
        return params.window <= q.HIGHLIGHT_IN_LEG_MAX_WINDOW

    def page_highlight_body(self, params: SearchParams, hits: list[Hit]) -> dict[str, Any] | None:
        highlight = params.highlight_spec()
        if not highlight or not hits or self._highlight_in_leg(params):
            return None
        ids = [hit.id for hit in hits]
        return {
            "size": len(ids),
            "_source": False,
            "track_total_hits": False,
            "query": {
                "bool": {"must": [params.text_clause()], "filter": [{"ids": {"values": ids}}]}
            },
            "highlight": highlight,
        }

    def combine(
        self, params: SearchParams, responses: list[dict[str, Any]]
    ) -> tuple[list[Hit], int | None, float]:
        started = time.perf_counter()
        # Rank on raw dicts; build typed hits only for the returned page (cheap for big windows).
        first: dict[str, dict[str, Any]] = {}
        positions: dict[str, dict[str, tuple[int, float | None]]] = {}
        highlights: dict[str, dict[str, Any]] = {}
        rankings: dict[str, list[tuple[str, float]]] = {}
        for leg, response in zip(("bm25", "knn"), responses, strict=True):
            rankings[leg] = []
            for rank, raw in enumerate(response.get("hits", {}).get("hits", []), start=1):
                if params.collapse:
                    hit_key = (raw.get("_source") or {}).get(schema.DOC_ID_FIELD) or raw["_id"]
                else:
                    hit_key = raw["_id"]
                rankings[leg].append((hit_key, raw.get("_score") or 0.0))
                first.setdefault(hit_key, raw)
                positions.setdefault(hit_key, {}).setdefault(leg, (rank, raw.get("_score")))
                if raw.get("highlight") and hit_key not in highlights:
                    highlights[hit_key] = raw["highlight"]
        fused = self.fuse(params, rankings)
        hits = []
        page = fused[params.from_ : params.from_ + params.size]
        for rank, (hit_key, score) in enumerate(page, start=params.from_ + 1):
            hit = hit_from_es(first[hit_key], rank=rank)
            hit.score = score
            hit.highlights = highlights.get(hit_key, {})
            hit.legs = {
                leg: LegScore(rank=leg_rank, score=leg_score)
                for leg, (leg_rank, leg_score) in positions[hit_key].items()
            }
            hits.append(hit)
        # Per-leg totals differ; the size of the fused union (within the window) is reported.
        return hits, len(fused), (time.perf_counter() - started) * 1000


class ClientRRF(ClientFusion):
    name = "client-rrf"

    def fuse(
        self, params: SearchParams, rankings: dict[str, list[tuple[str, float]]]
    ) -> list[tuple[str, float]]:
        weights = None
        if params.rrf_weights is not None:
            weights = {"bm25": params.rrf_weights[0], "knn": params.rrf_weights[1]}
        return fusion.rrf(rankings, rank_constant=params.rank_constant, weights=weights)


class ClientLinear(ClientFusion):
    name = "client-linear"

    def fuse(
        self, params: SearchParams, rankings: dict[str, list[tuple[str, float]]]
    ) -> list[tuple[str, float]]:
        return fusion.linear(rankings, weights=fusion.knn_weights(params.knn_weight))


STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in (
        Bm25(),
        Knn(),
        Weighted(),
        ServerRRF(),
        ServerLinear(),
        ClientRRF(),
        ClientLinear(),
    )
}


def choose(params: SearchParams, caps: Capabilities, *, server_refused: bool = False) -> Strategy:
    """The strategy for these params on this cluster; forced server fusion is checked here."""
    if params.mode in ("bm25", "knn"):
        return STRATEGIES[params.mode]
    if params.fusion == "auto":
        return STRATEGIES[auto_strategy_name(caps, server_refused=server_refused)]
    strategy = STRATEGIES[params.fusion]
    strategy.require(caps)
    return strategy


def auto_strategy_name(caps: Capabilities, *, server_refused: bool = False) -> str:
    """What `auto` runs on this cluster: the first licensed server fusion of
    `AUTO_SERVER_PREFERENCE`, else (or once the server refused one) `AUTO_FALLBACK`."""
    if not server_refused:
        for name in AUTO_SERVER_PREFERENCE:
            if STRATEGIES[name].available(caps):
                return name
    return AUTO_FALLBACK


def fallback_for(strategy: Strategy) -> Strategy:
    """What `auto` uses when the server refuses its fusion at run time (licence or parse error)."""
    return STRATEGIES[AUTO_FALLBACK]


def is_server_refusal(status: int | None, error: Any) -> bool:
    """403 licence non-compliance, or 400 for a retriever the cluster does not know."""
    text = str(error).lower()
    if status == 403 and ("license" in text or "security_exception" in text):
        return True
    return status == 400 and "unknown retriever" in text


__all__ = [
    "AUTO_FALLBACK",
    "AUTO_SERVER_PREFERENCE",
    "STRATEGIES",
    "Strategy",
    "auto_strategy_name",
    "choose",
    "dedupe_by_doc",
    "fallback_for",
    "is_server_refusal",
    "unavailable_error",
]
