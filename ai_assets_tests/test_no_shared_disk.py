"""The whole graph with no shared local disk: S3 (moto's server) and PostgreSQL are all that steps share.

Every step (a sensor tick, `source_documents`, `document_chunks`, `chunk_embeddings` for three
sources at once, `search_index`, `retrieval_evaluation`) runs in its own process with its own
empty working directory, `TMPDIR`, `XDG_CACHE_HOME` and `DAGSTER_HOME` (a `dagster.yaml` on the
shared PostgreSQL), as pods of a Kubernetes run launcher would. No step directory may hold a
Parquet file or a pickle afterwards. Then objects are added, edited and deleted in the bucket,
the sensor decides what to run, that runs the same way, and the result is read back from yet
another empty directory: exact rows per source, no stale row, search hits, the evaluation.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dagster as dg
import lancedb
import pytest

from ai_assets.core.embedding.base import MINILM
from ai_assets.core.store.tables import scan, source_row_counts, table_name
from ai_assets.definitions import INDEX_JOB, INGEST_JOB
from ai_assets.history import latest_metadata
from ai_assets.retries import MODEL_POOL
from ai_assets_tests.conftest import TINY_SOURCES, write_eval_set
from ai_assets_tests.postgres_server import PostgresServer
from ai_assets_tests.s3_server import S3Server, upload_corpus
from ai_assets_tests.system import data_files
from ai_assets_tests.test_postgres import step_windows

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
BUCKET = "kbase"
# The Docker deployment's instance: PostgreSQL, the Docker run launcher, step logs in S3.
INSTANCE_YAML = REPO / "deploy" / "docker" / "dagster.yaml"
DATA = f"s3://{BUCKET}/data"
SOURCES = {
    **TINY_SOURCES,
    "gamma": {
        "backfills.md": "# Backfills\n\nA backfill materializes many partitions of an asset in one launch.",
        "io.md": "# IO managers\n\nAn IO manager stores the output of an asset and loads it downstream.",
    },
}


class Steps:
    """Runs each step as its own process, in its own empty directories, and checks what it left there."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root, self.env, self.count = root, env, 0
        self.step_dirs: list[Path] = []
        self._lock = threading.Lock()  # steps start from several threads at once

    def run(self, label: str, command: list[str], stdin: str = "") -> str:
        with self._lock:
            self.count += 1
            step = self.root / f"{self.count:02d}-{label.replace(' ', '_').replace('|', '_')}"
        dirs = {name: step / name for name in ("work", "home", "tmp", "cache", "state")}
        for directory in dirs.values():
            directory.mkdir(parents=True)
        shutil.copy(INSTANCE_YAML, dirs["home"] / "dagster.yaml")
        env = {
            **self.env,
            "DAGSTER_HOME": str(dirs["home"]),
            "TMPDIR": str(dirs["tmp"]),
            "XDG_CACHE_HOME": str(dirs["cache"]),
            "XDG_STATE_HOME": str(dirs["state"]),
        }
        done = subprocess.run(
            command, cwd=dirs["work"], env=env, input=stdin, capture_output=True, text=True, timeout=900
        )
        assert done.returncode == 0, f"{label}:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
        self.step_dirs.append(step)
        return done.stdout

    def materialize(self, asset: str, partition: str) -> str:
        return self.run(
            f"{asset} {partition}",
            [str(BIN / "dagster"), "asset", "materialize", "-m", "ai_assets.definitions",
             "--select", asset, "--partition", partition,
             # The step runs in this process, as a step pod of k8s_job_executor does (the
             # multiprocess executor would start one more process per step, ~3 s each).
             "--config-json", json.dumps({"execution": {"config": {"in_process": {}}}})],
        )

    def at_once(self, asset: str, partitions: list[str]) -> None:
        in_parallel([lambda partition=partition: self.materialize(asset, partition) for partition in partitions])

    def sensor_tick(self, cursor: str | None) -> dict:
        return json.loads(self.run("sensor", [sys.executable, "-m", "ai_assets_tests.sensor_tick"], cursor or ""))

    def cli(self, *args: str) -> str:
        return self.run(args[0], [str(BIN / "ai-assets"), *args])


