"""The OpenAI embedder against a real local HTTP server speaking the protocol, with scripted faults."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import lancedb
import numpy as np
import pytest

from ai_assets.core.chunking.chunker import Chunk
from ai_assets.core.embedding.base import OPENAI_SMALL, InputTooLong, embedder_spec
from ai_assets.core.embedding.openai_embedder import OpenAIEmbedder, OpenAISettings, cl100k, token_batches
from ai_assets.core.embedding.openai_errors import MalformedReply, RequestRejected, ServiceUnavailable
from ai_assets.core.embedding.pacing import RateLimiter
from ai_assets.core.store.tables import open_journal, open_table, scan
from ai_assets.core.store.writes import sync_source_embeddings
from ai_assets_tests.openai_server import OpenAIServer, bag_of_words_vector, running_openai_server
from ai_assets_tests.system import free_port

SENTINEL_KEY = "sk-test-SENTINEL-77d2e0"
DIMENSIONS = 64
TEXTS = [
    "Schedules launch jobs at fixed times.",
    "A sensor requests runs when files change.",
    "Partitions split an asset into slices.",
    "Retries back off exponentially with jitter.",
    "Freshness policies mark overdue assets.",
]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with running_openai_server(slow_seconds=2.0) as running:
        yield running


def make_embedder(server: OpenAIServer, **overrides: object) -> OpenAIEmbedder:
    settings = OpenAISettings(
        api_key=SENTINEL_KEY, base_url=server.base_url, timeout_seconds=0.5, max_retries=3,
        requests_per_minute=None, tokens_per_minute=None, price_per_million_tokens=0.02,
    )
    settings = replace(settings, **overrides)  # type: ignore[arg-type]
    return OpenAIEmbedder(embedder_spec(OPENAI_SMALL.name, DIMENSIONS), settings)


def expected_vectors(texts: list[str]) -> np.ndarray:
    return np.array([bag_of_words_vector(text, DIMENSIONS) for text in texts], dtype=np.float32)


@pytest.mark.parametrize("fault", ["429", "500", "slow", "drop"])
def test_a_transient_fault_is_retried_and_the_vectors_are_exact(server: OpenAIServer, fault: str) -> None:
    embedder = make_embedder(server)
    server.faults.extend([fault])
    vectors = embedder.embed(TEXTS)
    np.testing.assert_allclose(vectors, expected_vectors(TEXTS), rtol=1e-6)
    assert [request.outcome for request in server.embedding_requests()] == [fault, "ok"]
    usage = embedder.take_usage()
    assert (usage.requests, usage.attempts, usage.retries) == (1, 2, 1)


def test_retry_after_is_honoured(server: OpenAIServer) -> None:
    server.retry_after = "2"
    server.faults.extend(["429"])
    make_embedder(server).embed(TEXTS[:1])
    first, second = server.embedding_requests()
    # Without the header the client would wait about 0.5 s.
    assert second.at - first.at >= 1.9


def test_a_fault_that_persists_fails_after_the_retries_without_the_key(server: OpenAIServer) -> None:
    server.faults.extend(["500"] * 4)
    with pytest.raises(ServiceUnavailable, match=r"still failing after retries \(500\)") as raised:
        make_embedder(server).embed(TEXTS)
    assert len(server.embedding_requests()) == 4  # the first try and 3 retries
    assert SENTINEL_KEY not in str(raised.value) and SENTINEL_KEY not in repr(raised.value)


@pytest.mark.parametrize(
    ("fault", "error", "message"),
    [
        ("malformed", MalformedReply, "not a valid response"),
        ("wrong_count", MalformedReply, "returned 4 embeddings for 5 inputs"),
        ("400", RequestRejected, r"rejected \(400\):.*Invalid input"),
        ("401", RequestRejected, r"rejected \(401\): authentication failed: check OPENAI_API_KEY"),
    ],
)
def test_a_bad_reply_is_a_clear_error_sent_once(server: OpenAIServer, fault: str, error: type, message: str) -> None:
    server.faults.extend([fault])
    with pytest.raises(error, match=message) as raised:
        make_embedder(server).embed(TEXTS)
    assert len(server.embedding_requests()) == 1
    # No chained server error (it could quote the request) travels with the exception.
    assert raised.value.__cause__ is None
    assert raised.value.__context__ is None or raised.value.__suppress_context__
    assert SENTINEL_KEY not in str(raised.value)


def test_an_unreachable_server_is_named_with_the_cause_and_without_secrets() -> None:
    port = free_port()  # nothing listens there
    settings = OpenAISettings(
        api_key=SENTINEL_KEY, base_url=f"http://user:{SENTINEL_KEY}@127.0.0.1:{port}/v1?key={SENTINEL_KEY}",
        timeout_seconds=0.5, max_retries=0,
        requests_per_minute=None, tokens_per_minute=None, price_per_million_tokens=0.02,
    )
    with pytest.raises(ServiceUnavailable) as raised:
        OpenAIEmbedder(embedder_spec(OPENAI_SMALL.name, DIMENSIONS), settings).embed(TEXTS[:1])
    assert str(raised.value) == (
        f"text-embedding-3-small: cannot connect to http://127.0.0.1:{port}/v1: connection refused, after retries"
    )
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_requests_are_batched_by_inputs_and_by_tokens(server: OpenAIServer) -> None:
    embedder = make_embedder(server, max_inputs_per_request=2)
    np.testing.assert_allclose(embedder.embed(TEXTS), expected_vectors(TEXTS), rtol=1e-6)
    assert [len(request.inputs) for request in server.embedding_requests()] == [2, 2, 1]

    server.received.clear()
    counts = embedder.count_tokens(TEXTS)
    budget = counts[0] + counts[1]  # the first two fit, the third does not
    embedder = make_embedder(server, max_tokens_per_request=budget)
    embedder.embed(TEXTS)
    sent = [request.inputs for request in server.embedding_requests()]
    assert sent[0] == TEXTS[:2] and sum(sent, []) == TEXTS
    assert all(sum(embedder.count_tokens(batch)) <= budget for batch in sent)


@pytest.mark.parametrize(
    ("counts", "max_inputs", "max_tokens", "expected"),
    [
        ([5, 5, 5], 2, 100, [range(0, 2), range(2, 3)]),
        ([5, 5, 5], 10, 10, [range(0, 2), range(2, 3)]),
        ([50, 1], 10, 10, [range(0, 1), range(1, 2)]),  # one text alone over the budget still goes alone
        ([], 10, 10, []),
    ],
)
def test_token_batches(counts: list[int], max_inputs: int, max_tokens: int, expected: list[range]) -> None:
    assert token_batches(counts, max_inputs, max_tokens) == expected


def test_a_text_over_the_window_is_refused_before_any_request(server: OpenAIServer) -> None:
    embedder = make_embedder(server)
    too_long = "word " * 9000
    with pytest.raises(InputTooLong, match="window of 8191 tokens"):
        embedder.embed([TEXTS[0], too_long])
    assert server.embedding_requests() == []


def test_usage_and_cost_come_from_the_server_usage(server: OpenAIServer) -> None:
    embedder = make_embedder(server, price_per_million_tokens=0.5)
    embedder.embed(TEXTS)
    usage = embedder.take_usage()
    tokens = sum(embedder.count_tokens(TEXTS))
    assert usage.input_tokens == tokens
    assert usage.estimated_cost_usd == pytest.approx(tokens * 0.5 / 1_000_000)
    assert usage.as_metadata()["api_requests"] == 1
    assert embedder.take_usage().requests == 0  # taken: counting starts afresh


def test_requests_are_paced_under_the_per_minute_limits(server: OpenAIServer) -> None:
    # Two requests per (shortened) one-second window: the third waits for the first to expire.
    embedder = make_embedder(server, requests_per_minute=2, rate_window_seconds=1.0, max_inputs_per_request=1)
    embedder.embed(TEXTS[:3])
    arrivals = [request.at for request in server.embedding_requests()]
    assert arrivals[2] - arrivals[0] >= 0.95
    assert embedder.take_usage().rate_limit_wait_seconds > 0.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rate_limiter_windows() -> None:
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=2, tokens_per_minute=100, clock=clock, sleep=clock.sleep)
    assert limiter.acquire(10) == 0 and limiter.acquire(10) == 0
    clock.now = 5.0
    assert limiter.acquire(10) == pytest.approx(55.0)  # waits for the first request to leave the window
    clock.now = 200.0
    limiter.acquire(60)
    assert limiter.acquire(60) == pytest.approx(60.0)  # 120 tokens would not fit in 100
    with pytest.raises(ValueError, match="exceeds the limit of 100 tokens per minute"):
        limiter.acquire(101)


def chunk(text: str, index: int) -> Chunk:
    return Chunk(
        chunk_id=f"c{index}", source="alpha", doc_key=f"alpha/d{index}.md", doc_path=f"d{index}.md",
        doc_title="", doc_content_hash=f"h{index}", chunk_index=0, text=text, token_count=8,
        char_start=0, char_end=len(text), chunker_config="cfg",
    )


def test_an_interrupted_run_resumes_without_paying_again(server: OpenAIServer, tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path))
    embedder = make_embedder(server, max_inputs_per_request=2)
    table, journal = open_table(db, embedder.spec), open_journal(db, embedder.spec)
    chunks = [chunk(text, index) for index, text in enumerate(TEXTS)]

    # The third request is rejected: two batches of two were embedded and journaled, nothing published.
    server.faults.extend(["ok", "ok", "400"])
    with pytest.raises(RequestRejected):
        sync_source_embeddings(table, "alpha", chunks, embedder, "run-1", batch_size=2, journal=journal)
    assert table.count_rows() == 0

    result = sync_source_embeddings(table, "alpha", chunks, embedder, "run-2", batch_size=2, journal=journal)
    assert result.embedded == 1 and result.cache_hits == 4
    assert sorted(server.embedded_texts()) == sorted(TEXTS)  # each text paid for exactly once
    rows = scan(table, ["chunk_id", "vector"]).to_pylist()
    assert len(rows) == len(TEXTS)
    by_id = {row["chunk_id"]: row["vector"] for row in rows}
    np.testing.assert_allclose(np.array([by_id[f"c{i}"] for i in range(5)]), expected_vectors(TEXTS), rtol=1e-6)


def test_token_counts_are_openais_cl100k_base() -> None:
    # Token ids that OpenAI's cookbook ("How to count tokens with tiktoken") prints for cl100k_base.
    assert cl100k().encode_ordinary_batch(["tiktoken is great!", "hello world"]) == [
        [83, 1609, 5963, 374, 2294, 0],
        [15339, 1917],
    ]
