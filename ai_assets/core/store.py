"""The LanceDB side: one table per embedder, scoped per-source writes, indexes, versions.

Every row carries its lineage (source, document key and content hash, chunker config,
embedder, model, the Dagster run id that wrote it). The table's schema metadata records the
model, dimensions and normalization; opening it with another spec is an error.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from filelock import FileLock
from lancedb.db import DBConnection
from lancedb.index import FTS, BTree, HnswSq, IvfFlat
from lancedb.table import Table

from ai_assets.core.chunk_files import ChunkSource, as_chunk_source
from ai_assets.core.chunking import Chunk
from ai_assets.core.embedders import Embedder, EmbedderSpec
from ai_assets.core.hashing import sha256_hex

SCHEMA_VERSION = "1"
_META_PREFIX = "ai_assets."
# IN-lists are split so a cache lookup never builds one enormous filter expression.
_LOOKUP_BATCH = 2000
# Chunks read at a time from a source while planning and publishing: what memory holds of it.
READ_BATCH = 10_000
# From this many journal rows, publishing's lookups by text hash go through an index (measured
# here at 100k rows: 0.7 s per 10k lookups with it, 3.1 s without, growing with the journal).
JOURNAL_INDEX_MIN_ROWS = 10_000


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


@dataclass(frozen=True)
class SourceState:
    """What the table holds for one source: chunk ids with their document versions, text hashes.

    No vectors: they stay in the table until a publish streams them back batch by batch.
    """

    doc_hash_by_chunk: dict[str, str]
    text_hashes: set[str]


def source_state(table: Table, source: str) -> SourceState:
    rows = scan(table, ["chunk_id", "doc_content_hash", "text_hash"], f"source = {sql_literal(source)}")
    chunk_ids = rows.column("chunk_id").to_pylist()
    doc_hashes = rows.column("doc_content_hash").to_pylist()
    return SourceState(
        doc_hash_by_chunk=dict(zip(chunk_ids, doc_hashes, strict=True)),
        text_hashes=set(rows.column("text_hash").to_pylist()),
    )


def source_vector_batches(table: Table, source: str) -> Iterator[np.ndarray]:
    """The source's vectors, one batch at a time."""
    query = table.search().where(f"source = {sql_literal(source)}").select(["vector"]).limit(None)
    for batch in query.to_batches(READ_BATCH):
        if batch.num_rows:
            yield fixed_list_to_numpy(batch.column("vector"))


def stored_text_hashes(table: Table, wanted: set[str]) -> set[str]:
    """Which of ``wanted`` have a row in the table, from one streamed pass over its hashes."""
    found: set[str] = set()
    if not wanted or table.count_rows() == 0:
        return found
    for batch in table.search().select(["text_hash"]).limit(None).to_batches(READ_BATCH):
        found.update(value for value in batch.column("text_hash").to_pylist() if value in wanted)
    return found


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


def plan_source_write(existing: Mapping[str, str], new: Mapping[str, str]) -> WritePlan:
    """What a scoped merge would do, from chunk id -> document version before and after."""
    inserted = sum(1 for chunk_id in new if chunk_id not in existing)
    updated = sum(1 for chunk_id, version in new.items() if chunk_id in existing and existing[chunk_id] != version)
    deleted = sum(1 for chunk_id in existing if chunk_id not in new)
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


