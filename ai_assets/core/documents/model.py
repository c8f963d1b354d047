"""What a source folder is read into: documents made of blocks, quarantined and skipped entries,
and the rules for source names.

A document is ordered *blocks*: spans of its text, each with the heading path it sits under
(``section``, ``" > "``-joined, "" before the first heading) and, for paged formats, its 1-based
``page``. Parsers produce ``ParsedDocument`` (blocks as text); ``assemble_document`` joins them
into one text with block offsets, which is what chunking cuts and what is hashed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from ai_assets.core.hashing import sha256_hex

SOURCE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SECTION_SEPARATOR = " > "
# Between two blocks of the assembled text: a paragraph break, the chunker's favourite place to cut.
BLOCK_SEPARATOR = "\n\n"


BlockKind = Literal["text", "table"]


class ParsedBlock(BaseModel):
    """A block as a parser found it: its text, heading path and page. A ``table`` block's text is
    a Markdown table (``table_text``): its first two lines are the header, each further line a row."""

    model_config = ConfigDict(frozen=True)

    text: str
    section: str = ""
    page: int | None = None
    kind: BlockKind = "text"
    ocr: bool = False  # read by OCR from a page image, not from a text layer


class ParsedDocument(BaseModel):
    """What a parser reads out of one file's bytes (no key, path or hash yet)."""

    title: str = ""
    blocks: list[ParsedBlock]
    # Fields of the file's own metadata (Markdown front matter, PDF/DOCX properties); never chunk text.
    metadata: dict[str, str] = {}
    pages: int | None = None  # page count of paged formats


class UnreadableDocument(ValueError):
    """A file that cannot be turned into a document; the message is the quarantine reason."""


class Block(BaseModel):
    """A span ``[start, end)`` of a document's text, with its heading path, page, kind and
    whether OCR read it."""

    model_config = ConfigDict(frozen=True)

    start: int
    end: int
    section: str = ""
    page: int | None = None
    kind: BlockKind = "text"
    ocr: bool = False


class Document(BaseModel):
    """One normalized document: the unit that is chunked and whose version is tracked."""

    model_config = ConfigDict(frozen=True)

    doc_key: str  # "<source>/<path>" for files, "<source>/<_id>" for corpus lines
    source: str
    path: str  # path of the file inside the source folder (POSIX)
    native_id: str | None = None  # the corpus `_id` for JSONL documents
    title: str
    text: str
    content_hash: str
    size_bytes: int
    mtime: float
    # Empty means one block over the whole text, without section or page (corpus lines, tests).
    blocks: list[Block] = []
    metadata: dict[str, str] = {}
    pages: int | None = None

    def structure(self) -> list[Block]:
        return self.blocks or [Block(start=0, end=len(self.text))]


class QuarantinedItem(BaseModel):
    """A file, or one line of a corpus file, that could not be turned into a document."""

    model_config = ConfigDict(frozen=True)

    source: str
    path: str
    line: int | None = None
    reason: str
    # The file version and limits a parser's verdict was reached with (``loading.verdict_key``):
    # while both stay, the file is not parsed again. None for verdicts that cost nothing to reach.
    verdict: str | None = None
    remembered: bool = False  # this ingest reused an earlier verdict instead of parsing the file

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


class SkippedFile(BaseModel):
    """An entry of a source folder that is not read, and why (an unsupported type, a special
    file, a dangling link; or, in a listing's ``quarantined``, a file that must not be read)."""

    model_config = ConfigDict(frozen=True)

    relative: str
    reason: str


class StaleDocument(BaseModel):
    """An indexed document whose file is unreadable now: its last good chunks are kept (``stale``)."""

    model_config = ConfigDict(frozen=True)

    doc_key: str
    path: str
    reason: str  # why its file is quarantined now
    since: str  # when an ingest first found it unreadable (ISO 8601, UTC)


class SourceLoad(BaseModel):
    """Everything read from one source folder."""

    source: str
    documents: list[Document]
    quarantined: list[QuarantinedItem]
    skipped: list[SkippedFile] = []  # entries not read on purpose, with the reason
    stale: list[StaleDocument] = []  # indexed documents unreadable now, whose last good chunks are kept
    parse_seconds: float = 0.0  # summed over files (parallel workers overlap: may exceed wall time)


class InvalidSourceName(ValueError):
    pass


