import time

import dagster as dg

from ai_assets.assets.check_outcomes import failed_error_checks
from ai_assets.build_progress import report_embedding
from ai_assets.core.chunking.chunk_files import ChunkFile
from ai_assets.core.progress import Rate, Throttle, progress_line
from ai_assets.core.quality import streamed_vector_quality
from ai_assets.core.store.tables import read_table_metadata, sql_literal
from ai_assets.core.store.writes import source_vector_batches, sync_source_embeddings
from ai_assets.metadata_tables import shown_partition
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.partitions import EMBEDDER_DIMENSION, SOURCE_DIMENSION, EmbedderPartitions
from ai_assets.preview_api import partitioned_check
from ai_assets.resources import Embedders, LanceDBResource
from ai_assets.retries import MODEL_CALL_RETRY, MODEL_POOL, permanent_errors_fail_once

# How often the embedding step logs its progress to the Dagster run log.
LOG_PROGRESS_SECONDS = 5.0


class ChunkEmbeddingsConfig(dg.Config):
    allow_empty_source: bool = False
    """Let a source that came back empty delete its rows (off: an empty source keeps them)."""


def build_chunk_embeddings(names: KnowledgeBaseNames, partitions: EmbedderPartitions) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.key("chunk_embeddings"),
        partitions_def=partitions.source_embedder,
        ins={
            # Each source × embedder partition reads its source's chunks: Dagster's default mapping
            # between a multi-partitioned asset and one of its dimensions (stable, unlike naming it).
            "document_chunks": dg.AssetIn(key=names.key("document_chunks"))
        },
        required_resource_keys=names.resource_keys("embedders", "lancedb"),
        io_manager_key=names.name("io_manager"),
        group_name=names.name("embeddings"),
        kinds=set(partitions.text_kinds),
        code_version="1",
        # Follows the source's chunks for every embedder; only texts without a vector are embedded.
        automation_condition=dg.AutomationCondition.eager(),
        retry_policy=MODEL_CALL_RETRY,
        pool=MODEL_POOL,
        check_specs=[
            partitioned_check(
                "vectors_valid",
                asset=names.key("chunk_embeddings"),
                partitions_def=partitions.source_embedder,
                description="Every vector of the source has the model's dimensions, finite values and unit norm.",
            ),
            partitioned_check(
                "table_model_matches",
                asset=names.key("chunk_embeddings"),
                partitions_def=partitions.source_embedder,
                description=(
                    "The table's schema metadata (model, dimensions, normalization) matches the embedder, "
                    "and so does every row of the source."
                ),
            ),
        ],
        description=(
            "Vectors of one source's chunks for one embedder, written to the embedder's LanceDB "
            "table (chunks__<embedder>) with one merge scoped to that source. Only texts without "
            "a vector in the table are embedded; an unchanged source writes nothing. Every row "
            "carries its lineage: source, document key and version, chunker config, model, run id."
        ),
    )
    def chunk_embeddings(
        context: dg.AssetExecutionContext,
        config: ChunkEmbeddingsConfig,
        document_chunks: ChunkFile,
    ) -> dg.MaterializeResult:
        embedders: Embedders = names.resource(context, "embedders")  # type: ignore[assignment]
        lancedb: LanceDBResource = names.resource(context, "lancedb")  # type: ignore[assignment]
        keys = context.partition_key.keys_by_dimension  # type: ignore[attr-defined]
        source, embedder_name = keys[SOURCE_DIMENSION], keys[EMBEDDER_DIMENSION]
        label = f"{embedder_name}|{source}"
        rate: Rate | None = None
        throttle = Throttle(LOG_PROGRESS_SECONDS)

        def progress(done: int, total: int) -> None:
            nonlocal rate
            now = time.monotonic()
            rate = rate or Rate(total=total, started=now)
            rate.update(done, now)
            # The run log (the UI's) every few seconds, not every batch; the terminal of
            # `ai-assets build`, at each batch.
            if throttle.due(now, final=done >= total):
                context.log.info(progress_line(f"embedded new chunks of {label}", rate, "chunks"))
            report_embedding(label, done, total)

        started = time.perf_counter()
        with permanent_errors_fail_once():
            embedder = embedders.get(embedder_name)
            table = lancedb.table(embedder.spec)
            result = sync_source_embeddings(
                table, source, document_chunks, embedder, context.run_id,
                journal=lancedb.journal(embedder.spec), allow_empty=config.allow_empty_source, progress=progress,
                # Texts per model call and journal write (the model batches within it), and so
                # per progress report.
                batch_size=embedders.batch_size * 4,
            )
        seconds = time.perf_counter() - started
        if result.kept_rows:
            context.log.warning(
                f"source {source!r} has no chunks now; kept its {result.kept_rows} existing rows. "
                "Run with config allow_empty_source: true to delete them."
            )
        quality = streamed_vector_quality(
            source_vector_batches(table, source), embedder.spec.dimensions, embedder.spec.normalized
        )
        # The table's schema metadata was verified when it was opened; the rows must agree too.
        foreign_rows = table.count_rows(
            f"source = {sql_literal(source)} AND (model != {sql_literal(embedder.spec.model)} "
            f"OR embedder != {sql_literal(embedder.spec.name)})"
        )
        checks = [
            dg.AssetCheckResult(
                check_name="vectors_valid",
                passed=quality.ok,
                metadata={
                    "rows": quality.rows,
                    "wrong_dimensions": quality.wrong_dimensions,
                    "non_finite": quality.non_finite,
                    "bad_norm": quality.bad_norm,
                    "min_norm": round(quality.min_norm, 5),
                    "max_norm": round(quality.max_norm, 5),
                },
            ),
            dg.AssetCheckResult(
                check_name="table_model_matches",
                passed=foreign_rows == 0,
                metadata={**read_table_metadata(table), "rows_of_another_model": foreign_rows},
            ),
        ]
        return dg.MaterializeResult(
            check_results=checks,
            metadata={
                **shown_partition(context),
                "chunks": result.chunks,
                "embedded": result.embedded,
                "cache_hits": result.cache_hits,
                "embedded_tokens": result.embedded_tokens,
                "rows_inserted": result.inserted,
                "rows_updated": result.updated,
                "rows_deleted": result.deleted,
                "rows_kept_from_empty_source": result.kept_rows,
                "table_written": result.wrote,
                "table_version": result.version,
                "embed_seconds": round(result.embed_seconds, 3),
                "seconds": round(seconds, 3),
                "embedded_chunks_per_second": round(result.embedded / result.embed_seconds, 1)
                if result.embed_seconds > 0
                else 0.0,
                "model": embedder.spec.model,
                "precision": embedder.precision,
                **({"precision_reason": embedder.precision_reason} if embedder.precision_reason else {}),
                "dimensions": embedder.spec.dimensions,
                "table": table.name,
                **embedder.take_usage_metadata(),
                **failed_error_checks(checks),
            },
        )

    return chunk_embeddings
