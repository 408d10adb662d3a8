"""`essearch ingest PATH...` and `essearch pipeline install|uninstall`."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import click

from essearch.cli._common import (
    check_readable,
    cluster_settings_checked,
    command_settings,
    err_console,
    index_option,
    load_embedder,
    print_json,
    require_write,
    safe,
)

if TYPE_CHECKING:
    from essearch.embedders.base import Embedder

FORMATS = [
    "jsonl", "csv", "parquet", "text", "markdown", "html", "pdf", "docx", "pptx", "xlsx"
]  # fmt: skip


@contextmanager
def stop_on_sigterm() -> Iterator[None]:
    """SIGTERM stops the run like Ctrl-C: what was embedded is flushed, the exit code is 130."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def exit_now(code: int) -> None:
    """End the process with `code` at once, after flushing. After Ctrl-C or SIGTERM a native
    thread of torch/tokenizers is still running or still joinable, and interpreter finalisation
    then aborts the process ("terminate called without an active exception", status 134) instead
    of returning our code; the run's own work is already flushed and closed at this point."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@index_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Force the input format.")
@click.option("--glob", help="Files to take from directories, e.g. '**/*.md'.")
@click.option("--id-field", help="Dotted path of the id (default: id, then _id).")
@click.option("--title-field", help="Dotted path of the title (default: title).")
@click.option("--text-field", help="Dotted path of the text (default: text, content, body).")
@click.option("--metadata-field", help="Dotted path of the metadata object (default: metadata).")
@click.option(
    "--meta",
    "extra_metadata",
    multiple=True,
    help="Copy only these fields into metadata (default: every field but id/title/text/vector).",
)
@click.option(
    "--vector-field", help="Field holding a precomputed vector (a list, or JSON list in CSV)."
)
@click.option("--model", "vector_model", help="Model that made the precomputed vectors.")
@click.option("--dims", "vector_dims", type=click.IntRange(min=1), help="Their dimensions.")
@click.option(
    "--root",
    type=click.Path(file_okay=False, path_type=Path),
    help="Document ids are file paths relative to this (default: the argument's directory).",
)
@click.option(
    "--sync",
    is_flag=True,
    help="Delete documents read from these inputs before that they no longer have.",
)
@click.option("--dry-run", is_flag=True, help="With --sync: list what would be deleted, only.")
@click.option(
    "--chunk-size", type=click.IntRange(min=1), help="Chunk size (MiniLM tokens, else characters)."
)
@click.option("--chunk-overlap", type=click.IntRange(min=0), help="Overlap, same unit.")
@click.option("--batch-size", type=int, help="Chunks per embedding batch.")
@click.option("--bulk-size", type=int, default=500, show_default=True, help="Actions per bulk.")
@click.option("--bulk-threads", type=int, default=2, show_default=True)
@click.option(
    "--dead-letter",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("essearch-dead-letter.jsonl"),
    show_default=True,
    help="JSONL file receiving every failed item.",
)
@click.option("--no-skip-unchanged", is_flag=True, help="Re-embed even unchanged chunks.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout.")
def ingest(
    paths: tuple[str, ...],
    index_name: str | None,
    fmt: str | None,
    glob: str | None,
    id_field: str | None,
    title_field: str | None,
    text_field: str | None,
    metadata_field: str | None,
    extra_metadata: tuple[str, ...],
    vector_field: str | None,
    vector_model: str | None,
    vector_dims: int | None,
    root: Path | None,
    sync: bool,
    dry_run: bool,
    chunk_size: int | None,
    chunk_overlap: int | None,
    batch_size: int | None,
    bulk_size: int,
    bulk_threads: int,
    dead_letter: Path,
    no_skip_unchanged: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Load, chunk, embed and index files, directories or - (stdin).

    Re-running the same command is cheap and safe: unchanged chunks are skipped, changed documents
    replace their chunks, and an interrupted run finishes where it stopped. Exit code 1 when any
    item failed (see the dead-letter file), 130 when interrupted (Ctrl-C or SIGTERM).
    """
    check_readable(paths)  # before the model loads or the cluster is asked anything
    from essearch.es import make_client
    from essearch.ingest.loaders import FieldMap
    from essearch.ingest.pipeline import IngestOptions
    from essearch.ingest.pipeline import ingest as run_ingest
    from essearch.ingest.progress import NoProgress, RichProgress, summary_table

    if dry_run and not sync:
        raise click.UsageError("--dry-run lists what --sync would delete; give --sync too")
    if (vector_model is None) != (vector_dims is None):
        raise click.UsageError("--model and --dims go together (the precomputed vectors' model)")
    settings = require_write(cluster_settings_checked(command_settings(index_name)))
    if chunk_size or chunk_overlap is not None:
        # like index.chunk_size/overlap: recorded on a new index, checked against an existing one
        index_settings = settings.index.model_copy(
            update={"chunk_size": chunk_size, "chunk_overlap": chunk_overlap}
        )
        settings = settings.model_copy(update={"index": index_settings})
    options = IngestOptions(
        fields=FieldMap.of(
            id=id_field,
            title=title_field,
            text=text_field,
            metadata=metadata_field,
            extra_metadata=extra_metadata,
            vector=vector_field,
        ),
        fmt=fmt,  # type: ignore[arg-type]
        glob=glob,
        dead_letter=dead_letter,
        embed_batch=batch_size,
        bulk_chunk_size=bulk_size,
        bulk_threads=bulk_threads,
        skip_unchanged=not no_skip_unchanged,
        root=root,
        sync=sync,
        dry_run=dry_run,
    )
    progress = NoProgress() if quiet or as_json else RichProgress(err_console, unit="chunks")
    client = make_client(settings)
    with stop_on_sigterm():
        try:
            if vector_model is not None and vector_dims is not None:
                from essearch.embedders.precomputed import PrecomputedEmbedder

                embedder: Embedder = PrecomputedEmbedder(vector_model, vector_dims)
            else:
                embedder = load_embedder(settings, client=client, quiet=quiet or as_json)
            try:
                report = run_ingest(
                    list(paths),
                    settings=settings,
                    client=client,
                    embedder=embedder,
                    options=options,
                    progress=progress,
                )
            finally:
                embedder.close()
        except KeyboardInterrupt:  # before the pipeline started (loading the model, probing)
            err_console.print("[red]interrupted before anything was written[/]")
            exit_now(130)
    data = report.to_dict()
    if as_json:
        print_json(data)
    elif dry_run:
        for doc_id in report.sync_deleted:
            click.echo(f"would delete {doc_id}")
        err_console.print(f"{len(report.sync_deleted)} document(s) would be deleted by --sync")
    elif not quiet:
        err_console.print(summary_table(data))
        for warning in report.warnings[:10]:
            err_console.print(f"[yellow]warning: {safe(warning)}[/]")
        if report.sync_deleted:
            err_console.print(f"--sync deleted {len(report.sync_deleted)} document(s)")
        for failure in report.failures[:5]:
            err_console.print(f"[red]{safe(failure)}[/]")
        if report.failed > 5:
            err_console.print(f"... {report.failed - 5} more in {safe(report.dead_letter)}")
        if report.language_warning:
            err_console.print(f"[yellow]warning:[/] {report.language_warning}")
    if report.interrupted:
        err_console.print(f"[red]{safe(report.interrupted)}[/]")
        if "Ctrl-C" in report.interrupted:
            exit_now(130)
        sys.exit(1)
    if report.failed:
        sys.exit(1)


