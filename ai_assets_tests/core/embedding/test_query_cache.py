"""The query-vector cache of a paid embedder: a LanceDB table in front of a real HTTP server speaking OpenAI's protocol."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import lancedb
import numpy as np
import pytest

from ai_assets.core.embedding.base import MINILM, OPENAI_SMALL, InputTooLong, embedder_spec
from ai_assets.core.embedding.openai_embedder import OpenAIEmbedder, OpenAISettings
from ai_assets.core.embedding.query_cache import CachingEmbedder, is_paid
from ai_assets.core.store.tables import open_query_cache, query_cache_name
from ai_assets_tests.core.embedding.test_openai_embedder import (
    DIMENSIONS,
    TEXTS,
    expected_vectors,
    make_embedder,
)
from ai_assets_tests.openai_server import OpenAIServer, running_openai_server


@pytest.fixture
def server() -> Iterator[OpenAIServer]:
    with running_openai_server() as running:
        yield running


def caching(server: OpenAIServer, db: lancedb.DBConnection, dimensions: int = DIMENSIONS) -> CachingEmbedder:
    inner = make_embedder(server) if dimensions == DIMENSIONS else OpenAIEmbedder(
        embedder_spec(OPENAI_SMALL.name, dimensions), OpenAISettings(base_url=server.base_url, requests_per_minute=None)
    )
    return CachingEmbedder(inner, open_query_cache(db, inner.spec))


def test_each_text_is_paid_once_across_calls_and_processes(server: OpenAIServer, tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path))
    embedder = caching(server, db)
    queries = [TEXTS[0], TEXTS[1], TEXTS[0]]  # a repeated query within one call is sent once
    np.testing.assert_allclose(embedder.embed(queries), expected_vectors(queries), rtol=1e-6)
    assert server.embedded_texts() == [TEXTS[0], TEXTS[1]]
    usage = embedder.take_usage_metadata()
    assert (usage["query_cache_misses"], usage["query_cache_hits"], usage["api_requests"]) == (2, 1, 1)

    # Another run (a new embedder, a new connection): only the text never seen is sent.
    again = caching(server, lancedb.connect(str(tmp_path)))
    np.testing.assert_allclose(again.embed(TEXTS), expected_vectors(TEXTS), rtol=1e-6)
    assert server.embedded_texts()[2:] == TEXTS[2:]
    np.testing.assert_allclose(again.embed_query(TEXTS[3]), expected_vectors([TEXTS[3]])[0], rtol=1e-6)
    assert len(server.embedded_texts()) == len(TEXTS)
    usage = again.take_usage_metadata()
    assert (usage["query_cache_misses"], usage["query_cache_hits"]) == (3, 3)
    assert again.take_usage_metadata()["query_cache_hits"] == 0  # counted afresh after each take


def test_a_cache_of_another_size_is_dropped_not_mixed(server: OpenAIServer, tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path))
    caching(server, db).embed(TEXTS[:2])
    assert db.open_table(query_cache_name(OPENAI_SMALL.name)).count_rows() == 2
    wider = caching(server, db, dimensions=2 * DIMENSIONS)
    assert wider.embed(TEXTS[:2]).shape == (2, 2 * DIMENSIONS)
    assert len(server.embedded_texts()) == 4  # paid again for the new size
    assert db.open_table(query_cache_name(OPENAI_SMALL.name)).count_rows() == 2


def test_a_text_over_the_window_is_refused_before_any_lookup(server: OpenAIServer, tmp_path: Path) -> None:
    embedder = caching(server, lancedb.connect(str(tmp_path)))
    with pytest.raises(InputTooLong, match="exceed the text-embedding-3-small window"):
        embedder.embed(["word " * 9000])
    assert server.embedding_requests() == []


def test_only_remote_models_are_paid() -> None:
    assert is_paid(OPENAI_SMALL) and not is_paid(MINILM)
