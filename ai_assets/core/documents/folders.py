"""Where a source's bytes come from: the folders under the sources root, listed and read.

Loading, fingerprinting and the source sensor see the sources only through ``SourceFolders``,
so where the files live (a directory of this machine here, a bucket in ``object_folders``) is
decided in one place. A root
that is missing or cannot be listed raises ``SourcesUnavailable``: callers must never read
it as "no sources", which would delete every source's rows.

A source folder is a boundary. The local listing never follows a link whose target resolves
outside the sources root (or the source folder's own real location): it is quarantined, and
checked again when read. Links inside are followed, each folder entered once, so loops end.
Special files (FIFOs, sockets, devices) are never opened; they, dangling links, loops and
folders named like documents are listed as skipped with a reason, and files or folders the
process may not read as quarantined.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import stat
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict

from ai_assets.core.documents.formats import DOCUMENT_SUFFIXES
from ai_assets.core.documents.model import SOURCE_NAME_PATTERN, SkippedFile
from ai_assets.core.documents.names import escape_name, unescape_name

# Read at a time when a file is hashed: memory stays this size whatever the file's.
HASH_READ_BYTES = 1 << 20


class SourcesUnavailable(OSError):
    """The sources root (or one source folder) cannot be listed: missing, unmounted or unreadable."""


class FileVanished(OSError):
    """A listed file was gone when it was read (deleted meanwhile): treat it as deleted."""


class SourceFile(BaseModel):
    """One file of a source folder, as listed."""

    model_config = ConfigDict(frozen=True)

    relative: str  # POSIX path inside the source folder (each name as ``names.escape_name`` keeps it)
    size: int
    version: str  # changes whenever the bytes may have changed (modification time, or an ETag)
    mtime: float = 0.0  # last modification, seconds since the epoch (0 where the store has none)


class SourceListing(BaseModel):
    """What one listing of a source folder found.

    ``files``: the regular files to read (of any type: the loader decides what it parses).
    ``skipped``: entries that are not files to read, with the reason (a special file, a dangling
    link, a folder named like a document). ``quarantined``: entries that must not or cannot be read
    (a link pointing outside the sources, a file or folder the process may not read). A store
    without such entries (an object store) leaves both empty.
    """

    model_config = ConfigDict(frozen=True)

    files: list[SourceFile]
    skipped: list[SkippedFile] = []
    quarantined: list[SkippedFile] = []


class SourceFolders(ABC):
    """The sources root: one folder per source."""

    # True where a file's listed version names its content (an object store's ETag), so
    # fingerprinting need not read the bytes; False where it is a modification time.
    versions_name_content: bool = False

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
        """A listed file's bytes; raises ``FileVanished`` if it is gone, ``OSError`` if unreadable
        (the message is the reason the loader quarantines it with)."""

    @abstractmethod
    def open_file(self, source: str, relative: str) -> BinaryIO:
        """A listed file opened for reading in binary; the errors of ``read_bytes``."""

    def content_digest(self, source: str, relative: str) -> str:
        """SHA-256 of a file's bytes, read a block at a time (never the whole file in memory)."""
        digest = hashlib.sha256()
        with self.open_file(source, relative) as stream:
            while block := stream.read(HASH_READ_BYTES):
                digest.update(block)
        return digest.hexdigest()

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
        walk = _FolderWalk(source_dir, self._boundaries(source))
        try:
            walk.folder(source_dir, "")
        except OSError as error:
            raise SourcesUnavailable(f"source folder {source_dir} cannot be listed: {error.strerror or error}") from None
        return SourceListing(
            files=sorted(walk.files, key=lambda file: file.relative),
            skipped=sorted(walk.skipped, key=lambda entry: entry.relative),
            quarantined=sorted(walk.quarantined, key=lambda entry: entry.relative),
        )

    def read_bytes(self, source: str, relative: str) -> bytes:
        with self.open_file(source, relative) as stream:
            return stream.read()

    def open_file(self, source: str, relative: str) -> BinaryIO:
        path = self.root / source / unescape_name(relative)
        # Checked again at reading: a link may have been pointed elsewhere since it was listed.
        if path.is_symlink() and not _inside(os.path.realpath(path), self._boundaries(source)):
            raise PermissionError(errno.EACCES, POINTS_OUTSIDE)
        try:
            return path.open("rb")
        except FileNotFoundError:
            raise FileVanished(f"{self.source_location(source, relative)} was deleted") from None

    def _boundaries(self, source: str) -> tuple[str, ...]:
        """Where a link may point: anywhere under the sources root, or under the source folder
        itself (which may be a link to a share mounted elsewhere)."""
        return (os.path.realpath(self.root), os.path.realpath(self.root / source))


