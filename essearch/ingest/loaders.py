"""Loaders: turn files, directories and stdin into a stream of documents.

Everything is a generator: a corpus is read one record at a time and never held whole. A record
that cannot be read (bad JSON, no text, a wrong type) or a file that cannot be converted
(encrypted PDF, corrupt DOCX) becomes a `Failure` naming file and line, and the stream goes on.

Record files (JSONL, CSV, Parquet) go through `essearch.ingest.records`; every field other than the
id, title, text and vector becomes metadata unless `--meta` narrows it. Document files go through
`essearch.ingest.converters`, which keep page, slide, sheet and heading path as sections. A file's
document id is its path relative to a root (by default the argument's directory), so `notes/a.md`
given as a file and `notes/` given as a directory name the same document.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from essearch.errors import ConfigurationError
from essearch.ingest.converters import (
    BINARY_CONVERTERS,
    TEXT_CONVERTERS,
    ConversionError,
    Section,
    first_heading,
)
from essearch.ingest.failures import Failure
from essearch.ingest.ids import doc_id_from_content
from essearch.ingest.records import (
    BOM,
    RawRecord,
    iter_csv_rows,
    iter_jsonl_lines,
    read_records,
)

Format = Literal[
    "jsonl", "csv", "parquet", "text", "markdown", "html", "pdf", "docx", "pptx", "xlsx"
]
FORMATS: tuple[str, ...] = (
    "jsonl",
    "csv",
    "parquet",
    "text",
    "markdown",
    "html",
    "pdf",
    "docx",
    "pptx",
    "xlsx",
)
RECORD_FORMATS = ("jsonl", "csv", "parquet")

EXTENSIONS: dict[str, Format] = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".txt": "text",
    ".text": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
}
STDIN = "-"
STDIN_ORIGIN = "<stdin>"
FILE_KEY = "file"  # metadata key of a converted file's path (relative to the root)
_MISSING = object()


#: A precomputed vector: a list, or a numpy row as Parquet columns are read (kept as read, so a
#: float32 vector is sent in float32's short form).
Vector = list[float] | NDArray[np.floating[Any]]


@dataclass
class Document:
    """One source document before chunking.

    `sections` mark where a page, slide, sheet or heading starts (offsets into `text`): the chunks
    after a mark carry its metadata. `vector` is a precomputed embedding: such a document is one
    chunk, indexed with that vector instead of being embedded.
    """

    id: str
    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # "file:line" or "file", for messages
    origin: str | None = None  # the input read (absolute path, `<stdin>`): scopes --sync
    sections: list[Section] = field(default_factory=list)
    vector: Vector | None = None


@dataclass(frozen=True)
class FieldMap:
    """Where a record keeps its id, title, text, vector and metadata (dotted paths: `meta.lang`).

    Each field may list several candidates; the first one present wins. `metadata` must point at an
    object. Every other top-level field becomes metadata too, unless `extra_metadata` is given:
    then only those fields are copied (their last path part is the key). An absent id means: the id
    is a hash of title and text.
    """

    id: tuple[str, ...] = ("id", "_id")
    title: tuple[str, ...] = ("title",)
    text: tuple[str, ...] = ("text", "content", "body")
    metadata: tuple[str, ...] = ("metadata",)
    extra_metadata: tuple[str, ...] = ()
    vector: tuple[str, ...] = ("vector",)

    @classmethod
    def of(
        cls,
        *,
        id: str | None = None,
        title: str | None = None,
        text: str | None = None,
        metadata: str | None = None,
        extra_metadata: Iterable[str] = (),
        vector: str | None = None,
    ) -> FieldMap:
        """A map where the given fields replace the defaults (None keeps the default)."""
        default = cls()
        return cls(
            id=(id,) if id else default.id,
            title=(title,) if title else default.title,
            text=(text,) if text else default.text,
            metadata=(metadata,) if metadata else default.metadata,
            extra_metadata=tuple(extra_metadata),
            vector=(vector,) if vector else default.vector,
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


def parse_vector(value: Any) -> Vector | str:
    """A precomputed vector: a list of numbers, a numpy row, or a JSON list in a string (a CSV
    cell); else the problem. Finite values and dims are checked against the index later, per row."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        if value.dtype.kind == "f":
            return value  # a Parquet row, as read
        if value.dtype.kind in "iu":
            return value.astype(np.float64)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            return f"is not a JSON list of numbers ({exc.msg} at column {exc.colno})"
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, (list, tuple)):
        return f"must be a list of numbers, got {type(value).__name__}"
    if value and set(map(type, value)) == {float}:
        return value if isinstance(value, list) else list(value)  # the common case: no copy
    if any(isinstance(x, bool) for x in value):
        return "must be a list of numbers, got booleans"
    try:
        return [float(x) for x in value]
    except (TypeError, ValueError):
        return "must be a list of numbers"


