"""`ai-assets build`: materialize every asset through Dagster against the persistent instance.

Runs go through the instance (``DAGSTER_HOME``) so they, their metadata and their lineage
show in the Dagster UI afterwards, exactly as if launched from there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from ai_assets.automation import source_observation
from ai_assets.definitions import EMBED_JOB, INDEX_JOB, INGEST_JOB, LEADERBOARD_JOB
from ai_assets.partitions import EMBEDDER_DIMENSION, SOURCE_DIMENSION
from ai_assets.resources import SourceFiles

Echo = Callable[[str], None]
# The terminal shows progress and problems; every event is still stored for the UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class BuildReport:
    added_sources: list[str] = field(default_factory=list)
    removed_sources: list[str] = field(default_factory=list)
    runs: list[tuple[str, str, bool, float]] = field(default_factory=list)  # job, partition, ok, seconds
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def sync_source_partitions(instance: dg.DagsterInstance, source_files: SourceFiles) -> tuple[list[str], list[str]]:
    """Add a partition per new source folder and drop those of vanished folders.

    The rows of a dropped source are deleted by the search_index runs that follow.
    """
    folders = set(source_files.source_names())
    known = set(instance.get_dynamic_partitions(SOURCE_DIMENSION))
    added, removed = sorted(folders - known), sorted(known - folders)
    if added:
        instance.add_dynamic_partitions(SOURCE_DIMENSION, added)
    for source in removed:
        instance.delete_dynamic_partition(SOURCE_DIMENSION, source)
    return added, removed


def run_build(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    embedders: Sequence[str],
    sources: Sequence[str] | None = None,
    echo: Echo = print,
) -> BuildReport:
    """Ingest and embed every source, then index and evaluate every embedder."""
    source_files: SourceFiles = defs.resources["source_files"]  # type: ignore[assignment]
    report = BuildReport()
    report.added_sources, report.removed_sources = sync_source_partitions(instance, source_files)
    for source in report.added_sources:
        echo(f"new source: {source}")
    for source in report.removed_sources:
        echo(f"removed source: {source} (the index runs delete its rows)")

    all_sources = source_files.source_names()
    selected = list(sources) if sources else all_sources
    unknown = sorted(set(selected) - set(all_sources))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; sources are the folders under {source_files.sources_dir}")
    if not all_sources:
        echo(f"no sources under {source_files.sources_dir}: nothing to index")
    for source in selected:
        # What source_sensor would record: the files' data version, so the UI can tell when they move on.
        instance.report_runless_asset_event(source_observation(source, source_files.content_fingerprint(source)))

    steps: list[tuple[str, str | dg.MultiPartitionKey | None]] = []
    for source in selected:
        steps.append((INGEST_JOB, source))
        steps.extend(
            (EMBED_JOB, dg.MultiPartitionKey({SOURCE_DIMENSION: source, EMBEDDER_DIMENSION: embedder}))
            for embedder in embedders
        )
    steps.extend((INDEX_JOB, embedder) for embedder in embedders)
    steps.append((LEADERBOARD_JOB, None))

    failed_sources: set[str] = set()
    for number, (job_name, partition) in enumerate(steps, start=1):
        source = _source_of(job_name, partition)
        if source in failed_sources:
            echo(f"[{number}/{len(steps)}] {job_name} {partition}: skipped, ingestion of {source} failed")
            continue
        label = f"{job_name} {partition}" if partition is not None else job_name
        echo(f"[{number}/{len(steps)}] {label} ...")
        started = time.perf_counter()
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance,
            partition_key=str(partition) if partition is not None else None,
            raise_on_error=False,
            run_config=QUIET_RUN_CONFIG,
        )
        seconds = time.perf_counter() - started
        report.runs.append((job_name, str(partition or ""), result.success, seconds))
        # A failed ERROR check (a blocking quality gate among them) fails the build; a WARN is shown.
        for evaluation in result.get_asset_check_evaluations():
            if evaluation.passed:
                continue
            check = f"check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} failed"
            detail = f": {evaluation.description}" if evaluation.description else ""
            if evaluation.severity == dg.AssetCheckSeverity.ERROR:
                report.failures.append(f"{check} ({label}){detail}")
            echo(f"    {check} ({evaluation.severity.value.lower()}){detail}")
        if result.success:
            echo(f"[{number}/{len(steps)}] {label}: ok in {seconds:.1f}s (run {result.run_id[:8]})")
            continue
        message = f"{label} failed (run {result.run_id}): {_failure_message(result)}"
        report.failures.append(message)
        echo(f"[{number}/{len(steps)}] {message}")
        if job_name == INGEST_JOB and source:
            failed_sources.add(source)
    return report


def _source_of(job_name: str, partition: str | dg.MultiPartitionKey | None) -> str | None:
    if job_name == INGEST_JOB:
        return str(partition)
    if isinstance(partition, dg.MultiPartitionKey):
        return partition.keys_by_dimension[SOURCE_DIMENSION]
    return None


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    return "; ".join(messages) or "the run failed (see the run's logs in the Dagster UI)"
