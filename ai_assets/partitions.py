"""Partitions: one dynamic partition per source folder, one static partition per enabled embedder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

SOURCE_DIMENSION = "source"
EMBEDDER_DIMENSION = "embedder"

# Sources come and go with the folders under data/sources/, so they are dynamic partitions
# that `ai-assets build` (and the source sensor) add and remove.
source_partitions = dg.DynamicPartitionsDefinition(name=SOURCE_DIMENSION)


@dataclass(frozen=True)
class EmbedderPartitions:
    embedder: dg.StaticPartitionsDefinition
    source_embedder: dg.MultiPartitionsDefinition


def embedder_partitions(embedders: Sequence[str]) -> EmbedderPartitions:
    embedder = dg.StaticPartitionsDefinition(list(embedders))
    return EmbedderPartitions(
        embedder=embedder,
        source_embedder=dg.MultiPartitionsDefinition(
            {SOURCE_DIMENSION: source_partitions, EMBEDDER_DIMENSION: embedder}
        ),
    )
