"""Which files are documents, and which parser reads each format.

Parsers take a file's bytes (never a path: the same parser serves a local file and an object
from a store) and return a ``ParsedDocument`` or raise ``UnreadableDocument`` with the reason.
They are imported lazily, in the parsing worker that needs them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import PurePosixPath

from ai_assets.core.documents.guards import InputLimits, check_input
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


def over_size_limit(relative: str, size: int, max_document_bytes: int, max_file_bytes: int) -> str | None:
    """Why a file is too large to be read (the quarantine reason), None when it may be read.

    The loader quarantines such a file unread, and the fingerprint does not read it either.
    A corpus is read line by line, each line under the document limit, so it has none.
    """
    format_name = file_format(relative)
    if format_name is None or format_name == "corpus":
        return None
    limit, setting = (
        (max_file_bytes, "AI_ASSETS_MAX_FILE_BYTES")
        if format_name in BINARY_FORMATS
        else (max_document_bytes, "AI_ASSETS_MAX_DOCUMENT_BYTES")
    )
    if size <= limit:
        return None
    return f"file is {size} bytes, over the limit of {limit} bytes (setting {setting})"


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


def parse_document(
    format_name: str, data: bytes, limits: InputLimits = InputLimits(), *, ocr: bool = True
) -> ParsedDocument:
    """Parse one file's bytes of a known format (not ``corpus``, which yields many documents),
    once ``guards`` found nothing that would make its parser run out of memory or time."""
    if format_name not in PARSERS:
        raise ValueError(f"no parser for format {format_name!r}")
    check_input(format_name, data, limits)
    module, function = PARSERS[format_name]
    parser: Callable[..., ParsedDocument] = getattr(importlib.import_module(module), function)
    return parser(data, ocr=ocr) if format_name in OCR_FORMATS else parser(data)
