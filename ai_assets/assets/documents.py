from datetime import UTC, datetime

import dagster as dg

from ai_assets.automation import CONTENT_FINGERPRINT, SOURCE_FILES_KEY
from ai_assets.core.chunking.chunk_files import indexed_documents
from ai_assets.core.documents.folders import SourcesUnavailable
from ai_assets.core.documents.loading import UNSUPPORTED_TYPE
from ai_assets.core.documents.model import QuarantinedItem, SourceLoad, StaleDocument
from ai_assets.core.documents.names import shown_name
from ai_assets.core.documents.ocr import OCR_LOW_CONFIDENCE_PAGES, OCR_PAGES
from ai_assets.core.documents.reports import quarantine_table
from ai_assets.core.documents.stale import stale_documents
from ai_assets.core.hashing import sha256_hex
from ai_assets.history import latest_metadata
from ai_assets.metadata_tables import listing, shown_partition
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.preview_api import partitioned_check
from ai_assets.resources import ChunkStore, SourceFiles

# Metadata keys of the quarantined, skipped and stale entries, as tables (read back by the next
# ingest, which remembers verdicts and keeps stale documents, and by `ai-assets quarantine`).
QUARANTINED_FILES = "quarantined_files"
SKIPPED_ENTRIES = "skipped_entries"
STALE_DOCUMENTS = "stale_documents"
QUARANTINE_COLUMNS = (
    ("path", "string"), ("line", "int"), ("reason", "string"), ("verdict", "string"), ("remembered", "bool"),
)
SKIPPED_COLUMNS = (("relative", "string"), ("reason", "string"))
STALE_COLUMNS = (("doc_key", "string"), ("path", "string"), ("reason", "string"), ("since", "string"))


def build_source_documents(
    names: KnowledgeBaseNames, partitions: dg.DynamicPartitionsDefinition
) -> dg.AssetsDefinition:
    @dg.asset(
        key=names.key("source_documents"),
        partitions_def=partitions,
        deps=[names.key(SOURCE_FILES_KEY)],
        group_name=names.name("ingestion"),
        kinds={"python", "file"},
        code_version="2",
        required_resource_keys=names.resource_keys("source_files", "chunk_store"),
        io_manager_key=names.name("io_manager"),
        check_specs=[
            partitioned_check(
                "quarantine_empty",
                asset=names.key("source_documents"),
                partitions_def=partitions,
                description="Warns when files of the source were quarantined (reasons in the metadata).",
            )
        ],
        description=(
            "Documents of one source folder under data/sources/: PDF (text layer, page by page), Word "
            "(.docx), PowerPoint (.pptx), HTML (main content), Markdown (front matter as metadata), "
            "text, reStructuredText and BEIR corpus.jsonl lines, each as ordered blocks with their "
            "section (heading path) and page, parsed in parallel worker processes with a per-file time "
            "limit. Files that cannot be read (encrypted, corrupt, scanned without text, too large, too "
            "slow, unreadable, links out of the sources) are quarantined with their reason; entries "
            "that are not documents are listed as skipped; the rest goes on. An unchanged quarantined "
            "file is not parsed again; an indexed document whose file becomes unreadable keeps its "
            "last good chunks, listed as stale."
        ),
    )
    def source_documents(context: dg.AssetExecutionContext):
        yield from documents_of_source(
            context, names.resource(context, "source_files"), names.resource(context, "chunk_store")  # type: ignore[arg-type]
        )

    return source_documents