def in_parallel(calls: list[Callable[[], object]]) -> list[object]:
    """Each call in its own thread, all at once; their results in order (the first error raised)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def ingest(steps: Steps, sources: list[str]) -> None:
    """What an ingest run request asks for, one step (and one process) per asset. Each source's
    two steps follow each other; the sources go at once (a source's chunks need only its documents)."""

    def ingest_one(source: str) -> None:
        steps.materialize("source_documents", source)
        steps.materialize("document_chunks", source)

    in_parallel([lambda source=source: ingest_one(source) for source in sources])


def index_and_evaluate(steps: Steps) -> None:
    steps.materialize("search_index", MINILM.name)
    steps.materialize("retrieval_evaluation,served_index", MINILM.name)  # one step, selected together


@pytest.fixture
def step_root() -> Iterator[Path]:
    """Where the steps' directories go: a short path, as a pod's /tmp is. Under pytest's longer
    tmp_path, a step's TMPDIR would be too long for a forkserver's socket and the parsing
    workers would be spawned instead, each importing Dagster again (slower, same results)."""
    root = Path(tempfile.mkdtemp(prefix="nsd-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


def test_the_graph_runs_with_no_shared_local_disk(
    s3: S3Server, postgres: PostgresServer, tmp_path: Path, step_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_eval_set(tmp_path / "upload")
    assert upload_corpus(s3, BUCKET, SOURCES, tmp_path / "upload" / "eval") == DATA
    env = {
        **{key: value for key, value in os.environ.items() if not key.startswith(("AI_ASSETS_", "DAGSTER_", "AWS_"))},
        **postgres.env(),
        **s3.env(),
        "AI_ASSETS_DATA_DIR": DATA,
        "DAGSTER_COMPUTE_LOGS_BUCKET": BUCKET,
        # PyTorch for the chunks: each embedding step has an empty cache, and exporting the model
        # to ONNX there would cost ~10 s a step. Queries are encoded in ONNX Runtime regardless.
        "AI_ASSETS_LOCAL_PRECISION": "fp32",
        # One parsing worker per step: a source here is two or three tiny files, and three steps
        # share two cores; a worker per core would be one more process start-up per step.
        "AI_ASSETS_PARSE_WORKERS": "1",
    }
    for name, value in {**postgres.env(), **s3.env()}.items():
        monkeypatch.setenv(name, value)
    steps = Steps(step_root, env)
    with dg.DagsterInstance.from_config(str(control_home(tmp_path))) as instance:
        # Three embedding steps may run at once, so all three race to create the table.
        instance.event_log_storage.set_concurrency_slots(MODEL_POOL, 3)

    first = steps.sensor_tick(None)
    assert first["runs"] == [[INGEST_JOB, source] for source in sorted(SOURCES)]
    ingest(steps, sorted(SOURCES))
    steps.at_once("chunk_embeddings", [f"{MINILM.name}|{source}" for source in sorted(SOURCES)])
    index_and_evaluate(steps)
    expect_index(SOURCES, control_home(tmp_path))
    with dg.DagsterInstance.from_config(str(control_home(tmp_path))) as instance:
        # The three embedding steps ran at once (all creating the missing table), none retried.
        windows = step_windows(instance, "chunk_embeddings")
        assert len(windows) == len(SOURCES)
        assert max(start for start, _ in windows) < min(end for _, end in windows), windows
        assert retried_steps(instance) == []

    # An unchanged bucket: nothing to run.
    unchanged = steps.sensor_tick(first["cursor"])
    assert unchanged["runs"] == []

    # Add a source, edit alpha, delete one of beta's objects and every object of gamma.
    s3.put(BUCKET, "data/sources/delta/assets.md", "# Assets\n\nA software-defined asset is an object in storage.")
    s3.put(BUCKET, "data/sources/alpha/retries.md", "# Retries\n\nA run retry is capped by the max_retries tag.")
    s3.delete(BUCKET, "data/sources/beta/flows.rst")
    for relative in SOURCES["gamma"]:
        s3.delete(BUCKET, f"data/sources/gamma/{relative}")
    edited = {
        "alpha": {**SOURCES["alpha"], "retries.md": "# Retries\n\nA run retry is capped by the max_retries tag."},
        "beta": {key: value for key, value in SOURCES["beta"].items() if key != "flows.rst"},
        "delta": {"assets.md": "# Assets\n\nA software-defined asset is an object in storage."},
    }
    changed = steps.sensor_tick(unchanged["cursor"])
    assert changed["runs"] == sorted(
        [[INGEST_JOB, source] for source in ("alpha", "beta", "delta")] + [[INDEX_JOB, MINILM.name]]
    )
    ingest(steps, ["alpha", "beta", "delta"])
    steps.at_once("chunk_embeddings", [f"{MINILM.name}|{source}" for source in ("alpha", "beta", "delta")])
    index_and_evaluate(steps)
    expect_index(edited, control_home(tmp_path))
    expect_answers(steps)

    with dg.DagsterInstance.from_config(str(control_home(tmp_path))) as instance:
        assert retried_steps(instance) == []
    # No step left a data file on its own disk; the data is in the bucket.
    for step in steps.step_dirs:
        assert data_files(step) == [], step.name
    keys = s3.keys(BUCKET)
    for prefix in (
        "data/lancedb/chunks__minilm.lance/",
        "data/chunks/document_chunks/",
        "data/dagster_storage/source_documents/",
        "dagster/compute_logs/",  # the steps' logs, by S3ComputeLogManager
    ):
        assert any(key.startswith(prefix) for key in keys), prefix


def control_home(tmp_path: Path) -> Path:
    """A DAGSTER_HOME for the test itself, on the same PostgreSQL."""
    home = tmp_path / "control_home"
    if not home.is_dir():
        home.mkdir()
        shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    return home


def retried_steps(instance: dg.DagsterInstance) -> list[str]:
    return [
        f"{run.job_name}:{record.event_log_entry.dagster_event.step_key}"
        for run in instance.get_runs()
        for record in instance.get_records_for_run(run.run_id, limit=100_000).records
        if record.event_log_entry.dagster_event is not None
        and record.event_log_entry.dagster_event.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]


def expect_index(sources: dict[str, dict[str, str]], home: Path) -> None:
    """One row per document (each is one chunk here), of exactly the documents in the bucket."""
    table = lancedb.connect(f"{DATA}/lancedb", storage_options={"allow_http": "true"}).open_table(table_name(MINILM.name))
    assert set(source_row_counts(table)) == set(sources)
    documents = set(scan(table, ["doc_key"]).column("doc_key").to_pylist())
    assert documents == {f"{source}/{relative}" for source, files in sources.items() for relative in files}
    # Each of these tiny documents is one chunk: one row per document, none stale.
    assert table.count_rows() == sum(len(files) for files in sources.values())
    counts = source_row_counts(table)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for source in sources:
            assert counts[source] == latest_metadata(instance, "document_chunks", source)["chunks"], source
        assert latest_metadata(instance, "search_index", MINILM.name)["rows"] == table.count_rows()


def expect_answers(steps: Steps) -> None:
    """Search and the evaluation, read from yet another empty directory."""
    # Both only read: they run at once, each in its own process and directories.
    searched, reported = in_parallel([
        lambda: steps.cli("search", "cron expression to launch a job", "--k", "3", "--json"),
        lambda: steps.cli("report", "--json"),
    ])
    hits = json.loads(searched)
    assert hits[0]["doc_key"] == "alpha/schedules.md"
    report = json.loads(reported)
    hybrid = next(row for row in report if row["eval_set"] == "tiny_qa" and row["mode"] == "hybrid")
    assert hybrid["ndcg@10"] > 0.5


def test_the_docker_example_gives_run_containers_what_the_steps_here_needed() -> None:
    """deploy/docker: the run launcher forwards every variable the steps above ran with (beside
    the instance file itself, which they all ran on), and the compose file sets each of them."""
    import yaml

    needed = {"AI_ASSETS_DATA_DIR", "DAGSTER_COMPUTE_LOGS_BUCKET", *S3Server("").env(), *PostgresServer("", 0, "", "").env()}
    instance = yaml.safe_load(INSTANCE_YAML.read_text())
    assert instance["run_launcher"]["class"] == "DockerRunLauncher"
    assert instance["compute_logs"]["class"] == "S3ComputeLogManager"
    forwarded = set(instance["run_launcher"]["config"]["env_vars"])
    assert needed <= forwarded, needed - forwarded
    compose = yaml.safe_load((REPO / "deploy" / "docker" / "docker-compose.yaml").read_text())
    services = compose["services"]
    for service in ("daemon", "webserver", "code-location"):
        assert forwarded <= set(services[service]["environment"]), service
    assert services["code-location"]["environment"]["DAGSTER_CURRENT_IMAGE"] == services["daemon"]["image"]
