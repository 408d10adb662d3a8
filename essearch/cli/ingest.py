"""`essearch ingest PATH...` and `essearch pipeline install|uninstall`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from essearch.cli._common import (
    check_readable,
    command_settings,
    err_console,
    index_option,
    load_embedder,
    print_json,
    safe,
)

FORMATS = ["jsonl", "csv", "text", "markdown"]


@click.command("ingest")
@click.argument("paths", nargs=-1, required=True)
@index_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Force the input format.")
@click.option("--glob", help="Files to take from directories, e.g. '**/*.md'.")
@click.option("--id-field", help="Dotted path of the id (default: id, then _id).")
@click.option("--title-field", help="Dotted path of the title (default: title).")
@click.option("--text-field", help="Dotted path of the text (default: text, content, body).")
@click.option("--metadata-field", help="Dotted path of the metadata object (default: metadata).")
@click.option("--meta", "extra_metadata", multiple=True, help="Extra field copied into metadata.")
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
    item failed (see the dead-letter file), 130 when interrupted.
    """
    check_readable(paths)  # before the model loads or the cluster is asked anything
    from essearch.es import make_client
    from essearch.ingest.loaders import FieldMap
    from essearch.ingest.pipeline import IngestOptions
    from essearch.ingest.pipeline import ingest as run_ingest
    from essearch.ingest.progress import NoProgress, RichProgress, summary_table

    settings = command_settings(index_name)
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
        ),
        fmt=fmt,  # type: ignore[arg-type]
        glob=glob,
        dead_letter=dead_letter,
        embed_batch=batch_size,
        bulk_chunk_size=bulk_size,
        bulk_threads=bulk_threads,
        skip_unchanged=not no_skip_unchanged,
    )
    progress = NoProgress() if quiet or as_json else RichProgress(err_console, unit="chunks")
    client = make_client(settings)
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
    data = report.to_dict()
    if as_json:
        print_json(data)
    elif not quiet:
        err_console.print(summary_table(data))
        for failure in report.failures[:5]:
            err_console.print(f"[red]{safe(failure)}[/]")
        if report.failed > 5:
            err_console.print(f"... {report.failed - 5} more in {safe(report.dead_letter)}")
    if report.interrupted:
        err_console.print(f"[red]{safe(report.interrupted)}[/]")
        sys.exit(130 if "Ctrl-C" in report.interrupted else 1)
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

    settings = command_settings(index_name)
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

    settings = command_settings(index_name)
    result = uninstall_pipeline(make_client(settings), settings, pipeline_id=pipeline_id)
    click.echo(f"pipeline {result['pipeline']} removed from {result['index']}")


COMMANDS = [ingest, pipeline_group]
