"""Real PDF, DOCX and PPTX files written by reportlab, python-docx and python-pptx, for the tests."""

from __future__ import annotations

import io
from collections.abc import Sequence

# One line of a PDF page: ("h1" | "h2" | "h3" | "body" | "code", text).
PdfLine = tuple[str, str]
_PDF_FONTS = {"h1": ("Helvetica-Bold", 18), "h2": ("Helvetica-Bold", 14), "h3": ("Helvetica-Bold", 12),
              "body": ("Helvetica", 10), "code": ("Courier", 9)}


def pdf_bytes(
    pages: Sequence[Sequence[PdfLine]],
    *,
    footer: str | None = "Handbook - page {page}",
    header: str | None = None,
    outline: bool = False,
    password: str | None = None,
    title: str | None = None,
) -> bytes:
    """A PDF whose pages hold exactly the given lines, top to bottom (a blank line between paragraphs:
    ("body", "")), with a running header and footer; headings bookmarked when ``outline``."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    encrypt = None
    if password:
        from reportlab.lib import pdfencrypt

        encrypt = pdfencrypt.StandardEncryption(password, canPrint=0)
    pdf = canvas.Canvas(buffer, pagesize=A4, encrypt=encrypt)
    if title:
        pdf.setTitle(title)
    width, height = A4
    for number, lines in enumerate(pages, start=1):
        if header:
            pdf.setFont("Helvetica", 8)
            pdf.drawString(50, height - 30, header.format(page=number))
        y = height - 70
        for kind, text in lines:
            font, size = _PDF_FONTS[kind]
            if not text:
                y -= size * 0.8
                continue
            if kind.startswith("h"):
                y -= size * 0.6
                if outline:
                    key = f"p{number}-{y:.0f}"
                    pdf.bookmarkHorizontal(key, 50, y + size)
                    pdf.addOutlineEntry(text, key, level=int(kind[1]) - 1)
            pdf.setFont(font, size)
            pdf.drawString(50, y, text)
            y -= size * 1.3
        if footer:
            pdf.setFont("Helvetica", 8)
            pdf.drawCentredString(width / 2, 25, footer.format(page=number))
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


# A page of a laid-out PDF: its running header (or None), then its columns, each a list of lines.
LayoutPage = tuple[str | None, Sequence[Sequence[PdfLine]]]
_LAYOUT_FONTS = {**_PDF_FONTS, "bold": ("Helvetica-Bold", 10), "caption": ("Helvetica-Bold", 9), "formula": ("Times-Italic", 13),
                 "contents": ("Helvetica", 10)}


def layout_pdf_bytes(pages: Sequence[LayoutPage], *, title: str | None = None) -> bytes:
    """A PDF laid out as papers and manuals are: each page's columns side by side (one or two),
    lines 12 pt apart in a column (a blank line: ("body", "")), a running header at the top edge,
    and a ("contents", "Title|12") line drawn as a contents entry with dot leaders."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    if title:
        pdf.setTitle(title)
    width, height = A4
    for header, columns in pages:
        if header:
            pdf.setFont("Helvetica", 8)
            pdf.drawString(50, height - 30, header)
        column_width = (width - 100) / len(columns)
        for index, lines in enumerate(columns):
            x, y = 50 + index * column_width, height - 70
            for kind, text in lines:
                font, size = _LAYOUT_FONTS[kind]
                if not text:
                    y -= 6
                    continue
                pdf.setFont(font, size)
                if kind == "contents":
                    entry, page = text.split("|")
                    pdf.drawString(x, y, f"{entry} {'. ' * 30}")
                    pdf.drawRightString(x + column_width - 20, y, page)
                else:
                    pdf.drawString(x, y, text)
                y -= 12 if size <= 10 else size * 1.4
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def pdf_table_bytes(
    rows: Sequence[Sequence[str]], *, ruled: bool, before: str, after: str, column_width: float = 130, bold_header: bool = True
) -> bytes:
    """A one-page PDF: a paragraph, a table (its first row the header, in bold) and a paragraph;
    ``ruled`` draws the grid of cell borders, else the cells are only aligned in columns."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    width, height = A4
    pdf.setFont("Helvetica", 10)
    pdf.drawString(50, height - 70, before)
    columns = [50 + column_width * index for index in range(len(rows[0]) + 1)]
    top, row_height = height - 90, 16
    for number, row in enumerate(rows):
        pdf.setFont("Helvetica-Bold" if number == 0 and bold_header else "Helvetica", 10)
        for x, cell in zip(columns, row, strict=False):
            pdf.drawString(x + 4, top - row_height * (number + 1) + 5, cell)
    bottom = top - row_height * len(rows)
    if ruled:
        pdf.grid(columns, [top - row_height * number for number in range(len(rows) + 1)])
    pdf.setFont("Helvetica", 10)
    pdf.drawString(50, bottom - 30, after)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def scanned_text_pdf_bytes(lines: Sequence[str]) -> bytes:
    """A PDF page that is only a picture of the given lines of text (a scan without a text layer),
    small so that OCR reads it fast: a 5 x 1.6 inch page at 150 dpi, DejaVu Sans as a 12 pt font."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    dpi, width, height = 150, 5 * 72, 1.6 * 72
    image = Image.new("L", (int(width * dpi / 72), int(height * dpi / 72)), 255)
    draw = ImageDraw.Draw(image)
    font = ImageFont.truetype("DejaVuSans.ttf", 12 * dpi // 72)
    for number, line in enumerate(lines):
        draw.text((30, 30 + number * 40), line, fill=0, font=font)
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height))
    pdf.drawImage(ImageReader(image), 0, 0, width, height)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def scanned_pdf_bytes(pages: int = 2) -> bytes:
    """A PDF of drawings only: what a scan without OCR looks like to a text extractor."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4)
    for _ in range(pages):
        for row in range(40):
            pdf.rect(50, 100 + row * 15, 400 - row * 5, 8, fill=1)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


# A DOCX paragraph: ("h1".."h3" | "body" | "item" | "code" | "table", text); a table's cells are " | "-separated rows joined by "\n".
DocxPart = tuple[str, str]


def docx_bytes(parts: Sequence[DocxPart], *, heading_styles: bool = True, new_pages: Sequence[int] = ()) -> bytes:
    """A Word document; headings as Heading styles, or (``heading_styles=False``) as bold, larger runs.
    ``new_pages``: indexes of parts that Word's own layout put at the top of a new page."""
    import docx
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt

    document = docx.Document()
    sizes = {"h1": 20, "h2": 16, "h3": 13}
    for index, (kind, text) in enumerate(parts):
        if kind in sizes:
            if heading_styles:
                paragraph = document.add_heading(text, level=int(kind[1]))
            else:
                paragraph = document.add_paragraph()
                run = paragraph.add_run(text)
                run.bold, run.font.size = True, Pt(sizes[kind])
        elif kind == "item":
            paragraph = document.add_paragraph(text, style="List Bullet")
        elif kind == "code":
            paragraph = document.add_paragraph()
            run = paragraph.add_run(text)
            run.font.name = "Courier New"
        elif kind == "table":
            rows = [row.split(" | ") for row in text.split("\n")]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for cells, row in zip(rows, table.rows, strict=True):
                for value, cell in zip(cells, row.cells, strict=True):
                    cell.text = value
            continue
        else:
            paragraph = document.add_paragraph(text)
        if index in new_pages:
            # What Word records where its layout started a new page (w:lastRenderedPageBreak).
            marker = OxmlElement("w:r")
            marker.append(OxmlElement("w:lastRenderedPageBreak"))
            paragraph._p.find(qn("w:r")).addprevious(marker)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def pptx_bytes(slides: Sequence[tuple[str, str]]) -> bytes:
    """A deck of (title, body) slides."""
    from pptx import Presentation

    deck = Presentation()
    for title, body in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = title
        slide.placeholders[1].text = body
    buffer = io.BytesIO()
    deck.save(buffer)
    return buffer.getvalue()


def zip_bomb_docx(unpacked_bytes: int) -> bytes:
    """A real Word document plus one part of zeros that unpacks to ``unpacked_bytes`` (MB multiples)."""
    import zipfile

    buffer = io.BytesIO(docx_bytes([("h1", "Bomb"), ("body", "Small outside.")]))
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("word/media/zeros.bin", "w", force_zip64=True) as part:
            block = bytes(1 << 20)
            for _ in range(unpacked_bytes >> 20):
                part.write(block)
    return buffer.getvalue()


def rewritten_docx(marker: bytes, replacement: bytes, doctype: bytes = b"") -> bytes:
    """A Word document of one paragraph "Before MARK after." whose body XML has MARK replaced
    by raw XML (and a DOCTYPE declared before its root, if given)."""
    import zipfile

    original = zipfile.ZipFile(io.BytesIO(docx_bytes([("body", "Before MARK after.")])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for member in original.infolist():
            data = original.read(member)
            if member.filename == "word/document.xml":
                head, _, body = data.partition(b"?>")
                data = head + b"?>" + doctype + body.replace(marker, replacement)
            archive.writestr(member, data)
    return buffer.getvalue()
