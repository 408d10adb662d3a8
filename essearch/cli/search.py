"""`essearch search`: BM25 / kNN / hybrid search from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from essearch.cli._common import (
    cluster_settings_checked,
    command_settings,
    console,
    index_option,
    print_json,
    safe,
)
from essearch.retrieval.names import FUSIONS, MODES

if TYPE_CHECKING:
    from essearch.retrieval import SearchResult


def _short_vectors(value: Any) -> Any:
    """Request bodies for display: query vectors shortened to their first values and length."""
    if isinstance(value, dict):
        return {
            k: (
                f"[{', '.join(f'{x:.4f}' for x in v[:3])}, … {len(v)} dims]"
                if k == "query_vector" and isinstance(v, list)
                else _short_vectors(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_short_vectors(v) for v in value]
    return value


def count_line(result: SearchResult) -> str:
    """How many hits are shown out of what: "3 of 7 fused candidates", "3 of 1,204 matching"."""
    shown = len(result.hits)
    if result.total is not None:
        return f"{shown} of {result.total:,} matching"
    if result.candidates is not None:
        what = "nearest neighbours" if result.mode == "knn" else "fused candidates"
        return f"{shown} of {result.candidates:,} {what}"
    return f"{shown} hits"


def _render(result: SearchResult, show_legs: bool) -> None:
    from rich.table import Table

    table = Table(title=f"{result.mode} · {safe(result.strategy)} · {count_line(result)}")
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    if show_legs:
        table.add_column("bm25", justify="right")
        table.add_column("knn", justify="right")
    reranked = any(hit.rerank_score is not None for hit in result.hits)
    if reranked:
        table.add_column("rerank", justify="right")
    table.add_column("title")
    table.add_column("snippet", overflow="fold")
    for hit in result.hits:
        row = [str(hit.rank), f"{hit.score:.4f}" if hit.score is not None else "-"]
        if show_legs:
            for leg in ("bm25", "knn"):
                score = hit.legs.get(leg)
                row.append(f"#{score.rank} {score.score:.3f}" if score and score.rank else "-")
        if reranked:
            row.append(f"{hit.rerank_score:.4f}" if hit.rerank_score is not None else "-")
        snippet = safe(hit.snippet()).replace("<em>", "[bold]").replace("</em>", "[/bold]")
        row += [safe(hit.title or hit.doc_id or hit.id), snippet]
        table.add_row(*row)
    console.print(table)
    if result.explain:
        t = result.explain.timings
        console.print(
            f"strategy {result.explain.strategy}: embedding {t.embedding_ms:.1f} ms, "
            f"ES took {t.es_took_ms:.0f} ms (round trip {t.es_roundtrip_ms:.1f} ms), "
            f"fusion {t.fusion_ms:.2f} ms, total {t.total_ms:.1f} ms"
        )
        for note in result.explain.notes:
            console.print(f"note: {safe(note)}")
        for i, body in enumerate(result.explain.requests, 1):
            console.rule(f"request {i}")
            console.print_json(data=_short_vectors(body))


@click.command()
@click.argument("query", required=False)
@click.option("--mode", type=click.Choice(MODES), default="hybrid", show_default=True)
@click.option(
    "--fusion",
    type=click.Choice(FUSIONS),
    default="auto",
    show_default=True,
    help="Hybrid fusion: auto = server linear (else RRF) when licensed, else client-side "
    "linear fusion.",
)
@click.option("-k", "--k", "k", type=int, default=10, show_default=True, help="Hits to return.")
@click.option("--from", "from_", type=int, default=0, help="Offset (inside the result window).")
@click.option(
    "-f",
    "--filter",
    "filters",
    multiple=True,
    help="lang=zh, year>=2020, 'tag in a,b', !draft, lang!=en or JSON; repeat to AND.",
)
@click.option("--knn-weight", type=float, help="kNN weight for weighted/linear fusion (0-1).")
@click.option("--num-candidates", type=int, help="kNN candidates per shard (default max(10k,100)).")
@click.option("--similarity", type=float, help="kNN raw-similarity floor.")
@click.option("--operator", type=click.Choice(["or", "and"]), help="BM25 term operator.")
@click.option("--minimum-should-match", "msm", help="BM25 minimum_should_match, e.g. 75%.")
@click.option("--field", "fields", multiple=True, help="BM25 field with optional ^boost.")
@click.option("--lucene", is_flag=True, help="Parse the query as Lucene query_string syntax.")
@click.option("--collapse", is_flag=True, help="One hit per parent document (doc_id).")
@index_option
@click.option("--rerank", is_flag=True, help="Rerank the top candidates (ESSEARCH_RERANK_*).")
@click.option("--rerank-top-n", type=int, help="Candidates handed to the reranker (default 50).")
@click.option("--like", "like", metavar="DOC_ID", help="Documents like this stored one (no query).")
@click.option("--explain", is_flag=True, help="Show request bodies and timings.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def search(
    query: str | None,
    mode: str,
    fusion: str,
    k: int,
    from_: int,
    filters: tuple[str, ...],
    knn_weight: float | None,
    num_candidates: int | None,
    similarity: float | None,
    operator: str | None,
    msm: str | None,
    fields: tuple[str, ...],
    lucene: bool,
    collapse: bool,
    index_name: str | None,
    rerank: bool,
    rerank_top_n: int | None,
    like: str | None,
    explain: bool,
    as_json: bool,
) -> None:
    """Search the index: BM25, kNN or hybrid (default)."""
    from essearch.retrieval import SearchClient
    from essearch.retrieval.filters import parse_filters

    parsed_filter = parse_filters(list(filters))  # a bad filter stops here, before any request
    settings = cluster_settings_checked(command_settings(index_name))
    options: dict[str, Any] = {
        "mode": mode,
        "fusion": fusion,
        "k": k,
        "from_": from_,
        "lucene_syntax": lucene,
        "collapse": collapse,
        "explain": explain,
        "rerank": rerank,
    }
    extra = {
        "knn_weight": knn_weight,
        "num_candidates": num_candidates,
        "similarity": similarity,
        "operator": operator,
        "minimum_should_match": msm,
        "fields": tuple(fields) or None,
        "rerank_top_n": rerank_top_n,
    }
    options.update({key: value for key, value in extra.items() if value is not None})
    with SearchClient(settings) as client:
        if like is not None:
            if query:
                raise click.UsageError("give a QUERY or --like DOC_ID, not both")
            result = client.similar_to(like, k=k, filter=parsed_filter)
        else:
            result = client.search(query, filter=parsed_filter, **options)
    if as_json:
        print_json(result.model_dump(mode="json"))
    else:
        _render(result, show_legs=result.strategy.startswith("client-"))


COMMANDS = [search]
