"""Progress of every evaluation phase (load, index build, query embedding, each run) on stderr.

On a terminal each phase gets a rich bar; elsewhere (logs, `benchmarks/run_all.py`'s
subprocesses) a phase prints a line when it starts, every few seconds, and when it ends, so a long
run in the background can be followed with `tail -f`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Protocol

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
)

from essearch.ingest.progress import NoProgress, ProgressView

#: Seconds between two lines of the same phase when not on a terminal.
LINE_INTERVAL_S = 10.0


class EvalProgress(Protocol):
    def phase(
        self,
        name: str,
        done: int,
        total: int | None = None,
        detail: str = "",
        *,
        last: bool = False,
    ) -> None: ...
    def ingest_view(self, name: str) -> ProgressView: ...
    def close(self) -> None: ...


class SilentProgress:
    """`--quiet` and the Python API's default."""

    def phase(
        self,
        name: str,
        done: int,
        total: int | None = None,
        detail: str = "",
        *,
        last: bool = False,
    ) -> None:
        pass

    def ingest_view(self, name: str) -> ProgressView:
        return NoProgress()

    def close(self) -> None:
        pass


class PhaseProgress:
    """Bars on a terminal, timed lines otherwise; `prefix` names the dataset in every line."""

    def __init__(self, console: Console, *, prefix: str = "", live: bool | None = None) -> None:
        self.console = console
        self.prefix = prefix
        self.live = console.is_terminal if live is None else live
        self._bars: Progress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._started: dict[str, float] = {}
        self._last_line: dict[str, float] = {}
        self._finished: set[str] = set()

    def phase(
        self,
        name: str,
        done: int,
        total: int | None = None,
        detail: str = "",
        *,
        last: bool = False,
    ) -> None:
        """`last`: the phase's final state (always printed)."""
        now = time.monotonic()
        self._started.setdefault(name, now)
        if self.live:
            self._bar(name, done, total, detail)
            return
        reached = total is not None and done >= total and name not in self._finished
        if reached:
            self._finished.add(name)
        first = name not in self._last_line
        if first or reached or last or now - self._last_line[name] >= LINE_INTERVAL_S:
            self._last_line[name] = now
            count = f"{done:,}/{total:,}" if total is not None else f"{done:,}"
            extra = f" · {detail}" if detail else ""
            took = now - self._started[name]
            self.console.print(
                f"{self.prefix}{escape(name)}: {count}{escape(extra)} ({took:.0f} s)",
                highlight=False,
                soft_wrap=True,
            )

    def _bar(self, name: str, done: int, total: int | None, detail: str) -> None:
        if self._bars is None:
            self._bars = Progress(
                SpinnerColumn(),
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=self.console,
            )
            self._bars.start()
        if name not in self._tasks:
            label = escape(f"{self.prefix}{name}")
            self._tasks[name] = self._bars.add_task(label, total=total, detail="")
        self._bars.update(self._tasks[name], completed=done, total=total, detail=escape(detail))

    def ingest_view(self, name: str) -> ProgressView:
        return _IngestPhase(self, name)

    def close(self) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None


class _IngestPhase:
    """The ingest pipeline's counters shown as one phase (documents done of the corpus)."""

    def __init__(self, owner: PhaseProgress, name: str) -> None:
        self.owner = owner
        self.name = name
        self.total: int | None = None
        self.counters: Mapping[str, int] = {}

    def start(self, total_documents: int | None) -> None:
        self.total = total_documents
        self.owner.phase(self.name, 0, total_documents, "reading the corpus")

    def update(self, counters: Mapping[str, int]) -> None:
        self.counters = dict(counters)
        self.owner.phase(self.name, counters.get("documents", 0), self.total, self._detail())

    def _detail(self) -> str:
        c = self.counters
        return (
            f"chunks {c.get('chunks', 0):,} · embedded {c.get('embedded', 0):,} · "
            f"indexed {c.get('indexed', 0):,} · failed {c.get('failed', 0):,}"
        )

    def stop(self) -> None:
        done = self.counters.get("documents", 0)
        self.owner.phase(self.name, done, self.total, self._detail(), last=True)