@click.group("pipeline")
def pipeline_group() -> None:
    """Server-side embedding with an Elasticsearch ingest pipeline (inference processor)."""


@pipeline_group.command("install")
@index_option
@click.option("--id", "pipeline_id", help="Pipeline id (default: <index>-embed).")
@click.option("--json", "as_json", is_flag=True)
def install(index_name: str | None, pipeline_id: str | None, as_json: bool) -> None:
    """Create the pipeline (endpoint ESSEARCH_EMBEDDER_INFERENCE_ID) and set it as the index's
    default_pipeline. Needs ingest processors and the inference API on the cluster."""
    from essearch.es import make_client
    from essearch.ingest.server_pipeline import install_pipeline

    settings = cluster_settings_checked(command_settings(index_name))
    result = install_pipeline(make_client(settings), settings, pipeline_id=pipeline_id)
    if as_json:
        print_json(result)
    else:
        click.echo(
            f"pipeline {result['pipeline']} (inference {result['inference_id']}) is the default "
            f"pipeline of {result['index']}"
        )


@pipeline_group.command("uninstall")
@index_option
@click.option("--id", "pipeline_id", help="Pipeline id (default: <index>-embed).")
def uninstall(index_name: str | None, pipeline_id: str | None) -> None:
    """Unset the default pipeline and delete it."""
    from essearch.es import make_client
    from essearch.ingest.server_pipeline import uninstall_pipeline

    settings = cluster_settings_checked(command_settings(index_name))
    result = uninstall_pipeline(make_client(settings), settings, pipeline_id=pipeline_id)
    click.echo(f"pipeline {result['pipeline']} removed from {result['index']}")


COMMANDS = [ingest, pipeline_group]
