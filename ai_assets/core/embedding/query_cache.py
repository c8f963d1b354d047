"""A paid embedder's vectors for evaluation texts, kept across runs so an unchanged re-evaluation pays nothing.

Evaluations embed the same texts every time they run: the eval queries, and the sentences of
the retrieved chunks that the extractive answer compares with the question. With a paid API
each run would pay for all of them again. ``CachingEmbedder`` looks every text up first in a
LanceDB table of the same database (so every machine running evaluations sees it), keyed by
model, dimensions and text, sends only the misses (each distinct text once) and stores them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from lancedb.table import Table

from ai_assets.core.embedding.base import Embedder, EmbedderSpec
from ai_assets.core.store.tables import query_cache_schema, text_hash, vector_array
from ai_assets.core.store.writes import cached_vectors


def is_paid(spec: EmbedderSpec) -> bool:
    """A remote API bills every input; the local model costs only its time."""
    return spec.provider == "openai"


class CachingEmbedder(Embedder):
    """``inner``'s vectors, read from ``cache`` where it has them; the window check is ``inner``'s."""

    def __init__(self, inner: Embedder, cache: Table) -> None:
        self.inner = inner
        self.cache = cache
        self.spec = inner.spec
        self.precision = inner.precision
        self.hits = 0
        self.misses = 0

    def __repr__(self) -> str:
        return f"CachingEmbedder({self.inner!r}, cache={self.cache.name!r})"

    @property
    def max_text_tokens(self) -> int:
        return self.inner.max_text_tokens

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self.inner.count_tokens(texts)

    def embed_counted(self, texts: Sequence[str]) -> tuple[np.ndarray, list[int]]:
        if not texts:
            return super().embed_counted(texts)
        # Refused exactly as the inner model would, before any lookup: a caller clips on InputTooLong.
        counts = self._window_checked_counts(texts)
        hashes = [text_hash(text) for text in texts]
        found = cached_vectors(self.cache, set(hashes))
        missing = list(dict.fromkeys(text for text, key in zip(texts, hashes, strict=True) if key not in found))
        if missing:
            vectors = self.inner.embed(missing)
            self._store(missing, vectors)
            found.update(zip((text_hash(text) for text in missing), vectors, strict=True))
        self.misses += len(missing)
        self.hits += len(texts) - len(missing)
        return self._checked_shape(np.stack([found[key] for key in hashes]), len(texts)), counts

    def _encode(self, texts: list[str], token_counts: Sequence[int]) -> np.ndarray:
        return self.embed_counted(texts)[0]

    def _store(self, texts: list[str], vectors: np.ndarray) -> None:
        rows = pa.table(
            {
                "text_hash": [text_hash(text) for text in texts],
                "text": texts,
                "vector": vector_array(vectors, self.spec.dimensions),
            },
            schema=query_cache_schema(self.spec),
        )
        # A merge, so two evaluations that missed the same text at once store it once.
        self.cache.merge_insert("text_hash").when_not_matched_insert_all().execute(rows)

    def take_usage_metadata(self) -> dict[str, float | int]:
        usage = {**self.inner.take_usage_metadata(), "query_cache_hits": self.hits, "query_cache_misses": self.misses}
        self.hits = self.misses = 0
        return usage
