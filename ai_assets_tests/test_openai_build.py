"""A full build on the OpenAI path, through a real local HTTP server speaking the protocol.

The server injects transient faults into the embedding requests; the build must still finish
with exactly the right rows, pay for each chunk once, and leave the API key nowhere: not in
Dagster's event log, not in any file written, not in anything printed, not in the CLI output.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import lancedb
import numpy as np
import pytest

from ai_assets.build import run_build
from ai_assets.cli import main as cli_main
from ai_assets.core.chunking.chunk_files import ChunkFile
from ai_assets.core.embedding.base import MINILM, OPENAI_SMALL, embedder_spec
from ai_assets.core.store.tables import scan
from ai_assets.definitions import build_definitions
from ai_assets.history import latest_metadata
from ai_assets.partitions import EMBEDDER_DIMENSION, SOURCE_DIMENSION
from ai_assets.settings import Settings
from ai_assets_tests.openai_server import OpenAIServer, bag_of_words_vector, running_openai_server

SENTINEL_KEY = "sk-test-SENTINEL-4f1c9a"
DIMENSIONS = 64
FAULTS = ["429", "500", "slow", "drop", "500"]


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with running_openai_server(slow_seconds=2.0) as running:
        yield running


@pytest.fixture
def openai_env(server: OpenAIServer, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SENTINEL_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("AI_ASSETS_DATA_DIR", str(data_dir))
    monkeypatch.setenv("AI_ASSETS_OPENAI_EMBEDDING_DIMENSIONS", str(DIMENSIONS))
    monkeypatch.setenv("AI_ASSETS_OPENAI_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("AI_ASSETS_OPENAI_PRICES", '{"text-embedding-3-small": 0.5}')


def embedding_texts(settings: Settings) -> dict[str, str]:
    """chunk id -> the text sent to the model, from the chunk files document_chunks wrote."""
    files = (Path(settings.chunks_location) / "document_chunks").glob("*.parquet")
    return {chunk.chunk_id: chunk.embedding_text for path in files for batch in ChunkFile(str(path)).batches(1000) for chunk in batch}


def chunk_embedding_metadata(instance: dg.DagsterInstance, source: str, embedder: str) -> dict:
    key = dg.MultiPartitionKey({SOURCE_DIMENSION: source, EMBEDDER_DIMENSION: embedder})
    return latest_metadata(instance, "chunk_embeddings", str(key)) or {}


def test_full_build_through_a_faulty_openai_server_is_exact_paid_once_and_keeps_the_key_secret(
    server: OpenAIServer,
    openai_env: None,
    data_dir: Path,
    instance: dg.DagsterInstance,
    capfd: pytest.CaptureFixture[str],
) -> None:
    settings = Settings()
    assert settings.openai_configured
    assert settings.embedders == [MINILM.name, OPENAI_SMALL.name]  # enabled by the key, beside the local model
    server.faults.extend(FAULTS)

    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None)
    assert report.ok, report.failures
    assert [request.outcome for request in server.embedding_requests()][: len(FAULTS)] == FAULTS

    # Exact rows: the same chunks as the local model's table, each with the server's vector.
    db = lancedb.connect(settings.resolved_lancedb_uri)
    spec = embedder_spec(OPENAI_SMALL.name, DIMENSIONS)
    rows = scan(db.open_table(f"chunks__{OPENAI_SMALL.name}"), ["chunk_id", "text", "vector", "model"]).to_pylist()
    local_ids = scan(db.open_table(f"chunks__{MINILM.name}"), ["chunk_id"]).column("chunk_id").to_pylist()
    assert sorted(row["chunk_id"] for row in rows) == sorted(local_ids) and len(rows) > 0
    assert {row["model"] for row in rows} == {spec.model}
    # The server saw each chunk's exact embedding text (its context prefix, then its text).
    sent = embedding_texts(settings)
    np.testing.assert_allclose(
        np.array([row["vector"] for row in rows]),
        np.array([bag_of_words_vector(sent[row["chunk_id"]], DIMENSIONS) for row in rows]),
        rtol=1e-6,
    )

    # Paid once: every chunk's embedding text was embedded by exactly one successful request.
    chunk_texts = set(sent.values())
    paid_chunks = Counter(text for text in server.embedded_texts() if text in chunk_texts)
    assert set(paid_chunks) == chunk_texts and set(paid_chunks.values()) == {1}

    # Every other text the evaluations embedded was sent once too: each eval query once, shared by
    # dense and hybrid search, by the answer evaluation and the sample answers (the query cache).
    embedded = server.embedded_texts()
    queries = ["how many times is a failed run retried", "cron expression to launch a job", "sensor cursor for new files"]
    assert Counter(embedded)[queries[1]] == 1 and len(embedded) - len(set(embedded)) <= len(queries)
    # Scored beside them: the questions eval_questions drew from each source, each embedded once too.
    generated = {
        json.loads(line)["text"]
        for path in Path(settings.generated_eval_location).glob("sources/*/queries.jsonl")
        for line in path.read_text(encoding="utf-8").splitlines()
    }
    scored = len(queries) + len(generated)
    retrieval = latest_metadata(instance, "retrieval_evaluation", OPENAI_SMALL.name)
    assert (retrieval["query_cache_misses"], retrieval["query_cache_hits"]) == (scored, 0)
    assert retrieval["query_encode_in_latency"] is False  # batched through the cache, not timed one by one

    # Usage and cost per materialization, from the server's own usage field.
    usage = [chunk_embedding_metadata(instance, source, OPENAI_SMALL.name) for source in ("alpha", "beta")]
    chunk_requests = [r for r in server.embedding_requests("ok") if set(r.inputs) <= chunk_texts]
    assert sum(m["api_requests"] for m in usage) == len(chunk_requests)
    assert sum(m["api_retries"] for m in usage) == len(FAULTS)
    tokens = sum(m["api_input_tokens"] for m in usage)
    assert tokens == sum(m["embedded_tokens"] for m in usage) > 0
    assert sum(m["estimated_cost_usd"] for m in usage) == pytest.approx(tokens * 0.5 / 1_000_000, abs=2e-6)
    assert all(m["dimensions"] == DIMENSIONS and m["cache_hits"] == 0 for m in usage)

    # The chat model answered and judged through the same server (its first reply is invalid JSON).
    answers = latest_metadata(instance, "answer_evaluation", OPENAI_SMALL.name)
    assert answers["questions"] == 3 and answers["invalid_llm_replies"] == 0
    assert answers["tiny_qa/faithfulness"] == pytest.approx(0.75)
    assert answers["tiny_qa/correctness"] == pytest.approx(0.5)
    # The chat model's scores and answers in tables of their own (offline, neither exists).
    assert answers["llm_results"][0]["faithfulness"] == pytest.approx(0.75) and "llm_per_question" in answers

    # A second build sends no chunk to the server: every text is a cache hit.
    paid_before = len(server.embedded_texts())
    # Forced, so every embedding step runs again (an unforced build would skip them all as up to date).
    report = run_build(build_definitions(settings), instance, settings.embedders, echo=lambda _: None, force=True)
    assert report.ok, report.failures
    # Nor any evaluation text: the unchanged re-evaluation pays nothing.
    assert server.embedded_texts()[paid_before:] == []
    again = [chunk_embedding_metadata(instance, source, OPENAI_SMALL.name) for source in ("alpha", "beta")]
    assert all(m["api_requests"] == 0 and m["cache_hits"] == m["chunks"] for m in again)
    retrieval = latest_metadata(instance, "retrieval_evaluation", OPENAI_SMALL.name)
    assert (retrieval["api_requests"], retrieval["query_cache_misses"], retrieval["query_cache_hits"]) == (0, 0, scored)

    # The CLI on the OpenAI path, then with the server rejecting the key (and echoing it back).
    assert cli_main(["search", "cron expression to launch a job", "--embedder", OPENAI_SMALL.name]) == 0
    server.faults.append("401")
    assert cli_main(["search", "sensor cursor", "--embedder", OPENAI_SMALL.name]) == 2
    printed = capfd.readouterr()
    assert "schedules.md" in printed.out
    assert "authentication failed: check OPENAI_API_KEY" in printed.err

    # The key reached the server, and went nowhere else.
    assert server.authorizations() == {f"Bearer {SENTINEL_KEY}"}
    assert SENTINEL_KEY not in printed.out + printed.err
    events = [
        str(entry.event_log_entry)
        for run in instance.get_runs()
        for entry in instance.get_records_for_run(run.run_id, limit=100_000).records
    ]
    assert len(events) > 100 and not any(SENTINEL_KEY in text for text in events)
    written = [path for root in (data_dir, Path(instance.root_directory)) for path in root.rglob("*") if path.is_file()]
    assert written and not [path for path in written if SENTINEL_KEY.encode() in path.read_bytes()]
