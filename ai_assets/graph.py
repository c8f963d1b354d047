"""The asset graph of one knowledge base: where assets, resources, jobs, sensors and the schedule
meet. ``build_definitions`` is what the ``KnowledgeBase`` component builds, and what tests and
`ai-assets build` call with settings of their own."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from ai_assets.assets.chunks import document_chunks
from ai_assets.assets.documents import source_documents
from ai_assets.assets.embeddings import build_chunk_embeddings
from ai_assets.assets.evaluations import build_answer_evaluation, build_evaluate_and_serve
from ai_assets.assets.index import build_search_index
from ai_assets.assets.leaderboard import model_leaderboard
from ai_assets.automation import build_daily_refresh, build_source_sensor, source_files_asset
from ai_assets.partitions import embedder_partitions
from ai_assets.resources import (
    ChatModelResource,
    Chunker,
    ChunkFilesIOManager,
    ChunkStore,
    QualityGate,
    SourceFiles,
    embedders_from_settings,
    io_manager_from_settings,
    lancedb_from_settings,
    openai_api_key,
)
from ai_assets.settings import Settings

INGEST_JOB = "ingest_source_job"
EMBED_JOB = "embed_source_job"
INDEX_JOB = "index_and_evaluate_job"


def build_definitions(settings: Settings) -> dg.Definitions:
    partitions = embedder_partitions(settings.embedders)
    # The index and its evaluations should be refreshed at least daily (the daily schedule);
    # the UI marks them overdue past these windows.
    freshness = dg.FreshnessPolicy.time_window(
        fail_window=timedelta(minutes=settings.freshness_fail_minutes),
        warn_window=timedelta(minutes=settings.freshness_warn_minutes) if settings.freshness_warn_minutes else None,
    )
    # Offline, answers are scored after every index change like retrieval. A paid chat model
    # generates and judges every answer, so it then runs once a day, after the daily refresh.
    answer_automation = (
        dg.AutomationCondition.on_cron(settings.refresh_cron)
        if settings.openai_configured
        else dg.AutomationCondition.eager()
    )
    assets = [
        source_files_asset,
        source_documents,
        document_chunks,
        build_chunk_embeddings(partitions),
        build_search_index(partitions, freshness),
        build_evaluate_and_serve(partitions, freshness),
        build_answer_evaluation(partitions, freshness, answer_automation),
        model_leaderboard,
    ]
    ingest_job = dg.define_asset_job(
        INGEST_JOB,
        selection=["source_documents", "document_chunks"],
        description="Read and chunk one source.",
    )
    # The leaderboard (unpartitioned) rides along with each embedder's index run: one run fewer
    # per change, and it always reflects the evaluation just made.
    index_job = dg.define_asset_job(
        INDEX_JOB,
        selection=["search_index", "retrieval_evaluation", "served_index", "answer_evaluation", "model_leaderboard"],
        description=(
            "Build an embedder's indexes (the candidate), evaluate its retrieval on every eval set and "
            "serve it if it passes, evaluate the served version's answers, then rebuild the model leaderboard."
        ),
    )
    jobs = [
        ingest_job,
        dg.define_asset_job(
            EMBED_JOB, selection=["chunk_embeddings"], description="Embed and publish one source for one embedder."
        ),
        index_job,
    ]
    chunk_store = ChunkStore(base_uri=settings.chunks_location)
    resources = {
        "source_files": SourceFiles(
            sources_uri=settings.sources_location,
            eval_uri=settings.eval_location,
            max_document_bytes=settings.max_document_bytes,
            max_file_bytes=settings.max_file_bytes,
            parse_timeout_seconds=settings.parse_timeout_seconds,
            parse_workers=settings.parse_workers,
        ),
        "chunk_store": chunk_store,
        "chunk_files": ChunkFilesIOManager(base_uri=chunk_store.base_uri),
        "io_manager": io_manager_from_settings(settings),
        "chunker": Chunker(
            max_tokens=settings.chunk_max_tokens, overlap_tokens=settings.chunk_overlap_tokens,
            context_prefix=settings.context_prefix,
        ),
        "embedders": embedders_from_settings(settings),
        "lancedb": lancedb_from_settings(settings),
        "chat_model": ChatModelResource(
            enabled=settings.openai_configured,
            model=settings.chat_model,
            base_url=settings.openai_base_url,
            api_key=openai_api_key(),
        ),
        "quality_gate": QualityGate(
            min_ndcg_at_10=settings.quality_min_ndcg_at_10,
            max_ndcg_drop=settings.quality_max_ndcg_drop,
            min_ann_recall=settings.ann_min_recall,
        ),
    }
    sensors = [
        build_source_sensor(ingest_job, index_job, settings.embedders, settings.sensor_interval_seconds),
        dg.AutomationConditionSensorDefinition(
            "automation_sensor",
            target=dg.AssetSelection.all(),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=settings.automation_interval_seconds,
            description="Evaluates every asset's automation condition: downstream assets follow upstream changes.",
        ),
    ]
    schedules = [build_daily_refresh(ingest_job, settings.refresh_cron)]
    return dg.Definitions(
        assets=assets, jobs=jobs, sensors=sensors, schedules=schedules, resources=resources
    )
