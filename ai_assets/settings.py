"""Project settings, read from ``AI_ASSETS_*`` environment variables and validated once.

Every setting is checked when the settings are loaded (``ai-assets`` at start-up, the code
location that `dagster dev` and the daemon load): field constraints, and the rules between
fields that would otherwise fail in the middle of a build (overlap against chunk size, a valid
cron, an OpenAI embedder without an endpoint). ``load_settings`` reports each problem on one
line as ``VARIABLE=value: what is allowed``.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlsplit

import pydantic_settings
from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ai_assets.core.embedding.base import EMBEDDER_SPECS, MINILM, OPENAI_SMALL
from ai_assets.core.embedding.openai_embedder import OpenAISettings
from ai_assets.core.embedding.precision import LocalPrecision
from ai_assets.core.storage import is_remote, join, lancedb_storage_options, normalize_location, storage_path

if TYPE_CHECKING:
    from ai_assets.naming import KnowledgeBaseNames

# USD per million input tokens (OpenAI's list prices, 2026); override with AI_ASSETS_OPENAI_PRICES.
OPENAI_PRICES_PER_MILLION_TOKENS = {"text-embedding-3-small": 0.02, "text-embedding-3-large": 0.13}


# A knowledge base's name, which prefixes its Dagster names: those allow letters, digits and _ only.
KEY_PREFIX_PATTERN = r"^[a-z][a-z0-9_]*$"
# Chunks shorter than this say too little to embed; the chunker refuses them (ChunkerConfig).
MIN_CHUNK_TOKENS = 16
# Values of these settings may hold credentials: an error names the variable, not the value.
UNSHOWN_VALUES = {"lancedb_storage_options"}


class SettingsError(ValueError):
    """A bad configuration, reported with the environment variable that holds it."""


def env_variable(field: str) -> str:
    """The environment variable that sets a field (its alias, or AI_ASSETS_<FIELD>)."""
    info = Settings.model_fields.get(field)
    alias = info.validation_alias if info is not None else None
    if isinstance(alias, str):
        return alias
    return f"AI_ASSETS_{field.upper()}" if info is not None else field


def shown_value(field: str, value: object) -> str:
    """The value as the user wrote it (the environment's text when it came from there), quoted
    for a shell, cut short; never the value of a setting that may hold credentials."""
    if field in UNSHOWN_VALUES:
        return "<not shown>"
    variable = env_variable(field)
    raw = next((text for name, text in os.environ.items() if name.upper() == variable.upper()), None)
    if raw is None:
        raw = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    if len(raw) > 80:
        raw = raw[:77] + "..."
    return shlex.quote(raw)


def violation(field: str, value: object, allowed: str) -> ValueError:
    """A rule between settings, broken: named by the variable to change, its value, what is allowed."""
    return ValueError(f"{env_variable(field)}={shown_value(field, value)}: {allowed}")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AI_ASSETS_", extra="ignore")

    key_prefix: str | None = Field(
        default=None,
        pattern=KEY_PREFIX_PATTERN,
        description=(
            "Prefix of a knowledge base's asset keys, jobs, sensors and partitions beside the repository's "
            "one (its name; set by its KnowledgeBase YAML); unset: the unprefixed names of DESIGN.md."
        ),
    )
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
    chunk_max_tokens: int = Field(
        default=MINILM.max_input_tokens - 2, ge=MIN_CHUNK_TOKENS, description="Model tokens per chunk."
    )
    chunk_overlap_tokens: int = Field(default=32, ge=0, description="Tokens shared by consecutive chunks.")
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
    ocr: bool = Field(
        default=True, description="Read scanned PDF pages by OCR (off: a PDF without a text layer is quarantined)."
    )
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
    chat_model: str = Field(
        default="gpt-4o-mini", min_length=1, description="Chat model of generated answers and the judge."
    )
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
            raise ValueError(f"unknown embedder(s) {', '.join(unknown)}; known: {', '.join(sorted(EMBEDDER_SPECS))}")
        if not value:
            raise ValueError("at least one embedder must be enabled")
        return list(dict.fromkeys(value))

    @field_validator("refresh_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        # Dagster's own check, the one the daily_refresh schedule would fail on mid-load.
        import dagster as dg

        try:
            dg.ScheduleDefinition(name="refresh_cron_check", cron_schedule=value, job_name="refresh_cron_check")
        except dg.DagsterInvalidDefinitionError:
            raise ValueError(
                "must be a cron expression of 5 fields (minute hour day-of-month month day-of-week, "
                "e.g. '0 3 * * *') or @hourly/@daily/@weekly/@monthly"
            ) from None
        return value

    @field_validator("openai_base_url", "dagster_ui_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8000/v1")
        return value

    @field_validator("openai_prices")
    @classmethod
    def _prices_not_negative(cls, value: dict[str, float]) -> dict[str, float]:
        negative = sorted(model for model, price in value.items() if price < 0)
        if negative:
            raise ValueError(f"prices must be >= 0 USD per million tokens (negative: {', '.join(negative)})")
        return value

    @model_validator(mode="after")
    def _openai_embedder_when_configured(self) -> Settings:
        # Only when the embedders were not chosen explicitly: AI_ASSETS_EMBEDDERS=minilm stays offline.
        if "embedders" not in self.model_fields_set and self.openai_configured:
            self.embedders = [*self.embedders, OPENAI_SMALL.name]
        return self

    @model_validator(mode="after")
    def _openai_embedder_has_an_endpoint(self) -> Settings:
        if OPENAI_SMALL.name in self.embedders and not self.openai_configured:
            raise violation(
                "embedders", self.embedders, f"{OPENAI_SMALL.name} needs OPENAI_API_KEY or OPENAI_BASE_URL to be set"
            )
        return self

    @model_validator(mode="after")
    def _chunks_fit_every_model(self) -> Settings:
        smallest_window = min(EMBEDDER_SPECS[name].max_input_tokens - 2 for name in self.embedders)
        if self.chunk_max_tokens > smallest_window:
            raise violation(
                "chunk_max_tokens",
                self.chunk_max_tokens,
                f"must be between {MIN_CHUNK_TOKENS} and {smallest_window}, the smallest enabled model window",
            )
        return self

    @model_validator(mode="after")
    def _overlap_within_half_a_chunk(self) -> Settings:
        # The chunker's own rule (ChunkerConfig): checked here so it fails before a run, not in one.
        if self.chunk_overlap_tokens > self.chunk_max_tokens // 2:
            raise violation(
                "chunk_overlap_tokens",
                self.chunk_overlap_tokens,
                f"must be between 0 and half of AI_ASSETS_CHUNK_MAX_TOKENS={self.chunk_max_tokens} "
                f"({self.chunk_max_tokens // 2})",
            )
        return self

    @model_validator(mode="after")
    def _warn_before_fail(self) -> Settings:
        if self.freshness_warn_minutes >= self.freshness_fail_minutes:
            raise violation(
                "freshness_warn_minutes",
                self.freshness_warn_minutes,
                f"must be less than AI_ASSETS_FRESHNESS_FAIL_MINUTES={self.freshness_fail_minutes} (0: no warning)",
            )
        return self

    @property
    def names(self) -> KnowledgeBaseNames:
        from ai_assets.naming import KnowledgeBaseNames  # Dagster: not imported by the CLI's fast paths

        return KnowledgeBaseNames(self.key_prefix)

    @property
    def openai_configured(self) -> bool:
        """The OpenAI path is on when a key or a compatible server is configured."""
        return bool(os.environ.get("OPENAI_API_KEY") or self.openai_base_url)

    @property
    def data_is_remote(self) -> bool:
        return is_remote(self.data_dir)

    @property
    def machine_state_dir(self) -> Path:
        """Where this machine keeps what belongs to this data dir but cannot live in a bucket (the
        build lock): the data dir itself when it is local."""
        return Path(self.data_dir) if not self.data_is_remote else self._user_state("builds")

    @property
    def default_dagster_home(self) -> Path:
        """``<data dir>/dagster_home`` for a local data dir. A bucket cannot hold a Dagster instance,
        so with object storage it is this user's state directory, one per data URI: every working
        directory of this machine then finds the same runs; a team sets DAGSTER_HOME to a
        ``dagster.yaml`` on PostgreSQL instead (docs/deployment.md)."""
        return Path(self.data_dir) / "dagster_home" if not self.data_is_remote else self._user_state("dagster_home")

    def _user_state(self, kind: str) -> Path:
        state = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state")
        return state / "ai_assets" / kind / re.sub(r"[^A-Za-z0-9._-]+", "_", self.data_dir)

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
    def feedback_location(self) -> str:
        """Answered queries and people's judgements of them (``FileFeedbackStore``), beside the data
        so that every machine reading the knowledge base writes the same store."""
        return join(self.data_dir, "feedback")

    @property
    def generated_eval_location(self) -> str:
        """Eval sets made from the knowledge base itself, in BEIR layout: ``sources/<source>/``
        (eval_questions) and ``feedback/`` (people's judgements), beside the data."""
        return join(self.data_dir, "eval_generated")

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


def load_settings(**overrides: Any) -> Settings:
    """Settings from the environment, ``overrides`` (a knowledge base's YAML) taking precedence;
    a bad value raises SettingsError, one line naming it."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = [describe_problem(problem) for problem in error.errors()]
    except pydantic_settings.SettingsError as error:
        # A complex setting (a JSON object) that is not JSON fails before validation.
        match = re.search(r'field "(\w+)"', str(error))
        field = match.group(1) if match else "settings"
        problems = [f"{env_variable(field)}={shown_value(field, '')}: must be a JSON object, e.g. {{\"key\": \"value\"}}"]
    raise SettingsError(f"invalid setting {'; '.join(problems)}")


def describe_problem(problem: Any) -> str:
    """One pydantic error as ``VARIABLE=value: what is allowed``."""
    context = problem.get("ctx") or {}
    # A validator's own message (ours already names variable and value when loc is empty).
    # pydantic says "Input should be greater than 0"; the line reads "...=0: must be greater than 0".
    message = str(context["error"]) if "error" in context else re.sub(r"^\w+ should ", "must ", problem["msg"])
    if not problem["loc"]:
        return message
    field = str(problem["loc"][0])
    field = next((name for name, info in Settings.model_fields.items() if info.validation_alias == field), field)
    return f"{env_variable(field)}={shown_value(field, problem.get('input'))}: {message}"


def unknown_variables(environ: dict[str, str] | None = None) -> list[str]:
    """AI_ASSETS_* variables that set nothing (a typo is otherwise silently ignored), each with
    the closest setting's name when there is one."""
    known = {env_variable(field) for field in Settings.model_fields}
    warnings = []
    for name in sorted(environ if environ is not None else os.environ):
        upper = name.upper()
        if upper.startswith("AI_ASSETS_") and upper not in known:
            close = difflib.get_close_matches(upper, sorted(known), n=1)
            warnings.append(f"{name} is not a setting{f' (did you mean {close[0]}?)' if close else ''}; it is ignored")
    return warnings
