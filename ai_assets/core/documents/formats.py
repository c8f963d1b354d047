"""Which files are documents, and which parser reads each format.

Parsers take a file's bytes (never a path: the same parser serves a local file and an object
from a store) and return a ``ParsedDocument`` or raise ``UnreadableDocument`` with the reason.
They are imported lazily, in the parsing worker that needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
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


# Each format's parser, as (module, function): imported on first use, in the worker that parses.
PARSERS: dict[str, tuple[str, str]] = {
    "markdown": ("ai_assets.core.documents.markdown", "parse_markdown"),
    "text": ("ai_assets.core.documents.text", "parse_plain_text"),
    "rst": ("ai_assets.core.documents.text", "parse_rst"),
    "html": ("ai_assets.core.documents.html", "parse_html"),
    "pdf": ("ai_assets.core.documents.pdf", "parse_pdf"),
    "docx": ("ai_assets.core.documents.docx", "parse_docx"),
    "pptx": ("ai_assets.core.documents.pptx", "parse_pptx"),
}


# Formats whose parser reads scanned pages by OCR (unless ``ocr`` is off).
OCR_FORMATS = frozenset({"pdf"})


def parse_document(format_name: str, data: bytes, *, ocr: bool = True) -> ParsedDocument:
    """Parse one file's bytes of a known format (not ``corpus``, which yields many documents)."""
    if format_name not in PARSERS:
        raise ValueError(f"no parser for format {format_name!r}")
    module, function = PARSERS[format_name]
    parser: Callable[..., ParsedDocument] = getattr(importlib.import_module(module), function)
    return parser(data, ocr=ocr) if format_name in OCR_FORMATS else parser(data)
