"""Reading what earlier materializations recorded, from the Dagster instance."""

from __future__ import annotations

from typing import Any

import dagster as dg

from ai_assets.core.evaluation.leaderboard import LeaderboardRow, leaderboard_rows
from ai_assets.metadata_tables import SERVED_PREFIX, read_scores, table_rows
from ai_assets.naming import KnowledgeBaseNames


def latest_materialization(
    instance: dg.DagsterInstance, asset: str | dg.AssetKey, partition: str | None = None
) -> dg.EventLogRecord | None:
    """The asset's latest materialization record (of that partition), or None. A name (``str``)
    is an asset of the repository's knowledge base; another's are ``KnowledgeBaseNames.key``s."""
    key = asset if isinstance(asset, dg.AssetKey) else dg.AssetKey(asset)
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    return records[0] if records and records[0].asset_materialization is not None else None


def metadata_values(record: dg.EventLogRecord) -> dict[str, Any]:
    """The record's metadata as plain values; a table as its rows (dicts by column)."""
    return {
        key: table_rows(value) if isinstance(value, dg.TableMetadataValue) else value.value
        for key, value in record.asset_materialization.metadata.items()  # type: ignore[union-attr]
    }


def latest_metadata(
    instance: dg.DagsterInstance, asset: str | dg.AssetKey, partition: str | None = None
) -> dict[str, Any] | None:
    """Metadata values of the asset's latest materialization (of that partition), or None."""
    record = latest_materialization(instance, asset, partition)
    return None if record is None else metadata_values(record) | {"run_id": record.run_id}


def evaluation_leaderboard(
    instance: dg.DagsterInstance, names: KnowledgeBaseNames, embedders: list[str]
) -> list[LeaderboardRow]:
    """The served version's retrieval scores, the latest answer evaluation and the index size of each embedder, joined."""
    retrieval: dict[str, list[dict[str, Any]]] = {}
    answers: dict[str, list[dict[str, Any]]] = {}
    indexes: dict[str, dict[str, Any]] = {}
    for embedder in embedders:
        # The served version's scores, as its latest evaluation recorded them; a rollback's record
        # has none (until the next evaluation), and then the latest evaluation's are shown.
        served = latest_metadata(instance, names.key("served_index"), embedder) or {}
        prefix = SERVED_PREFIX if f"{SERVED_PREFIX}scores" in served else ""
        scores = served if prefix else latest_metadata(instance, names.key("retrieval_evaluation"), embedder)
        if scores is None:
            continue
        results = read_scores(scores, prefix)
        retrieval[embedder] = [{**row, "run_id": scores["run_id"]} for row in results]
        answers[embedder] = (latest_metadata(instance, names.key("answer_evaluation"), embedder) or {}).get("results", [])
        indexes[embedder] = latest_metadata(instance, names.key("search_index"), embedder) or {}
    return leaderboard_rows(retrieval, answers, indexes)
