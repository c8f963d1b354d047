import time

import dagster as dg

from ai_assets.core.store import build_indexes, source_row_counts
from ai_assets.partitions import EMBEDDER_DIMENSION, EmbedderPartitions
from ai_assets.resources import Embedders, LanceDBResource


def build_search_index(partitions: EmbedderPartitions) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=partitions.embedder,
        deps=[
            dg.AssetDep(
                "chunk_embeddings",
                partition_mapping=dg.MultiToSingleDimensionPartitionMapping(
                    partition_dimension_name=EMBEDDER_DIMENSION
                ),
            )
        ],
        group_name="index",
        kinds={"lancedb"},
        code_version="1",
        description=(
            "Full-text (BM25) and scalar indexes on an embedder's table, after compaction. The only "
            "writer of index structures, so it never races the per-source writers. Records the "
            "LanceDB table version that searches and evaluations read."
        ),
    )
    def search_index(
        context: dg.AssetExecutionContext, embedders: Embedders, lancedb: LanceDBResource
    ) -> dg.MaterializeResult:
        embedder = embedders.get(context.partition_key)
        table = lancedb.table(embedder.spec)
        started = time.perf_counter()
        report = build_indexes(table)
        counts = source_row_counts(table)
        rows_by_source = "| source | rows |\n|---|---:|\n" + "".join(
            f"| {source} | {count} |\n" for source, count in sorted(counts.items())
        )
        return dg.MaterializeResult(
            metadata={
                "rows": report.rows,
                "table_version": report.version,
                "sources": len(counts),
                "indexes": ", ".join(report.indexes),
                "compacted_fragments": report.compacted_fragments,
                "index_written": report.changed,
                "seconds": round(time.perf_counter() - started, 3),
                "rows_by_source": dg.MetadataValue.md(rows_by_source),
                "table_uri": f"{lancedb.uri}/{table.name}",
            }
        )

    return search_index
