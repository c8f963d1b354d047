"""The knowledge base on object storage (moto's S3 server on a free local port).

`AI_ASSETS_DATA_DIR=s3://bucket/data` is the only setting: the endpoint and credentials come from
the standard AWS_* variables, as a deployment sets them. Covered here: `ai-assets build` from
an empty directory and `search`/`report` from another (no data file on either), LanceDB's own
URI and options as overrides, the sensor on a bucket (never destroying on absence), and the
errors for a bad URI, an unreachable endpoint, a missing bucket and refused credentials.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.build import run_build
from ai_assets.cli import main as cli_main
from ai_assets.core.embedding.base import MINILM
from ai_assets.core.store.tables import source_row_counts
from ai_assets.definitions import INDEX_JOB, INGEST_JOB, build_definitions
from ai_assets.history import latest_metadata
from ai_assets.partitions import SOURCE_DIMENSION
from ai_assets.resources import lancedb_from_settings
from ai_assets.settings import Settings
from ai_assets_tests.conftest import TINY_SOURCES, write_eval_set
from ai_assets_tests.s3_server import S3Server, running_s3, upload_corpus
from ai_assets_tests.sensor_tick import evaluate_sensor, requested
from ai_assets_tests.system import data_files

BIN = Path(sys.executable).parent


def upload_tiny_corpus(s3: S3Server, bucket: str, tmp_path: Path) -> str:
    write_eval_set(tmp_path / "upload")
    return upload_corpus(s3, bucket, TINY_SOURCES, tmp_path / "upload" / "eval")


def test_build_from_one_empty_directory_then_search_and_report_from_another(s3: S3Server, tmp_path: Path) -> None:
    data = upload_tiny_corpus(s3, "kbase", tmp_path)
    build_dir, query_dir, state = tmp_path / "build_here", tmp_path / "query_here", tmp_path / "state"
    build_dir.mkdir()
    query_dir.mkdir()
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_", "AWS_"))},
        **s3.env(),
        "AI_ASSETS_DATA_DIR": data,
        "XDG_STATE_HOME": str(state),  # where the CLI keeps the Dagster instance of an s3:// data dir
    }

    def cli(cwd: Path, *args: str) -> str:
        done = subprocess.run([str(BIN / "ai-assets"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    built = cli(build_dir, "build")
    assert "build complete: 5 runs succeeded" in built
    assert f"dagster instance: {state}/ai_assets/dagster_home/s3_kbase_data" in built
    assert "local model: " in built and "auto: fastest measured on this machine" in built  # what runs and why
    # Up to date on a second build, from the second directory: the instance is the same one.
    assert "build complete: 0 runs succeeded, 5 steps up to date" in cli(query_dir, "build")

    hits = json.loads(cli(query_dir, "search", "cron expression to launch a job", "--k", "2", "--json"))
    assert hits[0]["doc_key"] == "alpha/schedules.md"
    report = json.loads(cli(query_dir, "report", "--json"))
    assert {row["eval_set"] for row in report} == {"tiny_qa", "generated/alpha", "generated/beta"}
    assert next(row for row in report if row["mode"] == "hybrid")["ndcg@10"] > 0.5

    keys = s3.keys("kbase", "data/")
    for prefix in (
        "data/lancedb/chunks__minilm.lance/",
        "data/chunks/document_chunks/alpha.parquet",
        "data/dagster_storage/source_documents/alpha",
        "data/eval_generated/sources/alpha/questions.jsonl",
    ):
        assert any(key.startswith(prefix) for key in keys), prefix
    for directory in (build_dir, query_dir):
        assert list(directory.iterdir()) == [], directory
    assert data_files(state) == []


def test_lancedb_uri_and_options_still_override_a_local_data_dir(
    s3_env: S3Server, data_dir, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    s3_env.client().create_bucket(Bucket="tables-only")
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AI_ASSETS_LANCEDB_URI", "s3://tables-only/kb")
    monkeypatch.setenv("AI_ASSETS_LANCEDB_STORAGE_OPTIONS", json.dumps({"aws_endpoint": s3_env.endpoint}))
    settings = Settings()
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    assert report.ok, report.failures
    assert any(key.startswith(f"kb/chunks__{MINILM.name}.lance/") for key in s3_env.keys("tables-only", "kb/"))
    assert not (data_dir / "lancedb").exists()

    counts = source_row_counts(lancedb_from_settings(settings).table(MINILM, create=False))
    for source in ("alpha", "beta"):
        assert counts[source] == latest_metadata(instance, "document_chunks", source)["chunks"] > 0
    assert latest_metadata(instance, "search_index", MINILM.name)["rows"] == sum(counts.values())
    capsys.readouterr()
    for mode in ("dense", "fts", "hybrid"):
        assert cli_main(["search", "cron expression to launch a job", "--mode", mode, "--k", "1"]) == 0
        assert "alpha/schedules.md" in capsys.readouterr().out, mode


def test_the_sensor_watches_the_bucket_and_never_destroys_on_absence(
    s3_env: S3Server, tmp_path: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = upload_tiny_corpus(s3_env, "watched", tmp_path)
    definitions = build_definitions(Settings(data_dir=data))
    first = evaluate_sensor(definitions, instance, cursor=None)
    assert requested(first) == [(INGEST_JOB, "alpha"), (INGEST_JOB, "beta")]
    assert requested(evaluate_sensor(definitions, instance, first.cursor)) == []

    # Rewritten with the same bytes: same ETag, nothing to run. Edited: that source only.
    s3_env.put("watched", "data/sources/alpha/retries.md", TINY_SOURCES["alpha"]["retries.md"])
    assert requested(evaluate_sensor(definitions, instance, first.cursor)) == []
    s3_env.put("watched", "data/sources/alpha/retries.md", "# Retries\n\nEdited.")
    edited = evaluate_sensor(definitions, instance, first.cursor)
    assert requested(edited) == [(INGEST_JOB, "alpha")]

    # Every object of the prefix gone (a wrong prefix, a bucket emptied by mistake): nothing
    # removed, the tick is skipped with a warning naming the URI, the cursor kept.
    for key in s3_env.keys("watched", "data/sources/"):
        s3_env.delete("watched", key)
    skipped = evaluate_sensor(definitions, instance, edited.cursor)
    assert requested(skipped) == [] and skipped.cursor == edited.cursor
    assert "s3://watched/data/sources" in str(skipped.skip_reason)
    assert sorted(instance.get_dynamic_partitions(SOURCE_DIMENSION)) == ["alpha", "beta"]
    # The bucket itself unreachable: the same.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert requested(evaluate_sensor(build_definitions(Settings(data_dir=data)), instance, edited.cursor)) == []
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env.endpoint)
    assert sorted(instance.get_dynamic_partitions(SOURCE_DIMENSION)) == ["alpha", "beta"]

    # A source absent from a listing that still shows another: removed, its rows go with the index run.
    s3_env.put("watched", "data/sources/alpha/retries.md", "# Retries\n\nEdited.")
    removed = evaluate_sensor(definitions, instance, edited.cursor)
    assert requested(removed) == [(INDEX_JOB, MINILM.name), (INGEST_JOB, "alpha")]  # alpha lost two files
    assert instance.get_dynamic_partitions(SOURCE_DIMENSION) == ["alpha"]


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = cli_main(args)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize(
    ("data_dir", "message"),
    [
        ("s3:/kbase/data", "AI_ASSETS_DATA_DIR='s3:/kbase/data' is not a URI: write s3://bucket/prefix"),
        ("gs://kbase/data", "gs:// needs the Python package gcsfs"),
        ("hdfs://namenode/data", "scheme 'hdfs' is not served"),
    ],
)
def test_a_uri_that_cannot_be_served_is_a_clear_error_never_a_local_folder(
    data_dir: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", data_dir)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    code, output = run_cli(["build"], capsys)
    assert code == 2 and message in output, output
    assert list(tmp_path.iterdir()) == []  # no folder named "s3:", no instance, nothing


def test_missing_bucket_unreachable_endpoint_and_refused_credentials_are_clear_errors(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", "s3://no-such-bucket/data")
    code, output = run_cli(["build"], capsys)
    assert code == 2, output
    assert f"AI_ASSETS_DATA_DIR=s3://no-such-bucket/data: bucket 'no-such-bucket' does not exist at AWS_ENDPOINT_URL={s3_env.endpoint}" in output

    data = upload_tiny_corpus(s3_env, "reachable", tmp_path)
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", data)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    code, output = run_cli(["build"], capsys)
    assert code == 2 and "cannot reach the object store at AWS_ENDPOINT_URL=http://127.0.0.1:9" in output, output
    code, output = run_cli(["search", "anything"], capsys)
    assert code == 2 and "cannot reach the object store" in output, output

    with running_s3(require_auth=True) as strict:
        monkeypatch.setenv("AWS_ENDPOINT_URL", strict.endpoint)
        code, output = run_cli(["build"], capsys)
    assert code == 2 and "access denied" in output and "AWS_ACCESS_KEY_ID" in output, output
    assert s3_env.env()["AWS_SECRET_ACCESS_KEY"] not in output
    # Nothing was written anywhere: no table, no chunk file, no run.
    assert [key for key in s3_env.keys("reachable") if not key.startswith(("data/sources/", "data/eval/"))] == []
    assert not (tmp_path / "home").exists()


def test_import_beir_writes_the_source_and_the_eval_set_into_the_bucket(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from ai_assets_tests.test_cli import write_beir

    s3_env.client().create_bucket(Bucket="imports")
    write_beir(tmp_path / "beir")
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", "s3://imports/data")
    code, output = run_cli(["import-beir", str(tmp_path / "beir"), "--name", "sci"], capsys)
    assert code == 0, output
    assert s3_env.keys("imports") == [
        "data/eval/sci/eval.json", "data/eval/sci/qrels/test.tsv", "data/eval/sci/queries.jsonl",
        "data/sources/sci/corpus.jsonl",
    ]
    assert "into s3://imports/data/sources/sci" in output
    code, output = run_cli(["import-beir", str(tmp_path / "beir"), "--name", "sci"], capsys)
    assert code == 2 and "s3://imports/data/sources/sci already exists" in output, output
