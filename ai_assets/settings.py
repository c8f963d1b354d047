"""Project settings, read from ``AI_ASSETS_*`` environment variables and validated once."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ai_assets.core.embedding.base import EMBEDDER_SPECS, MINILM, OPENAI_SMALL
from ai_assets.core.embedding.openai_embedder import OpenAISettings
from ai_assets.core.embedding.precision import LocalPrecision
from ai_assets.core.storage import is_remote, join, lancedb_storage_options, normalize_location, storage_path

# USD per million input tokens (OpenAI's list prices, 2026); override with AI_ASSETS_OPENAI_PRICES.
OPENAI_PRICES_PER_MILLION_TOKENS = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13}


class SettingsError(ValueError):
    """A bad configuration, reported with the environment variable that holds it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AI_ASSETS_", extra="ignore")

    data_dir: str = Field(
        default="data",
        description=(
            "Sources, eval sets, chunk files, in-graph values and the default LanceDB database: a local "
            "path or an object-store URI (s3://bucket/prefix; gs://, az:// with their fsspec package)."
        ),
    )
    sources_uri: str | None = Field(default=None, description="Override of <data_dir>/sources (path or URI).")
    eval_uri: str | None = Field(default=None, description="Override of <data_dir>/eval (path or URI).")
    chunks_uri: str | None = Field(default=None, description="Override of <data_dir>/chunks (path or URI).")
    lancedb_uri: str | None = Field(
        default=None, description="LanceDB URI: a directory or s3://bucket/path; default <data_dir>/lancedb."
    )
    lancedb_storage_options: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Object-store options of an s3:// URI as JSON, e.g. {\"aws_endpoint\": \"http://minio:9000\", "
            "\"allow_http\": \"true\"}; credentials belong in the standard AWS_* variables."
        ),
    )
    embedders: Annotated[list[str], NoDecode] = Field(
        default=[MINILM.name], description="Enabled embedders, comma-separated (AI_ASSETS_EMBEDDERS=minilm)."
    )
    chunk_max_tokens: int = Field(default=MINILM.max_input_tokens - 2, description="Model tokens per chunk.")
    chunk_overlap_tokens: int = Field(default=32, description="Tokens shared by consecutive chunks.")
    max_document_bytes: int = Field(
        default=5_000_000, gt=0, description="Larger text files (and PDF/DOCX/PPTX text, corpus lines) are quarantined."
    )
    max_file_bytes: int = Field(
        default=200_000_000, gt=0, description="Larger PDF, DOCX and PPTX files (images and fonts included) are quarantined."
    )
    parse_timeout_seconds: float = Field(
        default=60.0, gt=0, description="A file not parsed within this time is quarantined (its worker is killed)."
    )
    parse_workers: int = Field(default=0, ge=0, description="Parsing worker processes (0: one per core).")
    context_prefix: bool = Field(
        # On: hybrid nDCG@10 +0.015 on docs_qa, equal on msmarco and dbpedia (bench/RESULTS.md).
        default=True, description="Embed each chunk after its document title and section path (stored text unchanged)."
    )
    embed_batch_size: int = Field(default=64, gt=0, description="Texts per model call.")
    local_precision: LocalPrecision = Field(
        default="auto",
        description=(
            "How the local model runs: auto (bf16-autocast where the CPU has bf16, else fp32-onnx), "
            "fp32, fp32-onnx (float32 in ONNX Runtime), bf16 or bf16-autocast."
        ),
    )
    quality_min_ndcg_at_10: float = Field(
        default=0.1, ge=0.0, le=1.0, description="Quality gate: lowest acceptable nDCG@10 of any eval set and mode."
    )
    quality_max_ndcg_drop: float = Field(
        default=0.02, ge=0.0, le=1.0, description="Quality gate: largest acceptable nDCG@10 drop from the previous evaluation."
    )
    freshness_fail_minutes: int = Field(
        default=26 * 60, ge=1, description="search_index and evaluations fail freshness when older than this."
    )
    freshness_warn_minutes: int = Field(
        default=24 * 60, ge=0, description="... and warn when older than this (0: no warning window)."
    )
    sensor_interval_seconds: int = Field(
        default=30, ge=1, description="How often source_sensor looks at data/sources/."
    )
    automation_interval_seconds: int = Field(
        default=30, ge=1, description="How often automation conditions (downstream assets following upstream) are evaluated."
    )
    refresh_cron: str = Field(
        default="0 3 * * *", description="Cron of the daily_refresh schedule (UTC) and of paid answer evaluations."
    )
    ann_min_rows: int = Field(
        default=50_000, ge=1, description="search_index builds an HNSW-SQ vector index from this many rows."
    )
    ann_min_recall: float = Field(
        default=0.9, ge=0.0, le=1.0, description="Check: lowest acceptable ANN recall@10 against exact search."
    )
    chat_model: str = Field(default="gpt-4o-mini", description="Chat model of generated answers and the judge.")
    openai_base_url: str | None = Field(
        default=None, validation_alias="OPENAI_BASE_URL", description="OpenAI-compatible server (else api.openai.com)."
    )
    openai_embedding_dimensions: int | None = Field(
        default=None, gt=0, le=1536, description="Vector size asked of text-embedding-3-small (default 1536)."
    )
    # Defaults are OpenAISettings' own, so the settings, the resource and the client agree.
    openai_requests_per_minute: int = Field(
        default=OpenAISettings.requests_per_minute, gt=0, description="Embedding requests sent per minute at most."
    )
    openai_tokens_per_minute: int = Field(
        default=OpenAISettings.tokens_per_minute, gt=0, description="Embedding tokens sent per minute at most."
    )
    openai_timeout_seconds: float = Field(
        default=OpenAISettings.timeout_seconds, gt=0, description="One request's timeout before it is retried."
    )
    openai_max_retries: int = Field(
        default=OpenAISettings.max_retries, ge=0, description="Retries of one request on 429, 5xx, timeouts and dropped connections."
    )
    openai_prices: dict[str, float] = Field(
        default_factory=lambda: dict(OPENAI_PRICES_PER_MILLION_TOKENS),
        description="USD per million input tokens by model, for the estimated cost (JSON object).",
    )
    dagster_ui_url: str = Field(default="http://127.0.0.1:3000", description="Base of run links in traces.")

    @field_validator("data_dir", "sources_uri", "eval_uri", "chunks_uri", mode="before")
    @classmethod
    def _served_location(cls, value: object, info: ValidationInfo) -> object:
        # A URI no filesystem serves is an error here, never a local folder named "s3:".
        if value is None:
            return None
        if not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"expected a path or a URI, got {value!r}")
        return normalize_location(value, f"AI_ASSETS_{str(info.field_name).upper()}")

    @field_validator("embedders", mode="before")
    @classmethod
    def _split_embedders(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("embedders")
    @classmethod
    def _known_embedders(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in EMBEDDER_SPECS]
        if unknown:
            raise ValueError(f"unknown embedder(s) {unknown}; known: {sorted(EMBEDDER_SPECS)}")
        if not value:
            raise ValueError("at least one embedder must be enabled")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _openai_embedder_when_configured(self) -> Settings:
        # Only when the embedders were not chosen explicitly: AI_ASSETS_EMBEDDERS=minilm stays offline.
        if "embedders" not in self.model_fields_set and self.openai_configured:
            self.embedders = [*self.embedders, OPENAI_SMALL.name]
        return self

    @model_validator(mode="after")
    def _chunks_fit_every_model(self) -> Settings:
        smallest_window = min(EMBEDDER_SPECS[name].max_input_tokens - 2 for name in self.embedders)
        if self.chunk_max_tokens > smallest_window:
            raise ValueError(
                f"AI_ASSETS_CHUNK_MAX_TOKENS={self.chunk_max_tokens} exceeds the smallest enabled model "
                f"window of {smallest_window} tokens"
            )
        return self

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Settings:
        if self.freshness_warn_minutes >= self.freshness_fail_minutes:
            raise ValueError(
                "AI_ASSETS_FRESHNESS_WARN_MINUTES must be less than AI_ASSETS_FRESHNESS_FAIL_MINUTES"
            )
        return self

    @property
    def openai_configured(self) -> bool:
        """The OpenAI path is on when a key or a compatible server is configured."""
        return bool(os.environ.get("OPENAI_API_KEY") or self.openai_base_url)

    @property
    def data_is_remote(self) -> bool:
        return is_remote(self.data_dir)

    @property
    def sources_location(self) -> str:
        return self.sources_uri or join(self.data_dir, "sources")

    @property
    def eval_location(self) -> str:
        return self.eval_uri or join(self.data_dir, "eval")

    @property
    def chunks_location(self) -> str:
        return self.chunks_uri or join(self.data_dir, "chunks")

    @property
    def io_location(self) -> str:
        """Where Dagster's IO manager keeps in-graph values (the pickled ``source_documents``)."""
        return join(self.data_dir, "dagster_storage")

    @property
    def sources_dir(self) -> Path:
        """The sources root as a path (``UPath`` on object storage)."""
        return storage_path(self.sources_location)

    @property
    def eval_dir(self) -> Path:
        return storage_path(self.eval_location)

    @property
    def resolved_lancedb_uri(self) -> str:
        return self.lancedb_uri or join(self.data_dir, "lancedb")

    @property
    def resolved_lancedb_storage_options(self) -> dict[str, str]:
        return lancedb_storage_options(self.resolved_lancedb_uri, self.lancedb_storage_options)


def load_settings() -> Settings:
    """Settings from the environment, with errors that name the variable to fix."""
    try:
        return Settings()
    except ValidationError as error:
        problems = "; ".join(
            f"AI_ASSETS_{'_'.join(str(part) for part in problem['loc']).upper() or 'SETTINGS'}: {problem['msg']}"
            for problem in error.errors()
        )
        raise SettingsError(f"invalid configuration: {problems}") from None
