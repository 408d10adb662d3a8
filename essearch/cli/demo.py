"""`essearch demo`: the README's main job, from nothing to a hybrid search.

Finds or starts Elasticsearch (ESSEARCH_ES_URL, Docker, or the local Maven-published node), checks
it like `essearch doctor`, then indexes the bundled sample corpus with the offline local embedder
and runs a hybrid search. A node it started is stopped at the end.
"""

from __future__ import annotations

import os
import sys

import click

from essearch.cli._common import console


@click.command()
@click.option("--query", "queries", multiple=True, help="Queries to run (repeatable).")
@click.option("--keep-node", is_flag=True, help="Leave a node this command started running.")
def demo(queries: tuple[str, ...], keep_node: bool) -> None:
    """Bring up Elasticsearch, index the sample corpus, run hybrid searches."""
    from essearch.cli.doctor import _render, doctor_report
    from essearch.es.provision import provision
    from essearch.settings import load_settings

    console.rule("1. Elasticsearch")
    cluster = provision()
    console.print(f"using Elasticsearch from [bold]{cluster.source}[/bold] at {cluster.url}")
    os.environ["ESSEARCH_ES_URL"] = cluster.url
    try:
        settings = load_settings()
        if cluster.source == "local":
            settings.index.replicas = 0
        report, ok = doctor_report(settings)
        _render(report)
        if not ok:
            sys.exit(1)
        _run_pipeline(settings, queries)
        if keep_node and cluster.node is not None:
            console.print(f"node left running at {cluster.url} (pid group of the launcher)")
            cluster.node = None
    finally:
        cluster.close()


def _run_pipeline(settings, queries: tuple[str, ...]) -> None:
    """Index the sample corpus and search it (once ingest and retrieval are installed)."""
    try:
        from essearch.demo_flow import run_demo
    except ImportError:
        console.print("[yellow]ingest/search not available yet: demo ends with doctor[/yellow]")
        return
    run_demo(settings, list(queries), console=console)


COMMANDS = [demo]
