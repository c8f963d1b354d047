"""The LanceDB tables: one per embedder, its schema and metadata, opened only for the model that wrote it.

Every row carries its lineage (source, document key and content hash, chunker config,
embedder, model, the Dagster run id that wrote it). The table's schema metadata records the
model, dimensions and normalization; opening it with another spec is an error.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
from lancedb.db import DBConnection
from lancedb.table import Table

from ai_assets.core.embedding.base import EmbedderSpec
from ai_assets.core.hashing import sha256_hex
from ai_assets.core.storage import filesystem, is_remote, join
from ai_assets.core.storage.locations import SCHEME_PACKAGES

SCHEMA_VERSION = "1"
CREATE_ATTEMPTS = 20  # a waiting writer gives the one creating the table ~30 s to commit it
CLAIM_STALE_SECONDS = 600  # creating an empty table takes seconds; a claim this old was abandoned
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
    table = _open_or_create(db, name, spec, schema)
    verify_table(table, spec)
    return table


def _open_or_create(db: DBConnection, name: str, spec: EmbedderSpec, schema: pa.Schema | None) -> Table:
    """The table, created once however many writers on however many machines find it missing.

    LanceDB alone does not serialize two creates: both pass its existence check, and the later
    commit lands as an overwrite that fails the other writer's next append or wipes its rows
    (seen on S3 here). So a writer creates only while it holds the table's creation claim: an
    object written with put-if-absent beside the tables (a conditional PUT on S3, an exclusive
    create on disk), seen by every machine that writes this database. The others wait for the
    table to be committed and open it. A claim left by a writer that died is stale after
    ``CLAIM_STALE_SECONDS`` and taken over.
    """
    for attempt in range(CREATE_ATTEMPTS):
        table = _open_if_committed(db, name)
        if table is not None:
            return table
        if schema is None:
            raise FileNotFoundError(
                f"no table {name} in {db.uri}: run `ai-assets build` for embedder {spec.name!r} first"
            )
        with creation_claim(str(db.uri), name) as claimed:
            table = (_open_if_committed(db, name) or _create(db, name, schema)) if claimed else None
        if table is not None:
            return table
        time.sleep(min(0.05 * 2**attempt, 2.0))
    raise TimeoutError(
        f"table {name} in {db.uri} is being created by another writer that did not finish; if none is "
        f"running, delete {claim_location(str(db.uri), name)}"
    )


def _create(db: DBConnection, name: str, schema: pa.Schema) -> Table | None:
    """Create the table (holding its claim); None if it turned out to exist: open it again."""
    try:
        return db.create_table(name, schema=schema)
    except ValueError as error:
        if "already exists" not in str(error):
            raise
        return None


def claim_location(uri: str, name: str) -> str:
    return join(uri, "_creation_claims", f"{name}.claim")


@contextmanager
def creation_claim(uri: str, name: str) -> Iterator[bool]:
    """True while this writer holds the right to create table ``name`` of database ``uri``."""
    scheme = uri.split("://", 1)[0] if is_remote(uri) else "file"
    if scheme != "file" and scheme not in SCHEME_PACKAGES:
        yield True  # a database only LanceDB serves (LanceDB Cloud): it serializes creates itself
        return
    location = claim_location(uri, name)
    fs, path = filesystem(location)
    if scheme == "file":
        fs.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        if scheme == "file":
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # fsspec's local "create" is not atomic
        else:
            fs.pipe_file(path, str(time.time()).encode(), mode="create")
    except FileExistsError:
        try:
            if time.time() - fs.modified(path).timestamp() > CLAIM_STALE_SECONDS:
                fs.rm_file(path)  # its writer died; the next attempt claims it
        except FileNotFoundError:
            pass  # released meanwhile: the table is there now, or the next attempt claims it
        yield False
        return
    try:
        yield True
    finally:
        fs.rm_file(path)


def _open_if_committed(db: DBConnection, name: str) -> Table | None:
    try:
        return db.open_table(name)
    except ValueError as error:
        if "was not found" in str(error):
            return None
        raise


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
    existing = _open_if_committed(db, name)
    if existing is not None and "source" not in existing.schema.names:
        db.drop_table(name)  # a journal of the first layout; at worst, an interrupted run re-embeds
    return _open_verified(db, name, spec, journal_schema(spec))
