"""What every door that reads the index shares beyond ``core`` (the CLI, the HTTP server, MCP):
the settings-dependent calls, written once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lancedb.table import Table

from ai_assets.core.documents.model import StaleDocument
from ai_assets.core.lineage import ChunkTrace
from ai_assets.core.retrieval.search import SearchHit
from ai_assets.settings import Settings


def trace(
    settings: Settings, table: Table, hits: Sequence[SearchHit], scored: bool = True,
    stale: Mapping[str, StaleDocument] | None = None,
) -> list[ChunkTrace]:
    """Where each hit came from (`ai-assets trace`, ``GET /v1/chunks/{id}``): its file, the run that
    wrote it, and whether its document changed since (the file is parsed again to tell), or is
    kept stale (``stale``: what the last ingest recorded, read from Dagster by the CLI)."""
    from ai_assets.core.documents.object_folders import source_folders_at
    from ai_assets.core.lineage import trace_hits
    from ai_assets.resources import source_files_from_settings

    return trace_hits(
        hits,
        source_folders_at(settings.sources_location),
        settings.max_document_bytes,
        table=table.name,
        table_version=table.version,
        ui_url=settings.dagster_ui_url,
        scored=scored,
        parsing=source_files_from_settings(settings).parsing.model_copy(update={"workers": 1}),
        stale=stale or {},
    )
