"""`essearch doctor`: cluster, licence, capabilities and effective settings (secrets masked)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from essearch.cli._common import console, get_settings, print_json, safe
from essearch.errors import ClusterConnectionError

if TYPE_CHECKING:
    from essearch.settings import Settings

# For each capability the node may lack: what essearch does instead (so "no" is not a dead end).
FALLBACKS: dict[str, str] = {
    "reindex": "reindex copies with a point-in-time scan and bulk from the client",
    "update_by_query": "updates by query run client-side: search, then bulk updates",
    "delete_by_query": "deletes by query run client-side: search, then bulk deletes by id",
    "painless": "scripted updates are computed client-side and written with bulk",
    "ingest_processors": "chunking and embedding run client-side; `essearch pipeline` is off",
    "rank_feature": "rank features are stored as plain numbers and not used to boost scores",
    "analysis_common": "only the standard analyzer and language-neutral tokenizers are offered",
    "rrf_retriever": "hybrid: client-side RRF fusion of a BM25 and a kNN leg (one _msearch)",
    "linear_retriever": "--fusion linear: client-side min-max linear fusion (client-linear)",
    "inference": "embeddings come from essearch's own embedder (local, OpenAI, Ollama)",
    "rescore_vector": "quantized kNN is not rescored; raise num_candidates for recall",
    "sql": "RAGFlow's sql() raises, and RAGFlow falls back to vector search",
}


def hybrid_plan(capabilities: dict[str, bool]) -> str:
    """What a default (`--fusion auto`) hybrid search will use on this cluster, in words."""
    if capabilities.get("rrf_retriever"):
        return "server-side RRF retriever"
    return "client-side RRF (BM25 and kNN legs in one _msearch, fused in Python)"


def doctor_report(settings: Settings) -> tuple[dict[str, Any], bool]:
    from essearch.es.health import check_health

    report: dict[str, Any] = {"settings": settings.masked()}
    try:
        health = check_health(settings)
    except ClusterConnectionError as exc:
        report.update(ok=False, error=str(exc))
        return report, False
    caps = health.capabilities
    features = caps.features()
    report.update(
        ok=True,
        cluster={
            "url": health.url,
            "name": caps.cluster_name,
            "status": health.status,
            "version": caps.version,
            "build_flavor": caps.build_flavor,
            "nodes": caps.node_count,
            **(health.shards or {}),
        },
        license={"type": caps.license_type, "status": caps.license_status},
        limited=caps.limited or None,
        capabilities=features,
        fallbacks={
            name: FALLBACKS.get(name, "not needed by essearch")
            for name, ok in features.items()
            if not ok
        },
        hybrid=hybrid_plan(features),
        index_types=caps.index_types,
        analyzers=sorted(caps.analyzers),
        modules=sorted(caps.modules),
        plugins=sorted(caps.plugins),
    )
    coverage = _index_coverage(settings)
    if coverage is not None:
        report["index_languages"] = coverage
    return report, True


def _index_coverage(settings) -> dict[str, Any] | None:
    """The configured index's languages against its embedder (the language guard)."""
    from essearch.es import make_client
    from essearch.text.guard import index_coverage

    try:
        with make_client(settings) as client:
            return index_coverage(client, settings.index.name)
    except Exception as exc:  # doctor reports; it never fails on an optional check
        return {"index": settings.index.name, "error": type(exc).__name__}


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def doctor(as_json: bool) -> None:
    """Check the cluster and print what essearch can use on it (and uses instead)."""
    settings = get_settings()
    report, ok = doctor_report(settings)
    if as_json:
        print_json(report)
    else:
        _render(report)
    sys.exit(0 if ok else 1)


def render_summary(report: dict[str, Any]) -> None:
    """A few lines about the cluster (the demo's view; `doctor` shows everything)."""
    if not report["ok"]:
        console.print(f"[red]✗[/red] {safe(report['error'])}", soft_wrap=True)
        return
    cluster, licence = report["cluster"], report["license"]
    nodes = cluster["nodes"]
    console.print(
        f"Elasticsearch {safe(cluster['version'])} · {nodes} node{'s' if nodes != 1 else ''} · "
        f"health {safe(cluster['status'])} · licence {safe(licence['type'])} "
        f"({safe(licence['status'])})",
        highlight=False,
    )
    console.print(f"hybrid search will use {safe(report['hybrid'])}", highlight=False)
    missing = ", ".join(report["fallbacks"])
    if missing:
        console.print(
            f"[dim]not on this cluster (essearch works around them): {safe(missing)}; "
            "`essearch doctor` says how[/dim]"
        )


def _render(report: dict[str, Any]) -> None:
    from rich.table import Table

    if not report["ok"]:  # one line: the failure is the whole report (settings: --json)
        console.print(f"[red]✗[/red] {safe(report['error'])}", soft_wrap=True)
        return
    cluster = report["cluster"]
    table = Table(title="Cluster", show_header=False)
    for key, value in cluster.items():
        table.add_row(key, safe(value))
    licence = report["license"]
    table.add_row("licence", safe(f"{licence['type']} ({licence['status']})"))
    table.add_row("modules", safe(", ".join(report["modules"]) or "-"))
    table.add_row("plugins", safe(", ".join(report["plugins"]) or "-"))
    table.add_row("hybrid search", safe(report["hybrid"]))
    console.print(table)
    caps = Table(title="Capabilities")
    caps.add_column("feature")
    caps.add_column("available")
    caps.add_column("essearch uses instead")
    for name, present in report["capabilities"].items():
        caps.add_row(
            name,
            "[green]yes[/green]" if present else "[yellow]no[/yellow]",
            "" if present else safe(report["fallbacks"].get(name, "")),
        )
    caps.add_row("index_options types", safe(", ".join(report["index_types"])), "")
    caps.add_row("analyzers", safe(", ".join(report["analyzers"])), "")
    console.print(caps)
    coverage = report.get("index_languages")
    if coverage and coverage.get("languages"):
        shares = ", ".join(f"{k} {v:.0%}" for k, v in coverage["languages"].items())
        console.print(f"index {safe(coverage['index'])}: languages {shares}")
    if coverage and coverage.get("warning"):
        console.print(f"[yellow]warning:[/] {safe(coverage['warning'])}")
    if report.get("limited"):
        console.print(f"[yellow]note:[/yellow] {safe(report['limited'])}", soft_wrap=True)
    settings = Table(title="Effective settings (secrets masked)")
    settings.add_column("setting")
    settings.add_column("value")
    for group, values in report["settings"].items():
        if isinstance(values, dict):
            for key, value in values.items():
                settings.add_row(f"{group}.{key}", safe(value))
        else:
            settings.add_row(group, safe(values))
    console.print(settings)


COMMANDS = [doctor]
