"""`essearch init`, `status`, `drop` and `mappings show|list`: the index's life cycle.

Thin commands: they build an IndexManager from the settings and render its results with rich or
as JSON (`--json`).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

import click

from essearch.cli._common import (
    cluster_settings_checked,
    configured_embedder_info,
    console,
    err_console,
    get_settings,
    index_option,
    print_json,
    require_write,
    safe,
    with_index,
)
from essearch.errors import EssearchError

if TYPE_CHECKING:
    from essearch.embedders.base import EmbedderInfo
    from essearch.settings import Settings


def _manager(settings: Settings, embedder: EmbedderInfo | None):
    from essearch.es import make_client
    from essearch.index import IndexManager

    return IndexManager(make_client(settings), settings, embedder)


def _definition_settings(definition: str | None, index_name: str | None = None) -> Settings:
    settings = with_index(get_settings(), index_name)
    if definition:
        settings = settings.model_copy(
            update={"index": settings.index.model_copy(update={"definition": definition})}
        )
    return settings


def _show_embedder(info: dict[str, Any] | None) -> str:
    if not info:
        return "-"
    return f"{info['provider']}/{info['model']} ({info['dims']} dims, {info['similarity']})"


# -- init ------------------------------------------------------------------------------------------
@click.command()
@click.option("--definition", help="mappings/ definition name or JSON path (overrides settings).")
@click.option(
    "--dims",
    type=int,
    help="Embedder output dims (embedder.dimensions; spares loading a local model).",
)
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    help="Chunk size recorded on the index (MiniLM tokens, else characters).",
)
@click.option("--chunk-overlap", type=click.IntRange(min=0), help="Overlap, same unit.")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def init(
    index_name: str | None,
    definition: str | None,
    dims: int | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    as_json: bool,
) -> None:
    """Create <name>-v1 behind the read and write aliases (a no-op when it already matches).

    The chunking (the embedder's default, or --chunk-size/--chunk-overlap) is recorded on the
    index; ingest follows it, and `essearch reindex --chunk-size` changes it."""
    settings = _definition_settings(definition, index_name)
    if chunk_size or chunk_overlap is not None:
        index_settings = settings.index.model_copy(
            update={"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
        )
        settings = settings.model_copy(update={"index": index_settings})
    require_write(cluster_settings_checked(settings))
    manager = _manager(settings, configured_embedder_info(settings, dims))
    result = manager.init()
    if as_json:
        print_json(result.to_dict())
    elif result.created:
        console.print(
            f"[green]created[/green] {safe(result.index)} behind aliases "
            f"{safe(result.read_alias)} (read) and {safe(result.write_alias)} (write); "
            f"template {safe(result.template)}"
        )
        for note in result.notes:
            console.print(f"  {safe(note)}")
    elif result.up_to_date:
        console.print(
            f"{safe(result.read_alias)} -> {safe(result.index)} already matches the definition"
        )
        for action in result.actions:
            console.print(f"  {safe(action)}")
    else:
        console.print(
            f"[yellow]{safe(result.read_alias)} -> {safe(result.index)} differs from the "
            "definition; "
            "nothing was changed:[/yellow]"
        )
        for difference in result.differences:
            console.print(f"  - {difference}", markup=False)
        console.print("Run `essearch reindex` to build a new version with this definition.")
    sys.exit(0 if result.up_to_date else 1)


# -- status ----------------------------------------------------------------------------------------
@click.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--dims",
    type=int,
    help="Embedder output dims (embedder.dimensions; spares loading a local model).",
)
@index_option
def status(as_json: bool, dims: int | None, index_name: str | None) -> None:
    """Per alias: the physical index, its chunks and documents, size, health and the embedder
    recorded on it."""
    settings = cluster_settings_checked(with_index(get_settings(), index_name))
    try:
        configured: EmbedderInfo | None = configured_embedder_info(settings, dims)
    except EssearchError as exc:
        err_console.print(f"[yellow]configured embedder unknown:[/yellow] {safe(exc)}")
        configured = None
    from essearch.es.health import cluster_health, health_in_words

    manager = _manager(settings, configured)
    report = manager.status().to_dict()
    report["cluster"] = cluster_health(manager.client)
    if as_json:
        print_json(report)
        return
    if report["cluster"] is not None:
        console.print(health_in_words(report["cluster"]))
    if not report["exists"]:
        console.print(f"alias {safe(repr(report['name']))} does not exist; run `essearch init`")
    from rich.table import Table

    table = Table(title=f"Index {safe(report['name'])}")
    columns = (
        "alias",
        "index",
        "chunks",
        "documents",
        "size",
        "health",
        "embedder recorded",
        "chunking",
        "check",
    )
    for column in columns:
        table.add_column(column)
    configured_text = _show_embedder(report["configured"])
    for alias in report["aliases"]:
        for info in alias["indices"] or [{"index": "-"}]:
            problems = info.get("mismatch") or []
            check = (
                "[red]MISMATCH[/red]: " + safe("; ".join(problems))
                if problems
                else "[green]ok[/green]"
            )
            if report["configured"] is None:
                check = "[yellow]not checked[/yellow]"
            table.add_row(
                safe(f"{alias['alias']} ({alias['role']})"),
                safe(info["index"]),
                _count(info.get("docs")),
                _count(info.get("documents")),
                _human_bytes(info.get("size_bytes")),
                safe(info.get("health") or "-"),
                safe(_show_embedder(info.get("recorded"))),
                safe(_show_chunking(info.get("chunking"))),
                check,
            )
    console.print(table)
    console.print(f"configured embedder: {safe(configured_text)}")
    for version in report["versions"]:
        if version["aliases"] and version.get("cjk"):
            console.print(f"Chinese/CJK BM25 in {version['index']}: {version['cjk']}")
    unaliased = [v["index"] for v in report["versions"] if not v["aliases"]]
    if unaliased:
        console.print(f"versions behind no alias: {safe(', '.join(unaliased))}")
    for version in report["versions"]:
        explanation = explain_health(version.get("health"), version.get("replicas"))
        if explanation:
            console.print(f"{safe(version['index'])}: {safe(explanation)}")
    if report["mismatch"]:
        sys.exit(1)


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def explain_health(health: str | None, replicas: int | None) -> str | None:
    """Yellow and red health in words, with what to do (None when green or unknown)."""
    if health == "yellow":
        return (
            f"health yellow: every primary shard is assigned, but {replicas or 'some'} "
            "replica(s) per shard cannot be placed (a replica never shares a node with its "
            "primary, so a single-node cluster cannot hold any). Searches and writes work; "
            "set ESSEARCH_INDEX_REPLICAS=0 for new indices, or add nodes."
        )
    if health == "red":
        return (
            "health red: a primary shard is unassigned, so part of the data cannot be searched "
            "or written; see GET _cluster/allocation/explain."
        )
    return None


def _show_chunking(chunking: dict[str, Any] | None) -> str:
    if not chunking:
        return "-"
    return f"{chunking.get('size')}/{chunking.get('overlap')} {chunking.get('unit')}"


def _human_bytes(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


# -- drop ------------------------------------------------------------------------------------------
@click.command()
@click.argument("index", required=False)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Also delete indices that an alias points to.")
@index_option
def drop(index: str | None, yes: bool, force: bool, index_name: str | None) -> None:
    """Delete one version INDEX, or (no INDEX) every version of the index and its template."""
    settings = cluster_settings_checked(with_index(get_settings(), index_name))
    manager = _manager(settings, None)
    plan = manager.plan_drop(index)
    if plan.empty:
        console.print(f"nothing to drop for {safe(repr(manager.name))}")
        return
    if plan.aliased and not force:
        held = "; ".join(f"{i} <- {', '.join(a)}" for i, a in plan.aliased.items())
        raise click.ClickException(
            f"refusing to delete indices that aliases still point to ({held}); "
            "swap the aliases first (essearch reindex) or pass --force"
        )
    what = ", ".join(plan.indices) + (f" and template {plan.template}" if plan.template else "")
    if not yes:
        click.confirm(f"Delete {what}?", abort=True)
    manager.drop(index, force=force)
    console.print(f"deleted {safe(what)}")


# -- mappings --------------------------------------------------------------------------------------
@click.group()
def mappings() -> None:
    """Index definitions from mappings/ (built-in and your own)."""


@mappings.command("list")
def mappings_list() -> None:
    """The definition names that resolve, and their files."""
    from essearch.index.definitions import available_definitions

    for name, path in available_definitions().items():
        console.print(f"{name}\t{path}", markup=False)


@mappings.command("show")
@click.option("--definition", help="mappings/ definition name or JSON path (overrides settings).")
@click.option("--version", "version", type=int, help="Render for <name>-v<N> (records N).")
@click.option(
    "--dims",
    type=int,
    help="Embedder output dims (embedder.dimensions; spares loading a local model).",
)
@click.option("--offline", is_flag=True, help="Do not ask the cluster (no version/analyzer check).")
@click.option("--template", is_flag=True, help="Print the index template body instead.")
@index_option
def mappings_show(
    definition: str | None,
    version: int | None,
    dims: int | None,
    offline: bool,
    template: bool,
    index_name: str | None,
) -> None:
    """Print the rendered body (settings + mappings) that `init` would send."""
    from elasticsearch import ApiError, TransportError

    from essearch.index.definitions import render
    from essearch.index.diff import stamp_fingerprint
    from essearch.index.manager import IndexManager

    settings = _definition_settings(definition, index_name)
    info = configured_embedder_info(settings, dims)
    body: dict[str, Any] | None = None
    if not offline:
        try:
            manager = _manager(settings, info)
            manager.capabilities  # noqa: B018 - probe first so an unreachable cluster falls back
        except (TransportError, ApiError) as exc:
            err_console.print(
                f"[yellow]cluster not reachable, rendering offline:[/yellow] {safe(exc)}"
            )
        else:
            body = manager.render_body(version)
    if body is None:
        manager = IndexManager(None, settings, info)  # type: ignore[arg-type]  # no requests made
        body = stamp_fingerprint(render(manager.load_definition(), settings, info, None, version))
    out = manager.template_body(body) if template else body
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")


COMMANDS = [init, status, drop, mappings]
