"""The LanceDB tables: one per embedder, its schema and metadata, opened only for the model that wrote it.

Every row carries its lineage (source, document key and content hash, chunker config,
embedder, model, the Dagster run id that wrote it) and where in its document the chunk is
(section, first and last page). The table's schema metadata records the model, dimensions,
normalization and schema version; opening it with another spec is an error. A writer that
opens a table of an earlier schema version migrates it (``migrate_table``), keeping its vectors.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import pyarrow as pa
from lancedb.db import DBConnection
from lancedb.table import Table

from ai_assets.core.embedding.base import EmbedderSpec
from ai_assets.core.store.async_tables import remember_origin
from ai_assets.core.hashing import sha256_hex
from ai_assets.core.storage import filesystem, is_remote, join
from ai_assets.core.storage.locations import SCHEME_PACKAGES

# 2: section, page and page_end columns (where in its document a chunk is).
SCHEMA_VERSION = "2"
CREATE_ATTEMPTS = 20  # a waiting writer gives the one creating the table ~30 s to commit it
CLAIM_STALE_SECONDS = 600  # creating an empty table takes seconds; a claim this old was abandoned
_META_PREFIX = "ai_assets."
_SCHEMA_VERSION_KEY = f"{_META_PREFIX}schema_version"
_QUANTIZATION_KEY = f"{_META_PREFIX}quantization"
# Schema versions a writer migrates from (their columns are a subset of this version's).
_MIGRATED_VERSIONS = frozenset({"1"})
T = TypeVar("T")


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
        # Only on a quantized configuration's tables: float tables written before it stay valid.
        **({_QUANTIZATION_KEY: spec.quantization} if spec.quantization else {}),
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
        pa.field("section", pa.string()),  # heading path of the chunk's first block, " > "-joined
        pa.field("page", pa.int32()),  # 1-based first and last page (null: the format has no pages)
        pa.field("page_end", pa.int32()),
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


def verify_table(table: Table, spec: EmbedderSpec, schema_version: str = SCHEMA_VERSION) -> None:
    # A float spec expects no quantization key (None): an int8 table is never read as a float one.
    expected = {_QUANTIZATION_KEY: None, **table_metadata(spec), _SCHEMA_VERSION_KEY: schema_version}
    found = read_table_metadata(table)
    if found.get(_SCHEMA_VERSION_KEY) != schema_version and all(
        found.get(key) == value for key, value in expected.items() if key != _SCHEMA_VERSION_KEY
    ):
        raise TableMismatch(
            f"table {table.name} has schema version {found.get(_SCHEMA_VERSION_KEY)}, this version reads "
            f"{schema_version}: run `ai-assets build` to migrate it (its vectors are kept)"
        )
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
    """The embedder's table, created empty on first use, checked against the spec.

    A writer (``create``) migrates a table of an earlier schema version first; a reader of such a
    table gets a ``TableMismatch`` that says to build.
    """
    name = table_name(spec.storage_name)
    if create and name in db.table_names(limit=None):
        migrate_table(db, name, spec)
    # Searches open the same table through LanceDB's async API: they need its database.
    return remember_origin(_open_verified(db, name, spec, chunk_schema(spec) if create else None), db)


def migrate_table(db: DBConnection, name: str, spec: EmbedderSpec) -> str | None:
    """Bring a table of an earlier schema version to this one; returns the version it had (None
    when there was nothing to do).

    The rows are rewritten as a new table version in one atomic overwrite, the new columns null,
    every vector and text hash kept: chunks whose text is unchanged find their vectors there and
    are not embedded again. The overwrite holds the table in memory once (LanceDB cannot stream a
    table's own rows into its overwrite: both would wait on its one event loop); that is ~2.5 KB
    per row for 384 dimensions, a one-off. The indexes go with the overwrite; search_index
    rebuilds them. Only a table whose model, dimensions and normalization match ``spec`` is migrated.
    """
    table = db.open_table(name)
    found = read_table_metadata(table).get(_SCHEMA_VERSION_KEY)
    if found not in _MIGRATED_VERSIONS:
        return None
    verify_table(table, spec, schema_version=found)
    def rewrite() -> str | None:
        table = db.open_table(name)  # another writer may have migrated it meanwhile
        if read_table_metadata(table).get(_SCHEMA_VERSION_KEY) != found:
            return None
        schema = chunk_schema(spec)
        rows = table.to_arrow()
        migrated = pa.Table.from_arrays(
            [
                rows.column(field.name).cast(field.type) if field.name in rows.schema.names
                else pa.nulls(rows.num_rows, field.type)
                for field in schema
            ],
            schema=schema,
        )
        db.create_table(name, data=migrated, schema=schema, mode="overwrite")
        return found

    # Serialized with creation by the same claim: two writers must not overwrite it at once.
    return _while_claimed(db, name, rewrite)


def _while_claimed(db: DBConnection, name: str, action: Callable[[], T]) -> T:
    """Run ``action`` once this writer holds the table's creation claim, waiting for another
    holder to finish (see ``_open_or_create``)."""
    for attempt in range(CREATE_ATTEMPTS):
        with creation_claim(str(db.uri), name) as claimed:
            if claimed:
                return action()
        time.sleep(min(0.05 * 2**attempt, 2.0))
    raise TimeoutError(
        f"table {name} in {db.uri} is being created or migrated by another writer that did not finish; "
        f"if none is running, delete {claim_location(str(db.uri), name)}"
    )


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
    name = journal_name(spec.storage_name)
    existing = _open_if_committed(db, name)
    if existing is not None and (
        "source" not in existing.schema.names
        or read_table_metadata(existing).get(_SCHEMA_VERSION_KEY) != SCHEMA_VERSION
    ):
        db.drop_table(name)  # a journal of an earlier layout; at worst, an interrupted run re-embeds
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
    name = query_cache_name(spec.storage_name)
    if name in db.table_names(limit=None):
        try:
            verify_table(db.open_table(name), spec)
        except TableMismatch:
            db.drop_table(name)
    return _open_verified(db, name, spec, query_cache_schema(spec))
