"""The asset graph of one knowledge base: where assets, resources, jobs, sensors and the schedule
meet. ``build_definitions`` is what the ``KnowledgeBase`` component builds, and what tests and
`ai-assets build` call with settings of their own."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from ai_assets.assets.chunks import build_document_chunks
from ai_assets.assets.documents import build_source_documents
from ai_assets.assets.embeddings import build_chunk_embeddings
from ai_assets.assets.eval_questions import build_eval_questions
from ai_assets.assets.evaluations import build_answer_evaluation, build_evaluate_and_serve
from ai_assets.assets.feedback import build_feedback_eval_set_asset
from ai_assets.assets.index import build_search_index
from ai_assets.assets.leaderboard import build_model_leaderboard
from ai_assets.automation import build_daily_refresh, build_source_sensor, source_files_asset
from ai_assets.core.storage import join
from ai_assets.partitions import embedder_partitions
from ai_assets.preview_api import with_python_source
from ai_assets.resources import (
    ChatModelResource,
    Chunker,
    ChunkFilesIOManager,
    ChunkStore,
    EvalQuestionsResource,
    FeedbackFiles,
    QualityGate,
    embedders_from_settings,
    io_manager_from_settings,
    lancedb_from_settings,
    openai_api_key,
    source_files_from_settings,
)
from ai_assets.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """One knowledge base's definitions, named after it (``settings.key_prefix``, see naming.py)."""
    names = settings.names
    partitions = embedder_partitions(settings.embedders, names, settings.local_precision)
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
    source_files = source_files_from_settings(settings)
    computed = [
        build_source_documents(names, partitions.source),
        build_document_chunks(names, partitions.source),
        build_eval_questions(names, partitions.source),
        build_chunk_embeddings(names, partitions),
        build_search_index(names, partitions, freshness),
        build_feedback_eval_set_asset(names, settings.refresh_cron),
        build_evaluate_and_serve(names, partitions, freshness),
        build_answer_evaluation(names, partitions, freshness, answer_automation),
        build_model_leaderboard(names),
    ]
    assets = with_python_source([source_files_asset(names, partitions.source, source_files), *computed])

    def selected(*assets: str) -> dg.AssetSelection:
        return dg.AssetSelection.assets(*(names.key(asset) for asset in assets))

    ingest_job = dg.define_asset_job(
        names.ingest_job,
        selection=selected("source_documents", "document_chunks", "eval_questions"),
        description="Read and chunk one source, and draw its eval questions.",
    )
    # The leaderboard (unpartitioned) rides along with each embedder's index run: one run fewer
    # per change, and it always reflects the evaluation just made.
    index_job = dg.define_asset_job(
        names.index_job,
        selection=selected(
            "search_index", "feedback_eval_set", "retrieval_evaluation", "served_index", "answer_evaluation",
            "model_leaderboard",
        ),
        description=(
            "Build an embedder's indexes (the candidate), evaluate its retrieval on every eval set and "
            "serve it if it passes, evaluate the served version's answers, then rebuild the model leaderboard."
        ),
    )
    jobs = [
        ingest_job,
        dg.define_asset_job(
            names.embed_job,
            selection=selected("chunk_embeddings"),
            description="Embed and publish one source for one embedder.",
        ),
        index_job,
    ]
    chunk_store = ChunkStore(base_uri=settings.chunks_location)
    resources: dict[str, object] = {
        "source_files": source_files,
        "chunk_store": chunk_store,
        "chunk_files": ChunkFilesIOManager(base_uri=chunk_store.base_uri),
        "io_manager": io_manager_from_settings(settings),
        "chunker": Chunker(
            max_tokens=settings.chunk_max_tokens, overlap_tokens=settings.chunk_overlap_tokens,
            context_prefix=settings.context_prefix,
        ),
        "embedders": embedders_from_settings(settings),
        "lancedb": lancedb_from_settings(settings),
        "feedback": FeedbackFiles(
            store_uri=settings.feedback_location, eval_set_uri=join(settings.generated_eval_location, "feedback")
        ),
        "chat_model": ChatModelResource(
            enabled=settings.openai_configured,
            model=settings.chat_model,
            base_url=settings.openai_base_url,
            api_key=openai_api_key(),
        ),
        "quality_gate": QualityGate(
            min_ndcg_at_10=settings.quality_min_ndcg_at_10,
            min_ndcg_at_10_generated=settings.quality_min_ndcg_at_10_generated,
            min_ndcg_at_10_feedback=settings.quality_min_ndcg_at_10_feedback,
            max_ndcg_drop=settings.quality_max_ndcg_drop,
            min_ann_recall=settings.ann_min_recall,
            allow_no_eval_sets=settings.quality_allow_no_eval_sets,
        ),
        "eval_questions": EvalQuestionsResource(
            generated_eval_uri=settings.generated_eval_location,
            per_document=settings.eval_questions_per_document,
            per_source=settings.eval_questions_per_source,
        ),
    }
    sensors = [
        build_source_sensor(
            names, partitions.source, source_files, ingest_job, index_job, settings.embedders,
            settings.sensor_interval_seconds,
        ),
        dg.AutomationConditionSensorDefinition(
            names.name("automation_sensor"),
            # Its own assets only: another knowledge base of the code location has its own sensor.
            target=dg.AssetSelection.assets(*(key for asset in computed for key in asset.keys)),
            default_status=dg.DefaultSensorStatus.RUNNING,
            minimum_interval_seconds=settings.automation_interval_seconds,
            description="Evaluates every asset's automation condition: downstream assets follow upstream changes.",
        ),
    ]
    schedules = [build_daily_refresh(names, ingest_job, settings.refresh_cron)]
    return dg.Definitions(
        assets=assets,
        jobs=jobs,
        sensors=sensors,
        schedules=schedules,
        resources={names.name(key): resource for key, resource in resources.items()},
    )
