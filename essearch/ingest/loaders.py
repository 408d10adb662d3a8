"""Loaders: turn files, directories and stdin into a stream of documents.

Everything is a generator: a corpus is read one record at a time and never held whole. A record
that cannot be read (bad JSON, no text, a wrong type) becomes a `Failure` naming file and line, and
the stream goes on with the next record.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from essearch.errors import ConfigurationError
from essearch.ingest.failures import Failure
from essearch.ingest.ids import doc_id_from_content

Format = Literal["jsonl", "csv", "text", "markdown"]

EXTENSIONS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
}
STDIN = "-"
_MISSING = object()


@dataclass
class Document:
    """One source document before chunking."""

    id: str
    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # "file:line" or "file"


@dataclass(frozen=True)
class FieldMap:
    """Where a record keeps its id, title, text and metadata (dotted paths: `meta.lang`).

    Each field may list several candidates; the first one present wins. `metadata` must point at an
    object; `extra_metadata` copies single fields into metadata (their last path part is the key).
    An absent id means: the id is a hash of title and text.
    """

    id: tuple[str, ...] = ("id", "_id")
    title: tuple[str, ...] = ("title",)
    text: tuple[str, ...] = ("text", "content", "body")
    metadata: tuple[str, ...] = ("metadata",)
    extra_metadata: tuple[str, ...] = ()

    @classmethod
    def of(
        cls,
        *,
        id: str | None = None,
        title: str | None = None,
        text: str | None = None,
        metadata: str | None = None,
        extra_metadata: Iterable[str] = (),
    ) -> FieldMap:
        """A map where the given fields replace the defaults (None keeps the default)."""
        default = cls()
        return cls(
            id=(id,) if id else default.id,
            title=(title,) if title else default.title,
            text=(text,) if text else default.text,
            metadata=(metadata,) if metadata else default.metadata,
            extra_metadata=tuple(extra_metadata),
        )


def get_path(record: Mapping[str, Any], path: str) -> Any:
    """`record["a"]["b"]` for `"a.b"`; a key that itself contains dots is found too."""
    if path in record:
        return record[path]
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def _first(record: Mapping[str, Any], paths: tuple[str, ...]) -> tuple[str | None, Any]:
    for path in paths:
        value = get_path(record, path)
        if value is not _MISSING and value is not None:
            return path, value
    return None, _MISSING


def document_from_record(
    record: Any, fields: FieldMap, source: str, *, extra_columns: bool = False
) -> Document | Failure:
    """Map one parsed record to a Document, or a Failure saying what is wrong with it.

    `extra_columns` (CSV): every column that is not id/title/text goes into metadata.
    """
    if not isinstance(record, Mapping):
        got = type(record).__name__
        return Failure("load", f"expected a JSON object, got {got}", source=source)
    text_path, text = _first(record, fields.text)
    if text is _MISSING:
        looked = ", ".join(fields.text)
        return Failure("load", f"no text field (looked for {looked})", source=source)
    if not isinstance(text, str):
        return Failure(
            "load",
            f"field {text_path!r} must be a string, got {type(text).__name__}",
            source=source,
        )
    title_path, title = _first(record, fields.title)
    if title is _MISSING:
        title = None
    elif not isinstance(title, str):
        title = str(title)
    if not text.strip():
        return Failure("load", f"field {text_path!r} is empty", source=source)
    id_path, raw_id = _first(record, fields.id)
    if raw_id is _MISSING or raw_id == "":
        doc_id = doc_id_from_content(title, text)
    elif isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool):
        doc_id = str(raw_id)
    else:
        return Failure(
            "load",
            f"field {id_path!r} must be a string or an integer, got {type(raw_id).__name__}",
            source=source,
        )
    metadata: dict[str, Any] = {}
    meta_path, meta = _first(record, fields.metadata)
    if meta is not _MISSING:
        if not isinstance(meta, Mapping):
            return Failure(
                "load",
                f"field {meta_path!r} must be an object, got {type(meta).__name__}",
                id=doc_id,
                source=source,
            )
        metadata.update(meta)
    for path in fields.extra_metadata:
        value = get_path(record, path)
        if value is not _MISSING:
            metadata[path.rsplit(".", 1)[-1]] = value
    if extra_columns:
        used = {id_path, title_path, text_path, meta_path}
        metadata.update({k: v for k, v in record.items() if k not in used and v not in ("", None)})
    return Document(id=doc_id, text=text, title=title, metadata=metadata, source=source)


# -- formats ------------------------------------------------------------------------------------


def read_jsonl(stream: Iterable[str], name: str, fields: FieldMap) -> Iterator[Document | Failure]:
    """One JSON object per line; blank lines are skipped; a bad line is a Failure `name:line`."""
    for lineno, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        source = f"{name}:{lineno}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield Failure("load", f"invalid JSON: {exc.msg} at column {exc.colno}", source=source)
            continue
        yield document_from_record(record, fields, source)


def read_csv(stream: Iterable[str], name: str, fields: FieldMap) -> Iterator[Document | Failure]:
    """A header row, then one document per row; other columns become metadata."""
    reader = csv.DictReader(stream)
    try:
        for row in reader:
            source = f"{name}:{reader.line_num}"
            if None in row:  # more cells than header columns
                yield Failure("load", "row has more cells than the header", source=source)
                continue
            yield document_from_record(row, fields, source, extra_columns=True)
    except csv.Error as exc:
        yield Failure("load", f"invalid CSV: {exc}", source=f"{name}:{reader.line_num}")


def markdown_title(text: str) -> str | None:
    """The first `# heading` of a Markdown text, if any."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# "):
            return stripped[2:].strip() or None
    return None


