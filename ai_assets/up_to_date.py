"""Which runs of `ai-assets build` can be skipped because their assets are up to date.

The rules are Dagster's notion of stale (an asset partition is stale when it is missing, its
code version changed, or an upstream partition was materialized after it), read straight from
each partition's latest materialization record: Dagster's general stale-status resolver asks
the instance about three times as many questions, which cost an unchanged rebuild more than
the rest of it. On top, the build re-runs what Dagster cannot see: the files of a source that
changed since they were ingested, a changed chunker setting, eval sets that changed on disk, a
table whose rows or version no longer match what was recorded (deleted, restored, written
elsewhere), judgements recorded since the feedback eval set was made, a table with nothing
served or a candidate not promoted yet (a failed gate is
re-evaluated by the next build), and a step whose error check failed last time. A step downstream of a run of this
build always runs: each asset is cheap when its input did not really change.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg

from ai_assets.assets.check_outcomes import FAILED_ERROR_CHECKS
from ai_assets.assets.evaluations import EVAL_SETS_FINGERPRINT
from ai_assets.assets.feedback import FEEDBACK_EVAL_SET, FEEDBACK_FINGERPRINT
from ai_assets.automation import CONTENT_FINGERPRINT
from ai_assets.core.feedback import FeedbackStoreUnavailable
from ai_assets.core.store.tables import sql_literal
from ai_assets.core.store.versions import serving_state
from ai_assets.dagster_tags import CODE_VERSION_TAG
from ai_assets.history import latest_materialization, metadata_values
from ai_assets.naming import EMBED_JOB, INDEX_JOB, INGEST_JOB, KnowledgeBaseNames
from ai_assets.partitions import EMBEDDER_DIMENSION, SOURCE_DIMENSION, source_embedder_key
from ai_assets.resources import Chunker, Embedders, FeedbackFiles, LanceDBResource, SourceFiles

# Metadata keys that the assets record and the build compares against the present.
CHUNKER_CONFIG = "chunker_config"
TABLE_VERSION = "table_version"


@dataclass(frozen=True)
class Materialized:
    """What the build needs of an asset partition's latest materialization."""

    storage_id: int
    code_version: str | None
    metadata: dict


@dataclass(frozen=True)
class BuildStep:
    job: str
    """The job as DESIGN.md names it (``INGEST_JOB``...); ``KnowledgeBaseNames.name`` gives its name."""
    partition: dg.MultiPartitionKey | str | None

    @property
    def source(self) -> str | None:
        if self.job == INGEST_JOB:
            return str(self.partition)
        if isinstance(self.partition, dg.MultiPartitionKey):
            return self.partition.keys_by_dimension[SOURCE_DIMENSION]
        return None

    @property
    def embedder(self) -> str | None:
        if self.job == INDEX_JOB:
            return str(self.partition)
        if isinstance(self.partition, dg.MultiPartitionKey):
            return self.partition.keys_by_dimension[EMBEDDER_DIMENSION]
        return None

    def feeds(self, downstream: BuildStep) -> bool:
        """Whether this step's assets are upstream of ``downstream``'s."""
        if self.job == INGEST_JOB:
            return downstream.job == EMBED_JOB and downstream.source == self.source
        return self.job == EMBED_JOB and downstream.job == INDEX_JOB and downstream.embedder == self.embedder


