"""The demo behind `essearch demo`: index the bundled sample corpus, then hybrid-search it.

Kept apart from the CLI module so it is importable (and testable) as plain Python.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from essearch.settings import Settings

if TYPE_CHECKING:
    from essearch.embedders.base import Embedder

SAMPLE_CORPUS = Path(__file__).parent / "data" / "sample_corpus.jsonl"
DEMO_INDEX = "essearch-demo"
DEFAULT_QUERIES = [
    "how do I combine keyword search with vector search?",
    "why must the query use the same embedding model as the index?",
    "向量检索和关键词检索怎么结合？",
]


def run_demo(
    settings: Settings, queries: list[str], *, console: Console, embedder: Embedder | None = None
) -> None:
    """Ingest the sample corpus (idempotent: a re-run adds nothing) and run hybrid searches.

    `embedder` (default: the configured one) is closed at the end."""
    from essearch.embedders import create_embedder
    from essearch.es import make_client
    from essearch.ingest import IngestOptions, ingest
    from essearch.ingest.progress import RichProgress
    from essearch.retrieval import SearchClient

    if settings.index.name == "essearch":  # the library default: keep the demo apart
        settings.index.name = DEMO_INDEX
    client = make_client(settings)
    console.rule(f"2. Ingest {escape(SAMPLE_CORPUS.name)} into '{escape(settings.index.name)}'")
    embedder = embedder or create_embedder(settings, client=client)
    try:
        report = ingest(
            SAMPLE_CORPUS,
            settings=settings,
            client=client,
            embedder=embedder,
            options=IngestOptions(dead_letter=None),
            progress=RichProgress(console, unit="chunks"),
        )
        console.print(
            f"documents {report.documents}, chunks {report.chunks}, embedded {report.embedded}, "
            f"skipped (unchanged) {report.skipped}, indexed {report.indexed}, "
            f"failed {report.failed} in {report.elapsed_s:.1f}s"
        )
        console.rule("3. Hybrid search")
        with SearchClient(settings, client=client, embedder=embedder) as search:
            for query in queries or DEFAULT_QUERIES:
                result = search.search(query, mode="hybrid", k=5)
                table = Table(
                    title=f"{escape(query)}  [dim]({escape(result.strategy)}, "
                    f"{len(result.hits)} of {result.candidates or result.total or 0} "
                    "candidates)[/dim]"
                )
                table.add_column("#", justify="right")
                table.add_column("score", justify="right")
                table.add_column("title")
                table.add_column("snippet", overflow="fold")
                for hit in result.hits:
                    score = f"{hit.score:.4f}" if hit.score is not None else "-"
                    table.add_row(
                        str(hit.rank),
                        score,
                        escape(hit.title or hit.id),
                        render_snippet(hit.snippet(120)),
                    )
                console.print(table)
    finally:
        embedder.close()
        client.close()


def render_snippet(snippet: str) -> str:
    """Highlight fragments arrive as `<em>` HTML; show them bold in the terminal."""
    return escape(snippet).replace("<em>", "[bold yellow]").replace("</em>", "[/]")
