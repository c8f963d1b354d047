import dagster as dg

from ai_assets.automation import CONTENT_FINGERPRINT, SOURCE_FILES_KEY
from ai_assets.core.documents.model import SourceLoad
from ai_assets.core.hashing import sha256_hex
from ai_assets.partitions import source_partitions
from ai_assets.resources import SourceFiles


@dg.asset(
    partitions_def=source_partitions,
    deps=[SOURCE_FILES_KEY],
    group_name="ingestion",
    kinds={"python", "file"},
    code_version="1",
    check_specs=[
        dg.AssetCheckSpec(
            "quarantine_empty",
            asset="source_documents",
            partitions_def=source_partitions,
            description="Warns when files of the source were quarantined (reasons in the metadata).",
        )
    ],
    description=(
        "Normalized documents of one source folder under data/sources/: Markdown, text, "
        "reStructuredText, HTML (tags stripped) and BEIR corpus.jsonl lines, each with its key, "
        "title, text and content hash. Files that cannot be read (empty, binary, not UTF-8, too "
        "large, malformed JSON lines) are quarantined with their reason; the rest goes on."
    ),
)
def source_documents(context: dg.AssetExecutionContext, source_files: SourceFiles):
    source = context.partition_key
    fingerprint = source_files.content_fingerprint(source)
    loaded = source_files.load(source)
    for item in loaded.quarantined:
        context.log.warning(f"quarantined {source}/{item.location}: {item.reason}")
    if not loaded.documents:
        context.log.warning(f"source {source!r} has no readable document")
    total_chars = sum(len(document.text) for document in loaded.documents)
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
            "skipped_unsupported": len(loaded.skipped),
            "text_chars": total_chars,
            "source_bytes": sum(document.size_bytes for document in loaded.documents),
            "quarantine": dg.MetadataValue.md(quarantine_table(loaded)),
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
            "files": dg.MetadataValue.md(quarantine_table(loaded)),
        },
    )


def quarantine_table(loaded: SourceLoad) -> str:
    if not loaded.quarantined:
        return "No file quarantined."
    rows = "".join(
        f"| `{item.location}` | {item.reason.replace('|', '/')} |\n" for item in loaded.quarantined
    )
    return "| file | reason |\n|---|---|\n" + rows
