"""Tables of a PDF's text layer, ruled or not, found from where PDFium places its text.

A table is text set in columns: rows of short runs of text separated by wide gaps, the gaps of
consecutive rows lining up. This is read from PDFium's text rectangles (one per run of text on a
line, or per word in some PDFs), which the PDF reader has at hand, so finding tables costs 1-12
ms of CPU a page; pdfplumber's table finder, measured on the same papers, reads 1-9 pages per
CPU second, and its strategy for unruled tables takes every two-column page for a table
(bench/RESULTS.md). Rules (cell borders) are not needed and not read: a ruled table is aligned
like any other.

Found tables replace their lines in the page's text: ``place_tables`` puts one marker line where
the table's first line was, and ``with_table_blocks`` turns each marker into a table block (a
Markdown table, its first row the header) between the text before and after it.
"""

from __future__ import annotations

import ctypes
import dataclasses
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol, TypeVar

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_raw

from ai_assets.core.documents.model import ParsedBlock, table_block

_MIN_ROWS = 4  # a header and three rows (two are as often a figure's labels or a bibliography's columns)
_MIN_COLUMNS = 2
# A gap wider than this many line heights separates two cells; a narrower one is a word space.
_CELL_GAP = 1.0
# A run wider than this share of the page's text width is prose (a line of a column), not a cell.
_MAX_CELL_WIDTH = 0.3
# Rows further apart than this many line heights are not one table.
_MAX_ROW_GAP = 2.6
_MIN_FILLED = 0.6
_MAX_MEAN_CELL_CHARS = 40
_LOST_LETTERS = 0.01  # letters of the replaced lines a table may lack (a ligature, a symbol read apart)
_LIST_MARK = re.compile(r"^(?:(?:[\u2022\u25aa\u25cf\u25e6\u2013\u2014*\-]|\(?(?:\d{1,3}|[a-z])[.)])\s*)+$")
_DIGIT = re.compile(r"\d")
_LEADER = re.compile(r"(?:\.\s?){4,}")  # contents and index lines: "Introduction . . . . 3"
_MARKER = re.compile(r"\s*\ue000(\d+)\ue001\s*")


class _Run(NamedTuple):  # a tuple: a page holds a thousand of them, made in a loop
    left: float
    right: float
    top: float  # PDF coordinates: y grows upwards
    bottom: float

    @property
    def height(self) -> float:
        return max(self.top - self.bottom, 1.0)


@dataclass(frozen=True)
class PdfTable:
    """A table found on a page: its box (distances from the page's top edge) and its cells."""

    page: int  # 1-based
    left: float
    right: float
    top: float
    bottom: float
    rows: list[list[str]]  # the first is the header

    def holds(self, baseline: float, left: float) -> bool:
        return self.top - 2 <= baseline <= self.bottom + 2 and self.left - 2 <= left <= self.right


def find_tables(pdf: pdfium.PdfDocument) -> list[PdfTable]:
    tables: list[PdfTable] = []
    for index in range(len(pdf)):
        page = pdf[index]
        textpage = page.get_textpage()
        try:
            tables.extend(_page_tables(textpage, index + 1, page.get_height()))
        finally:
            textpage.close()
            page.close()
    return tables


def _page_tables(textpage: pdfium.PdfTextPage, page: int, height: float) -> list[PdfTable]:
    runs = _text_runs(textpage)
    if len(runs) < _MIN_ROWS * _MIN_COLUMNS:
        return []
    text_left = min(run.left for run in runs)
    text_width = max(run.right for run in runs) - text_left
    rows = [_cells(line) for line in _lines(runs)]
    tables = []
    for candidate in _candidate_tables(rows, text_left, text_width):
        columns = _column_bounds(candidate)
        cells = [[_text_in(textpage, cell) for cell in _columns_of(row, columns)] for row in candidate]
        cells = _merged_continuations(_without_empty_columns(cells))
        if _looks_tabular(cells):
            everything = [cell for row in candidate for cell in row]
            tables.append(PdfTable(
                page=page, left=min(c.left for c in everything), right=max(c.right for c in everything),
                top=height - max(c.top for c in everything), bottom=height - min(c.bottom for c in everything),
                rows=cells,
            ))
    return tables


def _text_runs(textpage: pdfium.PdfTextPage) -> list[_Run]:
    count = pdfium_raw.FPDFText_CountRects(textpage, 0, -1)
    left, top, right, bottom = (ctypes.c_double() for _ in range(4))
    runs = []
    for index in range(count):
        pdfium_raw.FPDFText_GetRect(textpage, index, left, top, right, bottom)
        if right.value > left.value:
            runs.append(_Run(left.value, right.value, top.value, bottom.value))
    return runs


def _lines(runs: list[_Run]) -> list[list[_Run]]:
    """Runs grouped into lines (vertical overlap), top to bottom, each left to right."""
    lines: list[list[_Run]] = []
    low = high = 0.0  # the current line's vertical extent
    for run in sorted(runs, key=lambda run: -run.top):
        middle = (run.top + run.bottom) / 2
        if lines and low <= middle <= high:
            lines[-1].append(run)
            low, high = min(low, run.bottom), max(high, run.top)
        else:
            lines.append([run])
            low, high = run.bottom, run.top
    return [sorted(line, key=lambda run: run.left) for line in lines]


