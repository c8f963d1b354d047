"""Reading what earlier materializations recorded, from the Dagster instance."""

from __future__ import annotations

from typing import Any

import dagster as dg

from ai_assets.core.leaderboard import LeaderboardRow, leaderboard_rows


def latest_metadata(instance: dg.DagsterInstance, asset: str, partition: str | None = None) -> dict[str, Any] | None:
    """Metadata values of the asset's latest materialization (of that partition), or None."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition] if partition else None),
        limit=1,
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return None
    return {key: value.value for key, value in materialization.metadata.items()} | {"run_id": records[0].run_id}


def evaluation_leaderboard(instance: dg.DagsterInstance, embedders: list[str]) -> list[LeaderboardRow]:
    """The latest retrieval and answer evaluations and index size of each embedder, joined."""
    retrieval: dict[str, list[dict[str, Any]]] = {}
    answers: dict[str, list[dict[str, Any]]] = {}
    indexes: dict[str, dict[str, Any]] = {}
    for embedder in embedders:
        scores = latest_metadata(instance, "retrieval_evaluation", embedder)
        if scores is None:
            continue
        retrieval[embedder] = [{**row, "run_id": scores["run_id"]} for row in scores.get("results", [])]
        answers[embedder] = (latest_metadata(instance, "answer_evaluation", embedder) or {}).get("results", [])
        indexes[embedder] = latest_metadata(instance, "search_index", embedder) or {}
    return leaderboard_rows(retrieval, answers, indexes)
