"""PDF from its text layer, page by page, through pypdfium2 (PDFium; bench/parsers.py compares it
with pypdf on the same files, bench/real_documents.py measures it on real manuals and papers).

Each page's text is read as lines, and of each line a few characters' font size (as set on the
page: the text matrix's scale included), font name and position (PDFium's per-character API).
From those:

- running headers and footers (edge lines that repeat on several pages, digits aside, or that hold
  the page number), bare page numbers, and the entries of contents and index pages are dropped;
- headings come from the outline (bookmarks) where the PDF has one, else from short lines that
  read as headings and are set clearly larger than the body text, or bold at body size; numbered
  headings nest by their numbers, others by size (pdf_heuristics.py has the text-only rules);
- lines are joined into paragraphs: a line, column or page end inside a sentence joins, while a
  gap wider than the line pitch, a size change, a first-line indent, a heading, a bullet or code
  ends one; hyphenated words are joined, identifiers cut at ``_`` or ``-`` kept whole, and
  monospaced lines (code) keep their line breaks.
"""

from __future__ import annotations

import ctypes
import re
import statistics
from collections import Counter
from dataclasses import dataclass

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from ai_assets.core.documents.model import BlockCollector, ParsedBlock, ParsedDocument, UnreadableDocument
from ai_assets.core.documents.ocr import no_text_reason, ocr_metadata, read_scanned_pages, with_ocr_pages
from ai_assets.core.documents.pdf_heuristics import (
    continues_sentence,
    could_be_heading,
    could_be_title,
    ends_sentence,
    heading_number,
    is_contents_line,
    is_meaningful_title,
    join_lines,
    resolve_soft_hyphens,
)
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
_BOLD_NAME = re.compile(r"bold|black|heavy|semibold|demi|medi\b", re.IGNORECASE)
_MONO_NAME = re.compile(r"courier|mono|consol|menlo|code|typewriter", re.IGNORECASE)
_FIXED_PITCH = 1  # PDF font descriptor flag
_FORCE_BOLD = 1 << 18
_HEADING_MAX_CHARS = 150
_PARAGRAPH_GAP = 1.45  # baseline distance, in font sizes, beyond which a new paragraph starts
_HEADING_NUMBER_PREFIX = re.compile(r"^(?:\d+(?:\.\d+)*|[A-Z](?:\.\d+)+)\.?\s+")
_CONTENTS_TITLE = re.compile(
    r"^(?:(?:table of )?contents|list of (?:figures|tables|listings)|(?:\w+ )*index( of \w+)?|figures|tables)$", re.IGNORECASE
)
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
        lines = _without_contents(_without_furniture(lines, pages), pages)
        outline = [(level, title, page) for level, title, page in _outline(pdf) if title]
        lines = _mark_headings(lines, outline)
        lines = _without_running_titles(lines)
        lines, tables = place_tables(lines, find_tables(pdf))
        metadata = {**_metadata(pdf), **ocr_metadata(scanned)}
    finally:
        pdf.close()
    title = metadata.pop("title", "")
    if not is_meaningful_title(title):
        title = _first_page_title(lines) or next((line.text for line in lines if line.heading_level == 1), "")
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
            lines.append(_line_at(textpage, index + 1, resolve_soft_hyphens(stripped), first, last, height))
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
    # The font size is set in text space: TeX and Word often set 1 and scale the text matrix to 9 pt.
    matrix = pdfium_raw.FS_MATRIX()
    pdfium_raw.FPDFText_GetMatrix(textpage, first, matrix)
    scale = abs(matrix.a * matrix.d - matrix.b * matrix.c) ** 0.5 or 1.0
    size = round(float(pdfium_raw.FPDFText_GetFontSize(textpage, first)) * scale, 1)
    return _Line(
        page=page, text=text, size=size, bold=bold, mono=mono, baseline=height - y.value, left=x.value,
        page_height=height,
    )


