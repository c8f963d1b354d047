"""PDF from its text layer, page by page, through pypdfium2 (PDFium; bench/parsers.py compares it
with pypdf on the same files).

Each page's text is read as lines, and of each line a few characters' font size, font name and
position (PDFium's per-character API). From those:

- headings come from the outline (bookmarks) where the PDF has one, else from lines set clearly
  larger than the body text, or bold at body size; their sizes rank them into levels;
- running headers and footers (lines near the top or bottom edge that repeat on most pages,
  digits aside) and bare page numbers are dropped;
- lines are joined into paragraphs (a gap, a heading, a bullet or a font change ends one), words
  hyphenated across lines are joined, and monospaced lines (code) keep their line breaks.
"""

from __future__ import annotations

import ctypes
import re
from collections import Counter
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from ai_assets.core.documents.model import BlockCollector, ParsedBlock, ParsedDocument, UnreadableDocument
from ai_assets.core.documents.ocr import no_text_reason, ocr_metadata, read_scanned_pages, with_ocr_pages
from ai_assets.core.documents.pdf_tables import find_tables, place_tables, with_table_blocks

# Lines this close to the top or bottom edge (share of the page height) may be running furniture.
_EDGE = 0.08
# A bare page number ("12", "- 12 -", "xii", "12 / 40"), or a line ending in one ("Handbook - page 12").
_PAGE_NUMBER = re.compile(
    r"^\W*(?:page|p\.|seite|pagina)?\s*(?:\d+|[ivxlcdm]+)(?:\s*(?:of|/|von|de)\s*\d+)?\W*$"
    r"|^.{0,80}\b(?:page|p\.|seite|pagina)\s*\d+(?:\s*(?:of|/|von|de)\s*\d+)?\W*$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^(?:[\u2022\u25aa\u25cf\u2013\u2014*\-]|\d{1,3}[.)])\s")
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
_MONO_NAME = re.compile(r"courier|mono|consol|menlo|code|typewriter", re.IGNORECASE)
_FIXED_PITCH = 1  # PDF font descriptor flag
_FORCE_BOLD = 1 << 18
_HEADING_MAX_CHARS = 150
_HYPHENS = ("-", "\u00ad", "\u2010", "\x02")
_PARAGRAPH_GAP = 1.45  # baseline distance, in font sizes, beyond which a new paragraph starts
# Values PDF producers write when nobody filled the field in.
_PLACEHOLDERS = frozenset({"(anonymous)", "(unspecified)", "anonymous", "unspecified", "untitled", "unknown"})


@dataclass
class _Line:
    page: int  # 1-based
    text: str
    size: float
    bold: bool
    mono: bool
    baseline: float  # distance of the line's baseline from the page's top edge, in points
    left: float
    page_height: float
    heading_level: int = 0

    @property
    def furniture_key(self) -> tuple[str, float]:
        # A running title repeats in its own (small) size; the same words as a heading do not match it.
        return re.sub(r"\d+", "#", " ".join(self.text.lower().split())), self.size

    @property
    def near_edge(self) -> bool:
        return self.baseline < self.page_height * _EDGE or self.baseline > self.page_height * (1 - _EDGE)


def parse_pdf(raw: bytes, *, ocr: bool = True) -> ParsedDocument:
    _refuse_incomplete(raw)
    try:
        pdf = pdfium.PdfDocument(raw)
    except pdfium.PdfiumError as error:
        message = str(error)
        if "password" in message.lower():
            raise UnreadableDocument("encrypted PDF: it needs a password to be read") from None
        raise UnreadableDocument(f"not a readable PDF (corrupt or damaged): {message}") from None
    try:
        pages = len(pdf)
        if pages == 0:
            raise UnreadableDocument("PDF has no pages")
        lines = [line for index in range(pages) for line in _page_lines(pdf, index)]
        scanned = read_scanned_pages(pdf, lines) if ocr else []
        if not any(line.text.strip() for line in lines) and not any(page.paragraphs for page in scanned):
            raise UnreadableDocument(no_text_reason(pages, ocr))
        lines = _without_furniture(lines, pages)
        outline = [(level, title, page) for level, title, page in _outline(pdf) if title]
        _mark_headings(lines, outline)
        lines = _without_running_titles(lines)
        lines, tables = place_tables(lines, find_tables(pdf))
        metadata = {**_metadata(pdf), **ocr_metadata(scanned)}
    finally:
        pdf.close()
    title = metadata.pop("title", "") or next((line.text for line in lines if line.heading_level == 1), "")
    return ParsedDocument(title=title, blocks=with_ocr_pages(with_table_blocks(_blocks(lines), tables), scanned), metadata=metadata, pages=pages)


def _refuse_incomplete(raw: bytes) -> None:
    """PDFium rebuilds a damaged file as best it can, so a truncated one would be indexed short."""
    if b"%PDF-" not in raw[:1024]:
        raise UnreadableDocument("not a PDF file (no %PDF- header)")
    if b"%%EOF" not in raw[-4096:]:
        raise UnreadableDocument("truncated PDF: the file ends before its %%EOF marker")


