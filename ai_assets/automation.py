"""What keeps the knowledge base fresh without anyone clicking: the source sensor and the daily schedule.

The sensor turns folders into partitions and content changes into ingestion runs; everything
downstream of the documents follows through automation conditions (see each asset), so one
edited file flows to its chunks, vectors, the index, the evaluations and the leaderboard.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import dagster as dg

from ai_assets.core.documents.fingerprints import SourceFingerprint, source_changes
from ai_assets.core.documents.folders import SourcesUnavailable
from ai_assets.dagster_tags import DATA_VERSION_TAG
from ai_assets.history import latest_metadata
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.preview_api import OBSERVABLE_SOURCE_ASSET, ignoring
from ai_assets.resources import SourceFiles

SOURCE_FILES_KEY = "source_files"
CONTENT_FINGERPRINT = "content_fingerprint"  # metadata key of source_documents

def source_files_asset(
    names: KnowledgeBaseNames, partitions: dg.DynamicPartitionsDefinition, source_files: SourceFiles
) -> dg.AssetsDefinition:
    """The files themselves: not computed by Dagster, observed. Their data version is the folder's
    content fingerprint, so a changed file marks exactly its source's documents stale.

    source_sensor and `ai-assets build` record the observations, without a run. Observable (a
    Beta API, see preview_api.py), so the UI shows it by its latest observation, not as an asset
    never materialized, and "Observe" fingerprints a source's folder on demand."""
    with ignoring(*OBSERVABLE_SOURCE_ASSET):

        @dg.multi_observable_source_asset(
            name=names.name("observe_source_files"),
            specs=[
                dg.AssetSpec(
                    names.key(SOURCE_FILES_KEY),
                    partitions_def=partitions,
                    group_name=names.name("ingestion"),
                    kinds={"file"},
                    description=(
                        "The files of one source folder under data/sources/ (on disk or in a bucket). Observed "
                        "by source_sensor and `ai-assets build`: its data version is a hash of every file's "
                        "path and bytes."
                    ),
                )
            ],
            partitions_def=partitions,
        )
        # ``context`` unannotated: Dagster checks the annotation's type, a string in this module.
        def observe_source_files(context) -> Iterator[dg.ObserveResult]:  # noqa: ANN001
            fingerprint = source_files.content_fingerprint(context.partition_key)
            yield dg.ObserveResult(
                asset_key=names.key(SOURCE_FILES_KEY),
                data_version=dg.DataVersion(fingerprint),
                metadata={CONTENT_FINGERPRINT: fingerprint},
            )

    return observe_source_files


def source_observation(names: KnowledgeBaseNames, source: str, fingerprint: str) -> dg.AssetObservation:
    return dg.AssetObservation(
        names.key(SOURCE_FILES_KEY),
        partition=source,
        tags={DATA_VERSION_TAG: fingerprint},
        metadata={CONTENT_FINGERPRINT: fingerprint},
    )


def read_cursor(cursor: str | None) -> dict[str, SourceFingerprint]:
    if not cursor:
        return {}
    return {source: SourceFingerprint(**value) for source, value in json.loads(cursor).items()}


def write_cursor(fingerprints: dict[str, SourceFingerprint]) -> str:
    return json.dumps({source: value.model_dump() for source, value in sorted(fingerprints.items())})


def ingested_fingerprints(
    instance: dg.DagsterInstance, names: KnowledgeBaseNames, sources: Sequence[str]
) -> dict[str, SourceFingerprint]:
    """The content last ingested for each source, so a sensor with no cursor yet (a new instance,
    a reset sensor) does not re-run sources that `ai-assets build` already ingested."""
    known: dict[str, SourceFingerprint] = {}
    for source in sources:
        metadata = latest_metadata(instance, names.key("source_documents"), source)
        if metadata and CONTENT_FINGERPRINT in metadata:
            known[source] = SourceFingerprint(stat_signature="", content=str(metadata[CONTENT_FINGERPRINT]))
    return known


