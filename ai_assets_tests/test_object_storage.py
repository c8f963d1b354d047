"""The knowledge base on object storage: LanceDB at s3://bucket/path on a local S3-compatible server.

`moto` in server mode speaks the S3 protocol on a free local port. Only configuration changes:
the LanceDB URI, the endpoint in AI_ASSETS_LANCEDB_STORAGE_OPTIONS, and credentials in the
standard AWS_* variables, as a deployment would set them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import dagster as dg
import pytest

from ai_assets.build import run_build
from ai_assets.cli import main as cli_main
from ai_assets.core.embedding.base import MINILM
from ai_assets.core.store.tables import source_row_counts
from ai_assets.definitions import build_definitions
from ai_assets.history import latest_metadata
from ai_assets.resources import lancedb_from_settings
from ai_assets.settings import Settings
from ai_assets_tests.system import free_port

BUCKET = "knowledge-base"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    for name, value in {
        "AWS_ACCESS_KEY_ID": "test-access-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret-key",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def test_build_and_search_with_lancedb_on_s3(
    s3_endpoint: str, data_dir, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AI_ASSETS_LANCEDB_URI", f"s3://{BUCKET}/kb")
    monkeypatch.setenv(
        "AI_ASSETS_LANCEDB_STORAGE_OPTIONS", json.dumps({"aws_endpoint": s3_endpoint, "allow_http": "true"})
    )
    settings = Settings()
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    assert report.ok, report.failures

    # The table lives in the bucket, and nothing was written to the local default location.
    keys = [
        item["Key"]
        for page in boto3.client("s3", endpoint_url=s3_endpoint).get_paginator("list_objects_v2").paginate(
            Bucket=BUCKET, Prefix="kb/"
        )
        for item in page.get("Contents", [])
    ]
    assert any(key.startswith(f"kb/chunks__{MINILM.name}.lance/") for key in keys)
    assert not (data_dir / "lancedb").exists()

    counts = source_row_counts(lancedb_from_settings(settings).table(MINILM, create=False))
    for source in ("alpha", "beta"):
        assert counts[source] == latest_metadata(instance, "document_chunks", source)["chunks"] > 0
    index = latest_metadata(instance, "search_index", MINILM.name)
    assert index["rows"] == sum(counts.values())
    scores = latest_metadata(instance, "retrieval_evaluation", MINILM.name)
    assert scores["tiny_qa/hybrid/ndcg@10"] > 0.5

    # Searching goes to the same bucket: dense, full-text and hybrid.
    capsys.readouterr()
    for mode in ("dense", "fts", "hybrid"):
        assert cli_main(["search", "cron expression to launch a job", "--mode", mode, "--k", "1"]) == 0
        assert "alpha/schedules.md" in capsys.readouterr().out, mode
