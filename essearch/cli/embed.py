"""`essearch embed`, `essearch similar` and `essearch embed-endpoint`: look at embeddings.

Thin commands: they parse options, call `essearch.embedders` and render with rich.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from essearch.cli._common import console, err_console, get_settings, print_json
from essearch.errors import ConfigurationError


class ProviderChoice(click.Choice):
    """The embedder providers registered when the option is used (built-ins and installed
    `essearch.embedders` plugins), so the CLI offers exactly what `create_embedder` accepts."""

    def __init__(self) -> None:
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> list[str]:
        from essearch.embedders.registry import available_providers

        return available_providers()

    @choices.setter
    def choices(self, _value: Any) -> None:
        pass


# Messages with paths and user text: no markup, no highlighting, no wrapping inside a path.
PLAIN: dict[str, Any] = {"markup": False, "highlight": False, "soft_wrap": True}


def embedder_options(func: Any) -> Any:
    """--provider/--model/... options that override the settings for this run."""
    options = [
        click.option("--provider", type=ProviderChoice(), help="Embedding backend."),
        click.option("--model", help="Model name or path (provider's default when unset)."),
        click.option("--base-url", help="Server URL (OpenAI-compatible or Ollama host)."),
        click.option("--dimensions", type=int, help="Output dimensions (text-embedding-3-*)."),
        click.option("--device", help="Local model device: cpu, cuda, cuda:1 ..."),
        click.option("--inference-id", help="Elasticsearch inference endpoint id."),
        click.option("--batch-size", type=int, help="Texts per backend call."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def make_embedder(**options: Any) -> Any:
    from essearch.embedders import create_embedder

    overrides = {k: v for k, v in options.items() if v is not None}
    return create_embedder(get_settings(), **overrides)


def vector_norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def cosine_matrix(vectors: list[list[float]]) -> list[list[float]]:
    """Pairwise cosine similarities (vectors need not be normalised)."""
    norms = [vector_norm(v) or 1.0 for v in vectors]
    return [
        [
            sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)
            for b, nb in zip(vectors, norms, strict=True)
        ]
        for a, na in zip(vectors, norms, strict=True)
    ]


def _short(text: str, width: int = 50) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _report_cache(embedder: Any) -> None:
    stats = getattr(embedder, "stats", None)
    if stats is not None:
        err_console.print(f"embedding cache: {stats}", style="dim", **PLAIN)


# -- reading and writing datasets -----------------------------------------------------------
def read_records(path: Path, text_field: str) -> Iterator[tuple[int, dict[str, Any] | None, str]]:
    """(line number, record or None, problem) for each line of a .jsonl, row of a .csv or
    .parquet (the one record reader, `essearch.ingest.records`)."""
    from essearch.ingest.records import read_records as read

    for raw in read(path):
        yield raw.line, raw.record, raw.problem


def load_dataset(
    path: Path, text_field: str, id_field: str | None
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows to embed ({line, id, text}) and one problem message per skipped line."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for line, record, problem in read_records(path, text_field):
        where = f"{path}:{line}"
        if record is None:
            problems.append(f"{where}: {problem}")
            continue
        text = record.get(text_field)
        if not isinstance(text, str) or not text.strip():
            problems.append(f"{where}: field {text_field!r} is missing or empty")
            continue
        row: dict[str, Any] = {"line": line, "text": text}
        if id_field is not None:
            row["id"] = None if record.get(id_field) is None else str(record.get(id_field))
        rows.append(row)
    return rows, problems


def write_vectors(path: Path, rows: list[dict[str, Any]], vectors: list[list[float]]) -> None:
    """Write rows plus an `embedding` column to .parquet (pyarrow), .csv or .jsonl."""
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        dims = len(vectors[0]) if vectors else 0
        columns: dict[str, Any] = (
            {key: [row.get(key) for row in rows] for key in rows[0]} if rows else {}
        )
        table = pa.table(columns) if columns else pa.table({"text": pa.array([], pa.string())})
        flat = pa.array([x for v in vectors for x in v], type=pa.float32())
        embedding = (
            pa.FixedSizeListArray.from_arrays(flat, dims)
            if dims
            else pa.array([], pa.list_(pa.float32()))
        )
        table = table.append_column("embedding", embedding)
        pq.write_table(table, path)
    elif suffix == ".csv":
        with path.open("w", newline="", encoding="utf-8") as handle:
            keys = list(rows[0]) if rows else ["line", "text"]
            writer = csv.writer(handle)
            writer.writerow([*keys, "embedding"])
            for row, vector in zip(rows, vectors, strict=True):
                writer.writerow([*(row.get(k) for k in keys), json.dumps(vector)])
    elif suffix in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8") as handle:
            for row, vector in zip(rows, vectors, strict=True):
                handle.write(json.dumps({**row, "embedding": vector}, ensure_ascii=False) + "\n")
    else:
        raise ConfigurationError(f"--output {path}: use a .parquet, .csv or .jsonl file name")


def embed_dataset(embedder: Any, texts: list[str], batch_size: int) -> list[list[float]]:
    """Embed in batches behind a rich progress bar (on stderr, so stdout stays clean)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    vectors: list[list[float]] = []
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task("embedding", total=len(texts))
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            vectors.extend(embedder.embed_documents(batch))
            progress.advance(task, len(batch))
    return vectors


