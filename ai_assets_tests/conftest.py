"""Shared fixtures: a tiny corpus in a temp data dir, settings and a temp Dagster instance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ai_assets.settings import Settings
from ai_assets_tests.postgres_server import PostgresServer, postgres_bin_dir, running_postgres
from ai_assets_tests.s3_server import S3Server, running_s3
from ai_assets_tests.system import missing_system_package

TINY_SOURCES: dict[str, dict[str, str]] = {
    "alpha": {
        "retries.md": (
            "# Retries\n\nA run retry starts the whole run again after a failure.\n\n"
            "Set the maximum number of retries with the max_retries tag. Retries back off "
            "exponentially between attempts, with jitter so that many runs do not retry at once."
        ),
        "schedules.md": (
            "# Schedules\n\nA schedule launches a job at fixed times, written as a cron expression.\n\n"
            "The daemon must be running for schedules to tick."
        ),
        "notes/partitions.txt": (
            "Partitions split an asset into slices, for example one per day or one per customer. "
            "Backfills materialize many partitions at once."
        ),
    },
    "beta": {
        "sensors.html": (
            "<html><head><title>Sensors</title><style>body{color:red}</style></head><body>"
            "<h1>Sensors</h1><p>A sensor polls for new files and requests runs when something changed.</p>"
            "<script>var x = 1;</script><p>Its cursor remembers what it has already seen.</p></body></html>"
        ),
        "flows.rst": (
            "Flows\n=====\n\nA flow is a Python function decorated with the flow decorator. "
            "Flows call tasks and track their state."
        ),
    },
}


def write_sources(data_dir: Path, sources: dict[str, dict[str, str]] = TINY_SOURCES) -> None:
    for source, files in sources.items():
        for relative, text in files.items():
            path = data_dir / "sources" / source / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")


def write_eval_set(data_dir: Path, name: str = "tiny_qa") -> None:
    eval_dir = data_dir / "eval" / name
    (eval_dir / "qrels").mkdir(parents=True)
    queries = {
        "q1": "how many times is a failed run retried",
        "q2": "cron expression to launch a job",
        "q3": "sensor cursor for new files",
        "q4": "a question nobody judged relevant",
    }
    (eval_dir / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": key, "text": text}) + "\n" for key, text in queries.items()), encoding="utf-8"
    )
    (eval_dir / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n"
        "q1\talpha/retries.md\t2\n"
        "q2\talpha/schedules.md\t1\n"
        "q3\tbeta/sensors.html\t1\n"
        "q3\talpha/schedules.md\t0\n"
        "q4\tbeta/flows.rst\t0\n",
        encoding="utf-8",
    )
    (eval_dir / "eval.json").write_text(json.dumps({"sources": ["alpha", "beta"]}), encoding="utf-8")
    answers = {
        "q1": "Set the maximum number of retries with the max_retries tag.",
        "q2": "A schedule launches a job at fixed times, written as a cron expression.",
        "q3": "Its cursor remembers what it has already seen.",
    }
    (eval_dir / "answers.jsonl").write_text(
        "".join(json.dumps({"_id": key, "answer": text}) + "\n" for key, text in answers.items()), encoding="utf-8"
    )


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own key or settings must not switch tests onto the OpenAI path or elsewhere."""
    for name in [f"AI_ASSETS_{field.upper()}" for field in Settings.model_fields] + ["OPENAI_API_KEY", "OPENAI_BASE_URL"]:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "data"
    write_sources(directory)
    write_eval_set(directory)
    return directory


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as test_instance:
        yield test_instance


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    """moto's S3 server, one per test module."""
    with running_s3() as server:
        yield server


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """The server, reached through the standard AWS_* variables as a deployment would."""
    for name, value in s3.env().items():
        monkeypatch.setenv(name, value)
    return s3


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (Debian's package), one per test module."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        missing_system_package("PostgreSQL not found: `apt-get install -y postgresql` (.ci/run does)")
    with running_postgres(bin_dir) as server:
        yield server
