"""Real documents through the store: the schema migration keeps vectors, a PDF page edit re-embeds
only what changed, and rows and hits carry section and pages."""

from __future__ import annotations

from pathlib import Path

import lancedb
import numpy as np
import pyarrow as pa
import pytest

from ai_assets.core.chunking.chunker import ChunkerConfig, chunk_documents, chunk_id_for
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import load_source
from ai_assets.core.embedding.base import MINILM, Embedder
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.retrieval.search import Searcher
from ai_assets.core.store.tables import (
    TableMismatch,
    chunk_schema,
    fixed_list_to_numpy,
    open_journal,
    open_table,
    read_table_metadata,
    scan,
    table_metadata,
    text_hash,
    vector_array,
)
from ai_assets.core.store.writes import sync_source_embeddings
from ai_assets_tests.document_files import pdf_bytes

CONFIG = ChunkerConfig(tokenizer=MINILM.model, max_tokens=64, overlap_tokens=8)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return create_embedder("minilm")


def manual_pages(edited_page: int | None = None) -> list[list[tuple[str, str]]]:
    pages = []
    for number in range(1, 6):
        lines = [("h1" if number == 1 else "h2", f"Chapter {number}")]
        for sentence in range(6):
            word = "REVISED" if number == edited_page and sentence == 2 else "original"
            lines.append(("body", f"Chapter {number} sentence {sentence} is the {word} guidance on topic {number}."))
        pages.append(lines)
    return pages


def load_chunks(data_dir: Path):
    loaded = load_source(LocalSourceFolders(data_dir), "docs", 10_000_000)
    assert loaded.quarantined == []
    return chunk_documents(loaded.documents, minilm_tokenizer(), CONFIG).chunks


def test_a_one_page_edit_of_a_pdf_reembeds_only_that_pages_chunks(tmp_path: Path, embedder: Embedder) -> None:
    folder = tmp_path / "sources" / "docs"
    folder.mkdir(parents=True)
    (folder / "manual.pdf").write_bytes(pdf_bytes(manual_pages()))
    db = lancedb.connect(str(tmp_path / "db"))
    table, journal = open_table(db, MINILM), open_journal(db, MINILM)
    first = load_chunks(tmp_path / "sources")
    assert {chunk.page for chunk in first} == {1, 2, 3, 4, 5}
    sync_source_embeddings(table, "docs", first, embedder, run_id="run-1", journal=journal)

    (folder / "manual.pdf").write_bytes(pdf_bytes(manual_pages(edited_page=3)))
    second = load_chunks(tmp_path / "sources")
    changed_texts = {chunk.text for chunk in second} - {chunk.text for chunk in first}
    assert changed_texts and all("REVISED" in text for text in changed_texts)
    result = sync_source_embeddings(table, "docs", second, embedder, run_id="run-2", journal=journal)
    assert result.embedded == len(changed_texts) < len(second)
    rows = scan(table, ["text", "page", "page_end", "section", "run_id"]).to_pylist()
    assert {row["run_id"] for row in rows if "REVISED" in row["text"]} == {"run-2"}
    assert all(row["page"] == row["page_end"] for row in rows)
    assert {(row["page"], row["section"]) for row in rows} == {
        (1, "Chapter 1"), *((n, f"Chapter 1 > Chapter {n}") for n in range(2, 6))
    }

    hits = Searcher(table, embedder).search("revised guidance on topic 3", limit=3)
    assert (hits[0].page, hits[0].section) == (3, "Chapter 1 > Chapter 3")
    assert hits[0].citation == "Chapter 1 · Chapter 3 · p. 3"  # the title, then the headings under it


def v1_table(db, chunks, embedder: Embedder):
    """A table as the previous version wrote it: no section or page columns, and chunk ids of its
    own chunker configuration (the chunker's algorithm version changed with the schema)."""
    v2 = chunk_schema(MINILM)
    schema = pa.schema(
        [field for field in v2 if field.name not in ("section", "page", "page_end")],
        metadata={**table_metadata(MINILM), "ai_assets.schema_version": "1"},
    )
    vectors = embedder.embed([chunk.text for chunk in chunks])
    columns = {field.name: [None] * len(chunks) for field in schema}
    for name in ("source", "doc_key", "doc_path", "doc_title", "doc_content_hash", "chunk_index", "text"):
        columns[name] = [getattr(chunk, name) for chunk in chunks]
    columns["chunker_config"] = ["v1-config"] * len(chunks)
    columns["chunk_id"] = [chunk_id_for(chunk.doc_key, chunk.text, "v1-config") for chunk in chunks]
    columns["text_hash"] = [text_hash(chunk.text) for chunk in chunks]
    columns["embedder"], columns["model"] = ["minilm"] * len(chunks), [MINILM.model] * len(chunks)
    columns["run_id"] = ["old-run"] * len(chunks)
    columns["vector"] = vector_array(vectors, MINILM.dimensions)
    return db.create_table("chunks__minilm", data=pa.table(columns, schema=schema)), vectors


def test_a_v1_table_is_migrated_keeping_its_vectors_and_only_changed_texts_are_embedded(
    tmp_path: Path, embedder: Embedder
) -> None:
    folder = tmp_path / "sources" / "docs"
    folder.mkdir(parents=True)
    (folder / "manual.pdf").write_bytes(pdf_bytes(manual_pages()))
    chunks = load_chunks(tmp_path / "sources")
    db = lancedb.connect(str(tmp_path / "db"))
    old, vectors = v1_table(db, chunks[:-2], embedder)  # the old rows lack the last two texts

    with pytest.raises(TableMismatch, match="schema version 1, this version reads 2: run `ai-assets build`"):
        open_table(db, MINILM, create=False)
    table = open_table(db, MINILM)  # a writer migrates
    assert read_table_metadata(table)["ai_assets.schema_version"] == "2"
    migrated = scan(table, ["text", "section", "page", "vector"])
    assert migrated.num_rows == len(chunks) - 2 and set(migrated.column("page").to_pylist()) == {None}
    by_text = dict(zip(migrated.column("text").to_pylist(), fixed_list_to_numpy(migrated.column("vector")), strict=True))
    assert all(np.array_equal(by_text[chunk.text], vector) for chunk, vector in zip(chunks, vectors, strict=False))

    result = sync_source_embeddings(table, "docs", chunks, embedder, run_id="new-run", journal=open_journal(db, MINILM))
    # New chunk ids; only the two texts the old table lacked go to the model.
    assert result.embedded == 2 and result.cache_hits == len(chunks) - 2
    assert (result.inserted, result.deleted) == (len(chunks), len(chunks) - 2)
    rows = scan(table, ["page", "section"]).to_pylist()
    assert len(rows) == len(chunks) and all(row["page"] is not None and row["section"] for row in rows)
    assert open_table(db, MINILM, create=False).version == table.version  # readers open it now
    del old