def publish_source(
    table: Table, source: str, rows: pa.Table | pa.RecordBatchReader, new_source: bool = False
) -> int:
    """Make the table hold exactly ``rows`` for ``source`` in one atomic commit.

    A source with rows already is published with one source-scoped merge: matched rows are
    rewritten only when their document version changed (so a matched, unchanged row may be sent
    as its key columns only), unmatched rows are inserted, and the source's rows missing from
    ``rows`` are deleted; other sources are never touched. A ``new_source`` has nothing to match
    or delete: its rows are appended, which LanceDB streams, where a merge of all-new rows holds
    its whole input in memory (measured: +1 GB for 300k rows). Returns the new table version.
    """
    if isinstance(rows, pa.Table) and rows.num_rows == 0:
        raise ValueError("refusing to publish an empty source with a merge; use delete_source")
    if new_source:
        table.add(rows)
        return table.version
    (
        table.merge_insert("chunk_id")
        .when_matched_update_all(where="target.doc_content_hash != source.doc_content_hash")
        .when_not_matched_insert_all()
        .when_not_matched_by_source_delete(f"source = {sql_literal(source)}")
        # Matched key-only rows carry no vector; vectors of written rows were checked when embedded.
        .execute(rows, on_bad_vectors="null")
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
    # Publishing streams each batch's vectors back by text hash; the index keeps that a lookup.
    "text_hash_idx": ("text_hash", BTree),
}
VECTOR_INDEX = "vector_idx"  # the ANN (HNSW-SQ) index, from ann_min_rows rows
# Below that, every vector in one IVF_FLAT partition: a search of it compares the query with
# every row, so it is exact (the same hits and cosines as a scan), but it reads the vectors from
# LanceDB's in-memory index cache instead of decoding the vector column of the data files on
# each query (measured at 10,000 rows: ~3 ms of search instead of ~20 ms).
EXACT_VECTOR_INDEX = "vector_exact_idx"
# The exact index lives in memory whole, so it is built only while the vectors fit this budget
# (~174k rows of 384 dimensions, ~43k of 1,536); a larger table without ANN is scanned.
EXACT_INDEX_MAX_BYTES = 256 * 2**20


# One HNSW graph per million rows: LanceDB's guidance for HNSW is few IVF partitions, and one
# partition needs no probing choice. HNSW over 8-bit scalar-quantized vectors replaced IVF-PQ
# (sqrt(rows) partitions, 48 sub-vectors): on the 100,000-row bench table it builds in 47 s
# instead of 141 s, and its 100 dense candidates of a hybrid search take ~9 ms at recall@100
# 0.983 against exact search, where IVF-PQ took ~18 ms (5x re-ranked) for 0.938.
ROWS_PER_HNSW_PARTITION = 1_000_000
# An ANN index of another type (an IVF-PQ index from before) is replaced by the next build.
ANN_INDEX_TYPE = "IvfHnswSq"


def vector_index_config(rows: int) -> HnswSq:
    """The ANN index: HNSW over scalar-quantized vectors, one graph per million rows."""
    return HnswSq(distance_type="cosine", num_partitions=max(1, math.ceil(rows / ROWS_PER_HNSW_PARTITION)))


def exact_index_config() -> IvfFlat:
    return IvfFlat(distance_type="cosine", num_partitions=1)


