"""Dagster resources: one per external system (source files, chunk files, the embedding models, LanceDB)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import dagster as dg
import lancedb
from lancedb.db import DBConnection
from lancedb.table import Table

from ai_assets.core.chunking.chunk_files import (
    ROWS_PER_GROUP,
    ChunkFile,
    ChunkSource,
    chunk_file_exists,
    write_chunk_file,
)
from ai_assets.core.chunking.chunker import Chunk, ChunkerConfig, ChunkingResult, chunk_documents
from ai_assets.core.documents.fingerprints import SourceFingerprint, content_fingerprint, fingerprint_sources
from ai_assets.core.documents.folders import SourceFolders
from ai_assets.core.documents.loading import ParseSettings, load_source
from ai_assets.core.documents.model import Document, SourceLoad
from ai_assets.core.documents.object_folders import source_folders_at
from ai_assets.core.embedding.base import Embedder, EmbedderSpec, embedder_spec
from ai_assets.core.embedding.openai_embedder import OpenAISettings
from ai_assets.core.embedding.registry import create_embedder
from ai_assets.core.embedding.tokenizer import minilm_tokenizer
from ai_assets.core.evaluation.beir import list_eval_sets
from ai_assets.core.feedback import FileFeedbackStore
from ai_assets.core.hashing import sha256_hex
from ai_assets.core.llm import ChatModel, OpenAIChatModel
from ai_assets.core.storage import join, storage_errors, storage_path
from ai_assets.core.store.tables import open_journal, open_query_cache, open_table
from ai_assets.core.store.versions import VersionSelector, checkout
from ai_assets.settings import Settings


class SourceFiles(dg.ConfigurableResource):
    """The sources root (one folder per source) and the eval sets root (one folder per set).

    Each is a local directory or an object-store prefix (``s3://bucket/data/sources``).
    """

    sources_uri: str
    eval_uri: str
    max_document_bytes: int = 5_000_000
    max_file_bytes: int = ParseSettings().max_file_bytes
    parse_timeout_seconds: float = ParseSettings().timeout_seconds
    parse_workers: int = 0  # one per core
    ocr: bool = ParseSettings().ocr

    @property
    def sources_dir(self) -> str:
        """Where the sources are, as a user would write it (for messages)."""
        return self.sources_uri

    @property
    def folders(self) -> SourceFolders:
        return source_folders_at(self.sources_uri, setting="AI_ASSETS_DATA_DIR / AI_ASSETS_SOURCES_URI")

    def source_names(self) -> list[str]:
        return self.folders.source_names()

    @property
    def parsing(self) -> ParseSettings:
        return ParseSettings(
            workers=self.parse_workers, timeout_seconds=self.parse_timeout_seconds, max_file_bytes=self.max_file_bytes,
            ocr=self.ocr,
        )

    def load(self, source: str) -> SourceLoad:
        return load_source(self.folders, source, self.max_document_bytes, self.parsing)

    def fingerprints(self, previous: Mapping[str, SourceFingerprint]) -> dict[str, SourceFingerprint]:
        return fingerprint_sources(self.folders, previous)

    def content_fingerprint(self, source: str) -> str:
        return content_fingerprint(self.folders, source)

    def eval_set_dirs(self) -> list[Path]:
        """Every eval set's folder (``UPath`` on object storage); a store that fails raises."""
        with storage_errors(self.eval_uri, "AI_ASSETS_DATA_DIR / AI_ASSETS_EVAL_URI"):
            return list_eval_sets(storage_path(self.eval_uri))

    def eval_sets_fingerprint(self) -> str:
        """Hash of every eval set's name and files, recorded by the evaluations they were scored on."""
        eval_sets = source_folders_at(self.eval_uri, setting="AI_ASSETS_DATA_DIR / AI_ASSETS_EVAL_URI")
        return sha256_hex(*(f"{path.name}:{content_fingerprint(eval_sets, path.name)}" for path in self.eval_set_dirs()))


class ChunkStore(dg.ConfigurableResource):
    """Where ``document_chunks`` keeps each source's chunks: one Parquet file per source, on
    local disk or under an object-store prefix."""

    base_uri: str

    def location(self, source: str) -> str:
        return join(self.base_uri, "document_chunks", f"{source}.parquet")

    def existing(self, source: str) -> ChunkFile | None:
        location = self.location(source)
        with storage_errors(location, "AI_ASSETS_DATA_DIR / AI_ASSETS_CHUNKS_URI"):
            return ChunkFile(location) if chunk_file_exists(location) else None


class ChunkFilesIOManager(dg.ConfigurableIOManager):
    """Stores ``document_chunks`` in the ``ChunkStore`` and hands it downstream as a ``ChunkFile``
    that is read in batches, so embedding a large source never loads it whole (Dagster's default
    IO manager would unpickle the whole list). Every step reads it from the store, never from a
    path another step wrote on its own disk."""

    base_uri: str  # the ChunkStore's: a plain field, since a nested resource turns this into a generator resource

    @property
    def store(self) -> ChunkStore:
        return ChunkStore(base_uri=self.base_uri)

    def handle_output(self, context: dg.OutputContext, obj: list[Chunk]) -> None:
        location = self.store.location(context.asset_partition_key)
        with storage_errors(location, "AI_ASSETS_DATA_DIR / AI_ASSETS_CHUNKS_URI"):
            chunk_file = write_chunk_file(location, obj)
        context.add_output_metadata({"uri": dg.MetadataValue.path(chunk_file.location)})

    def load_input(self, context: dg.InputContext) -> ChunkFile:
        chunk_file = self.store.existing(context.asset_partition_key)
        if chunk_file is None:
            location = self.store.location(context.asset_partition_key)
            raise dg.Failure(f"no chunks at {location}: materialize document_chunks for this source first")
        return chunk_file


def io_manager_from_settings(settings: Settings) -> dg.FilesystemIOManager:
    """Dagster's own filesystem IO manager (a ``UPathIOManager``) under the data dir, so in-graph
    values such as ``source_documents`` live beside the data: on object storage when it is there,
    never in one machine's ``DAGSTER_HOME``."""
    return dg.FilesystemIOManager(base_dir=settings.io_location)


class Chunker(dg.ConfigurableResource):
    """Token-aware chunking with the local model's tokenizer (the smallest window we embed for)."""

    max_tokens: int = 254
    overlap_tokens: int = 32
    context_prefix: bool = True  # embed chunks after their document title and section path (Settings.context_prefix)

    def config(self) -> ChunkerConfig:
        return ChunkerConfig(
            tokenizer=minilm_tokenizer().name, max_tokens=self.max_tokens, overlap_tokens=self.overlap_tokens,
            context_prefix=self.context_prefix,
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
        storage_options=settings.resolved_lancedb_storage_options,
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


class FeedbackFiles(dg.ConfigurableResource):
    """The feedback store that `ask`, `search` and `feedback` write (``Settings.feedback_location``),
    and the folder where ``feedback_eval_set`` writes the eval set made from it."""

    store_uri: str
    eval_set_uri: str

    def store(self) -> FileFeedbackStore:
        return FileFeedbackStore(self.store_uri)
