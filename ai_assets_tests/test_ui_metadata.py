"""What the UI and the terminal show, without a browser: metadata tables that read back as rows,
a start-up without the project's Preview/Beta warnings, plain-text answers, a partition without
a folder refused with its reason."""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg

from ai_assets.cli.plain_text import plain
from ai_assets.components.knowledge_base import PROJECT, load_knowledge_bases
from ai_assets.core.documents.fingerprints import content_fingerprint
from ai_assets.core.documents.object_folders import source_folders_at
from ai_assets.core.evaluation.retrieval import RetrievalScore
from ai_assets.definitions import build_definitions
from ai_assets.metadata_tables import SERVED_PREFIX, listing, present_columns, read_scores, score_tables, table_rows
from ai_assets.preview_api import component_loading
from ai_assets.run_recovery import ProcessIdentity
from ai_assets.settings import Settings

SCORE = RetrievalScore(
    embedder="minilm", eval_set="docs_qa", mode="hybrid", queries=30, **{"ndcg@10": 0.912345678, "recall@10": 1.0,
    "recall@100": 1.0, "mrr@10": 0.87654321}, latency_p50_ms=17.282102002354804, latency_p95_ms=31.5,
)


def test_scores_are_two_rounded_tables_that_read_back_as_one_row_per_set_and_mode() -> None:
    tables = score_tables([SCORE], SERVED_PREFIX)
    assert set(tables) == {"served_scores", "served_latency"}
    # Narrow tables: quality and latency apart, so each fits a laptop screen.
    assert all(len(table.schema.columns) <= 5 for table in tables.values())
    (row,) = read_scores({key: table_rows(value) for key, value in tables.items()}, SERVED_PREFIX)
    assert row == {
        "eval_set": "docs_qa", "mode": "hybrid", "queries": 30, "ndcg@10": 0.9123, "recall@10": 1.0,
        "recall@100": 1.0, "mrr@10": 0.8765, "latency_p50_ms": 17, "latency_p95_ms": 32, "kind": "hand-written",
    }
    assert RetrievalScore.model_validate({**row, "embedder": "minilm"}).ndcg_at_10 == 0.9123
    assert read_scores({}, SERVED_PREFIX) == []  # a record without tables (a rollback's) reads as none


def test_empty_columns_and_empty_listings_are_left_out() -> None:
    rows = [{"eval_set": "a", "answer_f1": 0.5, "faithfulness": None}]
    columns = (("eval_set", "string"), ("answer_f1", "float"), ("faithfulness", "float"))
    assert [name for name, _ in present_columns(rows, columns, always=1)] == ["eval_set", "answer_f1"]
    assert listing("quarantined_files", [], columns) == {}  # the count beside it says 0, once


def test_markdown_is_printed_as_its_words() -> None:
    text = "Click **Materialize** in [the UI](https://docs.dagster.io/x) or run `dg dev`; *then* wait.\n## Next"
    assert plain(text) == "Click Materialize in the UI or run dg dev; then wait.\nNext"
    assert plain("snake_case_name and 2 * 3 * 4 stay") == "snake_case_name and 2 * 3 * 4 stay"


def test_loading_the_code_location_warns_of_no_preview_or_beta_api_of_the_project() -> None:
    # What `dg dev` and every run worker do: load the defs folder's knowledge bases, every warning shown.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_knowledge_bases(PROJECT)
    flagged = [str(w.message) for w in caught if issubclass(w.category, (dg.PreviewWarning, dg.BetaWarning))]
    assert flagged == []
    # The filters match those messages only: any other Preview or Beta warning still shows.
    with warnings.catch_warnings(record=True) as caught, component_loading():
        warnings.simplefilter("always")
        warnings.warn("Class `Something` is currently in beta", dg.BetaWarning, stacklevel=1)
    assert len(caught) == 1


def test_a_source_partition_without_a_folder_fails_with_what_to_do(data_dir: Path, instance: dg.DagsterInstance) -> None:
    definitions = build_definitions(Settings(data_dir=data_dir))
    instance.add_dynamic_partitions("source", ["ghost"])
    result = dg.materialize(
        [definitions.resolve_assets_def("source_documents")],
        partition_key="ghost", instance=instance, raise_on_error=False,
    )
    assert not result.success
    (failure,) = [event for event in result.all_events if event.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "source 'ghost' has no folder" in message and "the sensor (or `ai-assets build`) adds its partition" in message


def test_source_files_is_observable_and_an_observation_records_the_folders_fingerprint(
    data_dir: Path, instance: dg.DagsterInstance
) -> None:
    # Observable, so the UI shows it by its observations (green), never as "never materialized".
    settings = Settings(data_dir=data_dir)
    source_files = build_definitions(settings).resolve_assets_def("source_files")
    assert source_files.is_observable
    instance.add_dynamic_partitions("source", ["alpha"])
    observe = dg.Definitions(
        assets=[source_files],
        jobs=[dg.define_asset_job("observe", [source_files.key], partitions_def=source_files.partitions_def)],
    ).resolve_job_def("observe")
    assert observe.execute_in_process(instance=instance, partition_key="alpha").success
    (record,) = instance.fetch_observations(dg.AssetKey("source_files"), limit=5).records
    expected = content_fingerprint(source_folders_at(settings.sources_location), "alpha")
    assert record.asset_observation.tags["dagster/data_version"] == expected


def test_a_build_run_carries_one_tag_that_reads_back_and_an_older_tag_reads_as_no_build() -> None:
    identity = ProcessIdentity.current("/data", "b1")
    tags = identity.tags()
    assert list(tags) == ["ai_assets/build"] and tags["ai_assets/build"].startswith('{"build_id": "b1"')
    assert ProcessIdentity.from_tags(tags) == identity
    assert ProcessIdentity.from_tags({"ai_assets/build": "0123abcd"}) is None  # before the JSON
