"""A served knowledge base built once per test session (per xdist worker) without Dagster (the pipeline's own core
steps: load, chunk, embed, index, serve), and the server's app over it."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import lancedb
import pytest
import uvicorn
from fastapi.testclient import TestClient

from ai_assets.core.chunking.chunker import ChunkerConfig, chunk_documents
from ai_assets.core.documents.loading import ParseSettings, load_source
from ai_assets.core.documents.object_folders import source_folders_at
from ai_assets.core.embedding.base import MINILM, Embedder
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.store.indexes import build_indexes
from ai_assets.core.store.tables import open_journal, open_table
from ai_assets.core.store.versions import move_served
from ai_assets.core.store.writes import sync_source_embeddings
from ai_assets.serve.app import ServeOptions, create_app
from ai_assets.serve.library import Library, ServedKnowledgeBase
from ai_assets.serve.scopes import TokenEntry, Tokens, token_hash
from ai_assets.settings import Settings
from ai_assets_tests.conftest import write_sources
from ai_assets_tests.document_files import pdf_bytes
from ai_assets_tests.system import free_port

FILLER = [("body", f"Line {n} of the handbook describes routine checks of the platform in detail.") for n in range(12)]
HANDBOOK_PAGES = [
    [("h1", "Operations"), ("body", "How the platform team runs production."), *FILLER],
    [("h2", "Escalation"), ("body", "After the third failure the on-call engineer is paged by the pager rota."), *FILLER],
]
SOURCES = ("alpha", "beta", "handbook")
# Tokens of the tests: an unscoped one, and one that reads source beta only.
ADMIN_TOKEN = "admin-token-0123456789"
BETA_TOKEN = "beta-token-0123456789"
TOKENS = Tokens([
    TokenEntry(name="admin", sha256=token_hash(ADMIN_TOKEN)),
    TokenEntry(name="beta-team", sha256=token_hash(BETA_TOKEN), knowledge_bases=("docs",), sources=("beta",)),
])


@pytest.fixture(scope="session")
def minilm() -> Embedder:
    # ONNX Runtime for batches too: the first batch through PyTorch costs ~20 s on these loaded cores.
    return create_embedder("minilm", precision="fp32-onnx")


def publish(data_dir: Path, embedder: Embedder, sources: tuple[str, ...] = SOURCES, run_id: str = "run-1") -> int:
    """Index ``sources`` of ``data_dir`` into its table and serve the result; its version."""
    database = lancedb.connect(str(data_dir / "lancedb"))
    table = open_table(database, MINILM)
    config = ChunkerConfig(tokenizer=MINILM.model, max_tokens=128, overlap_tokens=16)
    folders = source_folders_at(str(data_dir / "sources"))
    for source in sources:
        documents = load_source(folders, source, 5_000_000, ParseSettings(workers=1)).documents
        chunks = chunk_documents(documents, minilm_tokenizer(), config).chunks
        sync_source_embeddings(table, source, chunks, embedder, run_id=run_id, journal=open_journal(database, MINILM))
    version = build_indexes(table).version
    move_served(table, version)
    return version


@pytest.fixture(scope="session")
def served_data(tmp_path_factory: pytest.TempPathFactory, minilm: Embedder) -> Path:
    """A data dir with the tiny corpus and a PDF handbook, indexed and served."""
    data_dir = tmp_path_factory.mktemp("served") / "data"
    write_sources(data_dir)
    (data_dir / "sources" / "handbook").mkdir(parents=True)
    (data_dir / "sources" / "handbook" / "ops.pdf").write_bytes(pdf_bytes(HANDBOOK_PAGES))
    publish(data_dir, minilm)
    return data_dir


def options(tokens: Tokens = TOKENS, **changes) -> ServeOptions:
    values = dict(
        tokens=tokens, open_access=not tokens, max_body_bytes=4096, rate_limit_per_minute=10_000, cors_origins=[], max_k=20
    )
    return ServeOptions(**{**values, **changes})


def library(data_dir: Path, embedder: Embedder, refresh_seconds: float = 0.2) -> Library:
    return Library([ServedKnowledgeBase("docs", Settings(data_dir=data_dir), embedder)], refresh_seconds)


@pytest.fixture(scope="session")
def client(served_data: Path, minilm: Embedder) -> Iterator[TestClient]:
    """The app over the served data, with the test tokens (a real app, in process)."""
    with TestClient(create_app(library(served_data, minilm), options())) as test_client:
        yield test_client


def bearer(token: str = ADMIN_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def copied(data_dir: Path, target: Path) -> Path:
    shutil.copytree(data_dir, target)
    return target


@contextmanager
def running_server(app) -> Iterator[str]:
    """``app`` on a real uvicorn at 127.0.0.1, in a thread: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="session")
def client_server(served_data: Path, minilm: Embedder) -> Iterator[str]:
    """The app with MCP over the served data on a real uvicorn: its base URL."""
    with running_server(create_app(library(served_data, minilm), options())) as base:
        yield base
