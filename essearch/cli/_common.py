"""Helpers shared by the CLI modules: settings, the `--index` option, safe printing, phases.

Everything that comes from outside essearch (server reasons, file names, URLs, document text) goes
through `safe()` before rich renders it, so a `[` in a URL or a Markdown link is printed, not read
as markup.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from essearch.errors import ConfigurationError

if TYPE_CHECKING:  # settings (pydantic) load when a command runs, not for --help
    from essearch.embedders.base import EmbedderInfo
    from essearch.settings import Settings

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


def safe(value: object) -> str:
    """`value` as text that rich prints literally (no markup is interpreted inside it)."""
    return escape(str(value))


def error_line(message: object) -> None:
    """One red `error: ...` line on stderr; the message is printed literally."""
    err_console.print(f"[red]error:[/red] {safe(message)}", soft_wrap=True, highlight=False)


def warn(message: object) -> None:
    err_console.print(f"[yellow]warning:[/yellow] {safe(message)}", soft_wrap=True)


_warned_variables = False


def _warn_unknown_variables() -> None:
    """Typos in ESSEARCH_* names (environment or .env) are warned about once per run."""
    from essearch.settings import unknown_variables

    global _warned_variables
    if _warned_variables:
        return
    _warned_variables = True
    names = dict(os.environ)
    if Path(".env").is_file():
        from dotenv import dotenv_values

        names.update({k: v or "" for k, v in dotenv_values(".env").items()})
    for message in unknown_variables(names):
        warn(message)


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with CLI options layered on top."""
    from essearch.settings import load_settings

    _warn_unknown_variables()
    try:
        return load_settings(**{k: v for k, v in overrides.items() if v is not None})
    except ConfigurationError as exc:
        raise click.ClickException(str(exc)) from None


def cluster_settings(**overrides: Any) -> Settings:
    """`get_settings` for commands that use the cluster: checked reachable (URL, credentials,
    TLS, version) in one quick request, before any model is loaded or file is read."""
    return cluster_settings_checked(get_settings(**overrides))


def cluster_settings_checked(settings: Settings) -> Settings:
    """The pre-flight of `cluster_settings` for settings already in hand."""
    from essearch.es.health import preflight

    preflight(settings)
    return settings


def require_write(settings: Settings) -> Settings:
    """For commands that create or write the index: one line naming a missing privilege."""
    from essearch.es.health import check_write_privileges

    check_write_privileges(settings)
    return settings


def with_index(settings: Settings, name: str | None) -> Settings:
    """`settings` with index.name set to `name` (validated like ESSEARCH_INDEX_NAME)."""
    if not name:
        return settings
    from pydantic import ValidationError

    from essearch.settings import IndexSettings

    try:
        IndexSettings.model_validate({"name": name})
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise click.BadParameter(reason, param_hint="--index") from None
    return settings.model_copy(update={"index": settings.index.model_copy(update={"name": name})})


def index_option(func: F) -> F:
    """`--index NAME`: the index (read alias) a command works on; default ESSEARCH_INDEX_NAME."""
    return click.option(
        "--index",
        "index_name",
        metavar="NAME",
        help="Index name (read alias); default: ESSEARCH_INDEX_NAME (essearch).",
    )(func)


def command_settings(index_name: str | None = None) -> Settings:
    """The settings a command runs with: the environment, then `--index`."""
    return with_index(get_settings(), index_name)


def check_readable(paths: Iterable[str]) -> None:
    """Fail with one line naming the path when an input does not exist or cannot be read,
    before anything slow (model loading, cluster requests) starts."""
    for raw in paths:
        if raw == "-":
            continue
        path = Path(raw)
        if not path.exists():
            raise click.BadParameter(f"{raw!r} does not exist", param_hint="PATHS")
        if not os.access(path, os.R_OK) or (path.is_dir() and not os.access(path, os.X_OK)):
            kind = "directory" if path.is_dir() else "file"
            raise click.BadParameter(f"{kind} {raw!r} is not readable", param_hint="PATHS")


def configured_embedder_info(settings: Settings, dims: int | None = None) -> EmbedderInfo:
    """The configured embedder's identity (`dims` overrides embedder.dimensions).

    With the dimensions known (given, or a built-in local model's), the model is not loaded.
    """
    from essearch.embedders import create_embedder
    from essearch.embedders.known_dims import known_dims

    if dims is None and settings.embedder.provider == "local" and not settings.embedder.dimensions:
        from essearch.embedders.local import DEFAULT_LOCAL_MODEL

        dims = known_dims(settings.embedder.model or DEFAULT_LOCAL_MODEL)
    overrides = {"dimensions": dims} if dims is not None else {}
    embedder = create_embedder(settings, **overrides)
    try:
        return embedder.info
    finally:
        embedder.close()


def load_embedder(
    settings: Settings, *, client: Any = None, quiet: bool = False, **overrides: Any
) -> Any:
    """The configured embedder with its model loaded, shown as a phase ("loading …") unless
    `quiet` (then it loads on first use)."""
    from essearch.embedders import create_embedder

    embedder = create_embedder(settings, client=client, **overrides)
    if embedder.provider == "local" and not quiet:  # remote backends have nothing to load
        with phase(f"loading {embedder.model.rsplit('/', 1)[-1]}"):
            embedder.embed_query("warm-up")  # loads the model now, visibly (any local backend)
    return embedder


@contextmanager
def phase(label: str, *, stream: Console | None = None) -> Iterator[Callable[[str], None]]:
    """A spinner with `label` and the elapsed time while the block runs; a ✓ line after it.

    The block gets a function that changes the label (for multi-step work like provisioning).
    """
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    out = stream or err_console
    started = time.monotonic()
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    )
    task = progress.add_task(f"{safe(label)}…")
    current = [label]

    def relabel(text: str) -> None:
        current[0] = text
        progress.update(task, description=f"{safe(text)}…")
        if not out.is_terminal:  # no live display: one line per phase instead
            out.print(f"  {safe(text)}…", highlight=False)

    with progress:
        if not out.is_terminal:
            out.print(f"  {safe(label)}…", highlight=False)
        yield relabel
    out.print(
        f"[green]✓[/green] {safe(current[0])} ({time.monotonic() - started:.1f}s)", highlight=False
    )


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
