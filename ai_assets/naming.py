"""What one knowledge base's definitions are called in a code location and in a Dagster instance.

The repository's knowledge base keeps DESIGN.md's names (``source_documents``, ``ingest_source_job``,
the ``source`` partitions). Every other knowledge base of the code location prefixes them with its
name, since Dagster shares one namespace per code location and instance: asset keys
``handbook/source_documents``; jobs, sensors, schedules, resource keys and the dynamic partition
set ``handbook__ingest_source_job``, ``handbook__source``. Its data (sources, chunk files, LanceDB
tables) lives under its own data dir, which the component checks is not another's.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

# Between a knowledge base's name and a name of DESIGN.md, where Dagster allows no "/" (it is how
# Dagster itself turns a prefixed asset key into a node name).
SEPARATOR = "__"
SOURCE_PARTITIONS = "source"
# The jobs as DESIGN.md names them: those of the repository's knowledge base.
INGEST_JOB = "ingest_source_job"
EMBED_JOB = "embed_source_job"
INDEX_JOB = "index_and_evaluate_job"


@dataclass(frozen=True)
class KnowledgeBaseNames:
    prefix: str | None = None
    """The knowledge base's name when its definitions are prefixed; None: DESIGN.md's names."""

    def key(self, asset: str) -> dg.AssetKey:
        return dg.AssetKey([self.prefix, asset] if self.prefix else [asset])

    def name(self, base: str) -> str:
        """A job, sensor, schedule, resource key, partition set or op of this knowledge base."""
        return f"{self.prefix}{SEPARATOR}{base}" if self.prefix else base

    @property
    def ingest_job(self) -> str:
        return self.name(INGEST_JOB)

    @property
    def embed_job(self) -> str:
        return self.name(EMBED_JOB)

    @property
    def index_job(self) -> str:
        return self.name(INDEX_JOB)

    @property
    def source_partitions_name(self) -> str:
        """The dynamic partition set of the source folders (one partition per folder)."""
        return self.name(SOURCE_PARTITIONS)

    def resource(self, context: dg.AssetExecutionContext, base: str) -> object:
        """The knowledge base's resource ``base`` (e.g. ``source_files``) from a step's resources."""
        return getattr(context.resources, self.name(base))

    def resource_keys(self, *bases: str) -> set[str]:
        return {self.name(base) for base in bases}


DEFAULT_NAMES = KnowledgeBaseNames()
