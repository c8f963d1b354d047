"""Partitions: one dynamic partition per source folder, one static partition per enabled embedder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from ai_assets.core.embedding.base import embedder_spec
from ai_assets.naming import KnowledgeBaseNames

SOURCE_DIMENSION = "source"
EMBEDDER_DIMENSION = "embedder"


def source_partitions(names: KnowledgeBaseNames) -> dg.DynamicPartitionsDefinition:
    """Sources come and go with the folders under data/sources/, so they are dynamic partitions
    that `ai-assets build` (and the source sensor) add and remove: one set per knowledge base."""
    return dg.DynamicPartitionsDefinition(name=names.source_partitions_name)


def source_embedder_key(source: str, embedder: str) -> dg.MultiPartitionKey:
    """The chunk_embeddings partition of one source and one embedder."""
    return dg.MultiPartitionKey({SOURCE_DIMENSION: source, EMBEDDER_DIMENSION: embedder})


# The kind (an icon in the UI's graph) of each model provider.
PROVIDER_KINDS = {"sentence-transformers": "pytorch", "openai": "openai"}


@dataclass(frozen=True)
class EmbedderPartitions:
    source: dg.DynamicPartitionsDefinition
    embedder: dg.StaticPartitionsDefinition
    source_embedder: dg.MultiPartitionsDefinition
    model_kinds: frozenset[str]  # what the per-embedder assets run: lancedb and the providers' kinds


def embedder_partitions(embedders: Sequence[str], names: KnowledgeBaseNames) -> EmbedderPartitions:
    source = source_partitions(names)
    embedder = dg.StaticPartitionsDefinition(list(embedders))
    providers = {PROVIDER_KINDS[embedder_spec(name).provider] for name in embedders}
    return EmbedderPartitions(
        source=source,
        embedder=embedder,
        # The dimensions keep their names in every knowledge base: a partition key reads the same.
        source_embedder=dg.MultiPartitionsDefinition({SOURCE_DIMENSION: source, EMBEDDER_DIMENSION: embedder}),
        model_kinds=frozenset({"lancedb", *providers}),
    )
