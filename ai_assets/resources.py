"""Dagster resources: one per external system (source files, the embedding models, LanceDB)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg
import lancedb
from lancedb.db import DBConnection
from lancedb.table import Table

from ai_assets.core.chunking.chunk_files import ROWS_PER_GROUP, ChunkFile, ChunkSource, write_chunk_file
from ai_assets.core.chunking.chunker import Chunk, ChunkerConfig, ChunkingResult, chunk_documents
from ai_assets.core.documents.fingerprints import SourceFingerprint, content_fingerprint, fingerprint_sources
from ai_assets.core.documents.folders import LocalSourceFolders, SourceFolders
from ai_assets.core.documents.loading import load_source
from ai_assets.core.documents.model import Document, SourceLoad
from ai_assets.core.embedding.base import Embedder, EmbedderSpec, embedder_spec
from ai_assets.core.embedding.openai_embedder import OpenAISettings
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.evaluation.beir import list_eval_sets
from ai_assets.core.hashing import sha256_hex
from ai_assets.core.llm import ChatModel, OpenAIChatModel
from ai_assets.core.store.tables import open_journal, open_query_cache, open_table
from ai_assets.core.store.versions import VersionSelector, checkout
from ai_assets.settings import Settings


class SourceFiles(dg.ConfigurableResource):
    """The data folder: one sub-folder of ``sources/`` per source, eval sets under ``eval/``."""

    data_dir: str
    max_document_bytes: int = 5_000_000

    @property
    def sources_dir(self) -> Path:
        return Path(self.data_dir) / "sources"

    @property
    def eval_dir(self) -> Path:
        return Path(self.data_dir) / "eval"

    @property
    def folders(self) -> SourceFolders:
        return LocalSourceFolders(self.sources_dir)

    def source_names(self) -> list[str]:
        return self.folders.source_names()

    def load(self, source: str) -> SourceLoad:
        return load_source(self.folders, source, self.max_document_bytes)

    def fingerprints(self, previous: Mapping[str, SourceFingerprint]) -> dict[str, SourceFingerprint]:
        return fingerprint_sources(self.folders, previous)

    def content_fingerprint(self, source: str) -> str:
        return content_fingerprint(self.folders, source)

    def eval_set_dirs(self) -> list[Path]:
        return list_eval_sets(self.eval_dir)

    def eval_sets_fingerprint(self) -> str:
        """Hash of every eval set's name and files, recorded by the evaluations they were scored on."""
        eval_sets = LocalSourceFolders(self.eval_dir)
        return sha256_hex(*(f"{path.name}:{content_fingerprint(eval_sets, path.name)}" for path in self.eval_set_dirs()))


class ChunkStore(dg.ConfigurableResource):
    """Where ``document_chunks`` keeps each source's chunks: one Parquet file per source."""

    base_dir: str

    def path(self, source: str) -> Path:
        return Path(self.base_dir) / "document_chunks" / f"{source}.parquet"

    def existing(self, source: str) -> ChunkFile | None:
        path = self.path(source)
        return ChunkFile(path) if path.is_file() else None


class ChunkFilesIOManager(dg.ConfigurableIOManager):
    """Stores ``document_chunks`` in the ``ChunkStore`` and hands it downstream as a ``ChunkFile``
    that is read in batches, so embedding a large source never loads it whole (Dagster's default
    IO manager would unpickle the whole list)."""

    base_dir: str  # the ChunkStore's: a plain field, since a nested resource turns this into a generator resource

    @property
    def store(self) -> ChunkStore:
        return ChunkStore(base_dir=self.base_dir)

    def handle_output(self, context: dg.OutputContext, obj: list[Chunk]) -> None:
        chunk_file = write_chunk_file(self.store.path(context.asset_partition_key), obj)
        context.add_output_metadata({"path": dg.MetadataValue.path(str(chunk_file.path))})

    def load_input(self, context: dg.InputContext) -> ChunkFile:
        chunk_file = self.store.existing(context.asset_partition_key)
        if chunk_file is None:
            path = self.store.path(context.asset_partition_key)
            raise dg.Failure(f"no chunks at {path}: materialize document_chunks for this source first")
        return chunk_file


class Chunker(dg.ConfigurableResource):
    """Token-aware chunking with the local model's tokenizer (the smallest window we embed for)."""

    max_tokens: int = 254
    overlap_tokens: int = 32

    def config(self) -> ChunkerConfig:
        return ChunkerConfig(
            tokenizer=minilm_tokenizer().name, max_tokens=self.max_tokens, overlap_tokens=self.overlap_tokens
        )

    def chunk(self, documents: Sequence[Document], previous: ChunkSource | None = None) -> ChunkingResult:
        """Chunks of the documents; those of unchanged documents are taken from ``previous``."""
        reusable = (chunk for batch in previous.batches(ROWS_PER_GROUP) for chunk in batch) if previous else ()
        return chunk_documents(documents, minilm_tokenizer(), self.config(), reusable)


