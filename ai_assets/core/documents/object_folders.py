"""Source folders under an object-store prefix (``s3://bucket/data/sources``), through fsspec.

A "folder" is a key prefix: ``sources/<source>/<relative path>``. An object's version is its
ETag (a content hash on S3 for simple uploads), so the sensor re-reads an object only when its
bytes may have changed. A prefix that lists no object cannot be told from a missing one: both
raise ``SourcesUnavailable``, never "no sources".
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ai_assets.core.documents.folders import (
    _SOURCE_NAME,
    FileVanished,
    LocalSourceFolders,
    SourceFile,
    SourceFolders,
    SourceListing,
    SourcesUnavailable,
    is_hidden,
)
from ai_assets.core.storage import StorageUnavailable, filesystem, is_remote, storage_errors


class ObjectStoreSourceFolders(SourceFolders):
    """Source folders under a prefix of a bucket; one recursive listing sees them all."""

    versions_name_content = True  # an ETag changes with the bytes (and without one, mtime:size does)

    def __init__(self, location: str, setting: str = "AI_ASSETS_DATA_DIR") -> None:
        self._location = location.rstrip("/")
        self._setting = setting
        self._fs, self._root = filesystem(self._location)

    @property
    def location(self) -> str:
        return self._location

    def source_names(self) -> list[str]:
        return sorted(self.listings())

    def listings(self) -> dict[str, SourceListing]:
        files: dict[str, list[SourceFile]] = {}
        for key, info in self._find(self._root).items():
            relative_to_root = key[len(self._root) :].lstrip("/")
            source, _, relative = relative_to_root.partition("/")
            if not relative or source.startswith(".") or not _SOURCE_NAME.match(source):
                continue  # a loose object beside the folders, or not a valid source name
            files.setdefault(source, [])
            if not is_hidden(relative) and not key.endswith("/"):
                files[source].append(source_file(relative, info))
        if not files:
            raise SourcesUnavailable(f"sources folder {self._location} does not exist or holds no object")
        return {source: SourceListing(files=sorted(found, key=lambda f: f.relative)) for source, found in files.items()}

    def listing(self, source: str) -> SourceListing:
        prefix = f"{self._root}/{source}"
        found = [
            source_file(key[len(prefix) :].lstrip("/"), info)
            for key, info in self._find(prefix).items()
            if not key.endswith("/") and not is_hidden(key[len(prefix) :].lstrip("/"))
        ]
        if not found and not self._find(prefix):
            raise SourcesUnavailable(f"source folder {self.source_location(source)} does not exist")
        return SourceListing(files=sorted(found, key=lambda f: f.relative))

    def read_bytes(self, source: str, relative: str) -> bytes:
        with storage_errors(self.source_location(source, relative), self._setting):
            try:
                return self._fs.cat_file(f"{self._root}/{source}/{relative}")
            except FileNotFoundError:
                raise FileVanished(f"{self.source_location(source, relative)} was deleted") from None

    def open_file(self, source: str, relative: str) -> BinaryIO:
        with storage_errors(self.source_location(source, relative), self._setting):
            try:
                return self._fs.open(f"{self._root}/{source}/{relative}", "rb")
            except FileNotFoundError:
                raise FileVanished(f"{self.source_location(source, relative)} was deleted") from None

    def _find(self, path: str) -> dict[str, dict]:
        try:
            with storage_errors(self._location, self._setting):
                return self._fs.find(path, detail=True)
        except FileNotFoundError as error:  # the bucket itself is missing
            raise SourcesUnavailable(f"sources folder {self._location} cannot be listed: {error}") from None
        except StorageUnavailable as error:
            raise SourcesUnavailable(str(error)) from None


def source_file(relative: str, info: dict) -> SourceFile:
    modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
    mtime = modified.timestamp() if isinstance(modified, datetime) else float(modified or 0.0)
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    size = int(info.get("size") or 0)
    # Without an ETag (some stores), the modification time and size stand in for it.
    return SourceFile(relative=relative, size=size, version=etag or f"{mtime}:{size}", mtime=mtime)


def source_folders_at(location: str, setting: str = "AI_ASSETS_DATA_DIR") -> SourceFolders:
    """The folders at a location: a bucket prefix, or a directory of this machine."""

    return ObjectStoreSourceFolders(location, setting) if is_remote(location) else LocalSourceFolders(Path(location))