def read_text_file(path: Path, doc_id: str, fmt: Format) -> Document | Failure:
    """A whole text or Markdown file is one document; its id is its relative path."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return Failure("load", f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=doc_id)
    except OSError as exc:
        return Failure("load", f"cannot read: {exc.strerror}", source=doc_id)
    if not text.strip():
        return Failure("load", "file is empty", id=doc_id, source=doc_id)
    title = markdown_title(text) if fmt == "markdown" else None
    return Document(id=doc_id, text=text, title=title or path.stem, source=doc_id)


def format_of(path: Path, forced: Format | None = None) -> Format | None:
    if forced:
        return forced
    return EXTENSIONS.get(path.suffix.lower())


def _display(path: Path) -> str:
    try:
        return Path(os.path.relpath(path)).as_posix() if not path.is_absolute() else str(path)
    except ValueError:
        return str(path)


def load_file(
    path: Path, fields: FieldMap, *, fmt: Format | None = None, doc_id: str | None = None
) -> Iterator[Document | Failure]:
    """Every document of one file (format from the extension unless given)."""
    name = _display(path)
    kind = format_of(path, fmt)
    if kind is None:
        yield Failure("load", f"unknown file type {path.suffix!r} (use --format)", source=name)
        return
    if kind in ("text", "markdown"):
        yield read_text_file(path, doc_id or name, kind)
        return
    try:
        handle = path.open(encoding="utf-8", newline="" if kind == "csv" else None)
    except OSError as exc:
        yield Failure("load", f"cannot open: {exc.strerror}", source=name)
        return
    with handle:
        reader = read_csv if kind == "csv" else read_jsonl
        try:
            yield from reader(handle, name, fields)
        except UnicodeDecodeError as exc:
            yield Failure("load", f"not UTF-8 text ({exc.reason})", source=name)


def walk_directory(root: Path, pattern: str | None = None) -> Iterator[Path]:
    """Files under `root` (recursive, sorted for a stable order) matching the glob, or every file
    with a known extension."""
    candidates = root.glob(pattern) if pattern else root.rglob("*")
    for path in sorted(candidates):
        if path.is_file() and (pattern or path.suffix.lower() in EXTENSIONS):
            yield path


def load(
    paths: Iterable[str | Path],
    fields: FieldMap | None = None,
    *,
    fmt: Format | None = None,
    glob: str | None = None,
    stdin: io.TextIOBase | None = None,
) -> Iterator[Document | Failure]:
    """Documents (and failures) from files, directories (recursive) and `-` (stdin, JSONL unless
    `fmt` says otherwise). Text and Markdown files under a directory get their path relative to
    that directory as id."""
    fields = fields or FieldMap()
    for raw in paths:
        if str(raw) == STDIN:
            stream = stdin or sys.stdin
            kind = fmt or "jsonl"
            if kind == "csv":
                yield from read_csv(stream, "<stdin>", fields)
            elif kind == "jsonl":
                yield from read_jsonl(stream, "<stdin>", fields)
            else:
                text = stream.read()
                title = markdown_title(text) if kind == "markdown" else None
                yield Document(id="<stdin>", text=text, title=title, source="<stdin>")
            continue
        path = Path(raw)
        if path.is_dir():
            for file in walk_directory(path, glob):
                rel = file.relative_to(path).as_posix()
                yield from load_file(file, fields, fmt=fmt, doc_id=rel)
        elif path.is_file():
            yield from load_file(path, fields, fmt=fmt)
        else:
            raise ConfigurationError(f"input {str(raw)!r} does not exist")


def count_hint(paths: Iterable[str | Path], *, glob: str | None = None) -> int | None:
    """A quick estimate of how many documents `load` will yield (lines of JSONL/CSV files, one per
    text file), for the progress bar's ETA; None when unknown (stdin)."""
    total = 0
    for raw in paths:
        if str(raw) == STDIN:
            return None
        path = Path(raw)
        files = list(walk_directory(path, glob)) if path.is_dir() else [path]
        for file in files:
            kind = format_of(file)
            if kind in ("jsonl", "csv"):
                lines = _count_lines(file)
                total += max(lines - (1 if kind == "csv" else 0), 0)
            else:
                total += 1
    return total


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
