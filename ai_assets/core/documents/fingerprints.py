"""What the source sensor knows about each source folder, and what changed since it last looked.

A source's *content fingerprint* is a hash of every file's path and bytes, so a touched but
unchanged file requests nothing. Hashing every byte on every sensor tick would be wasteful,
so a cheap *stat signature* (paths, sizes, modification times) is kept beside it: the bytes
are only read again when the stat signature moved.

Memory stays bounded whatever the files: bytes are hashed as a stream, and only where the
content must be compared. A file the loader would not read (too large for its limit, or not a
document) is fingerprinted by what the listing has (size and version), so a 2 GB file is never
read; on an object store the ETag already names the content.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict

from ai_assets.core.documents.folders import FileVanished, SourceFile, SourceFolders, SourceListing, SourcesUnavailable
from ai_assets.core.documents.formats import file_format, over_size_limit
from ai_assets.core.hashing import sha256_hex


class SourceFingerprint(BaseModel):
    model_config = ConfigDict(frozen=True)

    stat_signature: str
    content: str


class ReadLimits(BaseModel):
    """The size limits the loader applies: a file over them is never read, to fingerprint it either."""

    model_config = ConfigDict(frozen=True)

    max_document_bytes: int = 5_000_000
    max_file_bytes: int = 200_000_000


class SourceChanges(BaseModel):
    """Sources to add as partitions, to re-ingest (new ones included), and to remove."""

    added: list[str]
    changed: list[str]
    removed: list[str]


def stat_signature(listing: SourceListing) -> str:
    return sha256_hex(
        *(f"{file.relative}:{file.size}:{file.version}" for file in listing.files), *_left_out(listing)
    )


def _left_out(listing: SourceListing) -> list[str]:
    """Entries the listing skipped or quarantined: a new one changes the source (its report)."""
    return [f"skipped:{entry.relative}:{entry.reason}" for entry in listing.skipped] + [
        f"quarantined:{entry.relative}:{entry.reason}" for entry in listing.quarantined
    ]


def content_fingerprint(folders: SourceFolders, source: str, limits: ReadLimits | None = ReadLimits()) -> str:
    """Hash of every file's relative path and bytes: equal exactly when the folder's content is."""
    return listing_fingerprint(folders, source, folders.listing(source), limits)


def listing_fingerprint(
    folders: SourceFolders, source: str, listing: SourceListing, limits: ReadLimits | None = ReadLimits()
) -> str:
    entries = []
    for file in listing.files:
        try:
            digest = _file_digest(folders, source, file, limits)
        except FileVanished:
            continue  # deleted since it was listed: as if the listing had not shown it
        except OSError as error:
            digest = f"unreadable:{error.errno}"  # still a change the loader reports when it quarantines it
        entries.append(f"{file.relative}:{digest}")
    return sha256_hex(*entries, *_left_out(listing))


def _file_digest(folders: SourceFolders, source: str, file: SourceFile, limits: ReadLimits | None) -> str:
    """The file's content hash where it must be read; its listed size and version otherwise.
    Without limits (eval sets: every file is read), every file is hashed."""
    unread = folders.versions_name_content or (
        limits is not None
        and (
            file_format(file.relative) is None
            or over_size_limit(file.relative, file.size, limits.max_document_bytes, limits.max_file_bytes) is not None
        )
    )
    return f"listed:{file.size}:{file.version}" if unread else folders.content_digest(source, file.relative)


def fingerprint_sources(
    folders: SourceFolders, previous: Mapping[str, SourceFingerprint], limits: ReadLimits = ReadLimits()
) -> dict[str, SourceFingerprint]:
    """The fingerprint of every source folder, reusing the previous content hash where no file moved."""
    current: dict[str, SourceFingerprint] = {}
    for source, listing in folders.listings().items():
        signature = stat_signature(listing)
        known = previous.get(source)
        if known is not None and known.stat_signature == signature:
            current[source] = known
        else:
            current[source] = SourceFingerprint(
                stat_signature=signature, content=listing_fingerprint(folders, source, listing, limits)
            )
    return current


def source_changes(
    previous: Mapping[str, SourceFingerprint],
    current: Mapping[str, SourceFingerprint],
    partitions: set[str],
    location: str,
) -> SourceChanges:
    """Compare two scans. A source without a partition is added; one whose content differs from
    the previous scan (or that the previous scan never saw) is re-ingested; a partition whose
    folder is gone from a root that still lists sources is removed (see ``sources_to_remove``)."""
    added = sorted(set(current) - partitions)
    changed = sorted(
        source
        for source, fingerprint in current.items()
        if source in added or previous.get(source) is None or previous[source].content != fingerprint.content
    )
    return SourceChanges(added=added, changed=changed, removed=sources_to_remove(partitions, set(current), location))


class EmptySourcesRoot(SourcesUnavailable):
    """The sources root lists no source while sources are indexed: unmounted, emptied, or a wrong
    prefix. Read as "every source was deleted", it would prune the whole index, so it is refused."""


def sources_to_remove(partitions: set[str], listed: set[str], location: str) -> list[str]:
    """Partitions whose folder is absent from a listing that still shows other sources.

    A root that suddenly lists nothing while partitions exist removes nothing: it raises
    ``EmptySourcesRoot`` (the caller skips, warns and keeps every row).
    """
    if partitions and not listed:
        raise EmptySourcesRoot(
            f"sources folder {location} lists no source while {len(partitions)} source(s) are indexed "
            f"({', '.join(sorted(partitions)[:5])}): nothing is removed. If it is unmounted or the "
            "prefix is wrong, fix that; to empty the knowledge base on purpose, delete the source "
            "partitions in the Dagster UI"
        )
    return sorted(partitions - listed)
