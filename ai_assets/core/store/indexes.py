"""Index structures of an embedder's table: full-text, scalar, and the exact or ANN vector index."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lancedb.index import FTS, BTree, HnswSq, IvfFlat
from lancedb.table import Table

from ai_assets.core.store.versions import DEFAULT_VERSION_RETENTION, cleanup_window, tagged_version_timestamps


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


def build_indexes(
    table: Table, ann_min_rows: int | None = None, version_retention: timedelta = DEFAULT_VERSION_RETENTION
) -> IndexReport:
    """Compaction plus full-text, scalar and vector indexes: the exact vector index below
    ``ann_min_rows`` rows, the ANN index from there on (it replaces the exact one).

    This is the only writer of index structures. A table whose indexes already cover every row
    and that needs no compaction is left alone, so rebuilding an unchanged knowledge base
    writes nothing. Compaction deletes the files of untagged versions older than
    ``version_retention`` and older than every tagged one: the served version, the candidate
    and the recently served ones stay readable however old they are.
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
        # Compacts fragments, folds new rows into the existing indexes, prunes old versions.
        table.optimize(cleanup_older_than=cleanup_window(tagged_version_timestamps(table), version_retention))
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
