"""The LanceDB tables: one per embedder, its schema and metadata, opened only for the model that wrote it.

Every row carries its lineage (source, document key and content hash, chunker config,
embedder, model, the Dagster run id that wrote it). The table's schema metadata records the
model, dimensions and normalization; opening it with another spec is an error.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from filelock import FileLock
from lancedb.db import DBConnection
from lancedb.table import Table

from ai_assets.core.embedding.base import EmbedderSpec
from ai_assets.core.hashing import sha256_hex

SCHEMA_VERSION = "1"
_META_PREFIX = "ai_assets."


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
    if name not in db.table_names(limit=None):
        if schema is None:
            raise FileNotFoundError(
                f"no table {name} in {db.uri}: run `ai-assets build` for embedder {spec.name!r} first"
            )
        with FileLock(creation_lock_path(db.uri, name)):
            # Checked again under the lock: another writer may have created it meanwhile.
            if name not in db.table_names(limit=None):
                return db.create_table(name, schema=schema)
    table = db.open_table(name)
    verify_table(table, spec)
    return table


def creation_lock_path(uri: str, name: str) -> str:
    """The lock that makes creating table ``name`` of database ``uri`` happen once.

    Two writers that both find the table missing would each commit a create, and LanceDB
    resolves the later one as an overwrite: it fails the other writer's next append ("Append
    transaction is incompatible with concurrent transaction Overwrite") or, landing after that
    append, wipes its rows. A local database keeps the lock beside its tables; an object-store
    one in the temp directory, which serializes the writers of this machine only.
    """
    local = "://" not in uri or uri.startswith("file://")
    directory = Path(uri.removeprefix("file://")) if local else Path(tempfile.gettempdir()) / "ai_assets-locks" / sha256_hex(uri, length=16)
    directory.mkdir(parents=True, exist_ok=True)
    return str(directory / f"{name}.create.lock")


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


def fixed_list_to_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    width = array.type.list_size
    return array.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)


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


def journal_name(embedder: str) -> str:
    return f"embedding_journal__{embedder}"


def journal_schema(spec: EmbedderSpec) -> pa.Schema:
    return pa.schema(
        [
            pa.field("text_hash", pa.string(), nullable=False),
            pa.field("source", pa.string(), nullable=False),  # whose run embedded it
            vector_field(spec),
        ],
        metadata=table_metadata(spec),
    )


def open_journal(db: DBConnection, spec: EmbedderSpec) -> Table:
    """Vectors embedded but not yet published, kept so an interrupted run does not pay twice."""
    name = journal_name(spec.name)
    if name in db.table_names(limit=None) and "source" not in db.open_table(name).schema.names:
        db.drop_table(name)  # a journal of the first layout; at worst, an interrupted run re-embeds
    return _open_verified(db, name, spec, journal_schema(spec))


def query_cache_name(embedder: str) -> str:
    return f"query_vectors__{embedder}"


def query_cache_schema(spec: EmbedderSpec) -> pa.Schema:
    return pa.schema(
        [
            pa.field("text_hash", pa.string(), nullable=False),  # of the exact text sent to the model
            pa.field("text", pa.string()),
            vector_field(spec),
        ],
        metadata=table_metadata(spec),
    )


def open_query_cache(db: DBConnection, spec: EmbedderSpec) -> Table:
    """Vectors a paid embedder returned for evaluation texts, keyed by model and dimensions (the
    table's verified metadata) and text (its hash). A cache of another model or size is dropped:
    it only saves requests."""
    name = query_cache_name(spec.name)
    if name in db.table_names(limit=None):
        try:
            verify_table(db.open_table(name), spec)
        except TableMismatch:
            db.drop_table(name)
    return _open_verified(db, name, spec, query_cache_schema(spec))
