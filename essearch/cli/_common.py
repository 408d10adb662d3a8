"""Helpers shared by the CLI modules: settings loading, JSON output, rich console."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

from essearch.errors import ConfigurationError
from essearch.settings import Settings, load_settings

console = Console()
err_console = Console(stderr=True)


def get_settings(**overrides: Any) -> Settings:
    """Settings from the environment, with CLI options layered on top."""
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


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
