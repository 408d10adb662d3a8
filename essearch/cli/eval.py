"""`essearch eval`: measure retrieval quality and latency on a BEIR-layout dataset."""

from __future__ import annotations

from pathlib import Path

import click

from essearch.cli._common import (
    cluster_settings_checked,
    err_console,
    get_settings,
    print_json,
    safe,
)


def _floats(value: str | None) -> list[float] | None:
    return [float(x) for x in value.split(",") if x.strip()] if value else None


def _ints(value: str | None) -> list[int | None] | None:
    """`10,60` -> [10, 60]; `default` stands for the library's default (no override)."""
    if not value:
        return None
    return [None if x.strip() == "default" else int(x) for x in value.split(",") if x.strip()]


@click.command("eval")
@click.option(
    "--dataset",
    "dataset_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.",
)
@click.option("--split", default="test", show_default=True, help="qrels/<split>.tsv to evaluate.")
@click.option("--modes", default="bm25,knn,hybrid", show_default=True, help="Comma-separated.")
@click.option(
    "--fusion",
    "fusions",
    default="auto",
    show_default=True,
    help="Hybrid fusion(s), comma-separated: auto, rrf, linear, weighted, client-rrf, "
    "client-linear (one hybrid run each).",
)
@click.option("--k", default=10, show_default=True, type=int, help="Cut-off of nDCG and MRR.")
@click.option(
    "--depth", default=100, show_default=True, type=int, help="Documents per query (Recall@depth)."
)
@click.option("--num-candidates", type=int, help="kNN num_candidates (default: the library's).")
@click.option("--knn-weight", type=float, help="kNN weight for linear/weighted fusion.")
@click.option("--rank-constant", type=int, help="RRF rank constant.")
@click.option(
    "--rerank", is_flag=True, help="Also run each mode with the rerank stage (ESSEARCH_RERANK_*)."
)
@click.option("--analyzer", help="Text analyzer of the evaluation index (default: settings).")
@click.option(
    "--self-hits",
    type=click.Choice(["auto", "drop", "keep"]),
    default="auto",
    show_default=True,
    help="auto: drop a hit that is the query's own document (same id and text, as in ArguAna; "
    "BEIR leaves it out); drop: every hit whose id is the query id; keep: none.",
)
@click.option("--drop-self-hits", is_flag=True, hidden=True, help="Same as --self-hits drop.")
@click.option(
    "--exact-knn",
    is_flag=True,
    help="Also index the same vectors with `flat` (exact kNN) and run kNN on it (knn/flat).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the evaluation keeps its embedding cache (default: ~/.cache/essearch/eval).",
)
@click.option(
    "--cache",
    "cache_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Embedding cache file (default: <work-dir>/embeddings.sqlite, or "
    "ESSEARCH_EMBEDDER_CACHE_PATH when set). Unchanged texts are never embedded twice.",
)
@click.option("--no-cache", is_flag=True, help="Embed everything, keep nothing.")
@click.option("--sweep", is_flag=True, help="Also try a grid of fusion settings; best per metric.")
@click.option(
    "--sweep-fusions",
    default="client-linear,client-rrf",
    show_default=True,
    help="Fusions the sweep tries (server ones need the licence).",
)
@click.option("--sweep-weights", help="kNN weights to sweep, e.g. 0.3,0.5,0.7.")
@click.option("--sweep-rank-constants", help="RRF rank constants to sweep, e.g. 10,60.")
@click.option("--sweep-num-candidates", help="num_candidates values to sweep, e.g. default,500.")
@click.option(
    "--embed-per-search",
    is_flag=True,
    help="Embed the query inside every timed search (default: each query is embedded once, "
    "timed separately, and shared by all runs).",
)
@click.option("--rebuild", is_flag=True, help="Drop and rebuild the evaluation index.")
@click.option(
    "--index-prefix",
    default="essearch-eval",
    show_default=True,
    help="Evaluation indices are <prefix>-<dataset>-<fingerprint>.",
)
@click.option("--max-queries", type=int, help="Evaluate only the first N judged queries.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the full report (JSON) to this file.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress display.")
def eval_cmd(
    dataset_dir: Path,
    split: str,
    modes: str,
    fusions: str,
    k: int,
    depth: int,
    num_candidates: int | None,
    knn_weight: float | None,
    rank_constant: int | None,
    rerank: bool,
    analyzer: str | None,
    self_hits: str,
    drop_self_hits: bool,
    exact_knn: bool,
    work_dir: Path | None,
    cache_path: Path | None,
    no_cache: bool,
    sweep: bool,
    sweep_fusions: str,
    sweep_weights: str | None,
    sweep_rank_constants: str | None,
    sweep_num_candidates: str | None,
    embed_per_search: bool,
    rebuild: bool,
    index_prefix: str,
    max_queries: int | None,
    as_json: bool,
    output: Path | None,
    quiet: bool,
) -> None:
    """Ingest a BEIR dataset (or reuse its index) and score each retrieval mode.

    Reports nDCG@k, Recall@depth and MRR@k (computed with ranx) and query latency p50/p95 for
    every judged query of the split. The index is named after the dataset, a fingerprint of the
    corpus file and the embedder, so later runs reuse it; document and query vectors are kept in
    an embedding cache, so rebuilding an index or re-running embeds nothing unchanged.
    """
    from essearch.eval.progress import PhaseProgress
    from essearch.eval.report import print_report, write_results
    from essearch.eval.runner import (
        HYBRID_FUSIONS,
        MODES,
        default_cache_path,
        evaluate_dataset,
        parse_list,
    )

    settings = get_settings()
    if analyzer:
        settings = settings.model_copy(
            update={"index": settings.index.model_copy(update={"analyzer": analyzer})}
        )
    mode_list = parse_list(modes, MODES, "mode")
    fusion_list = parse_list(fusions, HYBRID_FUSIONS, "fusion")
    grid: dict[str, list] = {}
    try:
        if sweep_weights:
            grid["knn_weights"] = _floats(sweep_weights) or []
        if sweep_rank_constants:
            grid["rank_constants"] = _ints(sweep_rank_constants) or []
        if sweep_num_candidates:
            grid["num_candidates"] = _ints(sweep_num_candidates) or []
    except ValueError as exc:
        raise click.BadParameter(f"sweep grid: {exc}") from None
    cluster_settings_checked(settings)  # the arguments first, then the cluster
    cache: Path | None = None  # None: no cache, or the one the settings configure
    if no_cache or cache_path is not None:
        embedder_settings = settings.embedder.model_copy(update={"cache_path": None})
        settings = settings.model_copy(update={"embedder": embedder_settings})
        cache = cache_path
    elif settings.embedder.cache_path is None:
        cache = default_cache_path(work_dir)
    progress = None if quiet else PhaseProgress(err_console, prefix=f"{dataset_dir.name}: ")
    report = evaluate_dataset(
        str(dataset_dir),
        settings=settings,
        split=split,
        modes=mode_list,
        fusions=fusion_list,
        k=k,
        depth=depth,
        num_candidates=num_candidates,
        knn_weight=knn_weight,
        rank_constant=rank_constant,
        rerank=rerank,
        self_hits="drop" if drop_self_hits else self_hits,
        exact_knn=exact_knn,
        sweep=sweep,
        sweep_fusions=parse_list(sweep_fusions, HYBRID_FUSIONS, "sweep fusion"),
        sweep_grid=grid,
        rebuild=rebuild,
        embed_once=not embed_per_search,
        embedding_cache=cache,
        index_prefix=index_prefix,
        max_queries=max_queries,
        progress=progress,
    )
    if output is not None:
        write_results(report, output)
    if as_json:
        print_json(report.to_dict())
    else:
        from essearch.cli._common import console

        print_report(report, console)
        if output is not None:
            console.print(f"results written to {safe(output)}")


COMMANDS = [eval_cmd]
