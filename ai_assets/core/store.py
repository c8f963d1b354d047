"""The LanceDB side: one table per embedder, scoped per-source writes, indexes, versions.

Every row carries its lineage (source, document key and content hash, chunker config,
embedder, model, the Dagster run id that wrote it). The table's schema metadata records the
model, dimensions and normalization; opening it with another spec is an error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from lancedb.db import DBConnection
from lancedb.index import FTS, BTree, IvfPq
from lancedb.table import Table

from ai_assets.core.chunking import Chunk
from ai_assets.core.embedders import Embedder, EmbedderSpec
from ai_assets.core.hashing import sha256_hex

SCHEMA_VERSION = "1"
_META_PREFIX = "ai_assets."
# IN-lists are split so a cache lookup never builds one enormous filter expression.
_LOOKUP_BATCH = 2000


class TableMismatch(ValueError):
    """The embedder table was written by another model, dimension or schema version."""


def table_name(embedder: str) -> str:
    return f"chunks__{embedder}"


def text_hash(text: str) -> str:
    """Embedding cache key: the exact text sent to the model."""
    return sha256_hex(text)


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def table_metadata(spec: EmbedderSpec) -> dict[str, str]:
    return {
        f"{_META_PREFIX}embedder": spec.name,
        f"{_META_PREFIX}model": spec.model,
        f"{_META_PREFIX}dimensions": str(spec.dimensions),
        f"{_META_PREFIX}normalized": str(spec.normalized).lower(),
        f"{_META_PREFIX}schema_version": SCHEMA_VERSION,
    }


def chunk_schema(spec: EmbedderSpec) -> pa.Schema:
    fields = [
        pa.field("chunk_id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("doc_key", pa.string(), nullable=False),
        pa.field("doc_path", pa.string()),
        pa.field("doc_title", pa.string()),
        pa.field("doc_content_hash", pa.string()),
        pa.field("chunk_index", pa.int32()),
        pa.field("char_start", pa.int32()),
        pa.field("char_end", pa.int32()),
        pa.field("token_count", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("text_hash", pa.string()),
        pa.field("chunker_config", pa.string()),
        pa.field("embedder", pa.string()),
        pa.field("model", pa.string()),
        pa.field("run_id", pa.string()),
        vector_field(spec),
    ]
    return pa.schema(fields, metadata=table_metadata(spec))


def read_table_metadata(table: Table) -> dict[str, str]:
    raw = table.schema.metadata or {}
    return {
        key.decode(): value.decode()
        for key, value in raw.items()
        if key.decode().startswith(_META_PREFIX)
    }


def verify_table(table: Table, spec: EmbedderSpec) -> None:
    expected = table_metadata(spec)
    found = read_table_metadata(table)
    differences = [
        f"{key.removeprefix(_META_PREFIX)}: table has {found.get(key)!r}, embedder has {value!r}"
        for key, value in expected.items()
        if found.get(key) != value
    ]
    if differences:
        raise TableMismatch(
            f"table {table.name} was not written by embedder {spec.name!r} as configured now ("
            + "; ".join(differences)
            + "). Use a new embedder name for a new model, or drop the table to re-embed."
        )


def open_table(db: DBConnection, spec: EmbedderSpec, create: bool = True) -> Table:
    """The embedder's table, created empty on first use, checked against the spec."""
    return _open_verified(db, table_name(spec.name), spec, chunk_schema(spec) if create else None)


def _open_verified(db: DBConnection, name: str, spec: EmbedderSpec, schema: pa.Schema | None) -> Table:
    """Open a table written for ``spec`` (refusing another model's), or create it from ``schema``."""
    if name in db.table_names(limit=None):
        table = db.open_table(name)
        verify_table(table, spec)
        return table
    if schema is None:
        raise FileNotFoundError(
            f"no table {name} in {db.uri}: run `ai-assets build` for embedder {spec.name!r} first"
        )
    return db.create_table(name, schema=schema, exist_ok=True)


def vector_field(spec: EmbedderSpec) -> pa.Field:
    return pa.field("vector", pa.list_(pa.float32(), spec.dimensions))


def vector_array(vectors: np.ndarray, dimensions: int) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, dimensions)


