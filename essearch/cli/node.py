"""`essearch node run`: a local Elasticsearch without Docker (the Maven-published test node)."""

from __future__ import annotations

import signal
import time

import click

from essearch.cli._common import console, phase, safe


@click.group()
def node() -> None:
    """Run a local single-node Elasticsearch for development (no Docker needed)."""


@node.command("run")
@click.option("--port", type=int, default=9200, show_default=True, help="HTTP port on 127.0.0.1.")
@click.option("--heap-mb", type=int, default=1024, show_default=True)
def run(port: int, heap_mb: int) -> None:
    """Start the node in the foreground; Ctrl-C stops it and removes its data."""
    from essearch.es.provision import ES_VERSION, LocalNode

    with phase(f"Elasticsearch {ES_VERSION}: preparing") as relabel:
        local = LocalNode(http_port=port, heap_mb=heap_mb, on_phase=relabel)
        try:
            url = local.start()
        except BaseException:
            local.close()
            raise
        relabel(f"Elasticsearch {ES_VERSION} ready")
    console.print(f"[green]ready[/green] at {safe(url)}   export ESSEARCH_ES_URL={safe(url)}")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    try:
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        local.close()
        console.print("stopped")


COMMANDS = [node]