def build_indexes(table: Table, ann_min_rows: int | None = None) -> IndexReport:
    """Compaction plus full-text, scalar and vector indexes: the exact vector index below
    ``ann_min_rows`` rows, the ANN index from there on (it replaces the exact one).

    This is the only writer of index structures. A table whose indexes already cover every row
    and that needs no compaction is left alone, so rebuilding an unchanged knowledge base
    writes nothing.
    """
    existing = {index.name: index for index in table.list_indices()}
    missing = [name for name in SEARCH_INDEXES if name not in existing]
    stale = [
        name for name, index in existing.items() if (index.num_unindexed_rows or 0) > 0 or (index.num_segments or 1) > 1
    ]
    fragments_before = table.stats()["fragment_stats"]["num_fragments"]
    rows = table.count_rows()
    dimensions = table.schema.field("vector").type.list_size
    outdated_ann = VECTOR_INDEX in existing and existing[VECTOR_INDEX].index_type != ANN_INDEX_TYPE
    wants_ann = ann_min_rows is not None and rows >= ann_min_rows and (VECTOR_INDEX not in existing or outdated_ann)
    ann_after = VECTOR_INDEX in existing or wants_ann
    exact_fits = rows * dimensions * 4 <= EXACT_INDEX_MAX_BYTES
    keeps_exact = not ann_after and exact_fits
    changed = rows > 0 and bool(
        missing or stale or fragments_before > 1 or wants_ann or keeps_exact != (EXACT_VECTOR_INDEX in existing)
    )
    if changed:
        if EXACT_VECTOR_INDEX in existing and keeps_exact:
            # Rebuilt whole rather than given a delta for the new rows: compaction never merges
            # fragments that different deltas of a vector index cover, so they would pile up.
            # Meanwhile searches scan, which is as exact.
            table.drop_index(EXACT_VECTOR_INDEX)
        table.optimize()  # compacts fragments and folds new rows into the existing indexes
        for name in missing:
            column, config = SEARCH_INDEXES[name]
            table.create_index(column, config=config(), name=name, replace=True)
        if wants_ann:
            table.create_index("vector", config=vector_index_config(rows), name=VECTOR_INDEX, replace=True)
        if keeps_exact:
            table.create_index("vector", config=exact_index_config(), name=EXACT_VECTOR_INDEX, replace=True)
        elif EXACT_VECTOR_INDEX in existing:
            # After the ANN index exists, so a search always has one of the two.
            table.drop_index(EXACT_VECTOR_INDEX)
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
    chunks: Sequence[Chunk] | ChunkSource,
    embedder: Embedder,
    run_id: str,
    *,
    journal: Table,
    allow_empty: bool = False,
    progress: Callable[[int, int], None] | None = None,
    batch_size: int = 256,
) -> EmbeddingSync:
    """Embed only the chunks whose text has no vector yet, then publish the source in one merge.

    Nothing is embedded or written when the source is unchanged. An empty source keeps its
    existing rows unless ``allow_empty`` is set, so a vanished mount never wipes the index.
    Every embedded batch goes to the ``journal`` table at once, so a run that dies before
    publishing does not pay for those vectors again; the source's entries go once published.

    The chunks are read in batches, three times (plan, embed, publish), and never held whole:
    memory holds a batch, the source's chunk ids and text hashes, and what the model is given.
    """
    source_chunks = as_chunk_source(chunks)
    state = source_state(table, source)
    versions: dict[str, str] = {}
    hashes: list[str] = []
    for batch in source_chunks.batches(READ_BATCH):
        for chunk in batch:
            versions[chunk.chunk_id] = chunk.doc_content_hash
            hashes.append(text_hash(chunk.text))
    if not versions:
        kept = len(state.doc_hash_by_chunk)
        deleted = delete_source(table, source) if (allow_empty and kept) else 0
        return EmbeddingSync(
            chunks=0, embedded=0, cache_hits=0, embedded_tokens=0, inserted=0, updated=0,
            deleted=deleted, kept_rows=kept - deleted, wrote=deleted > 0, version=table.version,
            embed_seconds=0.0,
        )
    plan = plan_source_write(state.doc_hash_by_chunk, versions)
    missing = set(hashes) - state.text_hashes
    journaled = stored_text_hashes(journal, missing)
    to_embed = missing - journaled - stored_text_hashes(table, missing - journaled)  # other sources' rows

    started = time.perf_counter()
    embedded_tokens = embed_into_journal(
        source_chunks, hashes, to_embed, embedder, journal, source, batch_size, progress
    )
    embed_seconds = time.perf_counter() - started

    wrote = plan.changes > 0
    if wrote:
        index_journal(journal)
        rows = source_row_batches(
            source_chunks, hashes, state.doc_hash_by_chunk, [journal, table], embedder.spec, run_id
        )
        publish_source(
            table, source, pa.RecordBatchReader.from_batches(chunk_schema(embedder.spec), rows),
            new_source=not state.doc_hash_by_chunk,
        )
    delete_source(journal, source)  # its vectors are in the published table now
    return EmbeddingSync(
        chunks=len(hashes), embedded=len(to_embed),
        cache_hits=sum(1 for value in hashes if value not in to_embed),
        embedded_tokens=embedded_tokens, inserted=plan.inserted, updated=plan.updated,
        deleted=plan.deleted, kept_rows=0, wrote=wrote, version=table.version,
        embed_seconds=embed_seconds,
    )


def with_hashes(chunks: ChunkSource, hashes: Sequence[str]) -> Iterator[list[tuple[Chunk, str]]]:
    """The chunks again, batch by batch, each with the text hash the planning pass computed."""
    start = 0
    for batch in chunks.batches(READ_BATCH):
        yield list(zip(batch, hashes[start : start + len(batch)], strict=True))
        start += len(batch)