def validate_source_name(name: str) -> str:
    """Source names become partition keys, table filters and folder names: keep them plain."""
    if not SOURCE_NAME_PATTERN.match(name):
        raise InvalidSourceName(
            f"invalid source name {name!r}: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return name


def content_hash(title: str, text: str, blocks: list[Block] | None = None, metadata: dict[str, str] | None = None) -> str:
    """The document version: title and text, plus the structure (a heading or page that moved
    changes what its chunks cite) and metadata where there are any."""
    parts = [title, text]
    if blocks:
        parts.append(json.dumps([[b.start, b.end, b.section, b.page] for b in blocks]))
    if metadata:
        parts.append(json.dumps(metadata, sort_keys=True))
    return sha256_hex(*parts)


TABLE_HEADER_LINES = 2  # a Markdown table's header row and its |---| line


def table_text(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table as Markdown, one line per row after the header (which every chunk of it repeats):
    a form the embedding model reads as text and an answer can quote."""
    width = max([len(header), *(len(row) for row in rows)])

    def line(cells: Sequence[str]) -> str:
        padded = [*cells, *[""] * (width - len(cells))]
        return "| " + " | ".join(" ".join(cell.split()).replace("|", "\\|") for cell in padded) + " |"

    return "\n".join([line(header), "|" + " --- |" * width, *(line(row) for row in rows)])


def table_block(
    header: Sequence[str], rows: Sequence[Sequence[str]], *, section: str = "", page: int | None = None
) -> ParsedBlock:
    return ParsedBlock(text=table_text(header, rows), section=section, page=page, kind="table")


def section_path(headings: list[str]) -> str:
    return SECTION_SEPARATOR.join(heading for heading in headings if heading)


def under_heading(headings: list[str], level: int, text: str) -> list[str]:
    """The heading path once a heading of ``level`` (1-based) starts: deeper headings end there, and
    a level the document skipped stays empty (left out of the section path)."""
    return [*headings[: level - 1], *[""] * (level - 1 - len(headings)), text]


class BlockCollector:
    """Paragraphs gathered under the current heading path into blocks: a heading, or a new page,
    ends the block before it. The heading's own text opens its block."""

    def __init__(self) -> None:
        self.blocks: list[ParsedBlock] = []
        self.headings: list[str] = []
        self.paragraphs: list[str] = []
        self.page: int | None = None

    def paragraph(self, text: str) -> None:
        if text.strip():
            self.paragraphs.append(text)

    def heading(self, level: int, text: str) -> None:
        self.end_block()
        self.headings = under_heading(self.headings, level, text)
        self.paragraphs = [text]

    def new_page(self, page: int | None) -> None:
        self.end_block()
        self.page = page

    def table(self, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
        """A table is a block of its own, under the current heading path."""
        self.end_block()
        self.blocks.append(table_block(header, rows, section=section_path(self.headings), page=self.page))

    def end_block(self) -> None:
        if self.paragraphs:
            self.blocks.append(ParsedBlock(text="\n\n".join(self.paragraphs), section=section_path(self.headings), page=self.page))
        self.paragraphs = []


def readable_file_title(stem: str) -> str:
    """A file name as a title when the file gives none: underscores read as spaces
    ("release_notes_2024" is "release notes 2024")."""
    return " ".join(stem.replace("_", " ").split()) or stem


def assemble_document(
    parsed: ParsedDocument, *, source: str, path: str, size_bytes: int, mtime: float, fallback_title: str
) -> Document:
    """Join a parser's blocks into one text with block offsets; raises ``UnreadableDocument``
    when no text is left."""
    parts: list[str] = []
    blocks: list[Block] = []
    position = 0
    for parsed_block in parsed.blocks:
        text = parsed_block.text.strip()
        if not text:
            continue
        if parts:
            parts.append(BLOCK_SEPARATOR)
            position += len(BLOCK_SEPARATOR)
        parts.append(text)
        blocks.append(
            Block(
                start=position, end=position + len(text), section=parsed_block.section, page=parsed_block.page,
                kind=parsed_block.kind, ocr=parsed_block.ocr,
            )
        )
        position += len(text)
    if not blocks:
        raise UnreadableDocument("no text after extraction")
    text = "".join(parts)
    title = " ".join(parsed.title.split()) or fallback_title
    return Document(
        doc_key=f"{source}/{path}",
        source=source,
        path=path,
        title=title,
        text=text,
        content_hash=content_hash(title, text, blocks, parsed.metadata),
        size_bytes=size_bytes,
        mtime=mtime,
        blocks=blocks,
        metadata=parsed.metadata,
        pages=parsed.pages,
    )