def build_source_sensor(
    names: KnowledgeBaseNames,
    partitions: dg.DynamicPartitionsDefinition,
    source_files: SourceFiles,
    ingest_job: dg.UnresolvedAssetJobDefinition,
    index_job: dg.UnresolvedAssetJobDefinition,
    embedders: Sequence[str],
    interval_seconds: int,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=names.name("source_sensor"),
        jobs=[ingest_job, index_job],
        minimum_interval_seconds=interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Watches the sources root (data/sources/, or its bucket prefix): a new folder becomes a source "
            "partition and is ingested; a file whose bytes changed re-ingests its source only (a touched, "
            "unchanged file does nothing); a removed folder loses its partition, and the index runs that "
            "follow delete its rows. A root that is missing, unreadable or suddenly empty removes nothing "
            "(the tick is skipped with a warning). The cursor holds each source's listing signature and "
            "content fingerprint, so an unchanged root costs one listing per tick and survives restarts."
        ),
    )
    # ``source_files`` comes in by closure, not as a resource: a resource key has to carry the
    # knowledge base's name, and a sensor called directly receives its required resources as
    # keyword arguments, which a parameter name cannot follow.
    def source_sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        known = set(context.instance.get_dynamic_partitions(partitions.name))
        previous = read_cursor(context.cursor)
        if not previous:
            previous = ingested_fingerprints(context.instance, names, sorted(known))
        try:
            # One listing of the sources root per tick; bytes are read only where a listed
            # object's size or version (ETag, modification time) moved.
            current = source_files.fingerprints(previous)
            changes = source_changes(previous, current, known, source_files.sources_dir)
        except SourcesUnavailable as error:
            # Missing, unreadable or suddenly empty: never read as "every source was deleted".
            context.log.warning(f"source_sensor skipped, nothing added or removed: {error}")
            return dg.SensorResult(skip_reason=f"sources unavailable: {error}", cursor=context.cursor)

        requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
        if changes.added:
            requests.append(partitions.build_add_request(changes.added))
        if changes.removed:
            requests.append(partitions.build_delete_request(changes.removed))
        runs = [
            dg.RunRequest(job_name=ingest_job.name, partition_key=source, tags={"ai_assets/trigger": "source changed"})
            for source in changes.changed
        ]
        if changes.removed:
            # search_index deletes the rows of sources that no longer have a partition.
            runs.extend(
                dg.RunRequest(job_name=index_job.name, partition_key=embedder, tags={"ai_assets/trigger": "source removed"})
                for embedder in embedders
            )
        if changes.changed or changes.removed:
            context.log.info(
                f"added {changes.added}, changed {changes.changed}, removed {changes.removed}"
            )
        return dg.SensorResult(
            run_requests=runs,
            dynamic_partitions_requests=requests,
            asset_events=[source_observation(names, source, current[source].content) for source in changes.changed],
            cursor=write_cursor(current),
            skip_reason=None if runs else "no source added, changed or removed",
        )

    return source_sensor


def build_daily_refresh(
    names: KnowledgeBaseNames, ingest_job: dg.UnresolvedAssetJobDefinition, cron: str
) -> dg.ScheduleDefinition:
    @dg.schedule(
        name=names.name("daily_refresh"),
        job=ingest_job,
        cron_schedule=cron,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=(
            "Re-ingests every source once a day. Downstream assets follow by automation, so the index "
            "and the evaluations are refreshed (and stay within their freshness policies) even when no "
            "file changed; unchanged chunks are not embedded again."
        ),
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext) -> Sequence[dg.RunRequest]:
        sources = context.instance.get_dynamic_partitions(names.source_partitions_name)
        tick = context.scheduled_execution_time.isoformat()
        return [
            dg.RunRequest(run_key=f"{source}@{tick}", partition_key=source, tags={"ai_assets/trigger": "daily refresh"})
            for source in sources
        ]

    return daily_refresh
