"""Partitions: one dynamic partition per source folder, one static partition per enabled embedder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from ai_assets.core.embedding.base import embedder_spec

SOURCE_DIMENSION = "source"
EMBEDDER_DIMENSION = "embedder"

# Sources come and go with the folders under data/sources/, so they are dynamic partitions
# that `ai-assets build` (and the source sensor) add and remove.
source_partitions = dg.DynamicPartitionsDefinition(name=SOURCE_DIMENSION)


def source_embedder_key(source: str, embedder: str) -> dg.MultiPartitionKey:
    """The chunk_embeddings partition of one source and one embedder."""
    return dg.MultiPartitionKey({SOURCE_DIMENSION: source, EMBEDDER_DIMENSION: embedder})


# The kind (an icon in the UI's graph) of each model provider.
PROVIDER_KINDS = {"sentence-transformers": "pytorch", "openai": "openai"}


@dataclass(frozen=True)
class EmbedderPartitions:
    embedder: dg.StaticPartitionsDefinition
    source_embedder: dg.MultiPartitionsDefinition
    model_kinds: frozenset[str]  # what the per-embedder assets run: lancedb and the providers' kinds


def embedder_partitions(embedders: Sequence[str]) -> EmbedderPartitions:
    embedder = dg.StaticPartitionsDefinition(list(embedders))
    providers = {PROVIDER_KINDS[embedder_spec(name).provider] for name in embedders}
    return EmbedderPartitions(
        embedder=embedder,
        source_embedder=dg.MultiPartitionsDefinition(
            {SOURCE_DIMENSION: source_partitions, EMBEDDER_DIMENSION: embedder}
        ),
        model_kinds=frozenset({"lancedb", *providers}),
    )