def documents_of_source(context: dg.AssetExecutionContext, source_files: SourceFiles, chunk_store: ChunkStore):
    source = context.partition_key
    try:
        fingerprint = source_files.content_fingerprint(source)
    except SourcesUnavailable as error:
        # A partition added by hand (the UI's "Add a partition") names no folder: a source is a
        # folder, whose partition the sensor adds, and removes again when there is no folder.
        raise dg.Failure(
            f"source {source!r} has no folder ({error}): add the folder under {source_files.sources_uri}; "
            "the sensor (or `ai-assets build`) adds its partition",
            allow_retries=False,
        ) from None
    previous = latest_metadata(context.instance, context.asset_key, source) or {}
    loaded = source_files.load(
        source, [QuarantinedItem(source=source, **item) for item in previous.get(QUARANTINED_FILES) or []]
    )
    if source_files.keep_last_good:
        loaded = with_stale_documents(loaded, chunk_store, previous.get(STALE_DOCUMENTS) or [])
    for item in loaded.quarantined:
        remembered = " (verdict remembered: the file is unchanged)" if item.remembered else ""
        context.log.warning(f"quarantined {source}/{shown_name(item.location)}: {shown_name(item.reason)}{remembered}")
    for stale in loaded.stale:
        context.log.warning(
            f"stale {shown_name(stale.doc_key)}: its last good version stays indexed since {stale.since}"
        )
    for entry in loaded.skipped:
        # Another file type is expected; a FIFO, a dangling link or a loop is worth a look (and
        # reaches the terminal of `ai-assets build`, which shows warnings).
        log = context.log.info if entry.reason.startswith(UNSUPPORTED_TYPE) else context.log.warning
        log(f"skipped {source}/{shown_name(entry.relative)}: {shown_name(entry.reason)}")
    if not loaded.documents:
        context.log.warning(f"source {source!r} has no readable document")
    low_confidence = {d.path: d.metadata[OCR_LOW_CONFIDENCE_PAGES] for d in loaded.documents if OCR_LOW_CONFIDENCE_PAGES in d.metadata}
    for path, pages in low_confidence.items():
        context.log.warning(f"OCR read {source}/{path} with low confidence on page(s) {pages}: check the scan")
    total_chars = sum(len(document.text) for document in loaded.documents)
    unsupported = sum(1 for entry in loaded.skipped if entry.reason.startswith(UNSUPPORTED_TYPE))
    yield dg.MaterializeResult(
        value=loaded,
        # The data version is the set of document versions, so only a real content change
        # marks downstream assets stale.
        data_version=dg.DataVersion(
            sha256_hex(
                *sorted(f"{d.doc_key}:{d.content_hash}" for d in loaded.documents),
                *(f"stale:{stale.doc_key}" for stale in loaded.stale),
            )
        ),
        metadata={
            **shown_partition(context),
            "documents": len(loaded.documents),
            "quarantined": len(loaded.quarantined),
            "quarantined_remembered": sum(1 for item in loaded.quarantined if item.remembered),
            "stale": len(loaded.stale),
            "skipped": len(loaded.skipped),
            "skipped_unsupported": unsupported,
            "pages": sum(document.pages or 0 for document in loaded.documents),
            "text_chars": total_chars,
            "source_bytes": sum(document.size_bytes for document in loaded.documents),
            "parse_seconds": round(loaded.parse_seconds, 3),
            # Scanned pages read by OCR, and per file those it read with low confidence.
            "ocr_pages": sum(len(d.metadata[OCR_PAGES].split(", ")) for d in loaded.documents if OCR_PAGES in d.metadata),
            **({"ocr_low_confidence": dg.MetadataValue.json(low_confidence)} if low_confidence else {}),
            # Tables that `ai-assets quarantine` reads too; none when empty (the counts above say 0).
            **listing(QUARANTINED_FILES, [item.model_dump() for item in loaded.quarantined], QUARANTINE_COLUMNS),
            **listing(SKIPPED_ENTRIES, [entry.model_dump() for entry in loaded.skipped], SKIPPED_COLUMNS),
            **listing(STALE_DOCUMENTS, [stale.model_dump() for stale in loaded.stale], STALE_COLUMNS),
            # What the source sensor compares the folder against.
            CONTENT_FINGERPRINT: fingerprint,
        },
    )
    yield dg.AssetCheckResult(
        check_name="quarantine_empty",
        passed=not loaded.quarantined,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "quarantined": len(loaded.quarantined),
            "files": dg.MetadataValue.md(quarantine_table(loaded.quarantined)),
        },
    )


def with_stale_documents(loaded: SourceLoad, chunk_store: ChunkStore, previous_stale: list[dict]) -> SourceLoad:
    """The load, with the indexed documents whose file is unreadable now (their last good chunks
    are in the source's chunk file, which document_chunks has not rewritten yet)."""
    if not loaded.quarantined:
        return loaded
    chunk_file = chunk_store.existing(loaded.source)
    if chunk_file is None:
        return loaded
    stale = stale_documents(
        loaded.quarantined,
        indexed_documents(chunk_file),
        {document.doc_key for document in loaded.documents},
        [StaleDocument(**entry) for entry in previous_stale],
        now=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    return loaded.model_copy(update={"stale": stale})