def _cells(line: list[_Run]) -> list[_Run]:
    """A line's runs joined across word spaces: what is left are cells (or a line of prose)."""
    if len(line) == 1:
        return line
    cells = []
    left, right, top, bottom = line[0].left, line[0].right, line[0].top, line[0].bottom
    for run in line[1:]:
        if run.left - right < _CELL_GAP * max(top - bottom, run.top - run.bottom, 1.0):
            right, top, bottom = max(right, run.right), max(top, run.top), min(bottom, run.bottom)
        else:
            cells.append(_Run(left, right, top, bottom))
            left, right, top, bottom = run.left, run.right, run.top, run.bottom
    cells.append(_Run(left, right, top, bottom))
    return cells


def _row_cells(cells: list[_Run], text_left: float, text_width: float) -> list[_Run]:
    """The cells of a line that may be a table row: its longest stretch of narrow cells (prose
    is wide runs) with the wide cells on the same half of the page (a long last column); a wide
    run across the page's middle from them is the line of a neighbouring column, not part of
    the table. A line of prose has no cells."""
    best: list[int] = []
    current: list[int] = []
    for index, cell in enumerate(cells):
        if cell.right - cell.left <= _MAX_CELL_WIDTH * text_width:
            current.append(index)
            if len(current) > len(best):
                best = list(current)
        else:
            current = []
    if not best:
        return []
    middle = text_left + text_width / 2
    first, last = cells[best[0]], cells[best[-1]]
    if last.right <= middle:
        return [cell for cell in cells if cell.left < middle]
    if first.left >= middle:
        return [cell for cell in cells if cell.right > middle]
    return cells


def _candidate_tables(rows: list[list[_Run]], text_left: float, text_width: float) -> list[list[list[_Run]]]:
    """Runs of consecutive lines that have two cells or more, close together and overlapping
    horizontally; a line with one cell inside a table (a wrapped cell, an empty column) is kept."""
    tables: list[list[list[_Run]]] = []
    current: list[list[_Run]] = []
    middle = text_left + text_width / 2

    def close() -> None:
        while current and len(current[-1]) < _MIN_COLUMNS:
            current.pop()
        if sum(len(row) >= _MIN_COLUMNS for row in current) >= _MIN_ROWS:
            tables.append(list(current))
        current.clear()

    for row in rows:
        cells = _row_cells(row, text_left, text_width)
        if current:  # a table within one column of the page: not the other column's text beside it
            left, right = min(c.left for r in current for c in r), max(c.right for r in current for c in r)
            if right < middle:
                cells = [cell for cell in cells if cell.left < middle]
            elif left > middle:
                cells = [cell for cell in cells if cell.right > middle]
        if current and not _continues(current, cells):
            close()
        if len(cells) >= _MIN_COLUMNS or (current and len(cells) == 1):
            current.append(cells)
        else:
            close()
    close()
    return tables


def _continues(table: list[list[_Run]], cells: list[_Run]) -> bool:
    if not cells:
        return False
    last = table[-1]
    height = max(cell.height for cell in last)
    near = min(cell.bottom for cell in last) - max(cell.top for cell in cells) <= _MAX_ROW_GAP * height
    left, right = min(c.left for row in table for c in row), max(c.right for row in table for c in row)
    overlaps = min(c.left for c in cells) < right and max(c.right for c in cells) > left
    return near and overlaps


def _column_bounds(table: list[list[_Run]]) -> list[tuple[float, float]]:
    """Columns: the x ranges covered by some cell of the table, split where no cell covers x."""
    spans = sorted((cell.left, cell.right) for row in table for cell in row)
    columns = [list(spans[0])]
    for left, right in spans[1:]:
        if left <= columns[-1][1]:
            columns[-1][1] = max(columns[-1][1], right)
        else:
            columns.append([left, right])
    return [(left, right) for left, right in columns]


def _columns_of(row: list[_Run], columns: list[tuple[float, float]]) -> list[_Run | None]:
    """A row's cells placed in the table's columns (None where the row has no text)."""
    placed: list[_Run | None] = [None] * len(columns)
    for cell in row:
        middle = (cell.left + cell.right) / 2
        index = next((i for i, (left, right) in enumerate(columns) if left <= middle <= right), None)
        if index is not None:
            previous = placed[index]
            placed[index] = cell if previous is None else _Run(
                min(previous.left, cell.left), max(previous.right, cell.right),
                max(previous.top, cell.top), min(previous.bottom, cell.bottom),
            )
    return placed


def _text_in(textpage: pdfium.PdfTextPage, cell: _Run | None) -> str:
    if cell is None:
        return ""
    inset = min(1.0, cell.height / 4)  # not the neighbouring line's text touching the box
    text = textpage.get_text_bounded(cell.left, cell.bottom + inset, cell.right, cell.top - inset)
    return " ".join(text.replace("\ufffe", "").replace("\x02", "-").split())