def _without_furniture(lines: list[_Line], pages: int) -> list[_Line]:
    """Drop edge lines that are furniture: bare page numbers; lines that repeat, digits aside, at
    the edge of several pages (a running title, also one that changes per chapter, since it repeats
    on its chapter's pages); and lines that hold the page number, found as the number at a line's
    start or end that is the page's index plus the same offset on many pages (the running header of
    an odd or an even page, "Chapter 4: Ordered and unordered factors 19")."""
    edge = [line for line in lines if line.near_edge]
    pages_with = Counter(key for _, key in {(line.page, line.furniture_key) for line in edge})
    repeats = min(3, max(2, pages // 2))
    repeated = {key for key, count in pages_with.items() if pages > 1 and count >= repeats}
    offset = _page_number_offset(edge, pages)
    return [
        line for line in lines
        if not (line.near_edge and (
            _PAGE_NUMBER.match(line.text) or line.furniture_key in repeated or offset in _page_offsets(line)
        ))
    ]


def _page_offsets(line: _Line) -> set[int]:
    """Printed number minus page index, of a number at the line's start or end."""
    words = line.text.split()
    return {int(word) - line.page for word in {words[0], words[-1]} if word.isdigit() and len(word) <= 4}


def _page_number_offset(edge: list[_Line], pages: int) -> int | None:
    """The offset of printed page numbers to page indexes, when a quarter of the pages show one."""
    pages_with = Counter(offset for _, offset in {(line.page, offset) for line in edge for offset in _page_offsets(line)})
    if not pages_with:
        return None
    offset, count = pages_with.most_common(1)[0]
    return offset if pages > 2 and count >= max(2, pages // 4) else None


def _with_page_number(lines: list[_Line], number: int) -> str:
    """A line's text, with the page number PDFium read as a line of its own on the same baseline."""
    line = lines[number]
    after = lines[number + 1] if number + 1 < len(lines) else None
    if after is not None and after.page == line.page and abs(after.baseline - line.baseline) < 1 and after.text.isdigit():
        return f"{line.text} {after.text}"
    return line.text


def _without_contents(lines: list[_Line], pages: int) -> list[_Line]:
    """Drop table-of-contents, list-of-figures and index entries: on a page where they are many,
    every line from the first entry to the last (an entry wrapped over two lines, an index's
    letter headings), and the page's title line above them ("Contents", "Index")."""
    dropped: set[int] = set()
    by_page: dict[int, list[int]] = {}
    for number, line in enumerate(lines):
        by_page.setdefault(line.page, []).append(number)
    for numbers in by_page.values():
        entries = [number for number in numbers if is_contents_line(_with_page_number(lines, number), pages)]
        if len(entries) >= 5 and len(entries) >= 0.4 * len(numbers):
            last = entries[-1] + (_with_page_number(lines, entries[-1]) != lines[entries[-1]].text)
            dropped.update(range(entries[0], last + 1))
            before = [number for number in numbers if number < entries[0]]
            if before and _CONTENTS_TITLE.match(lines[before[-1]].text):
                dropped.add(before[-1])
    return [line for number, line in enumerate(lines) if number not in dropped]


def _without_running_titles(lines: list[_Line]) -> list[_Line]:
    """Drop small lines at a page's top edge that repeat a heading (a running title), which a
    short document does not repeat often enough to be found as furniture."""
    headings = {_normalized(line.text) for line in lines if line.heading_level}
    sizes = [line.size for line in lines if line.heading_level and line.size]
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


def _mark_headings(lines: list[_Line], outline: list[tuple[int, str, int]]) -> list[_Line]:
    if outline:
        return _mark_outline_headings(lines, outline)
    _mark_styled_headings(lines)
    return lines


def _mark_outline_headings(lines: list[_Line], outline: list[tuple[int, str, int]]) -> list[_Line]:
    """A bookmark marks the first line of its page that starts its title; a title set over two
    lines marks the first. A bookmark whose title is not on its page (set in pieces, or as an
    image) opens its section at the top of that page, so no part of the document is left without one."""
    taken: set[int] = set()
    unmatched: dict[int, list[_Line]] = {}
    on_page: dict[int, list[int]] = {}
    for number, line in enumerate(lines):
        on_page.setdefault(line.page, []).append(number)
    for level, title, page in outline:
        wanted = _title_key(title)
        candidates = [
            number for number in on_page.get(page, [])
            if number not in taken and _matches_title(_title_key(lines[number].text), wanted)
        ]
        if candidates:
            # The largest match, so a running header that repeats the title is not taken for it.
            chosen = max(candidates, key=lambda number: lines[number].size)
            lines[chosen].heading_level = min(level, 6)
            taken.add(chosen)
        else:
            unmatched.setdefault(page, []).append(
                _Line(page=page, text=title, size=0.0, bold=True, mono=False, baseline=0.0, left=0.0, page_height=1.0,
                      heading_level=min(level, 6))
            )
    if not unmatched:
        return lines
    placed: list[_Line] = []
    for line in lines:
        placed.extend(unmatched.pop(line.page, []))
        placed.append(line)
    return placed + [line for page in sorted(unmatched) for line in unmatched[page]]


def _title_key(text: str) -> str:
    """A heading's words without its number: a bookmark "Insertions" names the line "2.8 Insertions"."""
    return _normalized(_HEADING_NUMBER_PREFIX.sub("", text.strip()))


def _matches_title(found: str, wanted: str) -> bool:
    return bool(found) and (found == wanted or (wanted.startswith(found + " ") and len(found) > 3))


def _mark_styled_headings(lines: list[_Line]) -> None:
    """Headings by style: clearly larger than the body text, or bold at body size; short lines
    that read as a heading only. A numbered heading's depth is its number's ("4.2.8" is 3); other
    headings take the depth of numbered ones set in their style, else their style's rank by size.
    A heading is followed by text or by another heading (a figure's axis label is followed by
    numbers); in a document with numbered headings, the first page's styled lines before the first
    section (authors, affiliations) are not headings, its title aside."""
    body, body_bold = _body_style(lines)
    if not body:
        return
    candidates = {number for number, line in enumerate(lines) if _looks_like_heading(line, body, body_bold)}
    headings = [lines[number] for number in sorted(candidates) if _followed_by_text(lines, number, candidates)]
    numbered_depths: dict[tuple[float, bool], int] = {}
    for line in headings:
        number = heading_number(line.text)
        if number:
            style = (line.size, line.bold)
            numbered_depths[style] = min(numbered_depths.get(style, number[1]), number[1])
    if numbered_depths:
        headings = _without_front_matter(headings)
    largest_numbered = max((size for size, _ in numbered_depths), default=0.0)
    ranked = sorted({(line.size, line.bold) for line in headings}, key=lambda style: (-style[0], not style[1]))
    for line in headings:
        style = (line.size, line.bold)
        number = heading_number(line.text)
        if number:
            level = number[1]
        elif style in numbered_depths:
            level = numbered_depths[style]
        elif numbered_depths and line.size > largest_numbered:
            level = 1  # above the numbered sections: the title
        else:
            level = ranked.index(style) + 1
        line.heading_level = min(level, 6)


def _followed_by_text(lines: list[_Line], number: int, headings: set[int]) -> bool:
    after = number + 1
    if after >= len(lines) or after in headings:
        return True
    return any(sum(char.isalpha() for char in word) >= 2 for word in lines[after].text.split())


_SECTION_OPENERS = frozenset({"abstract", "introduction", "summary", "preface", "contents", "overview", "foreword"})


def _without_front_matter(headings: list[_Line]) -> list[_Line]:
    """The headings without the first page's styled lines that follow its title and come before
    its first section (numbered, or an abstract or introduction)."""
    if not headings:
        return headings
    title = headings[0]
    kept = [title]
    in_front = True
    for line in headings[1:]:
        if in_front and (line.page != title.page or heading_number(line.text) or _normalized(line.text) in _SECTION_OPENERS):
            in_front = False
        if not in_front or line.size == title.size:
            kept.append(line)
    return kept


def _body_style(lines: list[_Line]) -> tuple[float, bool]:
    """The size and weight most of the (not monospaced) text is set in (some PDFs mark it all bold)."""
    weights: Counter[tuple[float, bool]] = Counter()
    for line in lines:
        if not line.mono:
            weights[(line.size, line.bold)] += len(line.text)
    return weights.most_common(1)[0][0] if weights else (0.0, False)


def _looks_like_heading(line: _Line, body: float, body_bold: bool) -> bool:
    styled = line.size >= body * 1.15 or (line.bold and not body_bold and line.size >= body * 0.95)
    if not styled or line.mono or len(line.text) > _HEADING_MAX_CHARS or not could_be_heading(line.text):
        return False
    return not _BULLET.match(line.text) or heading_number(line.text) is not None


def _first_page_title(lines: list[_Line]) -> str:
    """The largest text of the first page with text that reads as a title (not a caption, a formula
    or a number), its lines joined when it is set over several."""
    if not lines:
        return ""
    first = [line for line in lines if line.page == lines[0].page]
    candidates = [line for line in first if could_be_title(line.text)]
    if not candidates:
        return ""
    size = max(line.size for line in candidates)
    if size <= _body_style(lines)[0]:
        return ""
    start = next(number for number, line in enumerate(first) if line.size == size and could_be_title(line.text))
    parts = [first[start].text]
    for previous, line in zip(first[start:], first[start + 1 :], strict=False):
        if line.size != size or line.baseline - previous.baseline > 2 * size:
            break
        parts.append(line.text)
    return " ".join(parts)


class _Assembler(BlockCollector):
    """Lines into paragraphs (``lines`` gathers the current one), paragraphs into blocks of one
    section and one page. A paragraph belongs to the page it starts on: a sentence carried over a
    column or page end stays whole, in the block of the page where it starts."""

    def __init__(self, paragraph_gap: float) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.previous: _Line | None = None
        self.paragraph_gap = paragraph_gap

    def end_paragraph(self) -> None:
        self.paragraph("".join(self.lines))
        self.lines = []

    def end_block(self) -> None:
        self.end_paragraph()
        super().end_block()

    def add(self, line: _Line) -> None:
        starts = bool(line.heading_level) or self._starts_paragraph(line)
        if line.page != self.page and starts:
            self.new_page(line.page)
        if line.heading_level and self._continues_heading(line):
            self.headings[-1] = f"{self.headings[-1]} {line.text}"
            self.paragraphs = [self.headings[-1]]
        elif line.heading_level:
            self.heading(line.heading_level, line.text)
        elif starts:
            self.end_paragraph()
            self.lines = [line.text]
        elif line.mono and self.previous is not None and self.previous.mono:
            self.lines.append("\n" + line.text)
        else:
            self.lines[-1] = join_lines(self.lines[-1], line.text)
        self.previous = line

    def _continues_heading(self, line: _Line) -> bool:
        """A heading set over two lines: the same style right below the previous heading line."""
        previous = self.previous
        return (
            previous is not None and previous.heading_level and previous.page == line.page
            and previous.size == line.size and not self.lines and len(self.paragraphs) == 1
            and 0 < line.baseline - previous.baseline <= _PARAGRAPH_GAP * line.size
            and heading_number(line.text) is None
        )

    def _starts_paragraph(self, line: _Line) -> bool:
        previous = self.previous
        if not self.lines or previous is None or previous.heading_level:
            return True
        if _BULLET.match(line.text):
            return True
        size = max(line.size, previous.size, 1.0)
        if previous.mono != line.mono:
            # Code in a sentence ("see the file" / "rl_settings.py which ..."), not a code block.
            return not (
                continues_sentence(previous.text, line.text) and line.size == previous.size and abs(line.left - previous.left) < size
            )
        gap = line.baseline - previous.baseline
        if line.mono:
            return previous.page != line.page or gap > self.paragraph_gap * size
        if continues_sentence(previous.text, line.text):
            return False  # a line, column or page end inside a sentence
        if previous.page != line.page or gap < -size:
            return True  # the next page or column, after a sentence's end
        if gap > self.paragraph_gap * size or abs(line.size - previous.size) > 0.15 * size:
            return True
        # A first line indented after a line that ended a sentence (papers set no space between paragraphs).
        indent = line.left - previous.left
        return ends_sentence(previous.text) and 0.8 * size < indent < 5 * size and line.text[:1].isupper()


def _paragraph_gap(lines: list[_Line]) -> float:
    """The baseline distance, in font sizes, beyond which a new paragraph starts: the usual one, or
    a little more than the document's own line pitch where its lines are set wider apart."""
    pitches = [
        (line.baseline - previous.baseline) / line.size
        for previous, line in zip(lines, lines[1:], strict=False)
        if previous.page == line.page and line.size == previous.size and line.size > 0
        and 0 < line.baseline - previous.baseline < 3 * line.size
    ]
    if not pitches:
        return _PARAGRAPH_GAP
    return max(_PARAGRAPH_GAP, statistics.median(pitches) * 1.2)


def _blocks(lines: list[_Line]) -> list[ParsedBlock]:
    assembler = _Assembler(_paragraph_gap(lines))
    for line in lines:
        assembler.add(line)
    assembler.end_block()
    return assembler.blocks


_METADATA_FIELDS = {"Title": "title", "Author": "author", "Subject": "subject", "Keywords": "keywords", "CreationDate": "created"}


def _metadata(pdf: pdfium.PdfDocument) -> dict[str, str]:
    found = pdf.get_metadata_dict(skip_empty=True)
    values = {name: " ".join(str(found[key]).split()) for key, name in _METADATA_FIELDS.items() if found.get(key)}
    return {name: value for name, value in values.items() if value.lower() not in _PLACEHOLDERS}
