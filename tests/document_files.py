"""Document files made at test time (never downloaded): PDF (fpdf2), DOCX, PPTX, XLSX, HTML and
Markdown with known structure, plus the broken kinds the loader must report (encrypted PDF,
scanned PDF without a text layer, corrupt zip). Also used by benchmarks/bench_documents.py."""

from __future__ import annotations

from pathlib import Path


def make_pdf(path: Path, pages: list[str], *, password: str | None = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 8, text)
    if password is not None:
        pdf.set_encryption(owner_password=password, user_password=password)
    pdf.output(str(path))
    return path


def make_scanned_pdf(path: Path) -> Path:
    """Pages with only a drawing on them: what a scan without OCR looks like to a text reader."""
    from fpdf import FPDF

    pdf = FPDF()
    for _ in range(2):
        pdf.add_page()
        pdf.rect(20, 20, 100, 60, style="F")
    pdf.output(str(path))
    return path


def make_docx(path: Path, sections: list[tuple[int, str, str]], title: str | None = None) -> Path:
    """`sections`: (heading level, heading, paragraph)."""
    import docx

    document = docx.Document()
    if title:
        document.core_properties.title = title
    for level, heading, paragraph in sections:
        document.add_heading(heading, level=level)
        document.add_paragraph(paragraph)
    table = document.add_table(rows=2, cols=2)
    table.cell(0, 0).text, table.cell(0, 1).text = "plan", "price"
    table.cell(1, 0).text, table.cell(1, 1).text = "basic", "10"
    document.save(str(path))
    return path


def make_pptx(path: Path, slides: list[tuple[str, str]]) -> Path:
    import pptx

    presentation = pptx.Presentation()
    layout = presentation.slide_layouts[1]  # title and content
    for title, body in slides:
        slide = presentation.slides.add_slide(layout)
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    presentation.save(str(path))
    return path


def make_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    import openpyxl

    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for name, rows in sheets.items():
        sheet = workbook.create_sheet(name)
        for row in rows:
            sheet.append(row)
    workbook.save(str(path))
    return path


def make_html(path: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    body = "".join(f"<h2>{h}</h2><p>{p}</p>" for h, p in sections)
    path.write_text(
        f"<html><head><title>{title}</title><style>p {{color: red}}</style></head>"
        f"<body><h1>{title}</h1>{body}<script>var x = 1;</script></body></html>",
        encoding="utf-8",
    )
    return path


def make_corrupt_zip(path: Path) -> Path:
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive" * 4)
    return path