class UpToDate:
    """Tells, step by step, why a build step must run (None: its assets are up to date)."""

    def __init__(
        self,
        defs: dg.Definitions,
        names: KnowledgeBaseNames,
        instance: dg.DagsterInstance,
        fingerprints: Mapping[str, str],
        removed_sources: Sequence[str],
    ) -> None:
        self._instance = instance
        self._names = names
        self._graph = defs.resolve_asset_graph()
        self._fingerprints = dict(fingerprints)  # content fingerprint of each selected source, now
        self._removed_sources = list(removed_sources)
        self._source_files: SourceFiles = defs.resources[names.name("source_files")]  # type: ignore[assignment]
        self._chunker: Chunker = defs.resources[names.name("chunker")]  # type: ignore[assignment]
        self._embedders: Embedders = defs.resources[names.name("embedders")]  # type: ignore[assignment]
        self._lancedb: LanceDBResource = defs.resources[names.name("lancedb")]  # type: ignore[assignment]
        self._feedback: FeedbackFiles = defs.resources[names.name("feedback")]  # type: ignore[assignment]
        self._latest: dict[tuple[str, str | None], Materialized | None] = {}

    def latest(self, asset: str, partition: str | None = None) -> Materialized | None:
        """The latest materialization of this knowledge base's asset ``asset`` (DESIGN.md's name)."""
        key = (asset, partition)
        if key not in self._latest:
            record = latest_materialization(self._instance, self._names.key(asset), partition)
            self._latest[key] = (
                None
                if record is None
                else Materialized(
                    storage_id=record.storage_id,
                    code_version=(record.asset_materialization.tags or {}).get(CODE_VERSION_TAG),  # type: ignore[union-attr]
                    metadata=metadata_values(record),
                )
            )
        return self._latest[key]

    def reason_to_run(self, step: BuildStep, ran: Sequence[BuildStep]) -> str | None:
        upstream = next((earlier for earlier in ran if earlier.feeds(step)), None)
        if upstream is not None:
            return f"after {upstream.job} {upstream.partition}"
        if step.job == INGEST_JOB:
            return self._ingest_reason(str(step.partition))
        if step.job == EMBED_JOB:
            return self._embed_reason(step.source or "", step.embedder or "")
        return self._index_reason(step.embedder or "")

    def _stale(self, asset: str, partition: str | None, *upstream: Materialized | None) -> str | None:
        """Dagster's rule for one partition: missing, a new code version, or older than an upstream one."""
        current = self.latest(asset, partition)
        if current is None:
            return f"{asset} missing"
        if current.code_version != self._graph.get(self._names.key(asset)).code_version:
            return f"{asset} has a new code version"
        if any(parent is not None and parent.storage_id > current.storage_id for parent in upstream):
            return f"{asset} is older than its inputs"
        # Recorded by the asset itself (assets/check_outcomes.py): the error checks it failed.
        failed = current.metadata.get(FAILED_ERROR_CHECKS) or []
        return f"check {failed[0]} failed last time" if failed else None

    def _ingest_reason(self, source: str) -> str | None:
        reason = self._stale("source_documents", source) or self._stale(
            "document_chunks", source, self.latest("source_documents", source)
        )
        if reason:
            return reason
        documents = self.latest("source_documents", source)
        if documents is not None and documents.metadata.get(CONTENT_FINGERPRINT) != self._fingerprints.get(source):
            return "its files changed"
        chunks = self.latest("document_chunks", source)
        if chunks is not None and chunks.metadata.get(CHUNKER_CONFIG) != self._chunker.config().config_hash:
            return "chunker settings changed"
        return None

    def _embed_reason(self, source: str, embedder: str) -> str | None:
        reason = self._stale("chunk_embeddings", str(source_embedder_key(source, embedder)), self.latest("document_chunks", source))
        if reason:
            return reason
        chunks = (self.latest("document_chunks", source) or Materialized(0, None, {})).metadata.get("chunks")
        try:
            table = self._lancedb.table(self._embedders.spec(embedder), create=False)
        except Exception:  # noqa: BLE001 - any reason the table cannot be opened means: rebuild it
            return "its table is missing"
        rows = table.count_rows(f"source = {sql_literal(source)}")
        # An emptied source keeps its rows on purpose (see chunk_embeddings); anything else is drift.
        if chunks is not None and int(chunks) not in (rows, 0):
            return f"table holds {rows} rows of {source}, its chunks are {int(chunks)}"
        return None

    def _index_reason(self, embedder: str) -> str | None:
        if self._removed_sources:
            return f"removed source(s) {', '.join(self._removed_sources)}"
        vectors = [
            self.latest("chunk_embeddings", str(source_embedder_key(source, embedder)))
            for source in self._instance.get_dynamic_partitions(self._names.source_partitions_name)
        ]
        reason = self._stale("search_index", embedder, *vectors)
        if reason:
            return reason
        try:
            table = self._lancedb.table(self._embedders.spec(embedder), create=False)
        except Exception:  # noqa: BLE001 - any reason the table cannot be opened means: rebuild it
            return "its table is missing"
        serving = serving_state(table)
        if serving.served is None:
            return "nothing is served yet"
        if serving.pending is not None:
            return f"candidate v{serving.pending} is not served yet (serving v{serving.served})"
        index = self.latest("search_index", embedder)
        evaluation = self.latest("retrieval_evaluation", embedder)
        served = self.latest("served_index", embedder)
        answers = self.latest("answer_evaluation", embedder)
        reason = (
            self._stale("retrieval_evaluation", embedder, index)
            or self._stale("served_index", embedder, evaluation)
            # After the served version moved: a promotion, or a rollback's recorded move.
            or self._stale("answer_evaluation", embedder, served)
            or self._stale("model_leaderboard", None, served, answers)
            or self._feedback_reason()
        )
        if reason:
            return reason
        indexed = index.metadata.get(TABLE_VERSION) if index else None
        if indexed != table.version:
            return f"table version {table.version} is not the indexed one ({indexed})"
        fingerprint = self._source_files.eval_sets_fingerprint()
        if any(record and record.metadata.get(EVAL_SETS_FINGERPRINT) != fingerprint for record in (evaluation, answers)):
            return "eval sets changed"
        return None

    def _feedback_reason(self) -> str | None:
        """Judgements recorded since the feedback eval set was made: the index job makes it again
        (one listing of the store, no record read)."""
        reason = self._stale(FEEDBACK_EVAL_SET, None)
        if reason:
            return reason
        try:
            now = self._feedback.store().judgements_fingerprint()
        except FeedbackStoreUnavailable as error:
            return str(error)  # the run says it again, as a failure of feedback_eval_set
        made = self.latest(FEEDBACK_EVAL_SET)
        if made is not None and made.metadata.get(FEEDBACK_FINGERPRINT) != now:
            return "feedback was recorded since feedback_eval_set was made"
        return None
