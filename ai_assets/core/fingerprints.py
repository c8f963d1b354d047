"""What the source sensor knows about each source folder, and what changed since it last looked.

A source's *content fingerprint* is a hash of every file's path and bytes, so a touched but
unchanged file requests nothing. Hashing every byte on every sensor tick would be wasteful,
so a cheap *stat signature* (paths, sizes, modification times) is kept beside it: the bytes
are only read again when the stat signature moved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from ai_assets.core.documents import list_source_names, source_files
from ai_assets.core.hashing import sha256_hex

_READ_BLOCK_BYTES = 1 << 20


class SourceFingerprint(BaseModel):
    model_config = ConfigDict(frozen=True)

    stat_signature: str
    content: str


class SourceChanges(BaseModel):
    """Sources to add as partitions, to re-ingest (new ones included), and to remove."""

    added: list[str]
    changed: list[str]
    removed: list[str]


def stat_signature(source_dir: Path) -> str:
    entries = []
    for path in source_files(source_dir):
        stat = path.stat()
        entries.append(f"{path.relative_to(source_dir).as_posix()}:{stat.st_size}:{stat.st_mtime_ns}")
    return sha256_hex(*entries)


def content_fingerprint(source_dir: Path) -> str:
    """Hash of every file's relative path and bytes: equal exactly when the folder's content is."""
    entries = []
    for path in source_files(source_dir):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(_READ_BLOCK_BYTES):
                digest.update(block)
        entries.append(f"{path.relative_to(source_dir).as_posix()}:{digest.hexdigest()}")
    return sha256_hex(*entries)


def fingerprint_sources(
    sources_dir: Path, previous: Mapping[str, SourceFingerprint]
) -> dict[str, SourceFingerprint]:
    """The fingerprint of every source folder, reusing the previous content hash where no file moved."""
    current: dict[str, SourceFingerprint] = {}
    for source in list_source_names(sources_dir):
        source_dir = sources_dir / source
        signature = stat_signature(source_dir)
        known = previous.get(source)
        if known is not None and known.stat_signature == signature:
            current[source] = known
        else:
            current[source] = SourceFingerprint(stat_signature=signature, content=content_fingerprint(source_dir))
    return current


def source_changes(
    previous: Mapping[str, SourceFingerprint],
    current: Mapping[str, SourceFingerprint],
    partitions: set[str],
) -> SourceChanges:
    """Compare two scans. A source without a partition is added; one whose content differs from
    the previous scan (or that the previous scan never saw) is re-ingested; a partition whose
    folder is gone is removed."""
    added = sorted(set(current) - partitions)
    changed = sorted(
        source
        for source, fingerprint in current.items()
        if source in added or previous.get(source) is None or previous[source].content != fingerprint.content
    )
    removed = sorted(partitions - set(current))
    return SourceChanges(added=added, changed=changed, removed=removed)
