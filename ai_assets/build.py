"""`ai-assets build`: materialize what is missing or stale through Dagster, against the persistent instance.

Runs go through the instance (``DAGSTER_HOME``) so they, their metadata and their lineage
show in the Dagster UI afterwards, exactly as if launched from there. Like `make`, a build
skips the runs whose assets are up to date (``up_to_date.UpToDate``: Dagster's staleness rules
read from each partition's latest materialization, plus what Dagster cannot see), so
rebuilding an unchanged corpus launches no run at all; ``force`` runs everything.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from ai_assets.automation import CONTENT_FINGERPRINT, source_observation
from ai_assets.build_process import StepState, no_sources_message
from ai_assets.core.documents.fingerprints import sources_to_remove
from ai_assets.core.documents.folders import SourcesUnavailable
from ai_assets.naming import DEFAULT_NAMES, EMBED_JOB, INDEX_JOB, INGEST_JOB, KnowledgeBaseNames
from ai_assets.partitions import source_embedder_key
from ai_assets.resources import SourceFiles
from ai_assets.run_recovery import ProcessIdentity
from ai_assets.up_to_date import BuildStep, UpToDate

Echo = Callable[[str], None]
# The terminal shows progress and problems; every event is still stored for the UI.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
# Metadata keys of source_documents that count what was not indexed ("skipped_unsupported" is
# the older name of "skipped").
QUARANTINED, SKIPPED, OLD_SKIPPED = "quarantined", "skipped", "skipped_unsupported"


@dataclass
class BuildReport:
    added_sources: list[str] = field(default_factory=list)
    removed_sources: list[str] = field(default_factory=list)
    runs: list[tuple[str, str, bool, float]] = field(default_factory=list)  # job, partition, ok, seconds
    up_to_date: list[tuple[str, str]] = field(default_factory=list)  # job, partition: skipped, nothing changed
    failures: list[str] = field(default_factory=list)
    quarantined_files: int = 0  # over the sources ingested by this build
    skipped_files: int = 0

    @property
    def ok(self) -> bool:
        return not self.failures


def sync_source_partitions(
    instance: dg.DagsterInstance, names: KnowledgeBaseNames, source_files: SourceFiles
) -> tuple[list[str], list[str]]:
    """Add a partition per new source folder and drop those of vanished folders.

    The rows of a dropped source are deleted by the search_index runs that follow.
    """
    try:
        folders = set(source_files.source_names())
        known = set(instance.get_dynamic_partitions(names.source_partitions_name))
        added, removed = sorted(folders - known), sources_to_remove(known, folders, source_files.sources_dir)
    except SourcesUnavailable as error:
        # Never read as "no sources": that would remove every source's partition and rows.
        raise ValueError(no_sources_message(error, source_files.sources_uri)) from None
    if added:
        instance.add_dynamic_partitions(names.source_partitions_name, added)
    for source in removed:
        instance.delete_dynamic_partition(names.source_partitions_name, source)
    return added, removed


def run_build(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    embedders: Sequence[str],
    sources: Sequence[str] | None = None,
    echo: Echo = print,
    force: bool = False,
    build_id: str | None = None,
    on_step: Callable[[StepState], None] = lambda _: None,
    data_dir: str | None = None,
    names: KnowledgeBaseNames = DEFAULT_NAMES,
) -> BuildReport:
    """Ingest and embed every source, then index and evaluate every embedder: each run only when
    its assets are missing or stale, or an upstream run of this build changed something (all with ``force``).

    Every run is tagged with ``build_id`` and this process's identity, so a run left behind by a
    killed build can be told from a live one (``run_recovery``); ``on_step`` hears of each step
    before it starts and when it ends (the supervisor of `ai-assets build` reports from it). ``names``:
    those of the knowledge base that ``defs`` define."""
    source_files: SourceFiles = defs.resources[names.name("source_files")]  # type: ignore[assignment]
    report = BuildReport()
    report.added_sources, report.removed_sources = sync_source_partitions(instance, names, source_files)
    for source in report.added_sources:
        echo(f"new source: {source}")
    for source in report.removed_sources:
        echo(f"removed source: {source} (the index runs delete its rows)")

    all_sources = source_files.source_names()
    selected = list(sources) if sources else all_sources
    unknown = sorted(set(selected) - set(all_sources))
    if unknown:
        raise ValueError(f"unknown source(s) {unknown}; sources are the folders under {source_files.sources_dir}")
    if not all_sources and not report.removed_sources:
        raise ValueError(
            f"no source folders under {source_files.sources_dir}: put one folder per source there "
            "(sources/<name>/ with its documents), or set AI_ASSETS_DATA_DIR to another data dir"
        )
    fingerprints = {source: source_files.content_fingerprint(source) for source in selected}
    up_to_date = UpToDate(defs, names, instance, fingerprints, removed_sources=report.removed_sources)
    for source, fingerprint in fingerprints.items():
        documents = up_to_date.latest("source_documents", source)
        if documents is None or documents.metadata.get(CONTENT_FINGERPRINT) != fingerprint:
            # What source_sensor would record: the files' data version, so the UI marks what they make stale.
            instance.report_runless_asset_event(source_observation(names, source, fingerprint))

    steps: list[BuildStep] = []
    for source in selected:
        steps.append(BuildStep(INGEST_JOB, source))
        steps.extend(
            BuildStep(EMBED_JOB, source_embedder_key(source, embedder)) for embedder in embedders
        )
    steps.extend(BuildStep(INDEX_JOB, embedder) for embedder in embedders)

    labels = [f"{names.name(step.job)} {step.partition}" for step in steps]
    for number, label in enumerate(labels, start=1):
        on_step(StepState(number, label, "pending"))
    # One tag a run: the build's id, its process and the data dir (Settings.data_dir) it builds.
    run_tags = ProcessIdentity.current(data_dir or "", build_id or uuid.uuid4().hex).tags()

    ran: list[BuildStep] = []
    failed_sources: set[str] = set()
    failed_embeddings: dict[str, str] = {}  # embedder -> a step of it that failed
    for number, (step, label) in enumerate(zip(steps, labels, strict=True), start=1):
        job_name, partition, source = step.job, step.partition, step.source
        skip = None
        if source in failed_sources:
            skip = f"ingestion of {source} failed"
        elif job_name == INDEX_JOB and step.embedder in failed_embeddings:
            # An index and evaluation over a partly failed embedding would score what is not there.
            skip = f"{failed_embeddings[step.embedder]} failed"
        if skip:
            echo(f"[{number}/{len(steps)}] {label}: skipped, {skip}")
            on_step(StepState(number, label, "skipped"))
            continue
        reason = "forced" if force else up_to_date.reason_to_run(step, ran)
        if reason is None:
            report.up_to_date.append((job_name, str(partition or "")))
            echo(f"[{number}/{len(steps)}] {label}: up to date")
            on_step(StepState(number, label, "up to date"))
            continue
        ran.append(step)
        echo(f"[{number}/{len(steps)}] {label} ({reason}) ...")
        run_id = str(uuid.uuid4())  # known before the run starts, so it can be canceled from outside
        on_step(StepState(number, label, "running", run_id))
        started = time.perf_counter()
        result = defs.resolve_job_def(names.name(job_name)).execute_in_process(
            instance=instance,
            partition_key=str(partition) if partition is not None else None,
            raise_on_error=False,
            run_config=QUIET_RUN_CONFIG,
            run_id=run_id,
            tags=run_tags,
        )
        seconds = time.perf_counter() - started
        on_step(StepState(number, label, "ok" if result.success else "failed", run_id))
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
            if job_name == INGEST_JOB:
                echo_ingested(result, names, report, echo)
            continue
        message = f"{label} failed (run {result.run_id}): {_failure_message(result)}"
        report.failures.append(message)
        echo(f"[{number}/{len(steps)}] {message}")
        if job_name == INGEST_JOB and source:
            failed_sources.add(source)
        if job_name == EMBED_JOB and step.embedder:
            failed_embeddings.setdefault(step.embedder, label)
    return report


def echo_ingested(
    result: dg.ExecuteInProcessResult, names: KnowledgeBaseNames, report: BuildReport, echo: Echo
) -> None:
    """What the ingestion read and left out, from its source_documents materialization."""
    materializations = result.asset_materializations_for_node(names.key("source_documents").to_python_identifier())
    if not materializations:
        return
    metadata: dict[str, Any] = {key: value.value for key, value in materializations[-1].metadata.items()}
    quarantined = int(metadata.get(QUARANTINED, 0))
    skipped = int(metadata.get(SKIPPED, metadata.get(OLD_SKIPPED, 0)))
    report.quarantined_files += quarantined
    report.skipped_files += skipped
    line = f"    {metadata.get('documents', 0)} documents read, {quarantined} file(s) quarantined, {skipped} skipped"
    if quarantined or skipped:
        line += f"; names and reasons: source_documents metadata of run {result.run_id[:8]} in the Dagster UI"
    echo(line)


def _failure_message(result: dg.ExecuteInProcessResult) -> str:
    messages = [
        f"{event.step_key}: {root_cause(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure and event.step_failure_data.error is not None
    ]
    return "; ".join(messages) or "the run failed (see the run's logs in the Dagster UI)"


def root_cause(error: Any) -> str:
    """The innermost error's message: Dagster wraps a step's own error (in "Error occurred while
    executing op ...", or "Exceeded max_retries of 3" after its retries), and the cause is what
    the user can act on. Says how many retries were spent when there were some."""
    outer = error.message.strip()
    while error.cause is not None:
        error = error.cause
    message = error.message.strip()
    if error.cls_name:  # "ai_assets.core.embedding.openai_errors.ServiceUnavailable: ..." -> "..."
        message = re.sub(rf"^(?:[\w.]+\.)?{re.escape(error.cls_name)}: ", "", message)
    if outer.startswith("Exceeded max_retries"):
        message += f" ({outer[0].lower()}{outer[1:]})"
    return message
