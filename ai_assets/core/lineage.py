"""Where a retrieved chunk came from: its document file and version, the run that wrote it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel

from ai_assets.core.documents.folders import SourceFolders
from ai_assets.core.documents.loading import ParseSettings, load_file_documents
from ai_assets.core.documents.model import StaleDocument
from ai_assets.core.retrieval.search import SearchHit

# stale: the file is unreadable now and the index keeps the document's last good version.
DocumentStatus = Literal["unchanged", "changed", "deleted", "stale"]


class ChunkTrace(BaseModel):
    rank: int
    score: float | None  # None when the chunk was looked up by id rather than retrieved
    chunk_id: str
    doc_key: str
    citation: str  # doc · section · p. N
    section: str | None
    page: int | None
    page_end: int | None
    file: str
    indexed_content_hash: str
    current_content_hash: str | None
    document_status: DocumentStatus
    stale_reason: str | None = None  # why the file cannot be read now (stale documents)
    stale_since: str | None = None  # when an ingest first found it unreadable
    run_id: str
    run_url: str
    table: str
    table_version: int
    text: str


def trace_hits(
    hits: Sequence[SearchHit],
    folders: SourceFolders,
    max_document_bytes: int,
    table: str,
    table_version: int,
    ui_url: str,
    scored: bool = True,
    parsing: ParseSettings = ParseSettings(),
    stale: Mapping[str, StaleDocument] | None = None,
) -> list[ChunkTrace]:
    """Lineage of each hit, with whether its document changed since the row was written (or is
    stale: unreadable now, its last good version kept, as the last ingest recorded in ``stale``)."""
    stale = stale or {}

    @lru_cache(maxsize=None)
    def current_hashes(source: str, doc_path: str) -> dict[str, str]:
        documents = load_file_documents(folders, source, doc_path, max_document_bytes, parsing)
        return {document.doc_key: document.content_hash for document in documents}

    traces = []
    for rank, hit in enumerate(hits, start=1):
        kept = stale.get(hit.doc_key)
        current = None if kept else current_hashes(hit.source, hit.doc_path).get(hit.doc_key)
        status: DocumentStatus = (
            "stale" if kept else "deleted" if current is None else "unchanged" if current == hit.doc_content_hash else "changed"
        )
        traces.append(
            ChunkTrace(
                rank=rank,
                score=hit.score if scored else None,
                chunk_id=hit.chunk_id,
                doc_key=hit.doc_key,
                citation=hit.citation,
                section=hit.section,
                page=hit.page,
                page_end=hit.page_end,
                file=folders.source_location(hit.source, hit.doc_path),
                indexed_content_hash=hit.doc_content_hash,
                current_content_hash=current,
                document_status=status,
                stale_reason=kept.reason if kept else None,
                stale_since=kept.since if kept else None,
                run_id=hit.run_id,
                run_url=f"{ui_url.rstrip('/')}/runs/{hit.run_id}",
                table=table,
                table_version=table_version,
                text=hit.text,
            )
        )
    return traces