class OpenAIEmbedding(dg.Config):
    """How ``openai-small`` reaches its server; fields named as in ``OpenAISettings``."""

    api_key: str | None = None
    base_url: str | None = None
    timeout_seconds: float = OpenAISettings.timeout_seconds
    max_retries: int = OpenAISettings.max_retries
    requests_per_minute: int = OpenAISettings.requests_per_minute  # type: ignore[assignment]
    tokens_per_minute: int = OpenAISettings.tokens_per_minute  # type: ignore[assignment]


class Embedders(dg.ConfigurableResource):
    """The enabled embedding models, by embedder name (the embedder partition key).

    ``openai`` configures ``openai-small``. Its key is ``dg.EnvVar("OPENAI_API_KEY")``:
    Dagster shows the variable's name, never its value.
    """

    enabled: list[str]
    batch_size: int = 64
    local_precision: str = "auto"
    openai: OpenAIEmbedding = OpenAIEmbedding()
    openai_dimensions: int | None = None
    openai_prices: dict[str, float] = {}  # USD per million input tokens, by model

    def spec(self, name: str) -> EmbedderSpec:
        self._require_enabled(name)
        return embedder_spec(name, self.openai_dimensions)

    def get(self, name: str) -> Embedder:
        self._require_enabled(name)
        return create_embedder(
            name,
            batch_size=self.batch_size,
            precision=self.local_precision,  # type: ignore[arg-type]
            openai=OpenAISettings(
                **self.openai.model_dump(),
                price_per_million_tokens=self.openai_prices.get(embedder_spec(name).model, 0.0),
            ),
            openai_dimensions=self.openai_dimensions,
        )

    def _require_enabled(self, name: str) -> None:
        if name not in self.enabled:
            raise dg.Failure(
                f"embedder {name!r} is not enabled (AI_ASSETS_EMBEDDERS={','.join(self.enabled)})"
            )


def embedders_from_settings(settings: Settings) -> Embedders:
    return Embedders(
        enabled=settings.embedders,
        batch_size=settings.embed_batch_size,
        local_precision=settings.local_precision,
        openai=OpenAIEmbedding(
            api_key=openai_api_key(),
            base_url=settings.openai_base_url,
            timeout_seconds=settings.openai_timeout_seconds,
            max_retries=settings.openai_max_retries,
            requests_per_minute=settings.openai_requests_per_minute,
            tokens_per_minute=settings.openai_tokens_per_minute,
        ),
        openai_dimensions=settings.openai_embedding_dimensions,
        openai_prices=settings.openai_prices,
    )


def openai_api_key() -> str | None:
    """The key as an environment-variable reference, so its value never enters Dagster's config."""
    return dg.EnvVar("OPENAI_API_KEY") if os.environ.get("OPENAI_API_KEY") else None  # type: ignore[return-value]


class LanceDBResource(dg.ConfigurableResource):
    """A LanceDB database (a local directory or an object-store URI) with one table per embedder."""

    uri: str
    # Endpoint, region, allow_http... of an object store. Credentials are not configured here
    # (the UI shows resource config): the object store reads AWS_ACCESS_KEY_ID and friends itself.
    storage_options: dict[str, str] = {}
    ann_min_rows: int = 50_000  # from this many rows search_index adds an ANN vector index

    def connect(self) -> DBConnection:
        return lancedb.connect(self.uri, storage_options=self.storage_options or None)

    def table(self, spec: EmbedderSpec, create: bool = True) -> Table:
        return open_table(self.connect(), spec, create=create)

    def journal(self, spec: EmbedderSpec) -> Table:
        return open_journal(self.connect(), spec)

    def table_at(self, spec: EmbedderSpec, version: VersionSelector) -> Table:
        """The embedder's table pinned to a version: ``served`` (what readers read), ``latest`` or a number."""
        table = self.table(spec, create=False)
        checkout(table, version)
        return table

    def query_cache(self, spec: EmbedderSpec) -> Table:
        return open_query_cache(self.connect(), spec)


def lancedb_from_settings(settings: Settings) -> LanceDBResource:
    return LanceDBResource(
        uri=settings.resolved_lancedb_uri,
        storage_options=settings.lancedb_storage_options,
        ann_min_rows=settings.ann_min_rows,
    )


class QualityGate(dg.ConfigurableResource):
    """Thresholds of the blocking retrieval quality gate."""

    min_ndcg_at_10: float = 0.1
    max_ndcg_drop: float = 0.02
    min_ann_recall: float = 0.9


class ChatModelResource(dg.ConfigurableResource):
    """An OpenAI-compatible chat model for generated answers and the LLM judge (off when offline).

    The API key is configured as ``dg.EnvVar("OPENAI_API_KEY")``, so Dagster shows the variable's
    name, never its value.
    """

    enabled: bool = False
    model: str = "gpt-4o-mini"
    base_url: str | None = None
    api_key: str | None = None

    def chat(self) -> ChatModel | None:
        if not self.enabled:
            return None
        return OpenAIChatModel(self.model, api_key=self.api_key, base_url=self.base_url)
