"""`essearch doctor`: cluster, licence, capabilities and effective settings (secrets masked)."""

from __future__ import annotations

import sys
from typing import Any

import click
from rich.table import Table

from essearch.cli._common import console, get_settings, print_json
from essearch.errors import ClusterConnectionError
from essearch.es.health import check_health


def doctor_report(settings) -> tuple[dict[str, Any], bool]:
    report: dict[str, Any] = {"settings": settings.masked()}
    try:
        health = check_health(settings)
    except ClusterConnectionError as exc:
        report.update(ok=False, error=str(exc))
        return report, False
    caps = health.capabilities
    report.update(
        ok=True,
        cluster={
            "url": health.url,
            "name": caps.cluster_name,
            "status": health.status,
            "version": caps.version,
            "build_flavor": caps.build_flavor,
            "nodes": caps.node_count,
        },
        license={"type": caps.license_type, "status": caps.license_status},
        capabilities=caps.features(),
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
    """Check the cluster and print what essearch can use on it."""
    settings = get_settings()
    report, ok = doctor_report(settings)
    if as_json:
        print_json(report)
    else:
        _render(report)
    sys.exit(0 if ok else 1)


def _render(report: dict[str, Any]) -> None:
    if not report["ok"]:
        console.print(f"[red]✗[/red] {report['error']}")
    else:
        cluster = report["cluster"]
        table = Table(title="Cluster", show_header=False)
        for key, value in cluster.items():
            table.add_row(key, str(value))
        table.add_row("licence", f"{report['license']['type']} ({report['license']['status']})")
        table.add_row("modules", ", ".join(report["modules"]) or "-")
        table.add_row("plugins", ", ".join(report["plugins"]) or "-")
        console.print(table)
        caps = Table(title="Capabilities")
        caps.add_column("feature")
        caps.add_column("available")
        for name, present in report["capabilities"].items():
            caps.add_row(name, "[green]yes[/green]" if present else "[yellow]no[/yellow]")
        caps.add_row("index_options types", ", ".join(report["index_types"]))
        caps.add_row("analyzers", ", ".join(report["analyzers"]))
        console.print(caps)
        coverage = report.get("index_languages")
        if coverage and coverage.get("languages"):
            shares = ", ".join(f"{k} {v:.0%}" for k, v in coverage["languages"].items())
            console.print(f"index {coverage['index']}: languages {shares}")
        if coverage and coverage.get("warning"):
            console.print(f"[yellow]warning:[/] {coverage['warning']}")
    settings = Table(title="Effective settings (secrets masked)")
    settings.add_column("setting")
    settings.add_column("value")
    for group, values in report["settings"].items():
        if isinstance(values, dict):
            for key, value in values.items():
                settings.add_row(f"{group}.{key}", str(value))
        else:
            settings.add_row(group, str(values))
    console.print(settings)


COMMANDS = [doctor]
