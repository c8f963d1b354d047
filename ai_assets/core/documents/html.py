"""Text and title of an HTML page."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    "p div br li ul ol h1 h2 h3 h4 h5 h6 tr table section article header footer pre blockquote "
    "dt dd hr".split()
)
_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg"})


class BrokenHtml(ValueError):
    """Markup that would silently lose or garble text if extracted as is."""


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title_parts: list[str] = []
        self.open_skipped: list[str] = []
        self._skip_depth = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.open_skipped.append(tag)
            self._skip_depth += 1
        elif tag == "title":
            self._in_title = True
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS and self._skip_depth:
            self._skip_depth -= 1
            self.open_skipped.pop()
        elif tag == "title":
            self._in_title = False
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self.title_parts.append(data)
        else:
            self.parts.append(data)


def html_to_text(html: str) -> tuple[str, str]:
    """(title, text) of an HTML page, tolerant of unclosed tags as browsers are.

    Raises BrokenHtml for markup that would hide or garble the rest of the page: a script or
    style element that is never closed, an unterminated comment or CDATA section.
    """
    extractor = _TextExtractor()
    extractor.feed(html)
    # What the parser could not finish stays buffered; close() would flush it as plain text.
    unfinished = extractor.rawdata.lstrip()
    if unfinished.startswith("<!--"):
        raise BrokenHtml("unterminated comment; the rest of the page would be read as text")
    if unfinished.startswith("<!["):
        raise BrokenHtml("unterminated CDATA section; the rest of the page would be read as text")
    extractor.close()
    if extractor.open_skipped:
        raise BrokenHtml(f"<{extractor.open_skipped[0]}> element is never closed; the rest of the page would be lost")
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    title = " ".join("".join(extractor.title_parts).split())
    return title, text