def scan(table: Table, columns: Sequence[str], where: str | None = None) -> pa.Table:
    query = table.search()
    if where:
        query = query.where(where)
    return query.select(list(columns)).limit(None).to_arrow()


@dataclass(frozen=True)
class SourceState:
    """What the table holds for one source: chunk ids with their document versions, and vectors."""

    doc_hash_by_chunk: dict[str, str]
    vector_by_text_hash: dict[str, np.ndarray]


def source_state(table: Table, source: str) -> SourceState:
    rows = scan(
        table, ["chunk_id", "doc_content_hash", "text_hash", "vector"], f"source = {sql_literal(source)}"
    )
    chunk_ids = rows.column("chunk_id").to_pylist()
    doc_hashes = rows.column("doc_content_hash").to_pylist()
    return SourceState(
        doc_hash_by_chunk=dict(zip(chunk_ids, doc_hashes, strict=True)),
        vector_by_text_hash=_vectors_by_hash(rows),
    )


def source_vectors(table: Table, source: str) -> np.ndarray:
    rows = scan(table, ["vector"], f"source = {sql_literal(source)}")
    if rows.num_rows == 0:
        return np.zeros((0, 0), dtype=np.float32)
    return fixed_list_to_numpy(rows.column("vector"))


def cached_vectors(table: Table, hashes: Iterable[str]) -> dict[str, np.ndarray]:
    """Vectors already in the table (any source) for these text hashes."""
    found: dict[str, np.ndarray] = {}
    for condition in _in_list_conditions("text_hash", hashes):
        found.update(_vectors_by_hash(scan(table, ["text_hash", "vector"], condition)))
    return found


def _vectors_by_hash(rows: pa.Table) -> dict[str, np.ndarray]:
    if rows.num_rows == 0:
        return {}
    hashes = rows.column("text_hash").to_pylist()
    vectors = fixed_list_to_numpy(rows.column("vector"))
    return dict(zip(hashes, vectors, strict=True))


def fixed_list_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


@dataclass(frozen=True)
class WritePlan:
    inserted: int
    updated: int
    deleted: int

    @property
    def changes(self) -> int:
        return self.inserted + self.updated + self.deleted


def plan_source_write(existing: dict[str, str], chunks: Sequence[Chunk]) -> WritePlan:
    """What a scoped merge would do: new chunk ids, chunks whose document version moved, gone ids."""
    new_ids = {chunk.chunk_id for chunk in chunks}
    inserted = sum(1 for chunk in chunks if chunk.chunk_id not in existing)
    updated = sum(
        1
        for chunk in chunks
        if chunk.chunk_id in existing and existing[chunk.chunk_id] != chunk.doc_content_hash
    )
    deleted = sum(1 for chunk_id in existing if chunk_id not in new_ids)
    return WritePlan(inserted=inserted, updated=updated, deleted=deleted)


def chunk_rows(
    chunks: Sequence[Chunk], vectors: np.ndarray, spec: EmbedderSpec, run_id: str
) -> pa.Table:
    if len(chunks) != len(vectors):
        raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
    schema = chunk_schema(spec)
    columns: dict[str, Any] = {
        name: [getattr(chunk, name) for chunk in chunks]
        for name in (
            "chunk_id", "source", "doc_key", "doc_path", "doc_title", "doc_content_hash",
            "chunk_index", "char_start", "char_end", "token_count", "text", "chunker_config",
        )
    }
    columns["text_hash"] = [text_hash(chunk.text) for chunk in chunks]
    columns["embedder"] = [spec.name] * len(chunks)
    columns["model"] = [spec.model] * len(chunks)
    columns["run_id"] = [run_id] * len(chunks)
    columns["vector"] = vector_array(vectors, spec.dimensions)
    return pa.table(columns, schema=schema)


def publish_source(table: Table, source: str, rows: pa.Table) -> int:
    """Make the table hold exactly ``rows`` for ``source`` in one atomic, source-scoped merge.

    Matched rows are rewritten only when their document version changed; rows of other
    sources are never touched. Returns the new table version.
    """
    if rows.num_rows == 0:
        raise ValueError("refusing to publish an empty source with a merge; use delete_source")
    (
        table.merge_insert("chunk_id")
        .when_matched_update_all(where="target.doc_content_hash != source.doc_content_hash")
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(f"source = {sql_literal(source)}")
        .execute(rows)
    )
    return table.version


