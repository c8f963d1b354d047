"""Which files are documents, and which parser reads each format.

Parsers take a file's bytes (never a path: the same parser serves a local file and an object
from a store) and return a ``ParsedDocument`` or raise ``UnreadableDocument`` with the reason.
They are imported lazily, in the parsing worker that needs them.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from ai_assets.core.documents.model import ParsedDocument

FORMATS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".jsonl": "corpus",  # a BEIR corpus: one document per line, read by loading.load_corpus
}
DOCUMENT_SUFFIXES = frozenset(FORMATS)
# Formats whose files hold more than their text (fonts, images, layout): the document size limit
# applies to the text they yield, the file size limit to their bytes.
BINARY_FORMATS = frozenset({"pdf", "docx", "pptx"})


def file_format(relative: str) -> str | None:
    """The format of a file by its suffix, None for a type that is not a document."""
    return FORMATS.get(PurePosixPath(relative).suffix.lower())


def parse_document(format_name: str, data: bytes) -> ParsedDocument:
    """Parse one file's bytes of a known format (not ``corpus``, which yields many documents)."""
    if format_name == "markdown":
        from ai_assets.core.documents.markdown import parse_markdown

        return parse_markdown(data)
    if format_name == "text":
        from ai_assets.core.documents.text import parse_plain_text

        return parse_plain_text(data)
    if format_name == "rst":
        from ai_assets.core.documents.text import parse_rst

        return parse_rst(data)
    if format_name == "html":
        from ai_assets.core.documents.html import parse_html

        return parse_html(data)
    if format_name == "pdf":
        from ai_assets.core.documents.pdf import parse_pdf

        return parse_pdf(data)
    if format_name == "docx":
        from ai_assets.core.documents.docx import parse_docx

        return parse_docx(data)
    if format_name == "pptx":
        from ai_assets.core.documents.pptx import parse_pptx

        return parse_pptx(data)
    raise ValueError(f"no parser for format {format_name!r}")
