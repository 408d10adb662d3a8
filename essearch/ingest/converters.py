"""Document conversion: PDF, Word, PowerPoint, Excel, HTML and Markdown to text with structure.

Each converter returns the text to chunk plus `sections`: (character offset, metadata) marks where
a page, slide, sheet or heading starts, so every chunk can carry the page number, slide, sheet or
heading path it came from. The libraries (the `documents` extra) were chosen for structure and
weight: pypdf reads PDFs page by page in pure Python (pdfminer.six, which markitdown uses, gives one
text without pages); python-docx, python-pptx and openpyxl read the Office formats without
LibreOffice; HTML goes through markdownify (BeautifulSoup) to Markdown, whose headings then give
the heading path. markitdown itself was left out: it wraps the same libraries, flattens pages and
sheets into one text, and pulls in magika/onnxruntime for file-type sniffing.

A file that cannot be converted raises `ConversionError` with a reason a user can act on
("encrypted PDF", "no text layer", "not a valid DOCX file"); the loader turns it into one
dead-letter line and goes on with the next file.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from essearch.errors import EssearchError

# One section mark: where in the text it starts, and what the chunks after it carry.
Section = tuple[int, dict[str, Any]]

DOCUMENTS_EXTRA = "pip install 'essearch[documents]'"
_ATX_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?\r?\n)?---[ \t]*(\r?\n|\Z)", re.DOTALL)


class ConversionError(EssearchError):
    """A file could not be turned into text; the message says why."""


@dataclass
class Converted:
    """What a converter makes of one file."""

    text: str
    title: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    sections: list[Section] = field(default_factory=list)


class _Builder:
    """Joins blocks of text with blank lines and records section marks at their offsets."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.sections: list[Section] = []

    def mark(self, metadata: dict[str, Any]) -> None:
        offset = self.length + (2 if self.parts else 0)
        if self.sections and self.sections[-1][0] == offset:
            self.sections[-1] = (offset, metadata)
        else:
            self.sections.append((offset, metadata))

    def add(self, block: str) -> None:
        block = block.strip()
        if not block:
            return
        if self.parts:
            self.parts.append("\n\n")
            self.length += 2
        self.parts.append(block)
        self.length += len(block)

    def text(self) -> str:
        return "".join(self.parts)


