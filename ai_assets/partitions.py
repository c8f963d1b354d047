"""Partitions: one dynamic partition per source folder, one static partition per enabled embedder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from ai_assets.core.embedding.base import embedder_spec
from ai_assets.core.embedding.precision import LocalPrecision, resolve_precision
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


# The kinds (an icon or a label in the UI's graph) of what runs each provider's model. The local
# model runs every query in ONNX Runtime, and the texts of a build in ONNX Runtime (fp32-onnx)
# or in PyTorch (the other precisions).
OPENAI_KIND, ONNX_KIND, PYTORCH_KIND = "openai", "onnxruntime", "pytorch"


@dataclass(frozen=True)
class EmbedderPartitions:
    source: dg.DynamicPartitionsDefinition
    embedder: dg.StaticPartitionsDefinition
    source_embedder: dg.MultiPartitionsDefinition
    text_kinds: frozenset[str]  # what chunk_embeddings runs: lancedb and the models that embed texts
    query_kinds: frozenset[str]  # what the evaluations run: lancedb and the models that embed queries


def embedder_partitions(
    embedders: Sequence[str], names: KnowledgeBaseNames, precision: LocalPrecision = "auto"
) -> EmbedderPartitions:
    source = source_partitions(names)
    embedder = dg.StaticPartitionsDefinition(list(embedders))
    providers = {embedder_spec(name).provider for name in embedders}

    def kinds(local_model: str) -> frozenset[str]:
        return frozenset({"lancedb", *(local_model if p == "sentence-transformers" else OPENAI_KIND for p in providers)})

    return EmbedderPartitions(
        source=source,
        embedder=embedder,
        # The dimensions keep their names in every knowledge base: a partition key reads the same.
        source_embedder=dg.MultiPartitionsDefinition({SOURCE_DIMENSION: source, EMBEDDER_DIMENSION: embedder}),
        text_kinds=kinds(ONNX_KIND if resolve_precision(precision) == "fp32-onnx" else PYTORCH_KIND),
        query_kinds=kinds(ONNX_KIND),
    )
