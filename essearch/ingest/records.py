"""The one reader of record files (JSONL, CSV, Parquet): ingest, `essearch embed` and evaluation
all read records through it, so a malformed line is reported the same way everywhere.

A record is yielded with its 1-based line (JSONL, CSV: the line where the row ends; Parquet: the
row number) so every problem can name `file:line`. A line that cannot be parsed is yielded with
`record=None` and the problem; the stream goes on with the next line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

RecordFormat = Literal["jsonl", "csv", "parquet"]

RECORD_EXTENSIONS: dict[str, RecordFormat] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
PARQUET_BATCH_ROWS = 2_048


@dataclass(frozen=True)
class RawRecord:
    """One line of a record file: the parsed object, or None and why not."""

    line: int
    record: dict[str, Any] | None
    problem: str = ""


def record_format(path: Path) -> RecordFormat | None:
    return RECORD_EXTENSIONS.get(path.suffix.lower())


BOM = "\ufeff"


def without_bom(stream: Iterable[str]) -> Iterator[str]:
    """The lines of `stream`, the first without the byte-order mark that Windows tools (Excel's
    "CSV UTF-8", Notepad) put at the start of a file: left in, it would be part of the first
    key or header and shift every column of line 1."""
    lines = iter(stream)
    first = next(lines, None)
    if first is None:
        return
    yield first.removeprefix(BOM)
    yield from lines


def iter_jsonl_lines(stream: Iterable[str]) -> Iterator[RawRecord]:
    """One JSON object per line; blank lines are skipped."""
    for lineno, line in enumerate(without_bom(stream), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRecord(lineno, None, f"invalid JSON: {exc.msg} at column {exc.colno}")
            continue
        if not isinstance(record, dict):
            yield RawRecord(lineno, None, f"expected a JSON object, got {type(record).__name__}")
            continue
        yield RawRecord(lineno, record)


def iter_csv_rows(stream: Iterable[str], *, delimiter: str = ",") -> Iterator[RawRecord]:
    """A header row, then one record per row (every value a string; empty cells left out)."""
    reader = csv.DictReader(without_bom(stream), delimiter=delimiter)
    try:
        for row in reader:
            if None in row:  # more cells than header columns
                yield RawRecord(reader.line_num, None, "row has more cells than the header")
                continue
            yield RawRecord(reader.line_num, {k: v for k, v in row.items() if v not in ("", None)})
    except csv.Error as exc:
        yield RawRecord(reader.line_num, None, f"invalid CSV: {exc}")


def iter_parquet_rows(path: Path, arrays: Collection[str] = ()) -> Iterator[RawRecord]:
    """Rows of a Parquet file, read a batch at a time (pyarrow), so memory stays bounded.

    Columns named in `arrays` that hold lists of numbers (precomputed vectors) come as numpy rows
    (views on the batch) instead of Python lists: converting them costs nothing, and a float32
    vector is then sent in float32's shortest form, about half the JSON of its float64 digits.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is a dependency of the documents extra
        yield RawRecord(
            0, None, "reading Parquet needs pyarrow (pip install 'essearch[documents]')"
        )
        return
    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError for a bad file
        yield RawRecord(0, None, f"not a readable Parquet file: {exc}")
        return

    def numeric_lists(kind: Any) -> bool:
        lists = pa.types.is_list(kind) or pa.types.is_large_list(kind)
        if not (lists or pa.types.is_fixed_size_list(kind)):
            return False
        value = kind.value_type
        return bool(pa.types.is_floating(value) or pa.types.is_integer(value))

    row = 0
    for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS):
        as_arrays = [n for n in arrays if n in batch.schema.names]
        as_arrays = [n for n in as_arrays if numeric_lists(batch.schema.field(n).type)]
        columns = {n: batch.column(n).to_numpy(zero_copy_only=False) for n in as_arrays}
        for i, record in enumerate(
            (batch.drop_columns(as_arrays) if as_arrays else batch).to_pylist()
        ):
            row += 1
            for name, column in columns.items():
                record[name] = column[i]
            yield RawRecord(row, {k: v for k, v in record.items() if v is not None})


def read_records(
    path: Path, fmt: RecordFormat | None = None, *, arrays: Collection[str] = ()
) -> Iterator[RawRecord]:
    """Every record of a JSONL, CSV or Parquet file (format from the extension unless given).

    Raises OSError when the file cannot be opened; a file that is not UTF-8 ends with a problem
    record naming the line where decoding failed.
    """
    kind = fmt or record_format(path) or "jsonl"
    if kind == "parquet":
        yield from iter_parquet_rows(path, arrays)
        return
    with path.open(encoding="utf-8", newline="" if kind == "csv" else None) as handle:
        line = 0
        try:
            rows = iter_csv_rows(handle) if kind == "csv" else iter_jsonl_lines(handle)
            for raw in rows:
                line = raw.line
                yield raw
        except UnicodeDecodeError as exc:
            yield RawRecord(line + 1, None, f"not UTF-8 text ({exc.reason})")
