"""Progress display and the end-of-run summary (rich), kept apart from the pipeline.

The pipeline only keeps counters; a `ProgressView` polls them from the main thread, so the worker
threads never touch the terminal.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

COUNTERS = (
    "documents",
    "chunks",
    "embedded",
    "skipped",
    "indexed",
    "deleted",
    "failed",
)


class Counters:
    """Thread-safe named counters shared by the producer and the bulk consumers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(COUNTERS, 0)

    def add(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._values[name] = self._values.get(name, 0) + amount

    def __getitem__(self, name: str) -> int:
        with self._lock:
            return self._values.get(name, 0)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)


class ProgressView(Protocol):
    def start(self, total_documents: int | None) -> None: ...
    def update(self, counters: Mapping[str, int]) -> None: ...
    def stop(self) -> None: ...


class NoProgress:
    """`--quiet` and the Python API's default: shows nothing."""

    def start(self, total_documents: int | None) -> None:
        pass

    def update(self, counters: Mapping[str, int]) -> None:
        pass

    def stop(self) -> None:
        pass


class RichProgress:
    """A live bar with the counters, rate, elapsed time and ETA beside it (stderr).

    `unit="docs"` (reindex) fills the bar with documents read. `unit="chunks"` (ingest) fills
    it with chunks done (indexed or unchanged) out of an estimate that grows with the documents
    chunked so far (chunks per document so far × the documents expected), exact once every
    document is chunked; vectors are counted as each backend batch returns.
    """

    def __init__(
        self, console: Console | None = None, label: str = "ingest", unit: str = "docs"
    ) -> None:
        self.console = console or Console(stderr=True)
        self.label = label
        self.unit = unit
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._expected_documents: int | None = None

    def start(self, total_documents: int | None) -> None:
        self._expected_documents = total_documents
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn(f"[bold]{escape(self.label)}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(escape(self.unit)),
            TextColumn("{task.fields[detail]}"),
            TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._progress.start()
        total = total_documents if self.unit == "docs" else None
        self._task = self._progress.add_task(self.label, total=total, detail="", rate="")

    def _chunk_total(self, counters: Mapping[str, int]) -> int | None:
        documents, chunks = counters.get("documents", 0), counters.get("chunks", 0)
        expected = self._expected_documents
        if not expected or not documents:
            return None
        if documents >= expected:
            return chunks
        return max(chunks, round(chunks / documents * expected))

    def update(self, counters: Mapping[str, int]) -> None:
        if self._progress is None or self._task is None:
            return
        task = self._progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{counters['indexed'] / elapsed:,.0f} chunks/s" if elapsed > 0 else ""
        failed = counters["failed"]
        failed_text = f"[red]failed {failed:,}[/]" if failed else "failed 0"
        if self.unit == "chunks":
            embedded = max(counters.get("vectors", 0), counters["embedded"])
            detail = (
                f"docs {counters['documents']:,} · embedded {embedded:,} · "
                f"indexed {counters['indexed']:,} · unchanged {counters['skipped']:,} · "
                + failed_text
            )
            done = counters["indexed"] + counters["skipped"]
            self._progress.update(
                self._task,
                completed=done,
                total=self._chunk_total(counters),
                detail=detail,
                rate=rate,
            )
            return
        detail = (
            f"chunks {counters['chunks']:,} · embedded {counters['embedded']:,} · "
            f"indexed {counters['indexed']:,} · " + failed_text
        )
        self._progress.update(self._task, completed=counters["documents"], detail=detail, rate=rate)

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def summary_table(report: Mapping[str, Any]) -> Table:
    """The end-of-run summary as a small table."""
    table = Table(title="ingest summary", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value", justify="right")
    for key in (*COUNTERS, "elapsed_s", "chunks_per_s"):
        if key in report:
            value = report[key]
            shown = f"{value:,.1f}" if isinstance(value, float) else f"{value:,}"
            style = "red" if key == "failed" and value else None
            table.add_row(key, f"[{style}]{shown}[/]" if style else shown)
    table.add_row("index", escape(str(report.get("index"))))
    if report.get("languages"):
        shares = report["languages"]
        table.add_row("languages", ", ".join(f"{k} {v:.0%}" for k, v in shares.items()))
    if report.get("dead_letter") and report.get("failed"):
        table.add_row("dead letter", escape(str(report["dead_letter"])))
    if report.get("interrupted"):
        table.add_row("interrupted", f"[red]{escape(str(report['interrupted']))}[/]")
    return table
