"""Locations: a local path or an object-store URI, never a local folder named after a URI."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_assets.core.storage import (
    UnsupportedLocation,
    is_remote,
    join,
    lancedb_storage_options,
    normalize_location,
    storage_path,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("s3://kbase/data", "s3://kbase/data"),
        ("s3://kbase/data/", "s3://kbase/data"),
        ("s3://kbase//data//sub/", "s3://kbase/data/sub"),
        ("s3://kbase", "s3://kbase"),
        ("S3://kbase/data", "s3://kbase/data"),
    ],
)
def test_object_store_uris_are_kept_as_uris(value: str, expected: str) -> None:
    assert normalize_location(value, "AI_ASSETS_DATA_DIR") == expected
    assert is_remote(expected)


def test_local_paths_are_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert normalize_location("data", "AI_ASSETS_DATA_DIR") == str(tmp_path / "data")
    assert normalize_location(tmp_path / "x", "AI_ASSETS_DATA_DIR") == str(tmp_path / "x")
    assert normalize_location(f"file://{tmp_path}/y", "AI_ASSETS_DATA_DIR") == str(tmp_path / "y")
    # A colon alone does not make a URI: a folder may be called that.
    assert normalize_location("data:v2", "AI_ASSETS_DATA_DIR") == str(tmp_path / "data:v2")
    assert not is_remote(str(tmp_path / "data"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("s3:/kbase/data", "is not a URI: write s3://bucket/prefix"),
        ("s3:kbase", "is not a URI"),
        ("s3://", "names no bucket"),
        ("s3:///data", "names no bucket"),
        ("ftp://host/data", "scheme 'ftp' is not served"),
        ("gs://bucket/data", "needs the Python package gcsfs"),
        ("az://container/data", "needs the Python package adlfs"),
        ("  ", "is empty"),
    ],
)
def test_a_uri_that_cannot_be_served_is_an_error_naming_the_setting(value: str, message: str) -> None:
    with pytest.raises(UnsupportedLocation, match="AI_ASSETS_SOURCES_URI") as raised:
        normalize_location(value, "AI_ASSETS_SOURCES_URI")
    assert message in str(raised.value)


def test_join_and_paths() -> None:
    assert join("s3://kbase/data", "sources", "alpha/") == "s3://kbase/data/sources/alpha"
    assert join("/srv/data", "sources", "alpha") == "/srv/data/sources/alpha"
    assert isinstance(storage_path("/srv/data"), Path)
    remote = storage_path("s3://kbase/data") / "eval"
    assert str(remote) == "s3://kbase/data/eval" and remote.name == "eval"


def test_lancedb_allows_plain_http_only_for_an_http_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    assert lancedb_storage_options("s3://kbase/db", {}) == {"allow_http": "true"}
    # The user's own options win.
    assert lancedb_storage_options("s3://kbase/db", {"allow_http": "false"}) == {"allow_http": "false"}
    assert lancedb_storage_options("/srv/db", {}) == {}
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://s3.example.com")
    assert lancedb_storage_options("s3://kbase/db", {}) == {}
