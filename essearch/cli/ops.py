"""`essearch reindex`, `essearch rollback`, `essearch gc`: versions behind the aliases."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from essearch.cli._common import (
    cluster_settings_checked,
    command_settings,
    console,
    err_console,
    index_option,
    load_embedder,
    print_json,
    safe,
)
from essearch.cli.embed import ProviderChoice

if TYPE_CHECKING:
    from essearch.settings import Settings


def migration_settings(base: Settings, index: dict[str, Any], embedder: dict[str, Any]) -> Settings:
    """`base` with the CLI's index and embedder options on top (validated like the env)."""
    from pydantic import ValidationError

    from essearch.errors import ConfigurationError
    from essearch.settings import EmbedderSettings, IndexSettings, format_validation_error

    index = {k: v for k, v in index.items() if v is not None}
    embedder = {k: v for k, v in embedder.items() if v is not None}
    try:
        return base.model_copy(
            update={
                "index": IndexSettings.model_validate({**base.index.model_dump(), **index}),
                "embedder": EmbedderSettings.model_validate(
                    {**base.embedder.model_dump(), **embedder}
                ),
            }
        )
    except ValidationError as exc:
        raise ConfigurationError(format_validation_error(exc)) from None


@click.command()
@click.option("--provider", type=ProviderChoice())
@click.option("--model", help="The new embedding model.")
@click.option("--dimensions", type=int, help="Output dimensions of the new model.")
@click.option("--base-url", help="The new embedder's server (openai/ollama).")
@click.option("--definition", help="A mappings/ definition name or a JSON file.")
@click.option("--analyzer", help="Analyzer of the text fields.")
@click.option("--vector-index-type", help="dense_vector index_options type.")
@click.option(
    "--chunk-size",
    type=click.IntRange(min=1),
    help="Re-chunk to this size (MiniLM tokens, else characters).",
)
@click.option("--chunk-overlap", type=click.IntRange(min=0), help="Overlap, same unit.")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@click.option("--restart", is_flag=True, help="Drop an unfinished target and start clean.")
@click.option("--force", is_flag=True, help="Migrate even when nothing changes.")
@click.option("--no-swap", is_flag=True, help="Copy and verify, but leave the aliases alone.")
@click.option("--batch-size", type=int, default=256, show_default=True)
@click.option(
    "--dead-letter",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("essearch-reindex-dead-letter.jsonl"),
    show_default=True,
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def reindex(
    index_name: str | None,
    provider: str | None,
    model: str | None,
    dimensions: int | None,
    base_url: str | None,
    definition: str | None,
    analyzer: str | None,
    vector_index_type: str | None,
    chunk_size: int | None,
    chunk_overlap: int | None,
    dry_run: bool,
    restart: bool,
    force: bool,
    no_swap: bool,
    batch_size: int,
    dead_letter: Path,
    quiet: bool,
    as_json: bool,
) -> None:
    """Move the index to a new version (mapping, analyzer, chunking or embedding model) with no
    downtime.

    Searches keep using the old version until one atomic alias swap; writes made during the copy
    are caught up; `essearch rollback` swaps back. Re-running after an interruption resumes.
    A new chunk size (or a new model whose default chunking differs) re-chunks every document.
    """
    from essearch.es import make_client, probe
    from essearch.ingest.progress import NoProgress, RichProgress
    from essearch.ops.reindex import ReindexOptions, plan_reindex, run_reindex

    settings = migration_settings(
        cluster_settings_checked(command_settings(index_name)),
        {
            "definition": definition,
            "analyzer": analyzer,
            "vector_index_type": vector_index_type,
            "chunk_size": chunk_size,
            "chunk_overlap": chunk_overlap,
        },
        {"provider": provider, "model": model, "dimensions": dimensions, "base_url": base_url},
    )
    client = make_client(settings)
    capabilities = probe(client)
    embedder = load_embedder(settings, client=client, quiet=quiet or as_json or dry_run)
    plan = plan_reindex(client, settings, embedder, capabilities=capabilities)
    if dry_run:
        if as_json:
            print_json({"dry_run": True, "plan": plan.to_dict()})
        else:
            console.print("[bold]reindex plan[/bold] (dry run, nothing changed)")
            for line in plan.describe():
                console.print(f"  {safe(line)}")
        return
    options = ReindexOptions(
        batch_size=batch_size,
        dead_letter=dead_letter,
        restart=restart,
        force=force,
        swap=not no_swap,
    )
    progress = NoProgress() if quiet or as_json else RichProgress(err_console, label="reindex")
    result = run_reindex(
        client,
        settings,
        embedder,
        options=options,
        capabilities=capabilities,
        progress=progress,
        plan=plan,
    )
    if as_json:
        print_json(result.to_dict())
    else:
        _render_reindex(result)
    sys.exit(0 if result.ok else 1)


def _render_reindex(result: Any) -> None:
    plan = result.plan
    if result.status == "noop":
        console.print(f"nothing changes: {safe(plan.source)} already matches (use --force to copy)")
        return
    for line in plan.describe():
        console.print(f"  {safe(line)}")
    copy = result.copy
    console.print(
        f"copied: read {copy.get('read', 0)}, skipped {copy.get('skipped', 0)}, "
        f"embedded {copy.get('embedded', 0)}, indexed {copy.get('indexed', 0)}, "
        f"failed {copy.get('failed', 0)}; catch-up passes {result.catchup_passes}"
    )
    if result.verify is not None:
        v = result.verify
        console.print(
            f"verify: {v.source_chunks} -> {v.target_chunks} chunks, bm25 overlap "
            f"{v.bm25_overlap}, knn self-hits {v.knn_self_hits}"
        )
        for problem in v.problems:
            console.print(f"  [red]✗[/red] {safe(problem)}")
    if result.dead_letter:
        console.print(f"dead letter: {safe(result.dead_letter)}")
    if result.status == "swapped":
        console.print(
            "[green]✓[/green] "
            + safe(
                f"{plan.read_alias} and {plan.write_alias} now point to {plan.target}; "
                f"{plan.source} is kept for `essearch rollback`"
            )
        )
        if result.post_swap:
            console.print(
                f"  writes caught up after the swap: {result.post_swap.get('indexed', 0)}"
            )
    if result.interrupted:
        console.print(f"[red]interrupted:[/red] {safe(result.interrupted)}")
    elif result.status == "verify_failed":
        console.print(
            f"[red]not swapped:[/red] {safe(plan.read_alias)} still serves {safe(plan.source)}"
        )


@click.command()
@click.option("--to", "to", help="The version to go back to (default: the one migrated from).")
@click.option("--no-catch-up", is_flag=True, help="Do not copy writes made since the swap back.")
@click.option("--dry-run", is_flag=True, help="Print what would happen.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def rollback(
    to: str | None,
    no_catch_up: bool,
    dry_run: bool,
    yes: bool,
    index_name: str | None,
    as_json: bool,
) -> None:
    """Swap the aliases back to the previous version (the one the current was migrated from)."""
    from essearch.es import make_client
    from essearch.ops.rollback import plan_rollback
    from essearch.ops.rollback import rollback as do_rollback

    settings = cluster_settings_checked(command_settings(index_name))
    client = make_client(settings)
    plan = plan_rollback(client, settings, to=to)
    if dry_run:
        print_json({"dry_run": True, "plan": plan.to_dict()}) if as_json else console.print(
            safe(
                f"would move {settings.index.name} from {plan.current} back to {plan.previous} "
                f"({plan.reason}); {plan.writes_since_swap} chunk(s) written since the swap"
            )
        )
        return
    if plan.writes_since_swap and no_catch_up and not yes:
        click.confirm(
            f"{plan.writes_since_swap} chunk(s) written since the swap are not in {plan.previous} "
            "and will not be served after the rollback. Continue?",
            abort=True,
        )
    embedder = None
    if plan.needs_embedder and not no_catch_up:
        embedder = load_embedder(settings, client=client)
    result = do_rollback(client, settings, catch_up=not no_catch_up, embedder=embedder, plan=plan)
    if as_json:
        print_json(result.to_dict())
    else:
        console.print(
            "[green]✓[/green] "
            + safe(
                f"{settings.index.name} now points to {plan.previous} (was {plan.current}); "
                f"caught up: {result.caught_up.get('indexed', 0)} chunk(s)"
            )
        )


@click.command()
@click.option("-y", "--yes", is_flag=True, help="Delete without asking.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted.")
@index_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def gc(yes: bool, dry_run: bool, index_name: str | None, as_json: bool) -> None:
    """Delete index versions that no alias points to (never one an alias uses)."""
    from essearch.es import make_client
    from essearch.ops.gc import gc as do_gc
    from essearch.ops.gc import plan_gc

    settings = cluster_settings_checked(command_settings(index_name))
    client = make_client(settings)
    plan = plan_gc(client, settings)
    if not plan.delete or dry_run:
        if as_json:
            print_json({"dry_run": dry_run, **plan.to_dict(), "deleted": []})
        else:
            shown = ", ".join(
                f"{i} ({plan.notes[i]})" if i in plan.notes else i for i in plan.delete
            )
            console.print(f"unaliased versions: {safe(shown or 'none')}")
        return
    if not yes:
        listed = ", ".join(f"{i} ({plan.notes[i]})" if i in plan.notes else i for i in plan.delete)
        click.confirm(
            f"delete {listed}? No alias uses them; a rollback to them will no longer be possible",
            abort=True,
        )
    deleted = do_gc(client, settings, plan)
    if as_json:
        print_json({**plan.to_dict(), "deleted": deleted})
    else:
        console.print(f"deleted: {safe(', '.join(deleted) or 'nothing')}")


COMMANDS = [reindex, rollback, gc]
