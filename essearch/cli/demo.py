"""`essearch demo`: the README's main job, from nothing to a hybrid search.

Finds or starts Elasticsearch (ESSEARCH_ES_URL, Docker, or the local Maven-published node) with a
spinner naming each phase, prints a short summary of the cluster, then indexes the bundled sample
corpus with the offline local embedder and runs hybrid searches. A node it started is stopped at
the end.
"""

from __future__ import annotations

import os
import sys

import click

from essearch.cli._common import console, load_embedder, phase, safe


@click.command()
@click.option("--query", "queries", multiple=True, help="Queries to run (repeatable).")
@click.option("--keep-node", is_flag=True, help="Leave a node this command started running.")
def demo(queries: tuple[str, ...], keep_node: bool) -> None:
    """Bring up Elasticsearch, index the sample corpus, run hybrid searches."""
    from essearch.es.provision import provision

    console.rule("1. Elasticsearch")
    with phase("finding Elasticsearch", stream=console) as relabel:
        cluster = provision(on_phase=relabel)
        relabel(f"Elasticsearch from {cluster.source} at {cluster.url}")
    os.environ["ESSEARCH_ES_URL"] = cluster.url
    try:
        from essearch.cli.doctor import doctor_report, render_summary
        from essearch.settings import load_settings

        settings = load_settings()
        if cluster.source == "local":
            settings.index.replicas = 0
        with phase("checking the cluster", stream=console):
            report, ok = doctor_report(settings)
        render_summary(report)
        if not ok:
            sys.exit(1)
        from essearch.demo_flow import run_demo

        run_demo(settings, list(queries), console=console, embedder=load_embedder(settings))
        if keep_node and cluster.node is not None:
            console.print(f"node left running at {safe(cluster.url)} (pid group of the launcher)")
            cluster.node = None
    finally:
        cluster.close()


COMMANDS = [demo]
