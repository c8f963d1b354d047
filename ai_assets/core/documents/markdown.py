"""Markdown: YAML front matter as document metadata, headings (found by markdown-it-py, so a
``#`` inside a code block is not one) as sections. The text stays the file's own Markdown."""

from __future__ import annotations

import json
import re
from datetime import date, datetime

import yaml
from markdown_it import MarkdownIt

from ai_assets.core.documents.model import (
    ParsedBlock,
    ParsedDocument,
    UnreadableDocument,
    section_path,
    under_heading,
)
from ai_assets.core.documents.text import decode_text

# Front matter opens the file with a line of three dashes and closes with `---` or `...`.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)


def parse_markdown(raw: bytes) -> ParsedDocument:
    text = decode_text(raw)
    metadata, body = split_front_matter(text)
    had_front_matter = body is not text
    title = metadata.pop("title", "")
    lines = body.splitlines()
    blocks: list[ParsedBlock] = []
    headings: list[str] = []
    start = 0
    for line_number, level, heading in _headings(body):
        if line_number > start:
            blocks.append(ParsedBlock(text="\n".join(lines[start:line_number]), section=section_path(headings)))
        headings = under_heading(headings, level, heading)
        title = title or (heading if level == 1 else "")
        start = line_number
    blocks.append(ParsedBlock(text="\n".join(lines[start:]), section=section_path(headings)))
    if not any(block.text.strip() for block in blocks):
        raise UnreadableDocument("only front matter, no text" if had_front_matter else "empty file")
    return ParsedDocument(title=title, blocks=blocks, metadata=metadata)


def split_front_matter(text: str) -> tuple[dict[str, str], str]:
    """(metadata, the rest of the text); a front matter that is not a YAML mapping is an error."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        fields = yaml.safe_load(match.group(1))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise UnreadableDocument(f"invalid YAML front matter{where}: {getattr(error, 'problem', None) or error}") from None
    if fields is None:
        fields = {}
    if not isinstance(fields, dict):
        raise UnreadableDocument("front matter is not a YAML mapping of fields")
    # A front matter's lines are replaced by blank ones, so line numbers stay the file's.
    blank = "\n" * match.group(0).count("\n")
    return {str(key): _field_text(value) for key, value in fields.items()}, blank + text[match.end():]


def _field_text(value: object) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return json.dumps(value, default=str, ensure_ascii=False)


def _headings(body: str) -> list[tuple[int, int, str]]:
    """(first line, level, text) of every heading, ATX (`## x`) and setext (underlined) alike."""
    tokens = MarkdownIt("commonmark").parse(body)
    found = []
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.map is not None:
            found.append((token.map[0], int(token.tag[1]), _plain(tokens[index + 1])))
    return found


def _plain(inline) -> str:
    """A heading's words without Markdown marks (`code`, *emphasis*, [links](...)), as a reader sees them."""
    words = "".join(child.content for child in inline.children or [] if child.type in ("text", "code_inline"))
    return " ".join((words or inline.content).split())
