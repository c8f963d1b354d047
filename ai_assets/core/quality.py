"""Data-quality rules behind the asset checks: pure functions returning what is wrong."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ai_assets.core.chunking.chunker import Chunk


@dataclass(frozen=True)
class ChunkQuality:
    empty: list[str]
    duplicates: list[str]
    over_window: list[tuple[str, int]]

    @property
    def ok(self) -> bool:
        return not (self.empty or self.duplicates or self.over_window)


def chunk_quality(chunks: Sequence[Chunk], max_tokens: int) -> ChunkQuality:
    seen: set[str] = set()
    duplicates = []
    for chunk in chunks:
        if chunk.chunk_id in seen:
            duplicates.append(chunk.chunk_id)
        seen.add(chunk.chunk_id)
    return ChunkQuality(
        empty=[chunk.chunk_id for chunk in chunks if not chunk.text.strip()],
        duplicates=duplicates,
        over_window=[(chunk.chunk_id, chunk.token_count) for chunk in chunks if chunk.token_count > max_tokens],
    )


@dataclass(frozen=True)
class VectorQuality:
    rows: int
    wrong_dimensions: int
    non_finite: int
    bad_norm: int
    min_norm: float
    max_norm: float

    @property
    def ok(self) -> bool:
        return not (self.wrong_dimensions or self.non_finite or self.bad_norm)

    def combine(self, other: VectorQuality) -> VectorQuality:
        """The quality of both sets of vectors together."""
        if not self.rows or not other.rows:
            return other if not self.rows else self
        return VectorQuality(
            rows=self.rows + other.rows,
            wrong_dimensions=self.wrong_dimensions + other.wrong_dimensions,
            non_finite=self.non_finite + other.non_finite,
            bad_norm=self.bad_norm + other.bad_norm,
            min_norm=min(self.min_norm, other.min_norm),
            max_norm=max(self.max_norm, other.max_norm),
        )


def vector_quality(vectors: np.ndarray, dimensions: int, normalized: bool, tolerance: float = 1e-3) -> VectorQuality:
    """Shape, finiteness and (for normalized models) unit norm of every vector."""
    rows = int(vectors.shape[0]) if vectors.ndim else 0
    if rows == 0:
        return VectorQuality(0, 0, 0, 0, 0.0, 0.0)
    wrong_dimensions = rows if vectors.ndim != 2 or vectors.shape[1] != dimensions else 0
    finite = np.isfinite(vectors).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(vectors), vectors, 0.0), axis=1)
    bad_norm = int(np.sum(np.abs(norms - 1.0) > tolerance)) if normalized else int(np.sum(norms == 0.0))
    return VectorQuality(
        rows=rows,
        wrong_dimensions=wrong_dimensions,
        non_finite=int(np.sum(~finite)),
        bad_norm=bad_norm,
        min_norm=float(norms.min()),
        max_norm=float(norms.max()),
    )


def streamed_vector_quality(
    batches: Iterable[np.ndarray], dimensions: int, normalized: bool
) -> VectorQuality:
    """``vector_quality`` over vectors read one batch at a time."""
    quality = VectorQuality(0, 0, 0, 0, 0.0, 0.0)
    for vectors in batches:
        quality = quality.combine(vector_quality(vectors, dimensions, normalized))
    return quality


def count_mismatches(expected: Mapping[str, int], actual: Mapping[str, int]) -> dict[str, tuple[int, int]]:
    """Sources whose row count differs from their chunk count: source -> (expected, actual)."""
    return {
        source: (expected.get(source, 0), actual.get(source, 0))
        for source in sorted(set(expected) | set(actual))
        if expected.get(source, 0) != actual.get(source, 0)
    }


@dataclass(frozen=True)
class GateFailure:
    eval_set: str
    mode: str
    metric: str
    value: float
    limit: float
    reason: str

    def describe(self) -> str:
        return f"{self.eval_set}/{self.mode} {self.metric} = {self.value:.4f}: {self.reason} ({self.limit:.4f})"


def quality_gate_failures(
    current: Sequence[Mapping[str, object]],
    previous: Sequence[Mapping[str, object]],
    metric: str,
    floor: float,
    max_drop: float,
    baseline: str = "the previous evaluation",
    floor_by_kind: Mapping[str, float] | None = None,
) -> list[GateFailure]:
    """Scores below the floor (``floor_by_kind`` of the set's kind, else ``floor``), or more than
    ``max_drop`` below ``previous`` (the ``baseline``'s scores) on the same set and mode."""
    before = {(row["eval_set"], row["mode"]): float(row[metric]) for row in previous}  # type: ignore[arg-type]
    failures = []
    for row in current:
        key = (row["eval_set"], row["mode"])
        value = float(row[metric])  # type: ignore[arg-type]
        row_floor = (floor_by_kind or {}).get(str(row.get("kind", "")), floor)
        if value < row_floor:
            failures.append(GateFailure(str(key[0]), str(key[1]), metric, value, row_floor, "below the floor"))
        if key in before and before[key] - value > max_drop:
            failures.append(
                GateFailure(
                    str(key[0]), str(key[1]), metric, value, before[key],
                    f"dropped more than {max_drop} below {baseline}",
                )
            )
    return failures
