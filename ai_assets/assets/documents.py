import dagster as dg

from ai_assets.automation import CONTENT_FINGERPRINT, SOURCE_FILES_KEY
from ai_assets.core.documents.loading import UNSUPPORTED_TYPE
from ai_assets.core.documents.ocr import OCR_LOW_CONFIDENCE_PAGES, OCR_PAGES
from ai_assets.core.documents.reports import quarantine_table, skipped_table
from ai_assets.core.hashing import sha256_hex
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.resources import SourceFiles

# Metadata keys of the quarantined and skipped entries as JSON lists.
QUARANTINED_FILES = "quarantined_files"
SKIPPED_ENTRIES = "skipped_entries"


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
        required_resource_keys=names.resource_keys("source_files"),
        io_manager_key=names.name("io_manager"),
        check_specs=[
            dg.AssetCheckSpec(
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
            "that are not documents are listed as skipped; the rest goes on."
        ),
    )
    def source_documents(context: dg.AssetExecutionContext):
        yield from documents_of_source(context, names.resource(context, "source_files"))  # type: ignore[arg-type]

    return source_documents


def documents_of_source(context: dg.AssetExecutionContext, source_files: SourceFiles):
    source = context.partition_key
    fingerprint = source_files.content_fingerprint(source)
    loaded = source_files.load(source)
    for item in loaded.quarantined:
        context.log.warning(f"quarantined {source}/{item.location}: {item.reason}")
    for entry in loaded.skipped:
        # Another file type is expected; a FIFO, a dangling link or a loop is worth a look (and
        # reaches the terminal of `ai-assets build`, which shows warnings).
        log = context.log.info if entry.reason.startswith(UNSUPPORTED_TYPE) else context.log.warning
        log(f"skipped {source}/{entry.relative}: {entry.reason}")
    if not loaded.documents:
        context.log.warning(f"source {source!r} has no readable document")
    low_confidence = {d.path: d.metadata[OCR_LOW_CONFIDENCE_PAGES] for d in loaded.documents if OCR_LOW_CONFIDENCE_PAGES in d.metadata}
    for path, pages in low_confidence.items():
        context.log.warning(f"OCR read {source}/{path} with low confidence on page(s) {pages}: check the scan")
    total_chars = sum(len(document.text) for document in loaded.documents)
    unsupported = sum(1 for entry in loaded.skipped if entry.reason.startswith(UNSUPPORTED_TYPE))
    yield dg.Output(
        loaded,
        # The data version is the set of document versions, so only a real content change
        # marks downstream assets stale.
        data_version=dg.DataVersion(
            sha256_hex(*sorted(f"{d.doc_key}:{d.content_hash}" for d in loaded.documents))
        ),
        metadata={
            "documents": len(loaded.documents),
            "quarantined": len(loaded.quarantined),
            "skipped": len(loaded.skipped),
            "skipped_unsupported": unsupported,
            "pages": sum(document.pages or 0 for document in loaded.documents),
            "text_chars": total_chars,
            "source_bytes": sum(document.size_bytes for document in loaded.documents),
            "parse_seconds": round(loaded.parse_seconds, 3),
            # Scanned pages read by OCR, and per file those it read with low confidence.
            "ocr_pages": sum(len(d.metadata[OCR_PAGES].split(", ")) for d in loaded.documents if OCR_PAGES in d.metadata),
            "ocr_low_confidence": dg.MetadataValue.json(low_confidence),
            "quarantine": dg.MetadataValue.md(quarantine_table(loaded.quarantined)),
            "skipped_files": dg.MetadataValue.md(skipped_table(loaded.skipped)),
            # The same, for `ai-assets quarantine` (and any other reader).
            QUARANTINED_FILES: dg.MetadataValue.json([item.model_dump(exclude={"source"}) for item in loaded.quarantined]),
            SKIPPED_ENTRIES: dg.MetadataValue.json([entry.model_dump() for entry in loaded.skipped]),
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
