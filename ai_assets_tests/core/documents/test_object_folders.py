"""Source folders in a bucket (moto's S3 server): the same documents as from disk, ETags as versions,
and absence never read as "no sources"."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_assets.core.documents.fingerprints import SourceFingerprint, fingerprint_sources
from ai_assets.core.documents.folders import FileVanished, LocalSourceFolders, SourcesUnavailable
from ai_assets.core.documents.loading import load_source
from ai_assets.core.documents.object_folders import ObjectStoreSourceFolders, source_folders_at
from ai_assets.core.storage import StorageUnavailable
from ai_assets_tests.s3_server import S3Server

BUCKET = "sources-bucket"
FILES = {
    "dagster/guide.md": "# Retries\n\nRuns retry.",
    "dagster/notes/plain.txt": "Just text.",
    "dagster/page.html": "<html><head><title>Sensors</title></head><body><p>Poll</p></body></html>",
    "dagster/corpus.jsonl": json.dumps({"_id": "7", "title": "Tides", "text": "The moon pulls."}) + "\n",
    "dagster/empty.md": "",
    "dagster/.hidden.md": "# secret",
    "dagster/.git/config": "x",
    "prefect/flows.rst": "Flows\n=====\n\nA flow is a function.",
    "README.md": "a loose object beside the folders is not a source",
    ".cache/x.md": "a hidden folder is not a source",
}


@pytest.fixture
def bucket_env(s3_env: S3Server) -> S3Server:
    if BUCKET not in {bucket["Name"] for bucket in s3_env.client().list_buckets()["Buckets"]}:
        s3_env.client().create_bucket(Bucket=BUCKET)
    return s3_env


def upload(s3: S3Server, prefix: str, files: dict[str, str]) -> str:
    for relative, text in files.items():
        s3.put(BUCKET, f"{prefix}/{relative}", text)
    return f"s3://{BUCKET}/{prefix}"


def test_a_bucket_prefix_reads_as_the_same_folders_as_a_directory(bucket_env: S3Server, tmp_path: Path) -> None:
    root = upload(bucket_env, "same/sources", FILES)
    for relative, text in FILES.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text, encoding="utf-8")
    remote, local = source_folders_at(root), LocalSourceFolders(tmp_path)
    assert isinstance(remote, ObjectStoreSourceFolders)
    assert remote.source_names() == local.source_names() == ["dagster", "prefect"]
    listing = remote.listing("dagster")
    assert [file.relative for file in listing.files] == [file.relative for file in local.listing("dagster").files]
    # The version is the object's ETag (the MD5 of a simple upload), the size its bytes.
    guide = next(file for file in listing.files if file.relative == "guide.md")
    assert len(guide.version) == 32 and guide.size == len(FILES["dagster/guide.md"]) and guide.mtime > 0
    assert remote.listings() == {name: remote.listing(name) for name in ("dagster", "prefect")}

    def comparable(folders):
        loaded = load_source(folders, "dagster", 1000)
        return (
            [(d.doc_key, d.title, d.text, d.content_hash) for d in loaded.documents],
            [(q.path, q.reason) for q in loaded.quarantined],
        )

    assert comparable(remote) == comparable(local)
    assert remote.source_location("dagster", "guide.md") == f"{root}/dagster/guide.md"


def test_an_unchanged_bucket_is_not_read_again(bucket_env: S3Server) -> None:
    folders = source_folders_at(upload(bucket_env, "stable/sources", {"alpha/a.md": "# A", "beta/b.md": "# B"}))
    first = fingerprint_sources(folders, {})
    stale = {source: SourceFingerprint(stat_signature=value.stat_signature, content="old") for source, value in first.items()}
    # Same keys, sizes and ETags: the recorded content is trusted, no object is read.
    assert {value.content for value in fingerprint_sources(folders, stale).values()} == {"old"}
    # Rewritten with the same bytes: same ETag, nothing to re-read or re-ingest.
    bucket_env.put(BUCKET, "stable/sources/alpha/a.md", "# A")
    assert fingerprint_sources(folders, first) == first
    bucket_env.put(BUCKET, "stable/sources/alpha/a.md", "# A, edited")
    changed = fingerprint_sources(folders, first)
    assert changed["alpha"].content != first["alpha"].content and changed["beta"] == first["beta"]


def test_a_missing_or_empty_prefix_is_unavailable_never_no_sources(bucket_env: S3Server) -> None:
    with pytest.raises(SourcesUnavailable, match="does not exist or holds no object"):
        source_folders_at(f"s3://{BUCKET}/nothing/here").source_names()
    with pytest.raises(SourcesUnavailable, match="bucket does not exist"):
        source_folders_at("s3://no-such-bucket/sources").source_names()
    folders = source_folders_at(upload(bucket_env, "gone/sources", {"alpha/a.md": "# A"}))
    with pytest.raises(SourcesUnavailable, match="does not exist"):
        folders.listing("beta")


def test_an_object_deleted_after_listing_is_treated_as_deleted(bucket_env: S3Server) -> None:
    folders = source_folders_at(upload(bucket_env, "vanish/sources", {"alpha/a.md": "# A", "alpha/b.md": "# B"}))
    listing = folders.listing("alpha")
    bucket_env.delete(BUCKET, "vanish/sources/alpha/b.md")
    with pytest.raises(FileVanished, match="b.md was deleted"):
        folders.read_bytes("alpha", "b.md")
    # Loading from the stale listing skips it, with no quarantine and no crash.
    loaded = load_source(folders, "alpha", 1000)
    assert [d.doc_key for d in loaded.documents] == ["alpha/a.md"] and not loaded.quarantined
    assert [f.relative for f in listing.files] == ["a.md", "b.md"]


def test_an_unreachable_endpoint_fails_the_read_instead_of_quarantining(
    bucket_env: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    folders = source_folders_at(upload(bucket_env, "reach/sources", {"alpha/a.md": "# A"}))
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    unreachable = source_folders_at(folders.location)
    with pytest.raises(StorageUnavailable, match="cannot reach the object store at AWS_ENDPOINT_URL=http://127.0.0.1:9"):
        unreachable.read_bytes("alpha", "a.md")
    with pytest.raises(SourcesUnavailable, match="cannot reach"):
        unreachable.source_names()
