"""`ai-assets build`: materialize what is missing or stale through Dagster, against the persistent instance.

Runs go through the instance (``DAGSTER_HOME``) so they, their metadata and their lineage
show in the Dagster UI afterwards, exactly as if launched from there. Like `make`, a build
skips the runs whose assets are up to date (``up_to_date.UpToDate``: Dagster's staleness rules
read from each partition's latest materialization, plus what Dagster cannot see), so
rebuilding an unchanged corpus launches no run at all; ``force`` runs everything.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

from ai_assets.automation import CONTENT_FINGERPRINT, source_observation
from ai_assets.core.documents.fingerprints import sources_to_remove
from ai_assets.core.documents.folders import SourcesUnavailable
from ai_assets.definitions import EMBED_JOB, INDEX_JOB, INGEST_JOB
from ai_assets.partitions import SOURCE_DIMENSION, source_embedder_key
from ai_assets.resources import SourceFiles
from ai_assets.up_to_date import BuildStep, UpToDate

Echo = Callable[[str], None]
# The terminal shows progress and problems; every event is still stored for the UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class BuildReport:
    added_sources: list[str] = field(default_factory=list)
    removed_sources: list[str] = field(default_factory=list)
    runs: list[tuple[str, str, bool, float]] = field(default_factory=list)  # job, partition, ok, seconds
    up_to_date: list[tuple[str, str]] = field(default_factory=list)  # job, partition: skipped, nothing changed
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def sync_source_partitions(instance: dg.DagsterInstance, source_files: SourceFiles) -> tuple[list[str], list[str]]:
    """Add a partition per new source folder and drop those of vanished folders.

    The rows of a dropped source are deleted by the search_index runs that follow.
    """
    try:
        folders = set(source_files.source_names())
        known = set(instance.get_dynamic_partitions(SOURCE_DIMENSION))
        added, removed = sorted(folders - known), sources_to_remove(known, folders, source_files.sources_dir)
    except SourcesUnavailable as error:
        # Never read as "no sources": that would remove every source's partition and rows.
        raise ValueError(f"{error}; put one folder per source there, or set AI_ASSETS_DATA_DIR") from None
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
    force: bool = False,
) -> BuildReport:
    """Ingest and embed every source, then index and evaluate every embedder: each run only when
    its assets are missing or stale, or an upstream run of this build changed something (all with ``force``)."""
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
    fingerprints = {source: source_files.content_fingerprint(source) for source in selected}
    up_to_date = UpToDate(defs, instance, fingerprints, removed_sources=report.removed_sources)
    for source, fingerprint in fingerprints.items():
        documents = up_to_date.latest("source_documents", source)
        if documents is None or documents.metadata.get(CONTENT_FINGERPRINT) != fingerprint:
            # What source_sensor would record: the files' data version, so the UI marks what they make stale.
            instance.report_runless_asset_event(source_observation(source, fingerprint))

    steps: list[BuildStep] = []
    for source in selected:
        steps.append(BuildStep(INGEST_JOB, source))
        steps.extend(
            BuildStep(EMBED_JOB, source_embedder_key(source, embedder)) for embedder in embedders
        )
    steps.extend(BuildStep(INDEX_JOB, embedder) for embedder in embedders)

    ran: list[BuildStep] = []
    failed_sources: set[str] = set()
    for number, step in enumerate(steps, start=1):
        job_name, partition, source = step.job, step.partition, step.source
        label = f"{job_name} {partition}" if partition is not None else job_name
        if source in failed_sources:
            echo(f"[{number}/{len(steps)}] {label}: skipped, ingestion of {source} failed")
            continue
        reason = "forced" if force else up_to_date.reason_to_run(step, ran)
        if reason is None:
            report.up_to_date.append((job_name, str(partition or "")))
            echo(f"[{number}/{len(steps)}] {label}: up to date")
            continue
        ran.append(step)
        echo(f"[{number}/{len(steps)}] {label} ({reason}) ...")
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


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = [
        f"{event.step_key}: {event.step_failure_data.error.message.strip()}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    return "; ".join(messages) or "the run failed (see the run's logs in the Dagster UI)"