def document_from_record(
    record: Any, fields: FieldMap, source: str, *, extra_columns: bool | None = None
) -> Document | Failure:
    """Map one parsed record to a Document, or a Failure saying what is wrong with it.

    Every field that is not id/title/text/vector/metadata is copied into metadata, unless
    `fields.extra_metadata` names the ones to copy. (`extra_columns` is accepted for callers of
    the old signature and ignored.)
    """
    del extra_columns
    if not isinstance(record, Mapping):
        got = type(record).__name__
        return Failure("load", f"expected a JSON object, got {got}", source=source)
    text_path, text = _first(record, fields.text)
    vector_path, raw_vector = _first(record, fields.vector)
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
    vector: Vector | None = None
    if raw_vector is not _MISSING:
        parsed = parse_vector(raw_vector)
        if isinstance(parsed, str):
            return Failure(
                "load", f"field {vector_path!r} {parsed}", id=doc_id, doc_id=doc_id, source=source
            )
        vector = parsed
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
    if fields.extra_metadata:
        for path in fields.extra_metadata:
            value = get_path(record, path)
            if value is not _MISSING:
                metadata[path.rsplit(".", 1)[-1]] = value
    else:
        used = {id_path, title_path, text_path, meta_path, vector_path, *fields.vector}
        reserved = {p.split(".", 1)[0] for p in used if p} | {p for p in used if p}
        metadata.update(
            {k: v for k, v in record.items() if k not in reserved and v not in ("", None)}
        )
    return Document(
        id=doc_id, text=text, title=title, metadata=metadata, source=source, vector=vector
    )


# -- formats ------------------------------------------------------------------------------------


def _documents(
    raws: Iterable[RawRecord], name: str, fields: FieldMap, origin: str | None = None
) -> Iterator[Document | Failure]:
    for raw in raws:
        source = f"{name}:{raw.line}"
        if raw.record is None:
            yield Failure("load", raw.problem, source=source)
            continue
        item = document_from_record(raw.record, fields, source)
        if isinstance(item, Document):
            item.origin = origin
        yield item


def origin_of(path: Path) -> str:
    """What a chunk records as its input: the file's absolute path, `/`-separated."""
    return path.resolve().as_posix()


def read_jsonl(
    stream: Iterable[str], name: str, fields: FieldMap, origin: str | None = None
) -> Iterator[Document | Failure]:
    """One JSON object per line; blank lines are skipped; a bad line is a Failure `name:line`."""
    yield from _documents(iter_jsonl_lines(stream), name, fields, origin)


def read_csv(
    stream: Iterable[str], name: str, fields: FieldMap, origin: str | None = None
) -> Iterator[Document | Failure]:
    """A header row, then one document per row; other columns become metadata."""
    yield from _documents(iter_csv_rows(stream), name, fields, origin)


def markdown_title(text: str) -> str | None:
    """The first `# heading` of a Markdown text, if any."""
    return first_heading(text)


def convert_file(path: Path, doc_id: str, fmt: Format) -> Document | Failure:
    """A document file (text, Markdown, HTML, PDF, Office) is one document; its id is `doc_id`
    (the path relative to the root), also kept as the `file` metadata of every chunk."""
    try:
        if fmt in BINARY_CONVERTERS:
            converted = BINARY_CONVERTERS[fmt](path)
        else:
            converted = TEXT_CONVERTERS[fmt](path.read_text(encoding="utf-8-sig"))
    except ConversionError as exc:
        return Failure("load", str(exc), id=doc_id, doc_id=doc_id, source=doc_id)
    except UnicodeDecodeError as exc:
        return Failure("load", f"not UTF-8 text ({exc.reason} at byte {exc.start})", source=doc_id)
    except OSError as exc:
        return Failure("load", f"cannot read: {exc.strerror}", source=doc_id)
    if not converted.text or converted.text.isspace():
        return Failure("load", "file is empty", id=doc_id, source=doc_id)
    return Document(
        id=doc_id,
        text=converted.text,
        title=converted.title or path.stem,
        metadata={**converted.metadata, FILE_KEY: doc_id},
        source=doc_id,
        origin=origin_of(path),
        sections=converted.sections,
    )


