import dagster as dg

from ai_assets.automation import CONTENT_FINGERPRINT, SOURCE_FILES_KEY
from ai_assets.core.documents.folders import SourcesUnavailable
from ai_assets.core.documents.loading import UNSUPPORTED_TYPE
from ai_assets.core.documents.reports import quarantine_table
from ai_assets.core.hashing import sha256_hex
from ai_assets.metadata_tables import listing, shown_partition
from ai_assets.naming import KnowledgeBaseNames
from ai_assets.preview_api import partitioned_check
from ai_assets.resources import SourceFiles

# Metadata keys of the quarantined and skipped entries, as tables.
QUARANTINED_FILES = "quarantined_files"
SKIPPED_ENTRIES = "skipped_entries"
QUARANTINE_COLUMNS = (("path", "string"), ("line", "int"), ("reason", "string"))
SKIPPED_COLUMNS = (("relative", "string"), ("reason", "string"))


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
            "that are not documents are listed as skipped; the rest goes on."
        ),
    )
    def source_documents(context: dg.AssetExecutionContext):
        yield from documents_of_source(context, names.resource(context, "source_files"))  # type: ignore[arg-type]

    return source_documents


def documents_of_source(context: dg.AssetExecutionContext, source_files: SourceFiles):
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
    total_chars = sum(len(document.text) for document in loaded.documents)
    unsupported = sum(1 for entry in loaded.skipped if entry.reason.startswith(UNSUPPORTED_TYPE))
    yield dg.MaterializeResult(
        value=loaded,
        # The data version is the set of document versions, so only a real content change
        # marks downstream assets stale.
        data_version=dg.DataVersion(
            sha256_hex(*sorted(f"{d.doc_key}:{d.content_hash}" for d in loaded.documents))
        ),
        metadata={
            **shown_partition(context),
            "documents": len(loaded.documents),
            "quarantined": len(loaded.quarantined),
            "skipped": len(loaded.skipped),
            "skipped_unsupported": unsupported,
            "pages": sum(document.pages or 0 for document in loaded.documents),
            "text_chars": total_chars,
            "source_bytes": sum(document.size_bytes for document in loaded.documents),
            "parse_seconds": round(loaded.parse_seconds, 3),
            # Tables that `ai-assets quarantine` reads too; none when empty (the counts above say 0).
            **listing(QUARANTINED_FILES, [item.model_dump() for item in loaded.quarantined], QUARANTINE_COLUMNS),
            **listing(SKIPPED_ENTRIES, [entry.model_dump() for entry in loaded.skipped], SKIPPED_COLUMNS),
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
