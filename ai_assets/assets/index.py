import time

import dagster as dg

from ai_assets.assets.check_outcomes import failed_error_checks
from ai_assets.core.quality import count_mismatches
from ai_assets.core.retrieval.search import ann_recall_at_10
from ai_assets.core.store.indexes import build_indexes
from ai_assets.core.store.tables import prune_sources, source_row_counts
from ai_assets.core.store.versions import extend_hold, mark_candidate
from ai_assets.history import latest_metadata
from ai_assets.metadata_tables import shown_partition, table_value
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.partitions import EmbedderPartitions
from ai_assets.preview_api import partitioned_check
from ai_assets.resources import Embedders, LanceDBResource, QualityGate
from ai_assets.retries import MODEL_CALL_RETRY, permanent_errors_fail_once


def build_search_index(
    names: KnowledgeBaseNames, partitions: EmbedderPartitions, freshness: dg.FreshnessPolicy
) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.key("search_index"),
        partitions_def=partitions.embedder,
        deps=[
            # An embedder's index reads every source's vectors of that embedder: Dagster's default
            # mapping between a multi-partitioned asset and one of its dimensions.
            dg.AssetDep(names.key("chunk_embeddings"))
        ],
        group_name=names.name("index"),
        required_resource_keys=names.resource_keys("embedders", "lancedb", "quality_gate"),
        io_manager_key=names.name("io_manager"),
        kinds={"lancedb"},
        code_version="2",
        retry_policy=MODEL_CALL_RETRY,
        freshness_policy=freshness,
        # Re-index as soon as any source's vectors change (and only once all of them exist).
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=[
            partitioned_check(
                "index_rows_match_chunks",
                asset=names.key("search_index"),
                partitions_def=partitions.embedder,
                # Blocking: a table that lost or kept rows is never evaluated, so never served.
                blocking=True,
                description="The table holds exactly one row per current chunk of every source.",
            ),
            partitioned_check(
                "ann_recall",
                asset=names.key("search_index"),
                partitions_def=partitions.embedder,
                blocking=True,
                description="Recall@10 of the ANN vector index against exact search is above the floor.",
            ),
        ],
        description=(
            "Full-text (BM25) and scalar indexes on an embedder's table, after compaction. The only "
            "writer of index structures, so it never races the per-source writers. The version it "
            "builds is the candidate (a LanceDB tag): retrieval_evaluation scores it, and it is served "
            "only once every blocking check passed (see served_index)."
        ),
    )
    def search_index(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        embedders: Embedders = names.resource(context, "embedders")  # type: ignore[assignment]
        lancedb: LanceDBResource = names.resource(context, "lancedb")  # type: ignore[assignment]
        quality_gate: QualityGate = names.resource(context, "quality_gate")  # type: ignore[assignment]
        started = time.perf_counter()
        with permanent_errors_fail_once():
            table = lancedb.table(embedders.spec(context.partition_key))
            version_before = table.version
            # A source folder that was removed lost its partition (source_sensor, `ai-assets build`);
            # its rows go here, the one writer that sees every source.
            pruned = prune_sources(table, set(context.instance.get_dynamic_partitions(names.source_partitions_name)))
            for source, rows in pruned.items():
                context.log.info(f"deleted {rows} rows of removed source {source!r}")
            report = build_indexes(table, ann_min_rows=lancedb.ann_min_rows)
            recall = ann_recall_at_10(table)
            mark_candidate(table, report.version)
            if not pruned:  # only compaction and indexes were written: a held candidate stays held
                extend_hold(table, version_before)
        counts = source_row_counts(table)
        mismatches = count_mismatches(latest_chunk_counts(context.instance, names), counts)
        mismatch_table = "| source | chunks | rows |\n|---|---:|---:|\n" + "".join(
            f"| {source} | {expected} | {actual} |\n" for source, (expected, actual) in mismatches.items()
        )
        checks = [
            dg.AssetCheckResult(
                check_name="ann_recall",
                passed=recall is None or recall >= quality_gate.min_ann_recall,
                metadata={
                    "ann_recall@10": recall if recall is not None else "no ANN index: exact search",
                    "floor": quality_gate.min_ann_recall,
                },
            ),
            dg.AssetCheckResult(
                check_name="index_rows_match_chunks",
                passed=not mismatches,
                # Rows kept for a source that came back empty are the safe default, so only
                # a warning; any other difference means the index is wrong.
                severity=dg.AssetCheckSeverity.WARN
                if all(expected == 0 for expected, _ in mismatches.values())
                else dg.AssetCheckSeverity.ERROR,
                metadata={
                    "rows": report.rows,
                    "sources_mismatched": len(mismatches),
                    "mismatches": dg.MetadataValue.md(mismatch_table if mismatches else "none"),
                },
            )
        ]
        return dg.MaterializeResult(
            check_results=checks,
            metadata={
                **shown_partition(context),
                "rows": report.rows,
                # The candidate. Whether it is served, and why, is served_index's to say: recorded
                # here, before the evaluation, it would contradict served_index on every build.
                "table_version": report.version,
                "sources": len(counts),
                "removed_sources": ", ".join(pruned) or "none",
                "rows_deleted_of_removed_sources": sum(pruned.values()),
                "indexes": ", ".join(report.indexes),
                "compacted_fragments": report.compacted_fragments,
                "index_written": report.changed,
                "ann_index": recall is not None,
                "ann_recall@10": round(recall, 4) if recall is not None else 1.0,
                "seconds": round(time.perf_counter() - started, 3),
                "rows_by_source": table_value(
                    [{"source": source, "rows": count} for source, count in sorted(counts.items())],
                    [("source", "string"), ("rows", "int")],
                ),
                "table_bytes": table.stats()["total_bytes"],
                "table_uri": f"{lancedb.uri}/{table.name}",
                **failed_error_checks(checks),
            }
        )

    return search_index


def latest_chunk_counts(instance: dg.DagsterInstance, names: KnowledgeBaseNames) -> dict[str, int]:
    """Chunks per source as recorded by each source's latest document_chunks materialization."""
    counts: dict[str, int] = {}
    for source in instance.get_dynamic_partitions(names.source_partitions_name):
        metadata = latest_metadata(instance, names.key("document_chunks"), source)
        if metadata is not None and "chunks" in metadata:
            counts[source] = int(metadata["chunks"])
    return counts
