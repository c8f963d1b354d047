"""Micro-batching of query encodings: concurrent queries share model calls and get the vectors a
lone query gets."""

from __future__ import annotations

import threading

import numpy as np

from ai_assets.core.embedding.base import Embedder
from ai_assets.core.retrieval.search import Searcher
from ai_assets.serve.batching import QueryBatcher

QUERIES = [
    "who is paged after the third failure", "cron expression", "retry   with jitter", "a sensor cursor",
    "partitions and backfills", "flows call tasks", "schedules need the daemon", "x",
]


def test_batched_queries_get_the_lone_query_vectors(minilm: Embedder) -> None:
    lone = np.stack([minilm.embed_query(" ".join(query.split())) for query in QUERIES])
    together = minilm.embed_queries([" ".join(query.split()) for query in QUERIES])
    assert np.min(np.sum(lone * together, axis=1)) > 0.99999


def test_concurrent_requests_share_model_calls(minilm: Embedder) -> None:
    batcher = QueryBatcher(minilm)
    searcher = Searcher(None, minilm)  # type: ignore[arg-type]  # its encoding only: no table is read
    start = threading.Barrier(len(QUERIES) * 4)
    results: dict[int, np.ndarray] = {}

    def request(index: int) -> None:
        start.wait()
        results[index] = batcher.encode(QUERIES[index % len(QUERIES)], searcher.encode_query)

    threads = [threading.Thread(target=request, args=(index,)) for index in range(len(QUERIES) * 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert batcher.encoded == len(threads) and batcher.calls < len(threads)  # fewer model calls than requests
    for index, vector in results.items():
        assert float(vector @ searcher.encode_query(QUERIES[index % len(QUERIES)])) > 0.99999
    # A query longer than the model's window is clipped by the request's own path, as alone.
    long_query = "retry " * 600
    assert float(batcher.encode(long_query, searcher.encode_query) @ searcher.encode_query(long_query)) > 0.99999
