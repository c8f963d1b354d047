"""Markdown as a terminal shows it: the words, without the marks.

Answers and passages are cut from the documents, many of them Markdown: `**Materialize**`,
`[the docs](https://...)` and `` `dg dev` `` read worse in a terminal than the words alone. The
stored text keeps them (the JSON output too); only what `ask` and `search` print is stripped.
"""

from __future__ import annotations

import re

# Order matters: images before links, bold before italics.
_MARKS = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # ![alt](src) -> alt
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](target) -> text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref] -> text
    (re.compile(r"<(https?://[^>\s]+)>"), r"\1"),  # <https://...> -> the address
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # **bold**, __bold__
    (re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])"), r"\1"),  # *italic*
    (re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])"), r"\1"),  # _italic_
    (re.compile(r"`([^`\n]+)`"), r"\1"),  # `code`
    (re.compile(r"^\s{0,3}#{1,6}\s+", re.MULTILINE), ""),  # heading marks
    (re.compile(r"^\s{0,3}>\s?", re.MULTILINE), ""),  # block quotes
]


def plain(markdown: str) -> str:
    """``markdown`` without its inline marks, link targets and heading marks."""
    text = markdown
    for pattern, replacement in _MARKS:
        text = pattern.sub(replacement, text)
    return text
