"""A source's chunks as a Parquet file, read back in batches.

Embedding reads its input through ``ChunkSource.batches``, never as one list, so a source of a
million chunks streams through it: memory holds one batch of chunks plus the source's ids.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.parquet as pq

from ai_assets.core.chunking.chunker import Chunk

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
    """Chunks in a Parquet file written by ``write_chunk_file``."""

    path: Path

    def batches(self, size: int) -> Iterator[list[Chunk]]:
        chunk_file = pq.ParquetFile(self.path)
        if chunk_file.schema_arrow.names != CHUNK_FILE_SCHEMA.names:
            return  # written by an earlier version: as if there were no previous chunks to reuse
        for batch in chunk_file.iter_batches(batch_size=size):
            yield [Chunk.model_construct(**row) for row in batch.to_pylist()]  # validated when written


def as_chunk_source(chunks: Sequence[Chunk] | ChunkSource) -> ChunkSource:
    return chunks if isinstance(chunks, ChunkSource) else ChunkList(chunks)


def write_chunk_file(path: Path, chunks: Iterable[Chunk]) -> ChunkFile:
    """Write chunks in row groups; the file appears whole or not at all (written aside, renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with pq.ParquetWriter(partial, CHUNK_FILE_SCHEMA) as writer:
        group: list[dict] = []
        for chunk in chunks:
            group.append(chunk.model_dump())
            if len(group) == ROWS_PER_GROUP:
                writer.write_table(pa.Table.from_pylist(group, schema=CHUNK_FILE_SCHEMA))
                group = []
        if group:
            writer.write_table(pa.Table.from_pylist(group, schema=CHUNK_FILE_SCHEMA))
    os.replace(partial, path)
    return ChunkFile(path)
