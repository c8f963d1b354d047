"""The code location loads and wires every asset, job and resource."""

from __future__ import annotations

import dagster as dg

from ai_assets.core.embedding.precision import resolve_precision
from ai_assets.definitions import EMBED_JOB, INDEX_JOB, INGEST_JOB, build_definitions, defs
from ai_assets.retries import MODEL_POOL
from ai_assets.settings import Settings

EXPECTED_ASSETS = {
    "source_files", "source_documents", "document_chunks", "chunk_embeddings", "search_index", "retrieval_evaluation",
    "served_index", "answer_evaluation", "model_leaderboard", "feedback_eval_set", "eval_questions",
}


def test_module_definitions_load() -> None:
    keys = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()}
    assert keys == EXPECTED_ASSETS
    for job in (INGEST_JOB, EMBED_JOB, INDEX_JOB):
        assert defs.resolve_job_def(job).partitions_def is not None


def test_assets_are_grouped_partitioned_and_described(tmp_path) -> None:
    definitions = build_definitions(Settings(data_dir=tmp_path))
    graph = definitions.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups == {
        "source_files": "ingestion",
        "source_documents": "ingestion",
        "document_chunks": "ingestion",
        "eval_questions": "evaluation",
        "chunk_embeddings": "embeddings",
        "search_index": "index",
        "retrieval_evaluation": "evaluation",
        "served_index": "index",
        "answer_evaluation": "evaluation",
        "model_leaderboard": "evaluation",
        "feedback_eval_set": "evaluation",
    }
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.description and len(node.description) > 80, key
        assert node.code_version or not node.is_materializable, key
        assert (node.partitions_def is None) == (key.to_user_string() in ("model_leaderboard", "feedback_eval_set")), key
    embeddings = graph.get(dg.AssetKey("chunk_embeddings")).partitions_def
    assert isinstance(embeddings, dg.MultiPartitionsDefinition)
    assert {dimension.name for dimension in embeddings.partitions_defs} == {"source", "embedder"}
    assert set(definitions.resources) >= {"source_files", "chunker", "embedders", "lancedb"}


def test_index_and_evaluations_carry_the_configured_freshness_policy(tmp_path) -> None:
    settings = Settings(data_dir=tmp_path, freshness_fail_minutes=90, freshness_warn_minutes=60)
    graph = build_definitions(settings).resolve_asset_graph()
    for asset in ("search_index", "retrieval_evaluation", "answer_evaluation"):
        policy = graph.get(dg.AssetKey(asset)).freshness_policy
        assert policy is not None, asset
        assert policy.fail_window.to_timedelta().total_seconds() == 90 * 60
        assert policy.warn_window.to_timedelta().total_seconds() == 60 * 60
    assert graph.get(dg.AssetKey("source_documents")).freshness_policy is None


def test_downstream_assets_follow_by_automation_and_the_sensor_and_schedule_start_on(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    definitions = build_definitions(Settings(data_dir=tmp_path))
    graph = definitions.resolve_asset_graph()

    def condition(asset: str) -> str | None:
        automation = graph.get(dg.AssetKey(asset)).automation_condition
        return automation.get_label() if automation else None

    # The sensor and the schedule start the ingestion; everything after it follows.
    assert condition("source_documents") is None
    for asset in ("document_chunks", "chunk_embeddings", "search_index", "retrieval_evaluation", "served_index",
                  "answer_evaluation", "model_leaderboard"):
        assert condition(asset) == "eager", asset
    sensors = {sensor.name: sensor for sensor in definitions.sensors}
    assert set(sensors) == {"source_sensor", "automation_sensor"}
    assert all(sensor.default_status == dg.DefaultSensorStatus.RUNNING for sensor in sensors.values())
    (schedule,) = definitions.schedules
    assert schedule.name == "daily_refresh" and schedule.default_status == dg.DefaultScheduleStatus.RUNNING

    # Every step that runs a model is in the model pool, whose instance limit caps them across runs.
    for asset in ("chunk_embeddings", "retrieval_evaluation", "answer_evaluation"):
        assert definitions.resolve_assets_def(asset).op.pool == MODEL_POOL, asset
    # Kinds name what runs: queries always in ONNX Runtime; a build's texts as the precision says.
    assert graph.get(dg.AssetKey("retrieval_evaluation")).kinds == {"lancedb", "onnxruntime"}
    texts = "onnxruntime" if resolve_precision(Settings().local_precision) == "fp32-onnx" else "pytorch"
    assert graph.get(dg.AssetKey("chunk_embeddings")).kinds == {"lancedb", texts}
    in_pytorch = build_definitions(Settings(data_dir=tmp_path, local_precision="fp32"))
    assert in_pytorch.resolve_asset_graph().get(dg.AssetKey("chunk_embeddings")).kinds == {"lancedb", "pytorch"}

    # The candidate is served only once every blocking check passed: the index's checks and the gate.
    blocking = {
        spec.key.name
        for assets_def in (definitions.resolve_assets_def("search_index"), definitions.resolve_assets_def("served_index"))
        for spec in assets_def.check_specs
        if spec.blocking
    }
    assert blocking == {"index_rows_match_chunks", "ann_recall", "retrieval_quality_gate"}
    # The gate and the promotion are one step: the served version's record is written even when it fails.
    assert definitions.resolve_assets_def("served_index") is definitions.resolve_assets_def("retrieval_evaluation")

    # With a paid chat model, answers are generated and judged once a day instead, and the
    # OpenAI embedder shows in the graph.
    paid = build_definitions(Settings(data_dir=tmp_path, openai_base_url="http://127.0.0.1:9/v1"))
    label = paid.resolve_asset_graph().get(dg.AssetKey("answer_evaluation")).automation_condition.get_label()
    assert label.startswith("on_cron(0 3 * * *")
    assert paid.resolve_asset_graph().get(dg.AssetKey("chunk_embeddings")).kinds == {"lancedb", texts, "openai"}