POINTS_OUTSIDE = "points outside the source folder"

_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "FIFO"), (stat.S_ISSOCK, "socket"), (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)


def _inside(real_path: str, boundaries: tuple[str, ...]) -> bool:
    return any(real_path == boundary or real_path.startswith(boundary.rstrip("/") + "/") for boundary in boundaries)


class _FolderWalk:
    """One listing's walk: regular files kept, everything else skipped or quarantined with a reason.

    Links are followed only to targets inside the boundaries, and a folder is entered once (by
    its real path), so a link back to an ancestor or a cycle of links ends the walk there.
    """

    def __init__(self, source_dir: Path, boundaries: tuple[str, ...]) -> None:
        self.boundaries = boundaries
        self.entered = {os.path.realpath(source_dir)}
        self.files: list[SourceFile] = []
        self.skipped: list[SkippedFile] = []
        self.quarantined: list[SkippedFile] = []

    def folder(self, directory: Path, prefix: str) -> None:
        with os.scandir(directory) as entries:
            listed = sorted(entries, key=lambda entry: entry.name)
        for entry in listed:
            if entry.name.startswith("."):
                continue  # hidden files and folders (.git, .DS_Store) are never documents
            # The key keeps a name that is not UTF-8 in an escaped, reversible form.
            self.entry(Path(entry.path), f"{prefix}{escape_name(entry.name)}")

    def entry(self, path: Path, relative: str) -> None:
        if path.is_symlink():
            target = os.path.realpath(path)
            if not _inside(target, self.boundaries):
                self.quarantined.append(SkippedFile(relative=relative, reason=POINTS_OUTSIDE))
                return
        try:
            info = path.stat()  # follows a link
        except FileNotFoundError:
            self.skipped.append(SkippedFile(relative=relative, reason="dangling link: its target does not exist"))
            return
        except OSError as error:
            if error.errno == errno.ELOOP:
                self.skipped.append(SkippedFile(relative=relative, reason="symlink loop"))
            else:
                self.quarantined.append(SkippedFile(relative=relative, reason=f"unreadable: {error.strerror or error}"))
            return
        if stat.S_ISDIR(info.st_mode):
            self.directory(path, relative)
        elif stat.S_ISREG(info.st_mode):
            if not os.access(path, os.R_OK):
                self.quarantined.append(SkippedFile(relative=relative, reason="unreadable: permission denied"))
                return
            self.files.append(
                SourceFile(relative=relative, size=info.st_size, version=str(info.st_mtime_ns), mtime=info.st_mtime)
            )
        else:
            kind = next((name for test, name in _SPECIAL_KINDS if test(info.st_mode)), "special file")
            self.skipped.append(SkippedFile(relative=relative, reason=f"special file ({kind}), not a document"))

    def directory(self, path: Path, relative: str) -> None:
        real = os.path.realpath(path)
        if real in self.entered:
            self.skipped.append(SkippedFile(relative=relative, reason="symlink loop: folder already listed"))
            return
        self.entered.add(real)
        if PurePosixPath(relative).suffix.lower() in DOCUMENT_SUFFIXES:
            self.skipped.append(
                SkippedFile(relative=relative, reason="a folder named like a document (its files are listed on their own)")
            )
        if not os.access(path, os.R_OK | os.X_OK):
            self.quarantined.append(SkippedFile(relative=relative, reason="unreadable folder: permission denied"))
            return
        try:
            self.folder(path, relative + "/")
        except OSError as error:
            self.quarantined.append(SkippedFile(relative=relative, reason=f"unreadable folder: {error.strerror or error}"))
