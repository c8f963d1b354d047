"""Where the data lives: a local directory or an object-storage URI, behind one filesystem layer.

``AI_ASSETS_DATA_DIR`` (and the per-part overrides) may be a path or ``s3://bucket/prefix``
(``gs://`` and ``az://`` where their fsspec package is installed). Everything that reads or
writes under it goes through ``fsspec`` (``s3fs`` for S3), which reads the endpoint and
credentials from the standard ``AWS_*`` variables itself, so they never enter resource config.
"""

from ai_assets.core.storage.locations import (
    StorageUnavailable,
    UnsupportedLocation,
    check_reachable,
    filesystem,
    is_remote,
    join,
    lancedb_storage_options,
    normalize_location,
    storage_errors,
    storage_path,
)

__all__ = [
    "StorageUnavailable",
    "UnsupportedLocation",
    "check_reachable",
    "filesystem",
    "is_remote",
    "join",
    "lancedb_storage_options",
    "normalize_location",
    "storage_errors",
    "storage_path",
]
