import time

import dagster as dg

from ai_assets.assets.check_outcomes import failed_error_checks
from ai_assets.core.chunking.chunk_files import chunks_of_documents
from ai_assets.core.chunking.chunker import Chunk
from ai_assets.core.documents.model import SourceLoad
from ai_assets.core.quality import chunk_quality
from ai_assets.metadata_tables import shown_partition
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.preview_api import partitioned_check
from ai_assets.resources import Chunker, ChunkStore


def build_document_chunks(
    names: KnowledgeBaseNames, partitions: dg.DynamicPartitionsDefinition
) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.key("document_chunks"),
        ins={"source_documents": dg.AssetIn(key=names.key("source_documents"))},
        partitions_def=partitions,
        group_name=names.name("ingestion"),
        kinds={"python", "parquet"},
        code_version="2",
        required_resource_keys=names.resource_keys("chunker", "chunk_store"),
        io_manager_key=names.name("chunk_files"),  # one Parquet file per source, streamed by chunk_embeddings
        # Follows its documents: a re-ingested source is re-chunked in the next automation tick.
        automation_condition=dg.AutomationCondition.eager(),
        check_specs=[
            partitioned_check(
                "chunks_not_empty_or_duplicate",
                asset=names.key("document_chunks"),
                partitions_def=partitions,
                description="No chunk is blank and no chunk id appears twice.",
            ),
            partitioned_check(
                "chunk_tokens_within_window",
                asset=names.key("document_chunks"),
                partitions_def=partitions,
                description="Every chunk fits the embedding model's window, so nothing is truncated.",
            ),
        ],
        description=(
            "Section-aware, token-aware chunks of one source's documents, cut with the embedding model's "
            "own tokenizer so no chunk exceeds its window: whole sections packed while they fit, longer "
            "ones cut into overlapping windows ending at paragraph, line or sentence boundaries. Each "
            "chunk records its section (heading path) and pages. A chunk_id is a stable hash of "
            "document key, text and chunker config, so unchanged text keeps its id and its vector."
        ),
    )
    def document_chunks(context: dg.AssetExecutionContext, source_documents: SourceLoad):
        chunker: Chunker = names.resource(context, "chunker")  # type: ignore[assignment]
        chunk_store: ChunkStore = names.resource(context, "chunk_store")  # type: ignore[assignment]
        yield from chunks_of_source(context, source_documents, chunker, chunk_store)

    return document_chunks


def chunks_of_source(
    context: dg.AssetExecutionContext, source_documents: SourceLoad, chunker: Chunker, chunk_store: ChunkStore
):
    started = time.perf_counter()
    # The source's previous chunks: unchanged documents keep them without being tokenized again,
    # and stale documents (indexed, unreadable now) keep their last good ones.
    previous = chunk_store.existing(context.partition_key)
    result = chunker.chunk(source_documents.documents, previous=previous)
    stale_keys = {stale.doc_key for stale in getattr(source_documents, "stale", [])}  # loads pickled before it existed have none
    kept = chunks_of_documents(previous, stale_keys) if previous is not None else []
    chunks = result.chunks + kept
    seconds = time.perf_counter() - started
    token_counts = [chunk.token_count for chunk in chunks]
    config = chunker.config()
    quality = chunk_quality(chunks, config.max_tokens)
    checks = [
        dg.AssetCheckResult(
            check_name="chunks_not_empty_or_duplicate",
            passed=not (quality.empty or quality.duplicates),
            metadata={
                "empty_chunks": len(quality.empty),
                "duplicate_chunk_ids": len(quality.duplicates),
                "examples": ", ".join([*quality.empty, *quality.duplicates][:5]) or "none",
            },
        ),
        dg.AssetCheckResult(
            check_name="chunk_tokens_within_window",
            passed=not quality.over_window,
            metadata={
                "max_chunk_tokens": max(token_counts, default=0),
                "window_tokens": config.max_tokens,
                "chunks_over_window": len(quality.over_window),
            },
        ),
    ]
    yield dg.Output(
        chunks,
        metadata={
            **shown_partition(context),
            "documents": len(source_documents.documents),
            "documents_rechunked": result.rechunked_documents,
            "documents_reused": result.reused_documents,
            "documents_stale": len(stale_keys),
            "chunks_kept_stale": len(kept),
            "chunks": len(chunks),
            "tokens": sum(token_counts),
            "max_chunk_tokens": max(token_counts, default=0),
            "mean_chunk_tokens": round(sum(token_counts) / len(chunks), 1) if chunks else 0.0,
            "chunk_max_tokens_setting": config.max_tokens,
            "chunk_overlap_tokens_setting": config.overlap_tokens,
            "chunker_config": config.config_hash,
            "context_prefix": config.context_prefix,
            "chunks_with_section": sum(1 for chunk in chunks if chunk.section),
            "chunks_with_page": sum(1 for chunk in chunks if chunk.page is not None),
            "seconds": round(seconds, 3),
            "sample": dg.MetadataValue.md(chunk_sample_table(chunks)),
            **failed_error_checks(checks),
        },
    )
    yield from checks


SAMPLE_CHUNKS = 10


def chunk_sample_table(chunks: list[Chunk]) -> str:
    """The first chunks of the source, with where each one is, as the UI shows them."""
    if not chunks:
        return "No chunk."

    def cell(value: object) -> str:
        return "-" if value is None or value == "" else " ".join(str(value).split()).replace("|", "/")

    rows = "".join(
        f"| `{cell(chunk.doc_key)}` | {chunk.chunk_index} | {cell(chunk.section)} | {cell(chunk.page)} | "
        f"{cell(chunk.page_end)} | {chunk.token_count} | {cell(chunk.text)[:120]} |\n"
        for chunk in chunks[:SAMPLE_CHUNKS]
    )
    return "| document | chunk | section | page | page_end | tokens | text |\n|---|---:|---|---:|---:|---:|---|\n" + rows
