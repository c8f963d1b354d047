"""Word documents (.docx) through python-docx: paragraphs, list items and tables in body order.

Headings are paragraphs in a Heading (or Title) style, or with an outline level; in a document
that uses no such style, short paragraphs set entirely in bold or clearly larger than the body
text are taken as headings, ranked by size. Tables become table blocks: a Markdown table whose first row is the header.
Word has no fixed pages, but where the file records where its pages broke when it was last
laid out (Word writes these), blocks get those page numbers.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass

from ai_assets.core.documents.model import BlockCollector, ParsedDocument, UnreadableDocument

_HEADING_STYLE = re.compile(r"^(?:heading|überschrift|titre|título)\s*(\d)$", re.IGNORECASE)
_HEADING_MAX_CHARS = 150
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@dataclass
class _Paragraph:
    text: str
    style_level: int  # 1-9 from a Heading style or outline level, 0 for none
    bold: bool
    size: float | None  # points, where every run says
    listed: bool
    mono: bool
    page_breaks_before: int = 0  # pages Word started before this paragraph (rendered breaks)
    level: int = 0
    rows: list[list[str]] | None = None  # a table: its first row is the header


def parse_docx(raw: bytes) -> ParsedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if not zipfile.is_zipfile(io.BytesIO(raw)):
        raise UnreadableDocument("not a Word document: a .docx file is a zip archive, this is not one")
    try:
        document = docx.Document(io.BytesIO(raw))
    except (PackageNotFoundError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise UnreadableDocument(f"not a readable Word document: {error}") from None
    paragraphs = list(_body_paragraphs(document))
    _rank_headings(paragraphs)
    has_pages = any(paragraph.page_breaks_before for paragraph in paragraphs)
    collector = BlockCollector()
    collector.page = 1 if has_pages else None
    title = (document.core_properties.title or "").strip()
    for paragraph in paragraphs:
        if paragraph.page_breaks_before:
            collector.new_page((collector.page or 1) + paragraph.page_breaks_before)
        if paragraph.rows:
            collector.table(paragraph.rows[0], paragraph.rows[1:])
        elif paragraph.level:
            collector.heading(paragraph.level, paragraph.text)
            title = title or (paragraph.text if paragraph.level == 1 else "")
        else:
            collector.paragraph(f"- {paragraph.text}" if paragraph.listed else paragraph.text)
    collector.end_block()
    metadata = {
        name: value
        for name, value in (
            ("author", document.core_properties.author or ""),
            ("subject", document.core_properties.subject or ""),
            ("keywords", document.core_properties.keywords or ""),
        )
        if value.strip()
    }
    return ParsedDocument(title=title, blocks=collector.blocks, metadata=metadata, pages=collector.page)


def _body_paragraphs(document) -> list[_Paragraph]:
    """Paragraphs and table rows in the order of the body."""
    from docx.enum.style import WD_STYLE_TYPE
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    # python-docx looks a paragraph's style up by scanning every style, each time: look them up once.
    styles = {style.style_id: style for style in document.styles}
    default_style = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
    normal = default_style.font.size if default_style is not None else None
    default_size = normal.pt if normal else 11.0  # Word's own default when the style sets none
    found: list[_Paragraph] = []
    for element in document.element.body.iterchildren():
        if element.tag == f"{_W}p":
            style_id = element.style  # the w:pStyle value, None for the default style
            style = styles.get(style_id, default_style) if style_id else default_style
            paragraph = _paragraph(Paragraph(element, document), style, default_size)
            if paragraph is not None:
                found.append(paragraph)
        elif element.tag == f"{_W}tbl":
            rows = _table_rows(Table(element, document))
            if rows:
                text = " ".join(" ".join(row) for row in rows)
                found.append(_Paragraph(text=text, style_level=0, bold=False, size=None, listed=False, mono=False, rows=rows))
    return found


def _table_rows(table) -> list[list[str]]:
    """The table's non-empty rows, cell by grid column (a merged cell's text in each column it
    spans, so every row lines up with the header and reads whole on its own)."""
    rows = [[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows]
    return [row for row in rows if any(row)]


def _paragraph(paragraph, style, default_size: float) -> _Paragraph | None:
    text = paragraph.text.strip()
    breaks = len(paragraph.rendered_page_breaks) if hasattr(paragraph, "rendered_page_breaks") else 0
    if not text:
        return None
    style_name = style.name if style is not None else ""
    level = 0
    match = _HEADING_STYLE.match(style_name or "")
    if match:
        level = int(match.group(1))
    elif style_name == "Title":
        level = 1
    else:
        # python-docx has no public reader of a paragraph's outline level or numbering: its XML
        # element (`_p`, the documented way to reach what the API does not model) is read instead.
        outline = paragraph._p.find(f"{_W}pPr/{_W}outlineLvl")
        if outline is not None and (value := outline.get(f"{_W}val", "")).isdigit() and int(value) < 9:
            level = int(value) + 1
    runs = [run for run in paragraph.runs if run.text.strip()]
    bold = bool(runs) and all(run.bold or (run.bold is None and style is not None and style.font.bold) for run in runs)
    style_size = style.font.size.pt if style is not None and style.font.size else default_size
    sizes = {run.font.size.pt if run.font.size else style_size for run in runs}
    size = sizes.pop() if len(sizes) == 1 else None
    fonts = {run.font.name or "" for run in runs}
    mono = bool(fonts) and all(re.search(r"courier|mono|consol", font, re.IGNORECASE) for font in fonts)
    listed = paragraph._p.find(f"{_W}pPr/{_W}numPr") is not None or (style_name or "").startswith("List")
    return _Paragraph(
        text=text, style_level=level, bold=bold, size=size, listed=listed, mono=mono, page_breaks_before=breaks
    )


def _rank_headings(paragraphs: list[_Paragraph]) -> None:
    """Heading levels from styles; without any heading style, from bold or larger short paragraphs."""
    if any(paragraph.style_level for paragraph in paragraphs):
        for paragraph in paragraphs:
            paragraph.level = paragraph.style_level
        return
    sizes = Counter()
    for paragraph in paragraphs:
        if not paragraph.mono:  # code can outweigh prose, and is set smaller
            sizes[paragraph.size] += len(paragraph.text)
    body = next((size for size, _ in sizes.most_common() if size is not None), None) or 11.0

    def styled(paragraph: _Paragraph) -> bool:
        if paragraph.mono or paragraph.listed or len(paragraph.text) > _HEADING_MAX_CHARS:
            return False
        size = paragraph.size or body
        return size >= body * 1.15 or (paragraph.bold and size >= body * 0.95)

    ranked = sorted({(paragraph.size or body, paragraph.bold) for paragraph in paragraphs if styled(paragraph)},
                    key=lambda style: (-style[0], not style[1]))
    levels = {style: min(rank + 1, 6) for rank, style in enumerate(ranked)}
    for paragraph in paragraphs:
        if styled(paragraph):
            paragraph.level = levels[(paragraph.size or body, paragraph.bold)]