def embed_into_journal(
    chunks: ChunkSource,
    hashes: Sequence[str],
    to_embed: set[str],
    embedder: Embedder,
    journal: Table,
    source: str,
    batch_size: int,
    progress: Callable[[int, int], None] | None,
) -> int:
    """Embed each text of ``to_embed`` once, journaling every batch; returns the tokens embedded."""
    pending: dict[str, str] = {}  # text hash -> text, waiting for a full buffer
    done, tokens = 0, 0

    def flush() -> None:
        nonlocal done, tokens
        # Longest first, so each batch holds texts of similar length and pads little.
        ordered = sorted(pending, key=lambda value: -len(pending[value]))
        for start in range(0, len(ordered), batch_size):
            batch = ordered[start : start + batch_size]
            vectors, token_counts = embedder.embed_counted([pending[value] for value in batch])
            journal.add(journal_rows(batch, vectors, embedder.spec, source))
            tokens += sum(token_counts)
            done += len(batch)
            if progress:
                progress(done, len(to_embed))
        pending.clear()

    seen: set[str] = set()
    for batch in with_hashes(chunks, hashes):
        for chunk, value in batch:
            if value in to_embed and value not in seen:
                seen.add(value)
                pending[value] = chunk.text
        if len(pending) >= READ_BATCH:
            flush()
    flush()
    return tokens


def source_row_batches(
    chunks: ChunkSource,
    hashes: Sequence[str],
    existing: Mapping[str, str],
    stores: Sequence[Table],
    spec: EmbedderSpec,
    run_id: str,
) -> Iterator[pa.RecordBatch]:
    """The source's rows for ``publish_source``, a batch at a time.

    A chunk already in the table at the same document version is left alone by the merge, so
    it is sent as its key columns only; every other chunk is a full row, its vector looked up
    by text hash in ``stores``. What the merge buffers is then the source's keys plus the
    changed rows, not every text and vector of the source.
    """
    for batch in with_hashes(chunks, hashes):
        unchanged = [chunk for chunk, _ in batch if existing.get(chunk.chunk_id) == chunk.doc_content_hash]
        changed = [(chunk, value) for chunk, value in batch if existing.get(chunk.chunk_id) != chunk.doc_content_hash]
        if unchanged:
            yield matched_key_rows(unchanged, spec)
        if not changed:
            continue
        changed_hashes = [value for _, value in changed]
        vectors: dict[str, np.ndarray] = {}
        for store in stores:
            wanted = set(changed_hashes) - vectors.keys()
            if wanted:
                vectors.update(cached_vectors(store, wanted))
        lost = set(changed_hashes) - vectors.keys()
        if lost:
            raise RuntimeError(f"{len(lost)} vectors vanished from the journal before publishing; run again")
        stacked = np.stack([vectors[value] for value in changed_hashes])
        yield from chunk_rows([chunk for chunk, _ in changed], stacked, spec, run_id).to_batches()


# What the source-scoped merge reads of a row it matches and does not update.
MATCHED_KEY_COLUMNS = ("chunk_id", "source", "doc_key", "doc_content_hash")


def matched_key_rows(chunks: Sequence[Chunk], spec: EmbedderSpec) -> pa.RecordBatch:
    """Rows for chunks the merge will match at an unchanged document version: key columns
    only, the rest null (never written: ``publish_source`` updates a matched row only when its
    document version changed)."""
    schema = chunk_schema(spec)
    arrays = [
        pa.array([getattr(chunk, field.name) for chunk in chunks], field.type)
        if field.name in MATCHED_KEY_COLUMNS
        else pa.nulls(len(chunks), field.type)
        for field in schema
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


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


def journal_rows(hashes: Sequence[str], vectors: np.ndarray, spec: EmbedderSpec, source: str) -> pa.Table:
    return pa.table(
        {
            "text_hash": list(hashes),
            "source": [source] * len(hashes),
            "vector": vector_array(vectors, spec.dimensions),
        },
        schema=journal_schema(spec),
    )


def index_journal(journal: Table) -> None:
    """A text-hash index on a large journal, so publishing looks vectors up instead of scanning."""
    if journal.count_rows() >= JOURNAL_INDEX_MIN_ROWS:
        journal.create_index("text_hash", config=BTree(), name="text_hash_idx", replace=True)


def _in_list_conditions(column: str, values: Iterable[str]) -> list[str]:
    ordered = sorted(set(values))
    return [
        f"{column} IN ({', '.join(sql_literal(value) for value in ordered[start : start + _LOOKUP_BATCH])})"
        for start in range(0, len(ordered), _LOOKUP_BATCH)
    ]