# -- commands ------------------------------------------------------------------------------
@click.command("embed")
@click.argument("texts", nargs=-1)
@embedder_options
@click.option("--query", "as_query", is_flag=True, help="Embed as search queries (query prompt).")
@click.option("--json", "as_json", is_flag=True, help="Print full vectors as JSON.")
@click.option("--values", default=5, show_default=True, help="How many leading values to show.")
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A .jsonl (or .csv) dataset to embed instead of TEXTS.",
)
@click.option("--text-field", default="text", show_default=True, help="Field holding the text.")
@click.option("--id-field", default=None, help="Field copied to the output as `id`.")
@click.option(
    "--output",
    "output_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write vectors: .parquet, .csv or .jsonl (needs --input).",
)
def embed_command(
    texts: tuple[str, ...],
    as_query: bool,
    as_json: bool,
    values: int,
    input_path: Path | None,
    text_field: str,
    id_field: str | None,
    output_path: Path | None,
    **options: Any,
) -> None:
    """Embed TEXTS (dims, norm and first values; --json for vectors) or a dataset (--input)."""
    if input_path is not None:
        if texts:
            raise click.UsageError("give TEXTS or --input, not both")
        if output_path is None:
            raise click.UsageError("--input needs --output (a .parquet, .csv or .jsonl file)")
        if output_path.suffix.lower() not in (".parquet", ".csv", ".jsonl", ".ndjson"):
            raise click.UsageError(f"--output {output_path}: use .parquet, .csv or .jsonl")
        _embed_file(input_path, output_path, text_field, id_field, options)
        return
    if output_path is not None:
        raise click.UsageError("--output needs --input")
    if not texts:
        raise click.UsageError("give at least one TEXT (or --input FILE)")
    embedder = make_embedder(**options)
    if as_query:
        vectors = [embedder.embed_query(text) for text in texts]
    else:
        vectors = embedder.embed_documents(list(texts))
    info = embedder.info
    if as_json:
        print_json(
            {
                "embedder": info.to_dict(),
                "embeddings": [
                    {"text": t, "dims": len(v), "embedding": v}
                    for t, v in zip(texts, vectors, strict=True)
                ],
            }
        )
    else:
        table = Table(
            title=escape(f"{info.provider} · {info.model} · {info.dims} dims · {info.similarity}")
        )
        table.add_column("#", justify="right")
        table.add_column("text")
        table.add_column("dims", justify="right")
        table.add_column("norm", justify="right")
        table.add_column(f"first {values} values")
        for i, (text, vector) in enumerate(zip(texts, vectors, strict=True)):
            head = ", ".join(f"{x:+.4f}" for x in vector[:values])
            table.add_row(
                str(i),
                Text(_short(text)),
                str(len(vector)),
                f"{vector_norm(vector):.4f}",
                Text(f"[{head}, …]"),
            )
        console.print(table)
    _report_cache(embedder)


def _embed_file(
    input_path: Path, output_path: Path, text_field: str, id_field: str | None, options: dict
) -> None:
    rows, problems = load_dataset(input_path, text_field, id_field)
    for problem in problems:
        err_console.print(f"skipped {problem}", style="yellow", **PLAIN)
    if not rows:
        raise click.ClickException(f"{input_path}: nothing to embed in field {text_field!r}")
    embedder = make_embedder(**options)
    vectors = embed_dataset(embedder, [row["text"] for row in rows], embedder.batch_size)
    write_vectors(output_path, rows, vectors)
    err_console.print(
        f"wrote {len(vectors)} vectors ({embedder.dims} dims, {embedder.model}) to {output_path}"
        + (f"; skipped {len(problems)} line(s)" if problems else ""),
        **PLAIN,
    )
    _report_cache(embedder)


