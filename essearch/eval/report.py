"""Rendering an evaluation: a rich table, JSON, a results file, and Markdown for RESULTS.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from essearch.eval.runner import EvalReport, ModeResult

METRIC_TITLES = {"ndcg": "nDCG", "recall": "Recall", "mrr": "MRR"}


def metric_title(name: str) -> str:
    stem, _, cut = name.partition("@")
    return f"{METRIC_TITLES.get(stem, stem)}@{cut}" if cut else METRIC_TITLES.get(stem, stem)


def results_table(
    report: EvalReport, rows: list[ModeResult] | None = None, title: str = ""
) -> Table:
    rows = report.results if rows is None else rows
    table = Table(title=title or _title(report))
    table.add_column("run", overflow="fold")
    table.add_column("strategy", overflow="fold")
    for name in report.metrics:
        table.add_column(metric_title(name), justify="right")
    table.add_column("p50 ms", justify="right")
    table.add_column("p95 ms", justify="right")
    best = {
        name: max((r.metrics.get(name, 0.0) for r in rows), default=0.0) for name in report.metrics
    }
    for row in rows:
        cells = []
        for name in report.metrics:
            value = row.metrics.get(name, 0.0)
            text = f"{value:.4f}"
            cells.append(f"[bold]{text}[/bold]" if value == best[name] and len(rows) > 1 else text)
        errors = f" ({row.errors} errors)" if row.errors else ""
        table.add_row(
            row.label + errors,
            row.strategy or "-",
            *cells,
            f"{row.latency.get('p50_ms', 0):.1f}",
            f"{row.latency.get('p95_ms', 0):.1f}",
        )
    return table


def _title(report: EvalReport) -> str:
    index = report.index
    how = "reused" if index.get("reused") else f"built in {index.get('build_s', 0):.0f}s"
    return (
        f"{report.dataset} ({report.split}, {report.queries} judged queries) · "
        f"{report.embedder.get('model')} · analyzer {report.analyzer} · "
        f"index {index['name']} ({how})"
    )


def print_report(report: EvalReport, console: Console | None = None) -> None:
    console = console or Console()
    data = report.to_dict()
    console.print(results_table(report))
    console.print(latency_note(data), highlight=False, markup=False)
    for note in run_notes(data):
        console.print(f"· {note}", highlight=False, markup=False)
    for row in report.results:
        if row.first_error:
            console.print(
                f"[red]{row.label}: {row.errors} failed queries; first: {row.first_error}"
            )
    if report.sweep:
        console.print(results_table(report, report.sweep, title=f"sweep on {report.dataset}"))
        best = Table(title="best per metric (sweep)")
        best.add_column("metric")
        best.add_column("value", justify="right")
        best.add_column("configuration", overflow="fold")
        for name, entry in report.best.items():
            best.add_row(metric_title(name), f"{entry['value']:.4f}", entry["label"])
        console.print(best)


def write_results(report: EvalReport, path: str | Path) -> Path:
    """The whole report as JSON (creates parent folders)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return target


def latency_note(data: dict[str, Any]) -> str:
    """What the p50/p95 columns measure, and where the query vectors came from."""
    if data.get("latency_includes_embedding", True):
        return "latency: wall-clock per search, including the query embedding"
    vectors = data.get("query_vectors") or {}
    embedding = data.get("query_embedding") or {}
    parts = []
    if vectors.get("embedded"):
        parts.append(
            f"{vectors['embedded']:,} embedded now (p50 {embedding.get('p50_ms', 0):.1f} ms, "
            f"p95 {embedding.get('p95_ms', 0):.1f} ms each)"
        )
    if vectors.get("cached"):
        parts.append(f"{vectors['cached']:,} from the embedding cache")
    where = "; query vectors: " + ", ".join(parts) if parts else ""
    return (
        "latency: wall-clock per search with the query vector already computed (each query is "
        f"embedded once, shared by all runs){where}"
    )


def run_notes(data: dict[str, Any]) -> list[str]:
    """Self-hits, runs that are another run's figures, fusions left out, the cache."""
    notes = []
    if data.get("self_hit_queries"):
        policy = data.get("self_hits", "auto")
        verb = "kept" if policy == "keep" else "dropped from the rankings (as BEIR does)"
        notes.append(
            f"judged queries that are themselves corpus documents: {data['self_hit_queries']:,}; "
            f"those self-hits are {verb}"
        )
    elif data.get("self_hits") == "drop":
        notes.append("every hit whose id is the query id is dropped")
    notes.extend((data.get("index") or {}).get("notes", []))
    for row in data.get("results", []):
        if row.get("same_as"):
            notes.append(f"{row['label']} runs as {row['same_as']} here: same figures")
    notes.extend(data.get("notes", []))
    cache = data.get("embedding_cache") or {}
    if cache.get("path"):
        notes.append(
            f"embedding cache {cache['path']}: {cache.get('hits', 0):,} hits, "
            f"{cache.get('misses', 0):,} misses"
        )
    return notes


def markdown_table(data: dict[str, Any], rows_key: str = "results") -> str:
    """A Markdown table from a report's dict form (as written by `write_results`)."""
    metrics = data["metrics"]
    header = ["run", "strategy", *map(metric_title, metrics), "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in data.get(rows_key, []):
        cells = [row["label"], row.get("strategy") or "-"]
        cells += [f"{row['metrics'].get(name, 0.0):.4f}" for name in metrics]
        cells += [
            f"{row['latency'].get('p50_ms', 0):.1f}",
            f"{row['latency'].get('p95_ms', 0):.1f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
