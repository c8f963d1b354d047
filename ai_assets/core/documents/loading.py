"""Read one source folder into documents, quarantining what cannot be read.

A source is a folder under the sources root, read through ``SourceFolders`` (its listing already
leaves out, with reasons, what must not be read: special files, links out of the sources...).
Files are parsed by format (``formats.FORMATS``) in worker processes, in parallel and each within
a time limit (``parsing``); BEIR ``*.jsonl`` corpora are read here, line by line (the standard
JSON parser, linear in its input, needs no time limit, and a corpus may hold a million lines).
A bad file, or a bad line of a corpus, is quarantined with its reason; the rest of the source is
still loaded. Files of other types are skipped, and listed as such.

A parser's verdict on a bad file is remembered by the file's listed version and the limits it
was reached with (``verdict_key``): given the previous ingest's quarantine, an unchanged bad file
is not parsed again (a file that timed out would otherwise cost its timeout on every ingest);
changing the file, or any limit, tries it again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from functools import partial
from pathlib import PurePosixPath

from pydantic import BaseModel, ConfigDict, Field

from ai_assets.core.documents.folders import FileVanished, SourceFile, SourceFolders, SourcesUnavailable
from ai_assets.core.documents.formats import file_format, over_size_limit, parse_document
from ai_assets.core.documents.guards import InputLimits
from ai_assets.core.documents.model import (
    Document,
    QuarantinedItem,
    SkippedFile,
    SourceLoad,
    UnreadableDocument,
    assemble_document,
    content_hash,
    readable_file_title,
    validate_source_name,
)
from ai_assets.core.documents.parsing import ParseJob, ParseOutcome, available_cores, parse_files
from ai_assets.core.documents.text import decode_text
from ai_assets.core.hashing import sha256_hex

UNSUPPORTED_TYPE = "unsupported file type"


class ParseSettings(BaseModel):
    """Limits and parallelism of parsing; defaults as the settings' (AI_ASSETS_PARSE_*)."""

    model_config = ConfigDict(frozen=True)

    workers: int = Field(default=0, ge=0)  # 0: one per core
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_file_bytes: int = Field(default=200_000_000, gt=0)  # PDF, DOCX, PPTX files (images and fonts included)
    ocr: bool = True  # read scanned PDF pages by OCR; off: a PDF without a text layer is quarantined
    # What one worker may take beyond its loaded parsers: two fit a 4 GB machine beside the build.
    memory_bytes: int = Field(default=1_000_000_000, gt=0)
    office_max_unpacked_bytes: int = InputLimits().office_max_unpacked_bytes
    office_max_compression_ratio: float = InputLimits().office_max_compression_ratio
    max_nesting_depth: int = InputLimits().max_nesting_depth

    @property
    def worker_count(self) -> int:
        return self.workers or available_cores()

    @property
    def input_limits(self) -> InputLimits:
        return InputLimits(
            office_max_unpacked_bytes=self.office_max_unpacked_bytes,
            office_max_compression_ratio=self.office_max_compression_ratio,
            max_nesting_depth=self.max_nesting_depth,
        )


def verdict_key(file: SourceFile, parsing: ParseSettings, max_document_bytes: int) -> str:
    """What a parser's verdict on a file depends on: its version and every limit (not the worker count)."""
    limits = parsing.model_dump_json(exclude={"workers"})
    return sha256_hex(file.relative, str(file.size), file.version, limits, str(max_document_bytes), length=16)


def load_source(
    folders: SourceFolders,
    source: str,
    max_document_bytes: int,
    parsing: ParseSettings = ParseSettings(),
    previous_quarantine: Iterable[QuarantinedItem] = (),
) -> SourceLoad:
    """Read every supported file of a source folder; never raises for a bad file. A file the
    previous quarantine holds a verdict on, still valid, is quarantined again without parsing."""
    validate_source_name(source)
    listing = folders.listing(source)
    quarantined = [QuarantinedItem(source=source, path=entry.relative, reason=entry.reason) for entry in listing.quarantined]
    skipped = list(listing.skipped)
    readable: list[SourceFile] = []
    for file in listing.files:
        if file_format(file.relative) is None:
            suffix = PurePosixPath(file.relative).suffix.lower()
            skipped.append(SkippedFile(relative=file.relative, reason=f"{UNSUPPORTED_TYPE} ({suffix or 'no suffix'})"))
        else:
            readable.append(file)
    verdicts = {item.verdict: item for item in previous_quarantine if item.verdict is not None}
    documents, problems, seconds = _load_files(folders, source, readable, max_document_bytes, parsing, verdicts)
    return SourceLoad(
        source=source,
        documents=documents,
        quarantined=[*quarantined, *problems],
        skipped=sorted(skipped, key=lambda entry: entry.relative),
        parse_seconds=seconds,
    )


