"""What a source folder is read into: documents, quarantined items, and the rules for source names."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

from ai_assets.core.hashing import sha256_hex

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


def content_hash(title: str, text: str) -> str:
    return sha256_hex(title, text)
