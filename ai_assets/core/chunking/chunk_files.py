"""A source's chunks as a Parquet file, read back in batches.

Embedding reads its input through ``ChunkSource.batches``, never as one list, so a source of a
million chunks streams through it: memory holds one batch of chunks plus the source's ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.parquet as pq

from ai_assets.core.chunking.chunker import Chunk
from ai_assets.core.storage import filesystem, is_remote

ROWS_PER_GROUP = 10_000

# Where a chunk is in its document: null where the document has no headings or pages.
_OPTIONAL_FIELDS = {"section": pa.string(), "page": pa.int32(), "page_end": pa.int32()}
CHUNK_FILE_SCHEMA = pa.schema(
    [
        pa.field(name, _OPTIONAL_FIELDS[name], nullable=True)
        if name in _OPTIONAL_FIELDS
        else pa.field(name, pa.int64() if field.annotation is int else pa.string(), nullable=False)
        for name, field in Chunk.model_fields.items()
    ]
)


@runtime_checkable
class ChunkSource(Protocol):
    """Chunks that can be read, in order, as many times as needed, one batch at a time."""

    def batches(self, size: int) -> Iterator[list[Chunk]]: ...


@dataclass(frozen=True)
class ChunkList:
    """Chunks already in memory (small sources, tests)."""

    chunks: Sequence[Chunk]

    def batches(self, size: int) -> Iterator[list[Chunk]]:
        for start in range(0, len(self.chunks), size):
            yield list(self.chunks[start : start + size])


@dataclass(frozen=True)
class ChunkFile:
    """Chunks in a Parquet file written by ``write_chunk_file``: a local path or an object-store URI."""

    location: str

    def batches(self, size: int) -> Iterator[list[Chunk]]:
        if is_remote(self.location):
            fs, path = filesystem(self.location)
            with fs.open(path, "rb") as remote:
                yield from _chunk_batches(pq.ParquetFile(remote), size)
        else:
            yield from _chunk_batches(pq.ParquetFile(self.location), size)


def _chunk_batches(parquet: pq.ParquetFile, size: int) -> Iterator[list[Chunk]]:
    if parquet.schema_arrow.names != CHUNK_FILE_SCHEMA.names:
        return  # written by an earlier version: as if there were no previous chunks to reuse
    for batch in parquet.iter_batches(batch_size=size):
        yield [Chunk.model_construct(**row) for row in batch.to_pylist()]  # validated when written


def indexed_documents(chunk_file: ChunkFile) -> dict[str, str]:
    """Each document of a chunk file (key to path), reading those two columns only."""
    columns = ["doc_key", "doc_path"]
    if is_remote(chunk_file.location):
        fs, path = filesystem(chunk_file.location)
        with fs.open(path, "rb") as remote:
            return _document_paths(pq.ParquetFile(remote), columns)
    return _document_paths(pq.ParquetFile(chunk_file.location), columns)


def _document_paths(parquet: pq.ParquetFile, columns: list[str]) -> dict[str, str]:
    if parquet.schema_arrow.names != CHUNK_FILE_SCHEMA.names:
        return {}  # written by an earlier version: it has no chunk to keep
    found: dict[str, str] = {}
    for batch in parquet.iter_batches(batch_size=ROWS_PER_GROUP, columns=columns):
        found.update(zip(batch.column(0).to_pylist(), batch.column(1).to_pylist(), strict=True))
    return found


def chunks_of_documents(chunks: ChunkSource, doc_keys: set[str]) -> list[Chunk]:
    """The chunks of these documents, in order (the last good chunks of stale documents)."""
    if not doc_keys:
        return []
    return [chunk for batch in chunks.batches(ROWS_PER_GROUP) for chunk in batch if chunk.doc_key in doc_keys]


def as_chunk_source(chunks: Sequence[Chunk] | ChunkSource) -> ChunkSource:
    return chunks if isinstance(chunks, ChunkSource) else ChunkList(chunks)


def chunk_file_exists(location: str) -> bool:
    fs, path = filesystem(location)
    return fs.isfile(path)


def write_chunk_file(location: str | os.PathLike[str], chunks: Iterable[Chunk]) -> ChunkFile:
    """Write chunks in row groups; the file appears whole or not at all.

    Locally it is written aside and renamed; on an object store the upload is committed only
    once every row group is written (an object appears whole on its final PUT), else discarded.
    """
    location = os.fspath(location)
    if not is_remote(location):
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + ".partial")
        _write_row_groups(partial, chunks)
        os.replace(partial, path)
        return ChunkFile(location)
    fs, path = filesystem(location)
    upload = fs.open(path, "wb", autocommit=False)
    try:
        _write_row_groups(upload, chunks)
        upload.close()
        upload.commit()
    except BaseException:
        upload.discard()
        raise
    return ChunkFile(location)


def _write_row_groups(where: Path | BinaryIO, chunks: Iterable[Chunk]) -> None:
    with pq.ParquetWriter(where, CHUNK_FILE_SCHEMA) as writer:
        group: list[dict] = []
        for chunk in chunks:
            group.append(chunk.model_dump())
            if len(group) == ROWS_PER_GROUP:
                writer.write_table(pa.Table.from_pylist(group, schema=CHUNK_FILE_SCHEMA))
                group = []
        if group:
            writer.write_table(pa.Table.from_pylist(group, schema=CHUNK_FILE_SCHEMA))