def read_text_file(path: Path, doc_id: str, fmt: Format) -> Document | Failure:
    """Backwards-compatible name of `convert_file`."""
    return convert_file(path, doc_id, fmt)


def format_of(path: Path, forced: Format | None = None) -> Format | None:
    if forced:
        return forced
    return EXTENSIONS.get(path.suffix.lower())


def _display(path: Path) -> str:
    try:
        return Path(os.path.relpath(path)).as_posix() if not path.is_absolute() else str(path)
    except ValueError:
        return str(path)


def relative_id(path: Path, root: Path) -> str:
    """The stable id of a file: its path relative to `root`, `/`-separated (resolved, so
    `./a.md`, `notes/../notes/a.md` and an absolute path agree); outside the root: the path."""
    resolved = path.resolve()
    try:
        return resolved.relative_to(root.resolve()).as_posix()
    except ValueError:
        return resolved.as_posix()


def load_file(
    path: Path,
    fields: FieldMap,
    *,
    fmt: Format | None = None,
    doc_id: str | None = None,
    root: Path | None = None,
) -> Iterator[Document | Failure]:
    """Every document of one file (format from the extension unless given)."""
    name = _display(path)
    kind = format_of(path, fmt)
    if kind is None:
        yield Failure("load", f"unknown file type {path.suffix!r} (use --format)", source=name)
        return
    if kind not in RECORD_FORMATS:
        yield convert_file(path, doc_id or relative_id(path, root or path.parent), kind)
        return
    try:
        # precomputed vectors as numpy rows (Parquet): no per-number Python objects
        records = read_records(path, kind, arrays=fields.vector)  # type: ignore[arg-type]
        yield from _documents(records, name, fields, origin_of(path))
    except OSError as exc:
        yield Failure("load", f"cannot open: {exc.strerror}", source=name)


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
    root: str | Path | None = None,
) -> Iterator[Document | Failure]:
    """Documents (and failures) from files, directories (recursive) and `-` (stdin, JSONL unless
    `fmt` says otherwise). A document file's id is its path relative to `root`, by default the
    directory given (or, for a file argument, the directory it is in)."""
    fields = fields or FieldMap()
    declared = Path(root) if root is not None else None
    for raw in paths:
        if str(raw) == STDIN:
            stream = stdin or sys.stdin
            kind = fmt or "jsonl"
            if kind == "csv":
                yield from read_csv(stream, "<stdin>", fields, STDIN_ORIGIN)
            elif kind == "jsonl":
                yield from read_jsonl(stream, "<stdin>", fields, STDIN_ORIGIN)
            elif kind in TEXT_CONVERTERS:
                try:
                    converted = TEXT_CONVERTERS[kind](stream.read().removeprefix(BOM))
                except ConversionError as exc:
                    yield Failure("load", str(exc), source="<stdin>")
                    continue
                yield Document(
                    id="<stdin>",
                    text=converted.text,
                    title=converted.title,
                    metadata=converted.metadata,
                    source="<stdin>",
                    origin=STDIN_ORIGIN,
                    sections=converted.sections,
                )
            else:
                raise ConfigurationError(f"--format {kind} cannot be read from stdin; give a file")
            continue
        path = Path(raw)
        if path.is_dir():
            for file in walk_directory(path, glob):
                yield from load_file(file, fields, fmt=fmt, root=declared or path)
        elif path.is_file():
            yield from load_file(path, fields, fmt=fmt, root=declared or path.parent)
        else:
            raise ConfigurationError(f"input {str(raw)!r} does not exist")


def count_hint(paths: Iterable[str | Path], *, glob: str | None = None) -> int | None:
    """A quick estimate of how many documents `load` will yield (lines of JSONL/CSV files, rows of
    Parquet files, one per document file), for the progress bar's ETA; None when unknown."""
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
            elif kind == "parquet":
                total += _parquet_rows(file)
            else:
                total += 1
    return total


def _parquet_rows(path: Path) -> int:
    try:
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    except Exception:  # an unreadable file is reported by the loader
        return 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))
