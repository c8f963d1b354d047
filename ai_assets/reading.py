"""What every door that reads the index shares beyond ``core`` (the CLI, the HTTP server, MCP):
the settings-dependent calls, written once."""

from __future__ import annotations

from collections.abc import Sequence

from lancedb.table import Table

from ai_assets.core.lineage import ChunkTrace
from ai_assets.core.retrieval.search import SearchHit
from ai_assets.settings import Settings


def trace(settings: Settings, table: Table, hits: Sequence[SearchHit], scored: bool = True) -> list[ChunkTrace]:
    """Where each hit came from (`ai-assets trace`, ``GET /v1/chunks/{id}``): its file, the run that
    wrote it, and whether its document changed since (the file is parsed again to tell)."""
    from ai_assets.core.documents.loading import ParseSettings
    from ai_assets.core.documents.object_folders import source_folders_at
    from ai_assets.core.lineage import trace_hits

    return trace_hits(
        hits,
        source_folders_at(settings.sources_location),
        settings.max_document_bytes,
        table=table.name,
        table_version=table.version,
        ui_url=settings.dagster_ui_url,
        scored=scored,
        parsing=ParseSettings(
            workers=1, timeout_seconds=settings.parse_timeout_seconds, max_file_bytes=settings.max_file_bytes,
            ocr=settings.ocr,
        ),
    )