def _need(module: str, what: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConversionError(f"reading {what} needs {module!r}: {DOCUMENTS_EXTRA}") from None


def _plain(value: Any) -> Any:
    """YAML and Office values as JSON-friendly metadata (dates become ISO strings)."""
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- Markdown ------------------------------------------------------------------------------------
def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """YAML front matter (`---` … `---` at the very top) and the body after it."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    yaml = _need("yaml", "Markdown front matter")
    try:
        data = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise ConversionError(f"invalid YAML front matter{where}") from None
    if not isinstance(data, dict):
        raise ConversionError("front matter must be a YAML mapping (key: value lines)")
    return _plain(data), text[match.end() :]


def markdown_sections(text: str) -> list[Section]:
    """A mark at every ATX heading (`#`…`######`, not inside code fences) with its heading path."""
    sections: list[Section] = []
    path: list[str] = []
    offset = 0
    fenced = False
    for line in text.splitlines(keepends=True):
        stripped = line.rstrip("\r\n")
        if _FENCE.match(stripped):
            fenced = not fenced
        elif not fenced:
            heading = _ATX_HEADING.match(stripped)
            if heading:
                level = len(heading.group(1))
                path = [*path[: level - 1], heading.group(2).strip()]
                sections.append((offset, {"headings": list(path)}))
        offset += len(line)
    return sections


def first_heading(text: str) -> str | None:
    """The first `# heading` of a Markdown text, if any."""
    for offset, meta in markdown_sections(text):
        del offset
        if len(meta["headings"]) == 1:
            return str(meta["headings"][0])
    return None


def convert_markdown(text: str) -> Converted:
    """Front matter → title and metadata (never text); headings → heading paths."""
    front, body = split_front_matter(text)
    title = front.pop("title", None)
    return Converted(
        text=body,
        title=str(title) if title is not None else first_heading(body),
        metadata=front,
        sections=markdown_sections(body),
    )


# -- HTML ----------------------------------------------------------------------------------------
def convert_html(text: str) -> Converted:
    """HTML → Markdown (markdownify), so headings give the heading path; `<title>` is the title."""
    bs4 = _need("bs4", "HTML")
    markdownify = _need("markdownify", "HTML")
    soup = bs4.BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    title = title_tag.get_text(strip=True) if title_tag else None
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    body = markdownify.MarkdownConverter(heading_style="ATX", strip=["img"]).convert_soup(soup)
    body = re.sub(r"\n{3,}", "\n\n", body).strip()
    converted = convert_markdown(body)
    converted.title = title or converted.title
    return converted


# -- PDF -----------------------------------------------------------------------------------------
def convert_pdf(path: Path) -> Converted:
    """Text page by page (pypdf); each page is a section with its 1-based `page`."""
    pypdf = _need("pypdf", "PDF")
    try:
        reader = pypdf.PdfReader(str(path))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ConversionError("encrypted PDF (a password is needed to read it)")
        builder = _Builder()
        for number, page in enumerate(reader.pages, start=1):
            builder.mark({"page": number})
            builder.add(page.extract_text() or "")
        info = reader.metadata
    except ConversionError:
        raise
    except pypdf.errors.FileNotDecryptedError:
        raise ConversionError("encrypted PDF (a password is needed to read it)") from None
    except (pypdf.errors.PyPdfError, ValueError, KeyError, OSError) as exc:
        raise ConversionError(f"not a readable PDF ({type(exc).__name__}: {exc})") from None
    text = builder.text()
    if not text.strip():
        raise ConversionError(
            f"no text layer in {len(reader.pages)} page(s) (a scanned PDF?); run OCR on it first"
        )
    title = getattr(info, "title", None) if info else None
    return Converted(text=text, title=str(title) if title else None, sections=builder.sections)


# -- Office --------------------------------------------------------------------------------------
def _office(path: Path, kind: str, open_it: Callable[[str], Any]) -> Any:
    try:
        return open_it(str(path))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ConversionError(f"not a valid {kind} file (corrupt zip: {exc})") from None
    except Exception as exc:  # python-docx/pptx raise PackageNotFoundError for a non-package
        raise ConversionError(f"not a valid {kind} file ({type(exc).__name__}: {exc})") from None


def _docx_blocks(document: Any) -> Iterator[tuple[str | None, int, str]]:
    """(style, heading level or 0, text) per paragraph and table, in document order."""
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):  # a table: one line per row, cells separated by " | "
            rows = [" | ".join(cell.text.strip() for cell in row.cells) for row in block.rows]
            yield None, 0, "\n".join(rows)
            continue
        style = block.style.name if block.style is not None else ""
        level = 0
        if style == "Title":
            level = 1
        elif style.startswith("Heading "):
            tail = style.removeprefix("Heading ").strip()
            level = int(tail) if tail.isdigit() else 1
        yield style, level, block.text


def convert_docx(path: Path) -> Converted:
    """Paragraphs and tables in order; `Heading N` / `Title` paragraphs give the heading path."""
    docx = _need("docx", "DOCX")
    document = _office(path, "DOCX", docx.Document)
    builder = _Builder()
    headings: list[str] = []
    for _style, level, text in _docx_blocks(document):
        if level and text.strip():
            headings = [*headings[: level - 1], text.strip()]
            builder.mark({"headings": list(headings)})
        builder.add(text)
    props = document.core_properties
    metadata = {k: _plain(v) for k, v in (("author", props.author),) if v}
    if not builder.text().strip():
        raise ConversionError("the document has no text")
    return Converted(
        text=builder.text(),
        title=props.title or (headings[0] if headings else None),
        metadata=metadata,
        sections=builder.sections,
    )


def convert_pptx(path: Path) -> Converted:
    """One section per slide (`slide`, 1-based, and its title when it has one)."""
    pptx = _need("pptx", "PPTX")
    presentation = _office(path, "PPTX", pptx.Presentation)
    builder = _Builder()
    for number, slide in enumerate(presentation.slides, start=1):
        title_shape = slide.shapes.title
        mark: dict[str, Any] = {"slide": number}
        if title_shape is not None and title_shape.text_frame.text.strip():
            mark["slide_title"] = title_shape.text_frame.text.strip()
        builder.mark(mark)
        for shape in slide.shapes:
            if shape.has_text_frame:
                builder.add(shape.text_frame.text)
            elif getattr(shape, "has_table", False) and shape.has_table:
                rows = [" | ".join(c.text.strip() for c in row.cells) for row in shape.table.rows]
                builder.add("\n".join(rows))
        if slide.has_notes_slide:
            builder.add(slide.notes_slide.notes_text_frame.text)
    if not builder.text().strip():
        raise ConversionError("the presentation has no text")
    title = presentation.core_properties.title or None
    return Converted(text=builder.text(), title=title, sections=builder.sections)


def convert_xlsx(path: Path) -> Converted:
    """One section per sheet (`sheet`); a row is one line, cells separated by tabs."""
    openpyxl = _need("openpyxl", "XLSX")
    workbook = _office(
        path, "XLSX", lambda p: openpyxl.load_workbook(p, read_only=True, data_only=True)
    )
    builder = _Builder()
    try:
        for sheet in workbook.worksheets:
            lines = [
                "\t".join("" if v is None else str(_plain(v)) for v in row).rstrip("\t")
                for row in sheet.iter_rows(values_only=True)
            ]
            builder.mark({"sheet": sheet.title})
            builder.add("\n".join(line for line in lines if line))
    finally:
        workbook.close()
    if not builder.text().strip():
        raise ConversionError("the workbook has no cell values")
    return Converted(text=builder.text(), sections=builder.sections)


BINARY_CONVERTERS: dict[str, Callable[[Path], Converted]] = {
    "pdf": convert_pdf,
    "docx": convert_docx,
    "pptx": convert_pptx,
    "xlsx": convert_xlsx,
}
TEXT_CONVERTERS: dict[str, Callable[[str], Converted]] = {
    "markdown": convert_markdown,
    "html": convert_html,
    "text": lambda text: Converted(text=text),
}
