"""Locations (a local path or an object-store URI): validated once, joined, opened through fsspec.

A value that looks like a URI is never taken as a local folder: ``s3:/bucket`` or a scheme no
installed filesystem serves is an error that names the setting, where ``pathlib`` would quietly
make a folder named ``s3:`` and index nothing.
"""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import fsspec
from upath import UPath

# Schemes served, and the fsspec package that serves each (only s3fs is a dependency).
SCHEME_PACKAGES = {"s3": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs", "abfss": "adlfs"}
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):(?P<rest>.*)$", re.DOTALL)
ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")


class UnsupportedLocation(ValueError):
    """A location setting that cannot be served: a malformed URI, or a scheme no filesystem serves."""


class StorageUnavailable(ValueError):
    """The object store cannot be used: endpoint unreachable, bucket missing, credentials refused.

    Not an ``OSError``: a file that cannot be read is quarantined, but a store that cannot be
    reached must fail the step (and be retried), never empty a source.
    """


def normalize_location(value: str | os.PathLike[str], setting: str) -> str:
    """A local path made absolute, or ``scheme://bucket/prefix`` without a trailing slash."""
    text = os.fspath(value).strip()
    if not text:
        raise UnsupportedLocation(f"{setting} is empty")
    match = _URI.match(text)
    if match is None:
        return str(Path(text).expanduser().resolve())
    scheme, rest = match["scheme"].lower(), match["rest"]
    if scheme == "file":
        return str(Path(rest.removeprefix("//")).expanduser().resolve())
    if scheme not in SCHEME_PACKAGES:
        if rest.startswith("//"):
            served = ", ".join(f"{name}://" for name in sorted(SCHEME_PACKAGES))
            raise UnsupportedLocation(
                f"{setting}={text!r}: scheme {scheme!r} is not served; use a local path or one of {served}"
            )
        return str(Path(text).expanduser().resolve())  # a local name that happens to hold a colon
    if not rest.startswith("//"):
        raise UnsupportedLocation(f"{setting}={text!r} is not a URI: write {scheme}://bucket/prefix")
    bucket, _, prefix = rest[2:].partition("/")
    if not bucket:
        raise UnsupportedLocation(f"{setting}={text!r} names no bucket: write {scheme}://bucket/prefix")
    package = SCHEME_PACKAGES[scheme]
    if importlib.util.find_spec(package) is None:
        raise UnsupportedLocation(
            f"{setting}={text!r}: {scheme}:// needs the Python package {package} (pip install {package})"
        )
    prefix = "/".join(part for part in prefix.split("/") if part)
    return f"{scheme}://{bucket}/{prefix}" if prefix else f"{scheme}://{bucket}"


def is_remote(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def join(location: str, *parts: str) -> str:
    if is_remote(location):
        return "/".join([location.rstrip("/"), *(part.strip("/") for part in parts)])
    return str(Path(location, *parts))


def _options(location: str) -> dict:
    scheme = location.split("://", 1)[0]
    # Listings are never cached: a long-lived sensor process must see every change in the bucket.
    options: dict = {"use_listings_cache": False}
    if scheme == "s3":
        # Fail within seconds when the endpoint is unreachable (botocore waits 60 s per attempt).
        options["config_kwargs"] = {"connect_timeout": 10, "read_timeout": 120, "retries": {"max_attempts": 3}}
        endpoint = aws_endpoint()
        if endpoint:
            # What s3fs would read from the environment anyway; passed so that fsspec's cache of
            # filesystems keeps one per endpoint.
            options["endpoint_url"] = endpoint
    return options


def aws_endpoint() -> str:
    return next((os.environ[name] for name in ENDPOINT_VARIABLES if os.environ.get(name)), "")


def filesystem(location: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem serving ``location`` and the location's path on it."""
    if not is_remote(location):
        return fsspec.filesystem("file"), location
    scheme = location.split("://", 1)[0]
    fs = fsspec.filesystem(scheme, **_options(location))
    return fs, fsspec.core.strip_protocol(location)


def storage_path(location: str) -> Path:
    """A ``pathlib``-like path on the location's filesystem (``Path`` locally, ``UPath`` remotely)."""
    return UPath(location, **_options(location)) if is_remote(location) else Path(location)


def endpoint_note() -> str:
    endpoint = aws_endpoint()
    return f" at AWS_ENDPOINT_URL={endpoint}" if endpoint else ""


@contextmanager
def storage_errors(location: str, setting: str) -> Iterator[None]:
    """Turn the object store's failures into one clear ``StorageUnavailable`` naming what to fix."""
    try:
        yield
    except PermissionError as error:
        raise StorageUnavailable(
            f"{setting}={location}: access denied ({error}); check the credentials "
            "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, AWS_PROFILE or the machine's role)"
        ) from None
    except Exception as error:
        name = type(error).__name__
        if "Credentials" in name:
            raise StorageUnavailable(
                f"{setting}={location}: no credentials for the object store ({error}); set "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE, or give the machine a role)"
            ) from None
        if "Connect" in name or "Endpoint" in name or isinstance(error, (ConnectionError, TimeoutError)):
            raise StorageUnavailable(
                f"{setting}={location}: cannot reach the object store{endpoint_note()} ({error}); "
                "check AWS_ENDPOINT_URL and the network"
            ) from None
        raise


def check_reachable(location: str, setting: str) -> None:
    """Fail early, with the setting's name, when a remote location's store or bucket cannot be used."""
    if not is_remote(location) or location.split("://", 1)[0] not in SCHEME_PACKAGES:
        return  # a local path, or a URI only LanceDB serves (db:// of LanceDB Cloud)
    fs, path = filesystem(location)
    bucket = path.split("/", 1)[0]
    with storage_errors(location, setting):
        try:
            fs.ls(path, detail=False)
            return
        except FileNotFoundError:
            pass  # an empty prefix is fine (nothing written yet); a missing bucket is not
        try:
            fs.info(bucket)
        except FileNotFoundError:
            raise StorageUnavailable(
                f"{setting}={location}: bucket {bucket!r} does not exist{endpoint_note()}"
            ) from None


def lancedb_storage_options(uri: str, overrides: dict[str, str]) -> dict[str, str]:
    """LanceDB's object-store options for ``uri``: plain HTTP allowed when the AWS endpoint is
    ``http://`` (a local S3-compatible server), then the user's own options on top.

    LanceDB reads the endpoint, region and credentials from the same ``AWS_*`` variables as s3fs.
    """
    options: dict[str, str] = {}
    if uri.startswith("s3://") and aws_endpoint().startswith("http://"):
        options["allow_http"] = "true"
    return {**options, **overrides}