@click.command("similar")
@click.argument("texts", nargs=-1, required=True)
@embedder_options
@click.option("--json", "as_json", is_flag=True, help="Print the matrix as JSON.")
def similar_command(texts: tuple[str, ...], as_json: bool, **options: Any) -> None:
    """Cosine similarity between every pair of TEXTS (at least two)."""
    if len(texts) < 2:
        raise click.UsageError("give at least two TEXTS to compare")
    embedder = make_embedder(**options)
    matrix = cosine_matrix(embedder.embed_documents(list(texts)))
    if as_json:
        print_json({"embedder": embedder.info.to_dict(), "texts": list(texts), "matrix": matrix})
        return
    table = Table(title=escape(f"cosine similarity · {embedder.info.provider} · {embedder.model}"))
    table.add_column("")
    for i in range(len(texts)):
        table.add_column(f"[{i}]", justify="right")
    for i, (text, row) in enumerate(zip(texts, matrix, strict=True)):
        cells = [
            f"[bold]{score:.3f}[/bold]"
            if j != i and score == max(s for k, s in enumerate(row) if k != i)
            else f"{score:.3f}"
            for j, score in enumerate(row)
        ]
        table.add_row(Text(f"[{i}] {_short(text, 40)}"), *cells)
    console.print(table)
    _report_cache(embedder)


@click.group("embed-endpoint")
def endpoint_group() -> None:
    """Elasticsearch inference endpoints (`_inference/text_embedding/<id>`)."""


@endpoint_group.command("create")
@click.argument("inference_id")
@click.option("--model", "model_id", required=True, help="Model id sent to the service.")
@click.option(
    "--url",
    help="Embeddings URL, e.g. http://host:11434/v1/embeddings for Ollama "
    "(default: OpenAI's /v1/embeddings).",
)
@click.option(
    "--api-key",
    help="Service API key (default: ESSEARCH_EMBEDDER_API_KEY; any value for Ollama).",
    show_default=False,
)
@click.option("--dimensions", type=int, help="Output dimensions (sent only when set).")
@click.option("--organization", "organization_id", help="OpenAI organization id.")
@click.option(
    "--similarity", type=click.Choice(["cosine", "dot_product", "l2_norm"]), help="Similarity."
)
@click.option("--max-input-tokens", type=int, help="Service-side input truncation limit.")
@click.option("--dry-run", is_flag=True, help="Print the request (key masked), send nothing.")
def endpoint_create_command(
    inference_id: str,
    model_id: str,
    url: str | None,
    api_key: str | None,
    dimensions: int | None,
    organization_id: str | None,
    similarity: str | None,
    max_input_tokens: int | None,
    dry_run: bool,
) -> None:
    """Create INFERENCE_ID with the `openai` service (any OpenAI-compatible server, Ollama too)."""
    from essearch.embedders.elasticsearch_backend import (
        TASK_TYPE,
        create_inference_endpoint,
        masked_endpoint_body,
        openai_endpoint_body,
    )

    settings = get_settings()
    key: Any = api_key or settings.embedder.api_key
    if key is None and url is not None:
        key = "ignored"  # OpenAI-compatible servers such as Ollama accept any key
    if key is None:
        raise click.UsageError("--api-key (or ESSEARCH_EMBEDDER_API_KEY) is required")
    body = openai_endpoint_body(
        api_key=key,
        model_id=model_id,
        url=url,
        dimensions=dimensions,
        organization_id=organization_id,
        similarity=similarity,
        max_input_tokens=max_input_tokens,
    )
    request = {
        "method": "PUT",
        "path": f"/_inference/{TASK_TYPE}/{inference_id}",
        "body": masked_endpoint_body(body),
    }
    if dry_run:
        print_json(request)
        return
    from essearch.es import make_client

    client = make_client(settings)
    try:
        answer = create_inference_endpoint(client, inference_id, body)
    finally:
        client.close()
    print_json(masked_endpoint_body(answer) if "service_settings" in answer else answer)


COMMANDS = [embed_command, similar_command, endpoint_group]
