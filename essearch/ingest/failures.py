"""Failure records and the dead-letter file: every item that did not make it, with id and reason.

One JSON object per line, so a dead-letter file can be inspected with `jq`, grepped, or fed back to
`essearch ingest` after fixing the cause (a re-run only sends what is missing).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Literal

from essearch.errors import es_error_reason

Stage = Literal["load", "chunk", "embed", "index", "delete"]


@dataclass(frozen=True)
class Failure:
    """One item that failed: where in the pipeline, which item, where it came from, why."""

    stage: Stage
    reason: str
    id: str | None = None
    doc_id: str | None = None
    source: str | None = None  # "file:line" for load failures
    status: int | None = None  # HTTP status of an Elasticsearch item error

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    def __str__(self) -> str:
        where = self.source or self.id or self.doc_id or "?"
        return f"{self.stage} failed for {where}: {self.reason}"


class DeadLetter:
    """Appends failures to a JSONL file (opened on the first failure) and counts them by stage.

    Every line carries the run's id and the time it was written, so the lines of several runs
    appended to one file can be told apart (`jq 'select(.run_id == "...")'`).
    Thread-safe: the embedding producer and the bulk consumers both report here.
    """

    def __init__(
        self, path: Path | str | None, *, keep: int = 100, run_id: str | None = None
    ) -> None:
        self.run_id = run_id or new_run_id()
        self.path = Path(path) if path is not None else None
        self.counts: Counter[str] = Counter()
        self.first: list[Failure] = []  # the first few, for the summary
        self._keep = keep
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, failure: Failure) -> None:
        with self._lock:
            self.counts[failure.stage] += 1
            if len(self.first) < self._keep:
                self.first.append(failure)
            if self.path is not None:
                if self._file is None:
                    self.path.parent.mkdir(parents=True, exist_ok=True)
                    self._file = self.path.open("a", encoding="utf-8")
                line = {
                    "run_id": self.run_id,
                    "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
                    **failure.to_dict(),
                }
                self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
                self._file.flush()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def new_run_id() -> str:
    """`<UTC time>-<random>`: sortable, and unique across machines."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


#: One line from an item-level bulk error (the one Elasticsearch-error formatter).
describe_bulk_error = es_error_reason