def load_file_documents(
    folders: SourceFolders, source: str, relative: str, max_document_bytes: int, parsing: ParseSettings = ParseSettings()
) -> list[Document]:
    """The documents one file of a source holds now (none if it is gone, unreadable or not listed)."""
    try:
        listed = {file.relative: file for file in folders.listing(source).files}
    except SourcesUnavailable:
        return []
    if relative not in listed or file_format(relative) is None:
        return []
    return _load_files(folders, source, [listed[relative]], max_document_bytes, parsing.model_copy(update={"workers": 1}))[0]


def _load_files(
    folders: SourceFolders,
    source: str,
    files: Sequence[SourceFile],
    max_document_bytes: int,
    parsing: ParseSettings,
    verdicts: dict[str, QuarantinedItem] | None = None,
) -> tuple[list[Document], list[QuarantinedItem], float]:
    """Documents of the files in listing order, what was quarantined, and the seconds spent parsing."""
    by_file: dict[str, list[Document]] = {}
    quarantined: list[QuarantinedItem] = []
    parsed_files: list[SourceFile] = []
    keys = {file.relative: verdict_key(file, parsing, max_document_bytes) for file in files}

    def quarantine(relative: str, reason: str, verdict: str | None = None) -> None:
        quarantined.append(QuarantinedItem(source=source, path=relative, reason=reason, verdict=verdict))

    for file in files:
        format_name = file_format(file.relative)
        if format_name == "corpus":
            documents, problems = _read_corpus(folders, source, file, max_document_bytes)
            by_file[file.relative] = documents
            quarantined.extend(problems)
            continue
        too_large = over_size_limit(file.relative, file.size, max_document_bytes, parsing.max_file_bytes)
        known = (verdicts or {}).get(keys[file.relative])
        if too_large:
            quarantine(file.relative, too_large)
        elif known is not None and known.path == file.relative:
            quarantined.append(known.model_copy(update={"source": source, "remembered": True}))
        else:
            parsed_files.append(file)

    def jobs() -> Iterator[ParseJob]:
        for file in parsed_files:
            try:
                data = folders.read_bytes(source, file.relative)
            except FileVanished:
                continue  # deleted since it was listed: the next listing will not show it
            except OSError as error:
                quarantine(file.relative, f"unreadable: {error.strerror or error}")
                continue
            yield ParseJob(key=file.relative, format=file_format(file.relative) or "", data=data, ocr=parsing.ocr)

    listed = {file.relative: file for file in parsed_files}
    seconds = 0.0
    if parsed_files:
        outcomes = parse_files(
            jobs(),
            workers=min(parsing.worker_count, len(parsed_files)),
            timeout_seconds=parsing.timeout_seconds,
            timeout_hint=" (setting AI_ASSETS_PARSE_TIMEOUT_SECONDS)",
            memory_bytes=parsing.memory_bytes,
            parser=partial(parse_document, limits=parsing.input_limits),
        )
        for outcome in outcomes:
            seconds += outcome.seconds
            document, reason = _document(source, listed[outcome.key], outcome, max_document_bytes)
            if document is None:
                quarantine(outcome.key, str(reason), verdict=keys[outcome.key])
            else:
                by_file[outcome.key] = [document]
    documents: list[Document] = []
    seen_keys: set[str] = set()
    for file in files:
        for document in by_file.get(file.relative, []):
            if document.doc_key in seen_keys:
                quarantine(file.relative, f"duplicate document key {document.doc_key!r}")
                continue
            seen_keys.add(document.doc_key)
            documents.append(document)
    return documents, sorted(quarantined, key=lambda item: (item.path, item.line or 0)), seconds


def _document(
    source: str, file: SourceFile, outcome: ParseOutcome, max_document_bytes: int
) -> tuple[Document | None, str | None]:
    if outcome.parsed is None:
        return None, outcome.reason
    try:
        document = assemble_document(
            outcome.parsed, source=source, path=file.relative, size_bytes=file.size, mtime=file.mtime,
            fallback_title=readable_file_title(PurePosixPath(file.relative).stem),
        )
    except UnreadableDocument as error:
        return None, str(error)
    text_bytes = len(document.text.encode("utf-8"))
    if text_bytes > max_document_bytes:
        return None, (
            f"its text is {text_bytes} bytes, over the limit of {max_document_bytes} bytes "
            "(setting AI_ASSETS_MAX_DOCUMENT_BYTES)"
        )
    return document, None


def _read_corpus(
    folders: SourceFolders, source: str, file: SourceFile, max_document_bytes: int
) -> tuple[list[Document], list[QuarantinedItem]]:
    def quarantine(reason: str) -> tuple[list[Document], list[QuarantinedItem]]:
        return [], [QuarantinedItem(source=source, path=file.relative, reason=reason)]

    try:
        raw = folders.read_bytes(source, file.relative)
    except FileVanished:
        return [], []
    except OSError as error:
        return quarantine(f"unreadable: {error.strerror or error}")
    try:
        text = decode_text(raw)
    except UnreadableDocument as error:
        return quarantine(str(error))
    return _load_jsonl(text, source, file.relative, file.mtime, max_document_bytes)


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
