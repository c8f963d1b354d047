"""Micro-batching of query encodings: concurrent requests share model calls.

Each request hands its query to the embedder's batcher and waits. One thread encodes: it takes
every query waiting (up to ``max_batch``) and encodes them in one call (``embed_queries``), so
while one batch is in the model the next one gathers; a lone request is encoded at once, with no
added wait. A batch the model refuses (a query longer than its window) is encoded query by query
through each request's own path, which clips a long query as `ai-assets search` does.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from ai_assets.core.embedding.base import Embedder, InputTooLong


@dataclass
class _Pending:
    text: str
    alone: Callable[[str], np.ndarray]  # the request's own encoding, if the batch is refused
    result: Future = field(default_factory=Future)


class QueryBatcher:
    """Encodes the queries of concurrent requests to one embedder in shared model calls."""

    def __init__(
        self, embedder: Embedder, max_batch: int = 32, on_batch: Callable[[int], None] = lambda size: None
    ) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.on_batch = on_batch  # told each batch's size (the server's metrics)
        self.calls = 0  # model calls made, and queries they encoded
        self.encoded = 0
        self._waiting: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        threading.Thread(target=self._encode_forever, name="ai-assets-query-batcher", daemon=True).start()

    def encode(self, text: str, alone: Callable[[str], np.ndarray]) -> np.ndarray:
        """``text``'s vector (whitespace-normalized, as ``Searcher.encode_query`` does); ``alone``
        encodes it by itself when a batch cannot (``Searcher.encode_query``)."""
        pending = _Pending(" ".join(text.split()), alone)
        self._waiting.put(pending)
        return pending.result.result()

    def _encode_forever(self) -> None:
        while True:
            batch = [self._waiting.get()]
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            self._encode(batch)

    def _encode(self, batch: list[_Pending]) -> None:
        self.calls += 1
        self.encoded += len(batch)
        self.on_batch(len(batch))
        try:
            texts = [pending.text for pending in batch]
            vectors = [self.embedder.embed_query(texts[0])] if len(batch) == 1 else self.embedder.embed_queries(texts)
        except InputTooLong:
            for pending in batch:
                self._settle(pending, lambda pending=pending: pending.alone(pending.text))
            return
        except Exception as error:  # the model failed: every waiting request gets the error
            for pending in batch:
                pending.result.set_exception(error)
            return
        for pending, vector in zip(batch, vectors, strict=True):
            pending.result.set_result(vector)

    @staticmethod
    def _settle(pending: _Pending, encode: Callable[[], np.ndarray]) -> None:
        try:
            pending.result.set_result(encode())
        except Exception as error:
            pending.result.set_exception(error)
