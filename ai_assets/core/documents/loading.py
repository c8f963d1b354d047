"""Read one source folder into normalized documents, quarantining what cannot be read.

A source is a folder under the sources root (``data/sources/``), read through ``SourceFolders``. Supported files: Markdown, plain text,
reStructuredText, HTML (tags stripped) and BEIR ``*.jsonl`` corpora (one document per line).
A bad file, or a bad line of a corpus, is quarantined with its reason; the rest of the
source is still loaded.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

from ai_assets.core.documents.folders import FileVanished, SourceFile, SourceFolders, SourcesUnavailable
from ai_assets.core.documents.html import BrokenHtml, html_to_text
from ai_assets.core.documents.model import (
    Document,
    QuarantinedItem,
    SourceLoad,
    content_hash,
    validate_source_name,
)

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
JSONL_SUFFIXES = frozenset({".jsonl"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES


def load_source(folders: SourceFolders, source: str, max_document_bytes: int) -> SourceLoad:
    """Read every supported file of a source folder; never raises for a bad file."""
    validate_source_name(source)
    documents: list[Document] = []
    quarantined: list[QuarantinedItem] = []
    skipped: list[str] = []
    seen_keys: set[str] = set()

    for file in folders.listing(source).files:
        suffix = PurePosixPath(file.relative).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            skipped.append(file.relative)
            continue
        loaded, problems = _load_file(folders, source, file, suffix, max_document_bytes)
        quarantined.extend(problems)
        for document in loaded:
            if document.doc_key in seen_keys:
                quarantined.append(
                    QuarantinedItem(
                        source=source,
                        path=file.relative,
                        reason=f"duplicate document key {document.doc_key!r}",
                    )
                )
                continue
            seen_keys.add(document.doc_key)
            documents.append(document)
    return SourceLoad(source=source, documents=documents, quarantined=quarantined, skipped=skipped)


def load_file_documents(folders: SourceFolders, source: str, relative: str, max_document_bytes: int) -> list[Document]:
    """The documents one file of a source holds now (none if it is gone or unreadable)."""
    try:
        listed = {file.relative: file for file in folders.listing(source).files}
    except SourcesUnavailable:
        return []
    if relative not in listed:
        return []
    suffix = PurePosixPath(relative).suffix.lower()
    documents, _ = _load_file(folders, source, listed[relative], suffix, max_document_bytes)
    return documents


def _load_file(
    folders: SourceFolders, source: str, file: SourceFile, suffix: str, max_document_bytes: int
) -> tuple[list[Document], list[QuarantinedItem]]:
    relative = file.relative

    def quarantine(reason: str) -> tuple[list[Document], list[QuarantinedItem]]:
        return [], [QuarantinedItem(source=source, path=relative, reason=reason)]

    # A corpus file holds many documents, so the per-document limit applies to its lines.
    if suffix not in JSONL_SUFFIXES and file.size > max_document_bytes:
        return quarantine(
            f"file is {file.size} bytes, over the limit of {max_document_bytes} bytes "
            "(setting AI_ASSETS_MAX_DOCUMENT_BYTES)"
        )
    try:
        raw = folders.read_bytes(source, relative)
    except FileVanished:
        return [], []  # deleted since it was listed: the next listing will not show it
    except OSError as error:
        return quarantine(f"unreadable: {error.strerror or error}")

    text, problem = decode_text(raw)
    if problem:
        return quarantine(problem)
    assert text is not None
    if suffix in JSONL_SUFFIXES:
        return _load_jsonl(text, source, relative, file.mtime, max_document_bytes)

    if suffix in HTML_SUFFIXES:
        try:
            title, body = html_to_text(text)
        except BrokenHtml as error:
            return quarantine(f"broken HTML: {error}")
    else:
        body = text
        title = extract_title(text, suffix)
    body = body.strip()
    if not body:
        return quarantine("no text after extraction" if suffix in HTML_SUFFIXES else "empty file")
    title = title or PurePosixPath(relative).stem
    document = Document(
        doc_key=f"{source}/{relative}",
        source=source,
        path=relative,
        title=title,
        text=body,
        content_hash=content_hash(title, body),
        size_bytes=len(raw),
        mtime=file.mtime,
    )
    return [document], []


def decode_text(raw: bytes) -> tuple[str | None, str | None]:
    """UTF-8 text of a file, or the reason it is not a text document."""
    if not raw.strip():
        return None, "empty file"
    if b"\x00" in raw:
        return None, "binary file (contains NUL bytes)"
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError as error:
        bad_byte = raw[error.start]
        return None, f"not valid UTF-8: byte 0x{bad_byte:02x} at offset {error.start}"


def _load_jsonl(
    text: str, source: str, relative: str, mtime: float, max_document_bytes: int
) -> tuple[list[Document], list[QuarantinedItem]]:
    documents: list[Document] = []
    quarantined: list[QuarantinedItem] = []
    seen_keys: set[str] = set()
    # Only "\n" ends a JSONL record: str.splitlines() would also split on U+0085, U+2028 and
    # U+2029, which are legal inside JSON strings (MS MARCO has them).
    for line_number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        size = len(line.encode("utf-8"))
        document, reason = _parse_corpus_line(line, size, source, relative, mtime, max_document_bytes)
        if document is not None and document.doc_key in seen_keys:
            document, reason = None, f"duplicate document key {document.doc_key!r}"
        if document is None:
            quarantined.append(
                QuarantinedItem(source=source, path=relative, line=line_number, reason=str(reason))
            )
        else:
            seen_keys.add(document.doc_key)
            documents.append(document)
    return documents, quarantined


def _parse_corpus_line(
    line: str, size: int, source: str, relative: str, mtime: float, max_document_bytes: int
) -> tuple[Document | None, str | None]:
    if size > max_document_bytes:
        return None, f"line is {size} bytes, over the limit of {max_document_bytes} bytes"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        return None, f"invalid JSON: {error.msg} at column {error.colno}"
    if not isinstance(record, dict):
        return None, "a corpus line must be a JSON object with `_id`, `title` and `text`"
    native_id = record.get("_id")
    if not isinstance(native_id, (str, int)) or str(native_id).strip() == "":
        return None, "missing or empty `_id`"
    title = record.get("title") or ""
    body = record.get("text") or ""
    if not isinstance(title, str) or not isinstance(body, str):
        return None, "`title` and `text` must be strings"
    title, body = title.strip(), body.strip()
    if not body and not title:
        return None, "empty `title` and `text`"
    # The title is part of the searchable text, as BEIR evaluations embed "title text".
    full_text = f"{title}\n\n{body}" if title and body else (title or body)
    native = str(native_id)
    return (
        Document(
            doc_key=f"{source}/{native}",
            source=source,
            path=relative,
            native_id=native,
            title=title or native,
            text=full_text,
            content_hash=content_hash(title, full_text),
            size_bytes=size,
            mtime=mtime,
        ),
        None,
    )


def extract_title(text: str, suffix: str) -> str:
    """First Markdown `# ` heading, or a reStructuredText title with its underline."""
    lines = text.splitlines()
    for index, line in enumerate(lines[:50]):
        stripped = line.strip()
        if stripped.startswith("# "):
            return stripped[2:].strip()
        if suffix == ".rst" and index + 1 < len(lines):
            underline = lines[index + 1].strip()
            if stripped and len(underline) >= len(stripped) and set(underline) <= set("=-~^*#"):
                return stripped
    return ""
