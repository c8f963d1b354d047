"""Read one source folder into normalized documents, quarantining what cannot be read.

A source is a folder under ``data/sources/``. Supported files: Markdown, plain text,
reStructuredText, HTML (tags stripped) and BEIR ``*.jsonl`` corpora (one document per line).
A bad file, or a bad line of a corpus, is quarantined with its reason; the rest of the
source is still loaded.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ai_assets.core.hashing import sha256_hex

TEXT_SUFFIXES = frozenset({".md", ".markdown", ".txt", ".rst"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
JSONL_SUFFIXES = frozenset({".jsonl"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | JSONL_SUFFIXES

SOURCE_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


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


class QuarantinedItem(BaseModel):
    """A file, or one line of a corpus file, that could not be turned into a document."""

    model_config = ConfigDict(frozen=True)

    source: str
    path: str
    line: int | None = None
    reason: str

    @property
    def location(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


class SourceLoad(BaseModel):
    """Everything read from one source folder."""

    source: str
    documents: list[Document]
    quarantined: list[QuarantinedItem]
    skipped: list[str]  # files of an unsupported type, ignored on purpose


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


def list_source_names(sources_dir: Path) -> list[str]:
    """Source folders under ``sources_dir`` (hidden folders and loose files are not sources)."""
    if not sources_dir.is_dir():
        return []
    return sorted(
        entry.name
        for entry in sources_dir.iterdir()
        if entry.is_dir() and not entry.name.startswith(".") and SOURCE_NAME_PATTERN.match(entry.name)
    )


def content_hash(title: str, text: str) -> str:
    return sha256_hex(title, text)


def load_source(source_dir: Path, source: str, max_document_bytes: int) -> SourceLoad:
    """Read every supported file of a source folder; never raises for a bad file."""
    validate_source_name(source)
    documents: list[Document] = []
    quarantined: list[QuarantinedItem] = []
    skipped: list[str] = []
    seen_keys: set[str] = set()

    for file_path in source_files(source_dir):
        relative = file_path.relative_to(source_dir).as_posix()
        suffix = file_path.suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            skipped.append(relative)
            continue
        loaded, problems = _load_file(file_path, source, relative, suffix, max_document_bytes)
        quarantined.extend(problems)
        for document in loaded:
            if document.doc_key in seen_keys:
                quarantined.append(
                    QuarantinedItem(
                        source=source,
                        path=relative,
                        reason=f"duplicate document key {document.doc_key!r}",
                    )
                )
                continue
            seen_keys.add(document.doc_key)
            documents.append(document)
    return SourceLoad(source=source, documents=documents, quarantined=quarantined, skipped=skipped)


def load_file_documents(source_dir: Path, source: str, relative: str, max_document_bytes: int) -> list[Document]:
    """The documents one file of a source holds now (none if it is gone or unreadable)."""
    file_path = source_dir / relative
    if not file_path.is_file():
        return []
    documents, _ = _load_file(file_path, source, relative, file_path.suffix.lower(), max_document_bytes)
    return documents


def source_files(source_dir: Path) -> list[Path]:
    """Every file of a source folder that the loader and the source sensor look at (hidden ones excluded)."""
    if not source_dir.is_dir():
        raise FileNotFoundError(f"source folder {source_dir} does not exist")
    return sorted(
        path
        for path in source_dir.rglob("*")
        if path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(source_dir).parts)
    )


def _load_file(
    file_path: Path, source: str, relative: str, suffix: str, max_document_bytes: int
) -> tuple[list[Document], list[QuarantinedItem]]:
    def quarantine(reason: str) -> tuple[list[Document], list[QuarantinedItem]]:
        return [], [QuarantinedItem(source=source, path=relative, reason=reason)]

    try:
        stat = file_path.stat()
        # A corpus file holds many documents, so the per-document limit applies to its lines.
        if suffix not in JSONL_SUFFIXES and stat.st_size > max_document_bytes:
            return quarantine(
                f"file is {stat.st_size} bytes, over the limit of {max_document_bytes} bytes "
                "(setting AI_ASSETS_MAX_DOCUMENT_BYTES)"
            )
        raw = file_path.read_bytes()
    except OSError as error:
        return quarantine(f"unreadable: {error.strerror or error}")

    text, problem = decode_text(raw)
    if problem:
        return quarantine(problem)
    assert text is not None
    if suffix in JSONL_SUFFIXES:
        return _load_jsonl(text, source, relative, stat.st_mtime, max_document_bytes)

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
    title = title or Path(relative).stem
    document = Document(
        doc_key=f"{source}/{relative}",
        source=source,
        path=relative,
        title=title,
        text=body,
        content_hash=content_hash(title, body),
        size_bytes=len(raw),
        mtime=stat.st_mtime,
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