def _without_empty_columns(rows: list[list[str]]) -> list[list[str]]:
    filled = [index for index in range(len(rows[0])) if any(row[index] for row in rows)]
    return [[row[index] for index in filled] for row in rows]


def _looks_tabular(rows: list[list[str]]) -> bool:
    """Rows that read as a table: a header and three rows or more, most cells filled and short
    (a figure's scattered labels leave cells empty; two columns of a bibliography are long),
    not a list whose markers stand apart."""
    if len(rows) < _MIN_ROWS or len(rows[0]) < _MIN_COLUMNS:
        return False
    if all(_LIST_MARK.match(row[0]) for row in rows):
        return False  # a list: its bullets or numbers are set apart from the items, not a column
    cells = [cell for row in rows[1:] for cell in row]
    filled = [cell for cell in cells if cell]
    if len(filled) < _MIN_FILLED * len(cells) or sum(map(len, filled)) > _MAX_MEAN_CELL_CHARS * len(filled):
        return False
    return not any(_LEADER.search(" ".join(row)) for row in rows)


def _merged_continuations(rows: list[list[str]]) -> list[list[str]]:
    """A row with an empty first cell continues the row above it (a cell wrapped onto a second line)."""
    merged: list[list[str]] = []
    for row in rows:
        if merged and not row[0] and any(row):
            merged[-1] = [" ".join(part for part in pair if part) for pair in zip(merged[-1], row, strict=True)]
        elif any(row):
            merged.append(row)
    if len(merged) >= 2 and sum(bool(cell) for cell in merged[0]) < _MIN_COLUMNS:
        return []  # no header to name the columns: not a table this reader can vouch for
    # A header set over two lines or more ("Table size" over "(TB)"): words above rows of figures.
    while len(merged) > _MIN_ROWS and not _DIGIT.search(" ".join(merged[1])) and _DIGIT.search(" ".join(merged[2])):
        merged[0:2] = [[" ".join(part for part in pair if part) for pair in zip(merged[0], merged[1], strict=True)]]
    return merged


class _PlacedLine(Protocol):
    page: int
    baseline: float
    left: float
    text: str
    mono: bool


LineT = TypeVar("LineT", bound=_PlacedLine)


def place_tables(lines: Sequence[LineT], tables: Sequence[PdfTable]) -> tuple[list[LineT], list[PdfTable]]:
    """The lines without those inside a table, and a marker line (``\\ue000N\\ue001``) where each
    table's first line was. A table none of whose lines is left (dropped as furniture or a
    contents page) is dropped too; one set mostly in a monospaced font (code) or whose cells lack
    text of its lines keeps its lines as they are. Returns the lines and the tables the markers
    number."""
    inside = [
        next((i for i, table in enumerate(tables) if table.page == line.page and table.holds(line.baseline, line.left)), None)
        for line in lines
    ]
    replaced: dict[int, list[LineT]] = {}
    for line, index in zip(lines, inside, strict=True):
        if index is not None:
            replaced.setdefault(index, []).append(line)
    left_as_text = {
        index for index, its_lines in replaced.items()
        if _mostly_mono(its_lines) or not _holds_words_of(tables[index], its_lines)
    }
    placed: list[LineT] = []
    kept: list[PdfTable] = []
    marked: set[int] = set()
    for line, index in zip(lines, inside, strict=True):
        if index is None or index in left_as_text:
            placed.append(line)
        elif index not in marked:
            marked.add(index)
            placed.append(dataclasses.replace(line, text=f"\ue000{len(kept)}\ue001", heading_level=0))  # type: ignore[type-var]
            kept.append(tables[index])
    return placed, kept


def _letters(text: str) -> Counter[str]:
    return Counter(char for char in text.lower() if char.isalnum())


def _holds_words_of(table: PdfTable, lines: Sequence[_PlacedLine]) -> bool:
    """Whether the table's cells hold the text of the lines it replaces, letter for letter (the
    lines join a word hyphenated in a cell, so words would not match): a table that would lose
    text (a cell this reader did not see) is left as the lines it was."""
    wanted = _letters(" ".join(line.text for line in lines))
    missing = wanted - _letters(" ".join(" ".join(row) for row in table.rows))
    return sum(missing.values()) <= _LOST_LETTERS * sum(wanted.values())


def _mostly_mono(lines: Sequence[_PlacedLine]) -> bool:
    return sum(line.mono for line in lines) * 2 > len(lines)


def with_table_blocks(blocks: Sequence[ParsedBlock], tables: Sequence[PdfTable]) -> list[ParsedBlock]:
    """Blocks with each table marker replaced by the table's block, the text around it kept."""
    result: list[ParsedBlock] = []
    for block in blocks:
        pieces = _MARKER.split(block.text)
        for position, piece in enumerate(pieces):
            if position % 2:
                rows = tables[int(piece)].rows
                result.append(table_block(rows[0], rows[1:], section=block.section, page=block.page))
            elif piece.strip():
                result.append(block.model_copy(update={"text": piece}))
    return result
