"""The `essearch` command line: thin commands that parse, call the library and render.

Each module in this package that defines `COMMANDS` (a list of click commands or groups) is added
to the main group, so a new command is a new module and nothing else changes.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
from typing import Any

import click

from essearch import __version__
from essearch.errors import EssearchError


def user_error_message(exc: BaseException) -> str | None:
    """The one line a user error is shown as; None for a bug (which keeps its traceback).

    User errors: essearch's own, files that are missing or unreadable, and Elasticsearch that
    cannot be reached or refuses a request (its reason is quoted, never read as markup).
    """
    if isinstance(exc, EssearchError):
        return str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    transport = sys.modules.get("elastic_transport")
    elasticsearch = sys.modules.get("elasticsearch")
    if transport is not None and elasticsearch is not None:
        line = _cluster_error_line(exc)  # auth, TLS, refused...: the one classifier
        if line is not None and not _is_plain_api_error(exc):
            return line
    if transport is not None and isinstance(exc, transport.ConnectionError):
        from essearch.cli._common import get_settings

        urls = ", ".join(get_settings().es.url)
        return f"cannot reach Elasticsearch at {urls}: {exc}"
    if elasticsearch is not None and isinstance(exc, elasticsearch.ApiError):
        from essearch.retrieval._core import api_error_message

        return f"Elasticsearch refused the request: {api_error_message(exc)}"
    if transport is not None and isinstance(exc, transport.TransportError):
        return f"Elasticsearch request failed: {exc}"
    return None


class EssearchGroup(click.Group):
    """Turns user errors into one clear line and exit code 1 (no traceback)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            message = user_error_message(exc)
            if message is None:
                raise
            from essearch.cli._common import error_line

            error_line(message)
            sys.exit(1)


def _is_plain_api_error(exc: BaseException) -> bool:
    """An HTTP error other than 401/403 (a bad request): the request's own formatter says more."""
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and status not in (401, 403)


def _cluster_error_line(exc: BaseException) -> str | None:
    """One line for a cluster failure raised mid-command (auth, TLS, refused...), else None."""
    from elastic_transport import TransportError
    from elasticsearch import ApiError

    if not isinstance(exc, ApiError | TransportError):
        return None
    from essearch.es.health import describe_cluster_error
    from essearch.settings import load_settings

    try:
        settings = load_settings()
    except EssearchError:
        return str(exc)
    return describe_cluster_error(exc, settings)


@click.group(cls=EssearchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="essearch")
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Semantic and hybrid search on Elasticsearch.

    Settings come from ESSEARCH_* environment variables and .env (see `essearch doctor`).
    """
    from essearch.logs import configure_logging, settings_secrets
    from essearch.settings import load_settings

    try:  # a bad setting is reported by the command that reads it, not here
        settings = load_settings()
    except EssearchError:
        configure_logging(verbose, None)
    else:
        configure_logging(verbose, settings.log_level, settings_secrets(settings))


def _register() -> None:
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_register()
