"""source_sensor, daily_refresh and staleness against a real instance and real folders (no daemon here;
test_daemon.py lets the daemon tick)."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView, TemporalContext
from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
from dagster._time import get_current_datetime

from ai_assets.automation import read_cursor
from ai_assets.build import run_build
from ai_assets.core.documents.fingerprints import SourceFingerprint, fingerprint_sources, source_changes
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.definitions import INDEX_JOB, INGEST_JOB, build_definitions
from ai_assets.partitions import SOURCE_DIMENSION
from ai_assets.settings import Settings
from ai_assets_tests.sensor_tick import evaluate_sensor, requested


def test_sensor_adds_changes_and_removes_sources_by_content(settings: Settings, instance, data_dir: Path) -> None:
    definitions = build_definitions(settings)
    first = evaluate_sensor(definitions, instance, cursor=None)
    assert requested(first) == [(INGEST_JOB, "alpha"), (INGEST_JOB, "beta")]
    assert sorted(instance.get_dynamic_partitions(SOURCE_DIMENSION)) == ["alpha", "beta"]

    # Nothing changed: nothing requested.
    assert requested(evaluate_sensor(definitions, instance, first.cursor)) == []

    # Touched but byte-identical: the stat signature moves, the content fingerprint does not.
    touched = data_dir / "sources" / "alpha" / "retries.md"
    os.utime(touched, ns=(touched.stat().st_atime_ns, touched.stat().st_mtime_ns + 5_000_000_000))
    after_touch = evaluate_sensor(definitions, instance, first.cursor)
    assert requested(after_touch) == []
    assert read_cursor(after_touch.cursor)["alpha"].stat_signature != read_cursor(first.cursor)["alpha"].stat_signature

    # One changed file: its source only, with the new content observed as the files' data version.
    (data_dir / "sources" / "beta" / "flows.rst").write_text("Flows\n=====\n\nNow with subflows.", encoding="utf-8")
    after_edit = evaluate_sensor(definitions, instance, after_touch.cursor)
    assert requested(after_edit) == [(INGEST_JOB, "beta")]
    assert [(event.asset_key.to_user_string(), event.partition) for event in after_edit.asset_events] == [
        ("source_files", "beta")
    ]

    # A restart: the same cursor read back by a new context sees nothing new.
    assert requested(evaluate_sensor(definitions, instance, after_edit.cursor)) == []

    # A removed folder: partition deleted, every embedder's index job prunes its rows.
    shutil.rmtree(data_dir / "sources" / "alpha")
    after_remove = evaluate_sensor(definitions, instance, after_edit.cursor)
    assert requested(after_remove) == [(INDEX_JOB, "minilm")]
    assert instance.get_dynamic_partitions(SOURCE_DIMENSION) == ["beta"]
    assert set(read_cursor(after_remove.cursor)) == {"beta"}


def test_a_sensor_without_cursor_does_not_rerun_what_was_already_ingested(settings: Settings, instance) -> None:
    definitions = build_definitions(settings)
    instance.add_dynamic_partitions(SOURCE_DIMENSION, ["alpha", "beta"])
    result = definitions.resolve_job_def(INGEST_JOB).execute_in_process(instance=instance, partition_key="alpha")
    assert result.success
    # alpha was ingested with its current content; beta never was.
    assert requested(evaluate_sensor(definitions, instance, cursor=None)) == [(INGEST_JOB, "beta")]


def test_content_fingerprints_are_reused_until_a_file_moves(data_dir: Path) -> None:
    sources_dir = data_dir / "sources"
    first = fingerprint_sources(LocalSourceFolders(sources_dir), {})
    stale_content = {source: SourceFingerprint(stat_signature=value.stat_signature, content="old")
                     for source, value in first.items()}
    # Same stat signature: the recorded content is trusted, no file is read.
    assert fingerprint_sources(LocalSourceFolders(sources_dir), stale_content)["alpha"].content == "old"
    changes = source_changes(
        first, fingerprint_sources(LocalSourceFolders(sources_dir), first), {"alpha", "beta", "gone"}, str(sources_dir)
    )
    assert (changes.added, changes.changed, changes.removed) == ([], [], ["gone"])


def test_daily_refresh_requests_every_source(settings: Settings, instance) -> None:
    definitions = build_definitions(settings)
    instance.add_dynamic_partitions(SOURCE_DIMENSION, ["alpha", "beta"])
    schedule = definitions.resolve_schedule_def("daily_refresh")
    requests = schedule.evaluate_tick(
        dg.build_schedule_context(
            instance=instance,
            scheduled_execution_time=datetime(2026, 11, 25, 3, tzinfo=UTC),
            repository_def=definitions.get_repository_def(),
        )
    ).run_requests
    assert sorted(request.partition_key for request in requests) == ["alpha", "beta"]
    assert schedule.job_name == INGEST_JOB


@pytest.mark.parametrize("change", ["data", "code"])
def test_exactly_the_assets_downstream_of_a_change_are_stale(
    settings: Settings, instance, data_dir: Path, change: str
) -> None:
    definitions = build_definitions(settings)
    cursor = evaluate_sensor(definitions, instance, cursor=None).cursor
    for source in ("alpha", "beta"):
        assert definitions.resolve_job_def(INGEST_JOB).execute_in_process(instance=instance, partition_key=source).success

    if change == "data":
        (data_dir / "sources" / "beta" / "flows.rst").write_text("Flows, edited.", encoding="utf-8")
        evaluate_sensor(definitions, instance, cursor)
        expected_stale = {("source_documents", "beta")}
    else:
        # A new code version of the chunker: every chunks partition, no documents partition.
        definitions = definitions.map_asset_specs(
            func=lambda spec: spec.replace_attributes(code_version=f"{spec.code_version}-next")
            if spec.key.path == ["document_chunks"]
            else spec
        )
        expected_stale = {("document_chunks", "alpha"), ("document_chunks", "beta")}

    graph = definitions.resolve_asset_graph()
    resolver = CachingStaleStatusResolver(
        instance=instance,
        asset_graph=graph,
        loading_context=AssetGraphView(
            temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
            instance=instance,
            asset_graph=graph,
        ),
    )
    stale = {
        (asset, source)
        for asset in ("source_documents", "document_chunks")
        for source in ("alpha", "beta")
        if resolver.get_status(dg.AssetKey(asset), source) == StaleStatus.STALE
    }
    assert stale == expected_stale


def test_an_emptied_sources_root_removes_nothing(settings: Settings, instance, data_dir: Path) -> None:
    """An unmounted network drive shows an empty mount point: not "every source was deleted"."""
    definitions = build_definitions(settings)
    first = evaluate_sensor(definitions, instance, cursor=None)
    sources = data_dir / "sources"
    sources.rename(data_dir / "sources.real")
    sources.mkdir()  # the bare mount point
    skipped = evaluate_sensor(definitions, instance, first.cursor)
    assert requested(skipped) == [] and skipped.cursor == first.cursor
    assert f"sources folder {sources} lists no source while 2 source(s) are indexed" in str(skipped.skip_reason)
    sources.rmdir()  # not even the mount point: the same
    assert requested(evaluate_sensor(definitions, instance, first.cursor)) == []
    assert sorted(instance.get_dynamic_partitions(SOURCE_DIMENSION)) == ["alpha", "beta"]
    # `ai-assets build` refuses too, and says how to empty the knowledge base on purpose.
    sources.mkdir()
    with pytest.raises(ValueError, match="nothing is removed.*delete the source partitions"):
        run_build(definitions, instance, settings.embedders, echo=lambda _: None)
    assert sorted(instance.get_dynamic_partitions(SOURCE_DIMENSION)) == ["alpha", "beta"]
