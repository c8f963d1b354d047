"""The opt-in int8 encoder: near fp32's vectors, and never mixed with them in one table."""

from __future__ import annotations

from pathlib import Path

import lancedb
import numpy as np
import pytest

from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.store.tables import TableMismatch, open_journal, open_table, read_table_metadata, verify_table
from ai_assets.core.store.writes import sync_source_embeddings
from ai_assets.resources import Embedders
from ai_assets_tests.core.embedding.test_local import TEXTS
from ai_assets_tests.core.store.test_store import chunks_of, documents


def test_int8_vectors_are_near_fp32_and_its_queries_run_in_the_int8_graph() -> None:
    fp32 = create_embedder("minilm", precision="fp32-onnx").embed(TEXTS)
    int8 = create_embedder("minilm", precision="int8")
    vectors = int8.embed(TEXTS)
    assert int8.precision == "int8" and int8.spec.quantization == "int8"
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert 0.98 <= float(np.min(np.sum(vectors * fp32, axis=1))) < 0.99999  # quantized, and close
    query = int8.embed_query(TEXTS[1])
    assert float(query @ vectors[1]) >= 0.98  # the int8 graph (a batch's activation range differs a little)


def test_int8_vectors_live_in_their_own_table_and_switching_back_reuses_the_float_ones(tmp_path: Path) -> None:
    db = lancedb.connect(str(tmp_path))
    chunks = chunks_of(documents("alpha", 3))
    float_embedder = create_embedder("minilm", precision="fp32-onnx")
    int8_embedder = create_embedder("minilm", precision="int8")

    def sync(embedder, run_id: str) -> int:
        table, journal = open_table(db, embedder.spec), open_journal(db, embedder.spec)
        return sync_source_embeddings(table, "alpha", chunks, embedder, run_id, journal=journal).embedded

    assert sync(float_embedder, "float-1") == len(chunks)
    assert sync(int8_embedder, "int8-1") == len(chunks)  # switching re-embeds once
    assert sync(int8_embedder, "int8-2") == 0
    assert sync(float_embedder, "float-2") == 0  # switching back reuses the kept float vectors

    float_table, int8_table = open_table(db, float_embedder.spec), open_table(db, int8_embedder.spec)
    assert (float_table.name, int8_table.name) == ("chunks__minilm", "chunks__minilm__int8")
    assert read_table_metadata(int8_table)["ai_assets.quantization"] == "int8"
    assert "ai_assets.quantization" not in read_table_metadata(float_table)  # float tables as before
    with pytest.raises(TableMismatch, match="quantization: table has 'int8', embedder has None"):
        verify_table(int8_table, float_embedder.spec)
    with pytest.raises(TableMismatch, match="quantization: table has None, embedder has 'int8'"):
        verify_table(float_table, int8_embedder.spec)
    # Readers (search, evaluation) resolve the same table from the setting.
    assert Embedders(enabled=["minilm"], local_precision="int8").spec("minilm") == int8_embedder.spec
    assert Embedders(enabled=["minilm"], local_precision="auto").spec("minilm") == float_embedder.spec
