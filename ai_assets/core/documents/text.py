"""Plain text and reStructuredText: decoding, and rst section titles as headings."""

from __future__ import annotations

import re

from ai_assets.core.documents.model import (
    ParsedBlock,
    ParsedDocument,
    UnreadableDocument,
    section_path,
    under_heading,
)

# Characters reStructuredText accepts as section adornment.
_RST_ADORNMENT = re.compile(r"^([=\-~^*#+`:'\"_.!$%&,;<>?@\\|/])\1{2,}\s*$")


def decode_text(raw: bytes) -> str:
    """UTF-8 text of a file; raises ``UnreadableDocument`` when it is not a text document."""
    if not raw.strip():
        raise UnreadableDocument("empty file")
    if b"\x00" in raw:
        raise UnreadableDocument("binary file (contains NUL bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableDocument(f"not valid UTF-8: byte 0x{raw[error.start]:02x} at offset {error.start}") from None


def parse_plain_text(raw: bytes) -> ParsedDocument:
    return ParsedDocument(blocks=[ParsedBlock(text=decode_text(raw))])


def parse_rst(raw: bytes) -> ParsedDocument:
    """Sections from rst titles (a line underlined, or over- and underlined, by one repeated
    character); levels in the order the document first uses each adornment style, as rst does."""
    lines = decode_text(raw).splitlines()
    styles: list[tuple[str, bool]] = []
    headings: list[str] = []
    blocks: list[ParsedBlock] = []
    current: list[str] = []
    title = ""
    index = 0
    while index < len(lines):
        heading = _rst_title(lines, index)
        if heading is None:
            current.append(lines[index])
            index += 1
            continue
        text, style, consumed = heading
        if current:
            blocks.append(ParsedBlock(text="\n".join(current), section=section_path(headings)))
        if style not in styles:
            styles.append(style)
        headings = under_heading(headings, styles.index(style) + 1, text)
        title = title or text
        current = [text]
        index += consumed
    blocks.append(ParsedBlock(text="\n".join(current), section=section_path(headings)))
    return ParsedDocument(title=title, blocks=blocks)


def _rst_title(lines: list[str], index: int) -> tuple[str, tuple[str, bool], int] | None:
    """(title, adornment style, lines used) when a section title starts at ``index``."""
    line = lines[index]
    overline = _RST_ADORNMENT.match(line)
    if overline and index + 2 < len(lines) and lines[index + 1].strip():
        text, under = lines[index + 1].strip(), _RST_ADORNMENT.match(lines[index + 2])
        if under and under.group(1) == overline.group(1) and len(line.rstrip()) >= len(text):
            return text, (overline.group(1), True), 3
    if line.strip() and not line.startswith((" ", "\t")) and not overline and index + 1 < len(lines):
        under = _RST_ADORNMENT.match(lines[index + 1])
        if under and len(lines[index + 1].rstrip()) >= len(line.rstrip()):
            return line.strip(), (under.group(1), False), 2
    return None