def _page_lines(pdf: pdfium.PdfDocument, index: int) -> list[_Line]:
    try:
        page = pdf[index]
    except pdfium.PdfiumError as error:
        raise UnreadableDocument(f"page {index + 1} cannot be read: {error}") from None
    textpage = page.get_textpage()
    try:
        height = page.get_height()
        text = textpage.get_text_range()
        lines = []
        position = 0
        for raw_line in re.split(r"\r\n|\n|\r", text):
            start, end = position, position + len(raw_line)
            position = end + (2 if text[end : end + 2] == "\r\n" else 1)
            stripped = raw_line.strip()
            if not stripped:
                continue
            first = start + (len(raw_line) - len(raw_line.lstrip()))
            last = start + len(raw_line.rstrip()) - 1
            # PDFium marks a word it found hyphenated at a line end with U+FFFE and joins the
            # two lines itself: the word is whole once the mark goes.
            lines.append(_line_at(textpage, index + 1, stripped.replace("\ufffe", ""), first, last, height))
        return lines
    finally:
        textpage.close()
        page.close()


_NAME_BUFFER = 256


def _font(textpage: pdfium.PdfTextPage, char: int) -> tuple[str, int]:
    name = ctypes.create_string_buffer(_NAME_BUFFER)
    flags = ctypes.c_int(0)
    pdfium_raw.FPDFText_GetFontInfo(textpage, char, name, _NAME_BUFFER, ctypes.byref(flags))
    return name.value.decode("latin-1", "replace"), flags.value


