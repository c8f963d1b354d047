"""Chunk files on an object store: written whole or not at all, streamed back in batches."""

from __future__ import annotations

import pytest

from ai_assets.core.chunking.chunk_files import ChunkFile, chunk_file_exists, write_chunk_file
from ai_assets.core.chunking.chunker import Chunk, ChunkerConfig, chunk_documents
from ai_assets.core.documents.folders import LocalSourceFolders
from ai_assets.core.documents.loading import load_source
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets_tests.s3_server import S3Server


@pytest.fixture(scope="module")
def chunks(tmp_path_factory: pytest.TempPathFactory) -> list[Chunk]:
    """25 real chunks: one short document each, cut by the real chunker."""
    root = tmp_path_factory.mktemp("sources")
    (root / "alpha").mkdir()
    for number in range(25):
        (root / "alpha" / f"{number:02d}.md").write_text(f"# Page {number}\n\nText number {number}.", encoding="utf-8")
    documents = load_source(LocalSourceFolders(root), "alpha", 10_000).documents
    config = ChunkerConfig(tokenizer=minilm_tokenizer().name, max_tokens=254, overlap_tokens=32)
    return chunk_documents(documents, minilm_tokenizer(), config).chunks


def test_a_chunk_file_round_trips_through_the_bucket(s3_env: S3Server, chunks: list[Chunk]) -> None:
    s3_env.client().create_bucket(Bucket="chunks")
    location = "s3://chunks/data/chunks/document_chunks/alpha.parquet"
    assert not chunk_file_exists(location)
    written = write_chunk_file(location, iter(chunks))
    assert written == ChunkFile(location) and chunk_file_exists(location)
    assert [len(batch) for batch in written.batches(10)] == [10, 10, 5]
    assert [c for batch in written.batches(10) for c in batch] == chunks


def test_a_failed_write_leaves_the_previous_file(s3_env: S3Server, chunks: list[Chunk]) -> None:
    s3_env.client().create_bucket(Bucket="chunks-fail")
    location = "s3://chunks-fail/alpha.parquet"
    write_chunk_file(location, chunks[:1])

    def broken():
        yield from chunks[1:]
        raise RuntimeError("the chunker failed halfway")

    with pytest.raises(RuntimeError, match="halfway"):
        write_chunk_file(location, broken())
    assert [c for batch in ChunkFile(location).batches(10) for c in batch] == chunks[:1]
    assert s3_env.keys("chunks-fail") == ["alpha.parquet"]