def delete_source(table: Table, source: str) -> int:
    """Remove every row of a source; returns how many rows went."""
    condition = f"source = {sql_literal(source)}"
    count = table.count_rows(condition)
    if count:
        table.delete(condition)
    return count


def prune_sources(table: Table, keep: set[str]) -> dict[str, int]:
    """Delete the rows of every source not in ``keep`` (its folder was removed); rows deleted per source."""
    return {
        source: delete_source(table, source) for source in sorted(set(source_row_counts(table)) - keep)
    }


def source_row_counts(table: Table) -> dict[str, int]:
    sources = scan(table, ["source"]).column("source").to_pylist()
    counts: dict[str, int] = {}
    for source in sources:
        counts[source] = counts.get(source, 0) + 1
    return counts


@dataclass(frozen=True)
class IndexReport:
    rows: int
    version: int
    indexes: list[str]
    compacted_fragments: int
    changed: bool


# Index name -> (column, index configuration factory).
SEARCH_INDEXES: dict[str, tuple[str, Callable[[], Any]]] = {
    "text_idx": ("text", FTS),
    "source_idx": ("source", BTree),
}
VECTOR_INDEX = "vector_idx"


def vector_index_config(rows: int, dimensions: int) -> IvfPq:
    """IVF-PQ sized for the table: about sqrt(rows) partitions, 8 dimensions per sub-vector."""
    return IvfPq(
        distance_type="cosine",
        num_partitions=max(1, int(math.sqrt(rows))),
        num_sub_vectors=max(1, dimensions // 8),
    )


def build_indexes(table: Table, ann_min_rows: int | None = None) -> IndexReport:
    """Compaction plus full-text, scalar and (from ``ann_min_rows`` rows) ANN vector indexes.

    This is the only writer of index structures. A table whose indexes already cover every row
    and that needs no compaction is left alone, so rebuilding an unchanged knowledge base
    writes nothing.
    """
    existing = {index.name: index for index in table.list_indices()}
    missing = [name for name in SEARCH_INDEXES if name not in existing]
    stale = [name for name, index in existing.items() if (index.num_unindexed_rows or 0) > 0]
    fragments_before = table.stats()["fragment_stats"]["num_fragments"]
    rows = table.count_rows()
    wants_ann = ann_min_rows is not None and rows >= ann_min_rows and VECTOR_INDEX not in existing
    changed = rows > 0 and bool(missing or stale or fragments_before > 1 or wants_ann)
    if changed:
        table.optimize()  # compacts fragments and folds new rows into the existing indexes
        for name in missing:
            column, config = SEARCH_INDEXES[name]
            table.create_index(column, config=config(), name=name, replace=True)
        if wants_ann:
            dimensions = table.schema.field("vector").type.list_size
            table.create_index("vector", config=vector_index_config(rows, dimensions), name=VECTOR_INDEX)
    fragments_after = table.stats()["fragment_stats"]["num_fragments"]
    return IndexReport(
        rows=rows,
        version=table.version,
        indexes=sorted(index.name for index in table.list_indices()),
        compacted_fragments=max(0, fragments_before - fragments_after),
        changed=changed,
    )


@dataclass(frozen=True)
class EmbeddingSync:
    """What publishing one source's chunks into an embedder table did."""

    chunks: int
    embedded: int
    cache_hits: int
    embedded_tokens: int
    inserted: int
    updated: int
    deleted: int
    kept_rows: int  # rows left in place because the source came back empty
    wrote: bool
    version: int
    embed_seconds: float


def sync_source_embeddings(
    table: Table,
    source: str,
    chunks: Sequence[Chunk],
    embedder: Embedder,
    run_id: str,
    allow_empty: bool = False,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 256,
    journal: Table | None = None,
) -> EmbeddingSync:
    """Embed only the chunks whose text has no vector yet, then publish the source in one merge.

    Nothing is embedded or written when the source is unchanged. An empty source keeps its
    existing rows unless ``allow_empty`` is set, so a vanished mount never wipes the index.
    With a ``journal`` table, each embedded batch is saved there at once, so a run that dies
    before publishing does not pay for those vectors again; published entries are removed.
    """
    state = source_state(table, source)
    plan = plan_source_write(state.doc_hash_by_chunk, chunks)
    if not chunks:
        kept = len(state.doc_hash_by_chunk)
        deleted = delete_source(table, source) if (allow_empty and kept) else 0
        return EmbeddingSync(
            chunks=0, embedded=0, cache_hits=0, embedded_tokens=0, inserted=0, updated=0,
            deleted=deleted, kept_rows=kept - deleted, wrote=deleted > 0, version=table.version,
            embed_seconds=0.0,
        )

    hashes = [text_hash(chunk.text) for chunk in chunks]
    vectors_by_hash = dict(state.vector_by_text_hash)
    for cache in (table, journal):
        missing = {value for value in hashes if value not in vectors_by_hash}
        if cache is not None and missing:
            vectors_by_hash.update(cached_vectors(cache, missing))
    text_by_hash = {value: chunk.text for value, chunk in zip(hashes, chunks, strict=True)}
    # Longest first, so each batch holds texts of similar length and pads little.
    to_embed = sorted(
        dict.fromkeys(value for value in hashes if value not in vectors_by_hash),
        key=lambda value: -len(text_by_hash[value]),
    )

    started = time.perf_counter()
    embedded_tokens = 0
    for start in range(0, len(to_embed), batch_size):
        batch = to_embed[start : start + batch_size]
        texts = [text_by_hash[value] for value in batch]
        vectors, token_counts = embedder.embed_counted(texts)
        embedded_tokens += sum(token_counts)
        if journal is not None:
            journal.add(journal_rows(batch, vectors, embedder.spec))
        vectors_by_hash.update(zip(batch, vectors, strict=True))
        if progress:
            progress(min(start + batch_size, len(to_embed)), len(to_embed))
    embed_seconds = time.perf_counter() - started

    newly_embedded = set(to_embed)
    cache_hits = sum(1 for value in hashes if value not in newly_embedded)
    wrote = plan.changes > 0
    if wrote:
        vectors = np.stack([vectors_by_hash[value] for value in hashes])
        publish_source(table, source, chunk_rows(chunks, vectors, embedder.spec, run_id))
    if journal is not None:
        forget_journaled(journal, hashes)
    return EmbeddingSync(
        chunks=len(chunks), embedded=len(to_embed), cache_hits=cache_hits,
        embedded_tokens=embedded_tokens, inserted=plan.inserted, updated=plan.updated,
        deleted=plan.deleted, kept_rows=0, wrote=wrote, version=table.version,
        embed_seconds=embed_seconds,
    )


def journal_name(embedder: str) -> str:
    return f"embedding_journal__{embedder}"


def journal_schema(spec: EmbedderSpec) -> pa.Schema:
    return pa.schema(
        [pa.field("text_hash", pa.string(), nullable=False), vector_field(spec)],
        metadata=table_metadata(spec),
    )


def open_journal(db: DBConnection, spec: EmbedderSpec) -> Table:
    """Vectors embedded but not yet published, kept so an interrupted run does not pay twice."""
    return _open_verified(db, journal_name(spec.name), spec, journal_schema(spec))


def journal_rows(hashes: Sequence[str], vectors: np.ndarray, spec: EmbedderSpec) -> pa.Table:
    return pa.table(
        {"text_hash": list(hashes), "vector": vector_array(vectors, spec.dimensions)},
        schema=journal_schema(spec),
    )


def forget_journaled(journal: Table, hashes: Iterable[str]) -> None:
    """Drop journal entries whose vectors are now in the published table."""
    wanted = set(hashes)
    if not wanted or journal.count_rows() == 0:
        return
    for condition in _in_list_conditions("text_hash", wanted):
        journal.delete(condition)


def _in_list_conditions(column: str, values: Iterable[str]) -> list[str]:
    ordered = sorted(set(values))
    return [
        f"{column} IN ({', '.join(sql_literal(value) for value in ordered[start : start + _LOOKUP_BATCH])})"
        for start in range(0, len(ordered), _LOOKUP_BATCH)
    ]