def _line_at(textpage: pdfium.PdfTextPage, page: int, text: str, first: int, last: int, height: float) -> _Line:
    fonts = [_font(textpage, char) for char in {first, (first + last) // 2, last}]
    weights = [pdfium_raw.FPDFText_GetFontWeight(textpage, char) for char in (first, last)]
    bold = all(
        weight >= 600 or bool(_BOLD_NAME.search(name)) or bool(flags & _FORCE_BOLD)
        for (name, flags), weight in zip(fonts, [*weights, weights[-1]], strict=False)
    )
    mono = all(bool(_MONO_NAME.search(name)) or bool(flags & _FIXED_PITCH) for name, flags in fonts)
    x, y = ctypes.c_double(), ctypes.c_double()
    pdfium_raw.FPDFText_GetCharOrigin(textpage, first, x, y)
    size = round(float(pdfium_raw.FPDFText_GetFontSize(textpage, first)), 1)
    return _Line(
        page=page, text=text, size=size, bold=bold, mono=mono, baseline=height - y.value, left=x.value,
        page_height=height,
    )


def _without_furniture(lines: list[_Line], pages: int) -> list[_Line]:
    """Drop bare page numbers near an edge, and edge lines that repeat on most pages."""
    pages_with = Counter()
    for key in {(line.page, line.furniture_key) for line in lines if line.near_edge}:
        pages_with[key[1]] += 1
    repeated = {key for key, count in pages_with.items() if pages > 1 and count >= max(2, pages // 2)}
    return [
        line for line in lines
        if not (line.near_edge and (_PAGE_NUMBER.match(line.text) or line.furniture_key in repeated))
    ]


def _without_running_titles(lines: list[_Line]) -> list[_Line]:
    """Drop small lines at a page's top edge that repeat a heading (a running title), which a
    short document does not repeat often enough to be found as furniture."""
    headings = {_normalized(line.text) for line in lines if line.heading_level}
    sizes = [line.size for line in lines if line.heading_level]
    smallest_heading = min(sizes, default=0.0)
    return [
        line for line in lines
        if line.heading_level or not (
            line.baseline < line.page_height * _EDGE and line.size < smallest_heading and _normalized(line.text) in headings
        )
    ]


def _outline(pdf: pdfium.PdfDocument) -> list[tuple[int, str, int]]:
    """(level from 1, title, 1-based page) of every bookmark that points at a page."""
    entries = []
    for bookmark in pdf.get_toc(max_depth=6):
        destination = bookmark.get_dest()
        page_index = destination.get_index() if destination is not None else None
        if page_index is not None and page_index >= 0:
            entries.append((bookmark.level + 1, " ".join((bookmark.get_title() or "").split()), page_index + 1))
    return entries


def _normalized(text: str) -> str:
    return " ".join(re.sub(r"[^\w]+", " ", text.lower()).split())


def _mark_headings(lines: list[_Line], outline: list[tuple[int, str, int]]) -> None:
    if outline:
        _mark_outline_headings(lines, outline)
    else:
        _mark_styled_headings(lines)


def _mark_outline_headings(lines: list[_Line], outline: list[tuple[int, str, int]]) -> None:
    """A bookmark marks the first line of its page that starts its title; a title set over two
    lines marks the first."""
    taken: set[int] = set()
    for level, title, page in outline:
        wanted = _normalized(title)
        candidates = [
            number for number, line in enumerate(lines)
            if line.page == page and number not in taken and _matches_title(_normalized(line.text), wanted)
        ]
        if candidates:
            # The largest match, so a running header that repeats the title is not taken for it.
            chosen = max(candidates, key=lambda number: lines[number].size)
            lines[chosen].heading_level = min(level, 6)
            taken.add(chosen)


def _matches_title(found: str, wanted: str) -> bool:
    return bool(found) and (found == wanted or (wanted.startswith(found + " ") and len(found) > 3))


def _mark_styled_headings(lines: list[_Line]) -> None:
    """Headings by style: clearly larger than the body text, or bold at body size; short lines only."""
    weights = Counter()
    for line in lines:
        weights[(line.size, line.mono)] += len(line.text)
    body = max((size for (size, mono), _ in weights.most_common() if not mono), default=0.0, key=lambda size: weights[(size, False)])
    if not body:
        return
    styles = set()
    for line in lines:
        if _looks_like_heading(line, body):
            styles.add((line.size, line.bold))
    ranked = sorted(styles, key=lambda style: (-style[0], not style[1]))
    levels = {style: min(rank + 1, 6) for rank, style in enumerate(ranked)}
    for line in lines:
        if _looks_like_heading(line, body):
            line.heading_level = levels[(line.size, line.bold)]


def _looks_like_heading(line: _Line, body: float) -> bool:
    if line.mono or len(line.text) > _HEADING_MAX_CHARS or _BULLET.match(line.text):
        return False
    if not any(char.isalpha() for char in line.text):
        return False
    return line.size >= body * 1.15 or (line.bold and line.size >= body * 0.95)


class _Assembler(BlockCollector):
    """Lines into paragraphs (``lines`` gathers the current one), paragraphs into blocks of one
    section and one page."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.previous: _Line | None = None

    def end_paragraph(self) -> None:
        self.paragraph("".join(self.lines))
        self.lines = []

    def end_block(self) -> None:
        self.end_paragraph()
        super().end_block()

    def add(self, line: _Line) -> None:
        if line.page != self.page:
            carried = self._hyphenated_word_across_pages(line)
            self.new_page(line.page)
            if carried:
                line = _Line(**{**line.__dict__, "text": line.text[len(carried):].lstrip()})
                if not line.text:
                    return
        if line.heading_level and self._continues_heading(line):
            self.headings[-1] = f"{self.headings[-1]} {line.text}"
            self.paragraphs = [self.headings[-1]]
        elif line.heading_level:
            self.heading(line.heading_level, line.text)
        elif self._starts_paragraph(line):
            self.end_paragraph()
            self.lines = [line.text]
        elif line.mono:
            self.lines.append("\n" + line.text)
        elif self.lines and self.lines[-1].endswith(_HYPHENS) and line.text[:1].islower() and self.lines[-1][-2:-1].isalpha():
            self.lines[-1] = self.lines[-1][:-1]
            self.lines.append(line.text)
        else:
            self.lines.append(" " + line.text)
        self.previous = line

    def _continues_heading(self, line: _Line) -> bool:
        """A heading set over two lines: the same style right below the previous heading line."""
        previous = self.previous
        return (
            previous is not None and previous.heading_level == line.heading_level and previous.page == line.page
            and previous.size == line.size and not self.lines and len(self.paragraphs) == 1
            and line.baseline - previous.baseline <= _PARAGRAPH_GAP * line.size
        )

    def _starts_paragraph(self, line: _Line) -> bool:
        previous = self.previous
        if not self.lines or previous is None or previous.heading_level or previous.page != line.page:
            return True
        if previous.mono != line.mono or _BULLET.match(line.text):
            return True
        # Lines of a paragraph sit about 1.2-1.3 sizes apart; paragraph spacing adds to that.
        return line.baseline - previous.baseline > _PARAGRAPH_GAP * max(line.size, previous.size, 1.0)

    def _hyphenated_word_across_pages(self, line: _Line) -> str:
        """The first word of a page that ends a word hyphenated at the foot of the previous page."""
        if not self.lines or not self.lines[-1].endswith(_HYPHENS) or not line.text[:1].islower() or line.heading_level:
            return ""
        word = line.text.split()[0]
        self.lines[-1] = self.lines[-1][:-1] + word
        return word


def _blocks(lines: list[_Line]) -> list[ParsedBlock]:
    assembler = _Assembler()
    for line in lines:
        assembler.add(line)
    assembler.end_block()
    return assembler.blocks


_METADATA_FIELDS = {"Title": "title", "Author": "author", "Subject": "subject", "Keywords": "keywords", "CreationDate": "created"}


def _metadata(pdf: pdfium.PdfDocument) -> dict[str, str]:
    found = pdf.get_metadata_dict(skip_empty=True)
    values = {name: " ".join(str(found[key]).split()) for key, name in _METADATA_FIELDS.items() if found.get(key)}
    return {name: value for name, value in values.items() if value.lower() not in _PLACEHOLDERS}
