"""Where a source's bytes come from: the folders under the sources root, listed and read.

Loading, fingerprinting and the source sensor see the sources only through ``SourceFolders``,
so where the files live (a directory of this machine here, a bucket in ``object_folders``) is
decided in one place. A root
that is missing or cannot be listed raises ``SourcesUnavailable``: callers must never read
it as "no sources", which would delete every source's rows.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ai_assets.core.documents.model import SOURCE_NAME_PATTERN


class SourcesUnavailable(OSError):
    """The sources root (or one source folder) cannot be listed: missing, unmounted or unreadable."""


class FileVanished(OSError):
    """A listed file was gone when it was read (deleted meanwhile): treat it as deleted."""


class SourceFile(BaseModel):
    """One file of a source folder, as listed."""

    model_config = ConfigDict(frozen=True)

    relative: str  # POSIX path inside the source folder
    size: int
    version: str  # changes whenever the bytes may have changed (modification time, or an ETag)
    mtime: float = 0.0  # last modification, seconds since the epoch (0 where the store has none)


class SkippedFile(BaseModel):
    """An entry of a source folder that is not read, and why."""

    model_config = ConfigDict(frozen=True)

    relative: str
    reason: str


class SourceListing(BaseModel):
    """What one listing of a source folder found: the files to read, and what was left out."""

    model_config = ConfigDict(frozen=True)

    files: list[SourceFile]
    skipped: list[SkippedFile] = []


class SourceFolders(ABC):
    """The sources root: one folder per source."""

    @property
    @abstractmethod
    def location(self) -> str:
        """The root as a user would write it (a path or a URI), for messages and metadata."""

    @abstractmethod
    def source_names(self) -> list[str]:
        """Source folders under the root (hidden folders and loose files are not sources).

        Raises ``SourcesUnavailable`` when the root itself cannot be listed.
        """

    @abstractmethod
    def listing(self, source: str) -> SourceListing:
        """The source's files, sorted by path; raises ``SourcesUnavailable`` if the folder is gone."""

    @abstractmethod
    def read_bytes(self, source: str, relative: str) -> bytes:
        """A listed file's bytes; raises ``FileVanished`` if it is gone, ``OSError`` if unreadable."""

    def listings(self) -> dict[str, SourceListing]:
        """Every source's listing at once (one recursive listing on an object store).

        A folder that vanished between listing the root and listing it is left out, as removed.
        Raises ``SourcesUnavailable`` when the root cannot be listed.
        """
        listings = {}
        for source in self.source_names():
            try:
                listings[source] = self.listing(source)
            except SourcesUnavailable:
                continue
        return listings

    def source_location(self, source: str, relative: str = "") -> str:
        """Where a source (or one of its files) lives, as a user would write it."""
        return "/".join(part for part in (self.location.rstrip("/"), source, relative) if part)


def is_hidden(relative: str) -> bool:
    return any(part.startswith(".") for part in relative.split("/"))


_SOURCE_NAME = re.compile(SOURCE_NAME_PATTERN.pattern)


class LocalSourceFolders(SourceFolders):
    """Source folders in a directory of this machine."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def location(self) -> str:
        return str(self.root)

    def source_names(self) -> list[str]:
        if not self.root.is_dir():
            raise SourcesUnavailable(f"sources folder {self.root} does not exist or is not a directory")
        try:
            entries = list(self.root.iterdir())
        except OSError as error:
            raise SourcesUnavailable(f"sources folder {self.root} cannot be listed: {error.strerror or error}") from None
        return sorted(
            entry.name
            for entry in entries
            if entry.is_dir() and not entry.name.startswith(".") and _SOURCE_NAME.match(entry.name)
        )

    def listing(self, source: str) -> SourceListing:
        source_dir = self.root / source
        if not source_dir.is_dir():
            raise SourcesUnavailable(f"source folder {source_dir} does not exist")
        files = []
        for path in sorted(source_dir.rglob("*")):
            relative = path.relative_to(source_dir).as_posix()
            if is_hidden(relative) or not path.is_file():
                continue
            stat = path.stat()
            files.append(
                SourceFile(relative=relative, size=stat.st_size, version=str(stat.st_mtime_ns), mtime=stat.st_mtime)
            )
        return SourceListing(files=files)

    def read_bytes(self, source: str, relative: str) -> bytes:
        try:
            return (self.root / source / relative).read_bytes()
        except FileNotFoundError:
            raise FileVanished(f"{self.source_location(source, relative)} was deleted") from None
